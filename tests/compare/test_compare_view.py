"""The comparison page and figures, on hand-built comparisons of synthetic reports."""

from __future__ import annotations

import base64
import io
import math
import os
import re

os.environ.setdefault("MPLBACKEND", "Agg")

import numpy as np
import pandas as pd
import pytest

from ganalyze.analyses.base import AnalysisResult, Flag, Metric
from ganalyze.comparison.entries import Entry
from ganalyze.comparison.figures import figures
from ganalyze.comparison.result import Comparison
from ganalyze.comparison.tables import (
    best_steps,
    first_flags,
    headline_columns,
    ranking,
    summary_rows,
)
from ganalyze.comparison.view import render, render_summary, write_outputs
from ganalyze.report import Report

AUC_RULE = "CI above 0.55"


def _report(label: str, *, auc: float, copy: float, ratio: float, fd: float, d_train: float,
            flagged: bool = False, dscores: bool = True, seed: int = 0) -> Report:  # fmt: skip
    mem = AnalysisResult("memorization", "Memorization", "copies")
    mem.metrics = [
        Metric("copy_rate", copy, "share of copies", higher_is_better=False,
               ci_low=max(copy - 0.01, 0.0), ci_high=copy + 0.01, feature_space="pixel"),
        Metric("nn_dist_ratio", ratio, "distance ratio", target=1.0, feature_space="pixel"),
    ]  # fmt: skip
    dist = AnalysisResult("distribution", "Distribution", "fd")
    dist.metrics = [Metric("fd", fd, "Frechet distance", higher_is_better=False,
                           feature_space="mnist_cnn")]  # fmt: skip
    results, skipped = [mem, dist], []
    if dscores:
        ds = AnalysisResult("dscores", "D scores", "scores")
        ds.metrics = [
            Metric("d_train_mean", d_train, "mean on members"),
            Metric("d_test_mean", 0.5, "mean on test"),
            Metric("d_gen_mean", 0.3, "mean on samples"),
            Metric("d_membership_auc", auc, "auc", target=0.5, ci_low=auc - 0.02,
                   ci_high=auc + 0.02),
        ]  # fmt: skip
        if flagged:
            ds.flags = [Flag(f"D tells its training digits from new ones: auc = {auc:.3f}.",
                             AUC_RULE, ["d_membership_auc"])]  # fmt: skip
        results.append(ds)
    else:
        skipped = [("dscores", "no discriminator")]
    preview = np.random.default_rng(seed).integers(0, 256, (16, 28, 28), dtype=np.uint8)
    return Report(meta={"label": label, "spec": f"/runs/{label}.pt", "seed": 0,
                        "n_samples": 100, "analyses": ["memorization", "distribution",
                                                       "dscores"]},
                  results=results, skipped=skipped, preview=preview)  # fmt: skip


def _tidy(reports: dict[str, Report], entries: list[Entry]) -> pd.DataFrame:
    frames = []
    for e in entries:
        if e.label in reports:
            frame = reports[e.label].metrics
            frame.insert(0, "spec", e.spec)
            frame.insert(0, "step", e.step)
            frame.insert(0, "label", e.label)
            frames.append(frame)
    return pd.concat(frames, ignore_index=True)


@pytest.fixture
def trajectory() -> Comparison:
    """Steps 1-5: the membership AUC rises and is flagged from step 3 on; step 4 failed; fd is
    lowest at step 3; nn_dist_ratio is closest to its target 1 at step 2."""
    values = {1: (0.50, 0.00, 1.8, 9.0), 2: (0.52, 0.00, 1.05, 5.0), 3: (0.60, 0.01, 1.2, 2.0),
              5: (0.70, 0.05, 0.7, 3.0)}  # fmt: skip
    entries = [Entry(f"e{s}", f"/runs/e{s}.pt", step=s) for s in (1, 2, 3, 4, 5)]
    reports = {
        f"e{s}": _report(f"e{s}", auc=auc, copy=copy, ratio=ratio, fd=fd, d_train=0.5 + s / 20,
                         flagged=s >= 3, seed=s)
        for s, (auc, copy, ratio, fd) in values.items()
    }  # fmt: skip
    failures = {"e4": "CUDA out of memory at step 4"}
    meta = {"seed": 0, "n_samples": 100}
    return Comparison(entries, reports, failures, _tidy(reports, entries), meta=meta)


@pytest.fixture
def models() -> Comparison:
    """Three models: b has the lowest fd, c is not significantly different from it, a is."""
    entries = [Entry(lab, f"/m/{lab}.pt") for lab in ("a", "<b>x</b>", "c")]
    reports = {
        "a": _report("a", auc=0.5, copy=0.02, ratio=1.1, fd=6.0, d_train=0.6),
        "<b>x</b>": _report("<b>x</b>", auc=0.7, copy=0.01, ratio=0.9, fd=2.0, d_train=0.6,
                            flagged=True),
        "c": _report("c", auc=0.52, copy=0.03, ratio=1.3, fd=2.5, d_train=0.6, dscores=False),
    }  # fmt: skip
    rows = []
    for a, b, diff, excludes in (("a", "<b>x</b>", -4.0, True), ("<b>x</b>", "c", 0.5, False),
                                 ("a", "c", -3.5, True)):  # fmt: skip
        rows.append({"analysis": "distribution", "metric": "fd", "feature_space": "mnist_cnn",
                     "label_a": a, "label_b": b, "value_a": 0.0, "value_b": diff,
                     "difference": diff, "ci_low": diff - 0.6, "ci_high": diff + 0.6,
                     "excludes_zero": excludes, "paired": False,
                     "method": "bootstrap of the samples (1000 resamples)", "n_boot": 1000,
                     "higher_is_better": False, "target": math.nan, "better": ""})  # fmt: skip
    return Comparison(entries, reports, metrics=_tidy(reports, entries),
                      comparisons=pd.DataFrame(rows), meta={"seed": 0})  # fmt: skip


def test_first_flags_reports_the_first_step(trajectory: Comparison) -> None:
    flags = first_flags(trajectory)
    assert [(f["analysis"], f["rule"], f["first_step"]) for f in flags] == [
        ("dscores", AUC_RULE, 3)
    ]
    assert flags[0]["steps"] == [3, 5] and flags[0]["persistent"]
    assert flags[0]["when"] == "from step 3 on"
    assert "0.600" in flags[0]["message"]  # the message of step 3


def test_best_steps(trajectory: Comparison) -> None:
    best = {(b["analysis"], b["metric"]): b for b in best_steps(trajectory)}
    assert best[("distribution", "fd")]["best_step"] == 3
    assert best[("memorization", "nn_dist_ratio")]["best_step"] == 2  # closest to target 1
    assert best[("dscores", "d_membership_auc")]["best_step"] == 1  # at target 0.5
    assert best[("memorization", "copy_rate")]["best_step"] == 1  # earliest of a tie
    assert best[("distribution", "fd")]["last_step"] == 5
    assert ("dscores", "d_train_mean") not in best  # no direction, no target


def test_summary_rows_mark_the_best(trajectory: Comparison) -> None:
    rows = summary_rows(trajectory)
    names = [c.metric for c in headline_columns(trajectory)]
    assert [r["label"] for r in rows] == ["e1", "e2", "e3", "e4", "e5"]

    def marked(metric: str) -> list[str]:
        i = names.index(metric)
        return [r["label"] for r in rows if r["cells"][i]["best"]]

    assert marked("fd") == ["e3"]  # lower is better
    assert marked("nn_dist_ratio") == ["e2"]  # closest to target
    assert marked("copy_rate") == ["e1", "e2"]  # ties
    assert marked("d_train_mean") == []  # no direction
    column = headline_columns(trajectory)[names.index("copy_rate")]
    column.values = {label: (0.25, 0.2, 0.3) for label in column.values}
    assert column.best(list(column.values)) == []  # all equal: none is best
    failed = rows[3]
    assert failed["failure"] == "CUDA out of memory at step 4" and failed["link"] is None
    assert all(math.isnan(c["value"]) and not c["best"] for c in failed["cells"])
    assert rows[0]["link"] == "runs/e1/index.html"


def test_summary_rows_name_skipped_analyses(models: Comparison) -> None:
    rows = {r["label"]: r for r in summary_rows(models)}
    assert rows["c"]["notes"] == ["dscores skipped: no discriminator"]
    assert rows["a"]["notes"] == [] and rows["a"]["failure"] is None


def test_ranking_says_which_are_not_significantly_different(models: Comparison) -> None:
    fd = next(r for r in ranking(models) if r["metric"] == "fd")
    assert [i["label"] for i in fd["order"]] == ["<b>x</b>", "c", "a"]
    verdicts = {i["label"]: i["verdict"] for i in fd["order"]}
    assert verdicts == {"<b>x</b>": "best", "c": "not significantly different",
                        "a": "significantly different"}  # fmt: skip
    assert fd["tied"] == ["c"]
    a = next(i for i in fd["order"] if i["label"] == "a")
    assert a["difference"] == pytest.approx(4.0)  # a - best, from the row stored as a - b
    copy = next(r for r in ranking(models) if r["metric"] == "copy_rate")
    assert copy["order"][1]["verdict"] == "no interval"  # no comparisons rows for it
    assert first_flags(models) == [] and best_steps(models) == []


def test_figures_by_mode(trajectory: Comparison, models: Comparison) -> None:
    assert set(figures(trajectory)) == {"memorization_by_step", "distribution_by_step",
                                        "dscores_by_step", "d_scores_by_step",
                                        "samples_by_step"}  # fmt: skip
    assert set(figures(models)) == {"headline_metrics", "samples_by_model"}
    assert ranking(trajectory) == []


def _check_page(html: str) -> None:
    assert html.count("<html") == 1
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    assert not re.search(r"<(script|link)\b", html)
    for src in re.findall(r"""src\s*=\s*["']([^"']*)""", html):
        assert src.startswith("data:image/png;base64,")


def test_write_outputs_trajectory(trajectory: Comparison, tmp_path) -> None:
    write_outputs(trajectory, tmp_path)
    html = (tmp_path / "index.html").read_text(encoding="utf-8")
    _check_page(html)
    names = set(figures(trajectory))
    for name in names:
        png = (tmp_path / "figures" / f"{name}.png").read_bytes()
        assert png.startswith(b"\x89PNG")
        assert (tmp_path / "figures" / f"{name}.pdf").read_bytes().startswith(b"%PDF")
        assert base64.b64encode(png).decode("ascii") in html  # the file's bytes, inlined
    assert html.count("data:image/png;base64,") == len(names)
    assert "CUDA out of memory at step 4" in html
    assert "From step 3 on" in html
    assert 'href="runs/e1/index.html"' in html and "runs/e4/index.html" not in html


def test_page_escapes_labels_and_links_existing_reports(models: Comparison, tmp_path) -> None:
    models.failures["d"] = "no such file: /m/d.pt"
    models.entries.append(Entry("d", "/m/d.pt"))
    write_outputs(models, tmp_path)
    html = (tmp_path / "index.html").read_text(encoding="utf-8")
    _check_page(html)
    assert "<b>x</b>" not in html and "&lt;b&gt;x&lt;/b&gt;" in html
    folder = models.entries[1].folder  # the label's folder name under runs/
    assert folder == "b_x_b" and f'href="runs/{folder}/index.html"' in html
    assert 'href="runs/a/index.html"' in html and "runs/d/index.html" not in html
    assert "no such file: /m/d.pt" in html
    assert "not significantly different" in html
    assert "bootstrap of the samples (1000 resamples)" in html  # how intervals were formed
    assert "dscores skipped: no discriminator" in html


def test_render_summary_is_compact(models: Comparison) -> None:
    html = render_summary(models)
    assert "<html" not in html and "data:image" not in html
    assert "<table" in html and "&lt;b&gt;x&lt;/b&gt;" in html


def test_figures_draw_with_missing_pieces(models: Comparison) -> None:
    """Every report's intervals NaN, one preview missing, one entry failed, no comparisons."""
    for report in models.reports.values():
        for r in report.results:
            for m in r.metrics:
                m.ci_low = m.ci_high = math.nan
    models.reports["a"].preview = None
    models.metrics = _tidy(models.reports, models.entries)
    models.comparisons = pd.DataFrame()
    models.failures["d"] = "broken"
    models.entries.append(Entry("d", "/m/d.pt"))
    for draw in figures(models).values():
        draw().savefig(io.BytesIO(), format="png")
    _check_page(render(models, {}))


def test_trajectory_with_nothing_but_failures(tmp_path) -> None:
    entries = [Entry("e1", "/e1.pt", step=1), Entry("e2", "/e2.pt", step=2)]
    comp = Comparison(entries, {}, failures={"e1": "bad", "e2": "worse"})
    assert figures(comp) == {} and first_flags(comp) == [] and best_steps(comp) == []
    write_outputs(comp, tmp_path)
    html = (tmp_path / "index.html").read_text(encoding="utf-8")
    assert "worse" in html and "No audit completed" in html


def test_long_trajectory_thins_the_sample_grid_and_says_so() -> None:
    entries = [Entry(f"s{s}", f"/s{s}.pt", step=s) for s in range(30)]
    reports = {e.label: _report(e.label, auc=0.5, copy=0.0, ratio=1.0, fd=float(e.step),
                                d_train=0.5, flagged=e.step == 29) for e in entries}  # fmt: skip
    comp = Comparison(entries, reports, metrics=_tidy(reports, entries))
    html = render(comp, {"samples_by_step": b"\x89PNG"})
    assert "24 of 30 rows shown, evenly spaced." in html
    assert first_flags(comp)[0]["when"] == "at step 29, the last step audited"


def test_rows_come_from_the_reports_without_a_metrics_frame(models: Comparison) -> None:
    expected = summary_rows(models)
    models.metrics = pd.DataFrame()
    assert summary_rows(models) == expected


def test_a_metric_without_values_still_draws(trajectory: Comparison) -> None:
    for report in trajectory.reports.values():
        report.result("distribution").metrics[0].value = math.nan
    trajectory.metrics = _tidy(trajectory.reports, trajectory.entries)
    cells = [r["cells"][-1] for r in summary_rows(trajectory)]  # fd, the last column
    assert not any(c["best"] for c in cells)
    assert all(b["metric"] != "fd" for b in best_steps(trajectory))
    figures(trajectory)["distribution_by_step"]().savefig(io.BytesIO(), format="png")


def test_header_reads_the_comparison_settings(models: Comparison) -> None:
    models.meta = {"settings": {"seed": 7, "n_samples": None}, "reused": ["a"],
                   "audited": ["c"], "executor": "processes"}  # fmt: skip
    html = render(models, {})
    assert "100 per generator (seed 7)" in html  # n_samples from the reports when unset
    assert "1 reused from the cache, 1 run" in html


def test_a_flag_that_stops_firing_is_not_said_to_persist(trajectory: Comparison) -> None:
    trajectory.reports["e5"].result("dscores").flags = []
    assert first_flags(trajectory)[0]["when"] == "at step 3 only"
    trajectory.entries.append(Entry("e6", "/runs/e6.pt", step=6))
    trajectory.reports["e6"] = _report("e6", auc=0.8, copy=0.0, ratio=1.0, fd=1.0, d_train=0.9,
                                       flagged=True)  # fmt: skip
    flag = first_flags(trajectory)[0]
    assert flag["when"] == "first at step 3; also at step 6" and not flag["persistent"]


def _same_places(*texts: str) -> bool:
    """Whether the numbers in ``texts`` ("0.0200", "0.0100 – 0.0300") have one number of
    decimals."""
    numbers = [n for t in texts for n in re.findall(r"-?\d+(?:\.\d+)?", t)]
    return len({len(n.split(".")[1]) if "." in n else 0 for n in numbers}) == 1


def test_ranking_and_best_step_tables_write_one_format_per_metric(
    models: Comparison, trajectory: Comparison
) -> None:
    """Value and interval share their decimals (one format per metric, the summary table's),
    the differences theirs, and a share is never written in scientific notation."""
    frame = models.metrics
    tiny = (frame["label"] == "a") & (frame["metric"] == "copy_rate")
    frame.loc[tiny, ["value", "ci_low", "ci_high"]] = [3e-5, 1e-5, 9e-5]
    html = render(models, {})
    section = html[html.index("<h2>Ranking per metric</h2>") : html.index("<h2>Findings by")]
    rows = re.findall(
        r'<tr><td class="num">\d+</td><td>[^<]*</td><td class="num">([^<]*)</td>'
        r'<td class="num">(?:<span class="ci">([^<]*)</span>)?</td><td>([^<]*)</td>\n'
        r'<td class="num">([^<]*?)(?: <span class="ci">([^<]*)</span>)?</td></tr>',
        section,
    )
    assert len(rows) >= 10, section
    by_metric = {r["metric"]: r for r in ranking(models)}
    for value, interval, verdict, diff, diff_ci in rows:
        assert "e-" not in value + interval + diff + diff_ci, (value, interval, diff, diff_ci)
        assert _same_places(value, interval), (value, interval)
        if diff_ci:
            assert _same_places(diff, diff_ci), (diff, diff_ci)
        assert (diff == "") == (verdict == "best")
    copy = [(i["text"], i["ci_text"]) for i in by_metric["copy_rate"]["order"]]
    assert copy[0] == ("0.00003", "0.00001 – 0.00009")  # best: lowest
    assert {len(text.split(".")[1]) for text, _ in copy} == {5}  # one format per metric
    fd = {i["label"]: i for i in by_metric["fd"]["order"]}
    assert (fd["a"]["text"], fd["a"]["diff_text"], fd["a"]["diff_ci_text"]) == (
        "6.00", "4.00", "3.40 – 4.60")  # fmt: skip

    html = render(trajectory, {})
    section = html[html.index("<h2>Best step per") : html.index("<h2>Reports</h2>")]
    rows = re.findall(
        r'<td class="num">\d+</td><td class="num">([^<]*)</td><td class="num">'
        r'(?:<span class="ci">([^<]*)</span>)?</td><td class="num">\d+</td>'
        r'<td class="num">([^<]*)</td></tr>',
        section,
    )
    assert len(rows) == len(best_steps(trajectory)) >= 4, section
    for value, interval, last in rows:
        assert "e-" not in value + interval + last
        assert _same_places(value, interval or value, last), (value, interval, last)
    best = {b["metric"]: b for b in best_steps(trajectory)}
    copy = best["copy_rate"]  # as the summary table writes the column (0.01 at step 3)
    assert (copy["text"], copy["ci_text"], copy["last_text"]) == (
        "0.0000", "0.0000 – 0.0100", "0.0500")  # fmt: skip
