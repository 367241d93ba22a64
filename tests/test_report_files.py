"""The files a report writes: swapped in whole, never mixed, never over a user's folder."""

from __future__ import annotations

import json
import os

import pandas as pd
import pytest
from click.testing import CliRunner
from matplotlib.figure import Figure

from ganalyze import _io
from ganalyze.analyses.base import AnalysisResult
from ganalyze.cli import main
from ganalyze.errors import InputError
from ganalyze.report import Report, default_name


def _figure() -> Figure:
    fig = Figure(figsize=(1, 1))
    fig.subplots().plot([0, 1], [1, 0])
    return fig


def _result(name: str, figures: int, tables: int) -> AnalysisResult:
    return AnalysisResult(
        name=name,
        title=name.title(),
        description=f"the {name} analysis",
        figures={f"fig{i}": _figure() for i in range(figures)},
        tables={f"tab{i}": pd.DataFrame({"x": [i, i + 1]}) for i in range(tables)},
    )


def _report(*names: str, spec: str = "runs/a/latest.pt") -> Report:
    meta = {
        "spec": spec,
        "kind": "synthetic",
        "versions": {"ganalyze": "test"},
        "n_samples": 2,
        "seed": 0,
    }
    return Report(meta, [_result(n, figures=3, tables=2) for n in names])


def _files(folder) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


def _hidden_siblings(folder) -> list[str]:
    return [p.name for p in folder.parent.iterdir() if p.name.startswith(".")]


def test_a_smaller_report_replaces_a_full_one_whole(tmp_path) -> None:
    out = tmp_path / "reports" / "r"
    _report("modes", "distribution", "memorization").save(out)
    full = _files(out)
    assert "figures/distribution_fig0.pdf" in full and "tables/memorization_tab1.parquet" in full
    index = _report("modes").save(out)
    assert index == out / "index.html"
    expected = {"index.html", "meta.json", "metrics.csv", "metrics.json", "metrics.tex",
                "results.json"}  # fmt: skip
    expected |= {f"figures/modes_fig{i}.{ext}" for i in range(3) for ext in ("png", "pdf")}
    expected |= {f"tables/modes_tab{i}.{ext}" for i in range(2) for ext in ("csv", "parquet")}
    assert _files(out) == expected
    assert _hidden_siblings(out) == []


def test_a_report_without_tables_leaves_no_old_tables(tmp_path) -> None:
    out = tmp_path / "r"
    _report("modes", "distribution").save(out)
    Report(_report().meta, [_result("modes", figures=1, tables=0)]).save(out)
    assert not (out / "tables").exists()
    assert _files(out) == {
        "index.html",
        "meta.json",
        "metrics.csv",
        "metrics.json",
        "metrics.tex",
        "results.json",
        "figures/modes_fig0.png",
        "figures/modes_fig0.pdf",
    }


def test_a_folder_that_is_not_a_report_is_refused_and_kept(tmp_path) -> None:
    out = tmp_path / "thesis"
    out.mkdir()
    (out / "chapter1.tex").write_text("precious")
    with pytest.raises(InputError, match="not a report written by ganalyze"):
        _report("modes").save(out)
    assert _files(out) == {"chapter1.tex"}
    assert _hidden_siblings(out) == []
    # a meta.json that ganalyze did not write does not make it a report either
    (out / "meta.json").write_text('{"author": "me"}')
    with pytest.raises(InputError, match="refusing to replace it"):
        _report("modes").save(out)
    assert (out / "chapter1.tex").read_text() == "precious"
    # nor is a ganalyze report with a user's file put beside it
    report = tmp_path / "report"
    _report("modes").save(report)
    (report / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match="or holds other files beside one"):
        _report("modes").save(report)
    assert (report / "notes.txt").read_text() == "mine" and (report / "meta.json").is_file()


def test_an_empty_folder_and_a_file_in_the_way(tmp_path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    _report("modes").save(empty)
    assert (empty / "index.html").is_file()
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(InputError, match="is not a folder"):
        _report("modes").save(blocker)


def test_a_failed_save_keeps_the_old_report_and_leaves_nothing_behind(tmp_path, monkeypatch):
    out = tmp_path / "r"
    _report("modes", "distribution").save(out)
    before = {p: (out / p).read_bytes() for p in _files(out)}

    def broken(self):
        raise RuntimeError("disk full")

    monkeypatch.setattr(Report, "to_html", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        _report("modes").save(out)
    assert {p: (out / p).read_bytes() for p in _files(out)} == before
    assert _hidden_siblings(out) == []
    # parents created for a new folder are removed again
    with pytest.raises(RuntimeError, match="disk full"):
        _report("modes").save(tmp_path / "new" / "deep" / "r")
    assert not (tmp_path / "new").exists()


def test_an_interrupted_swap_never_mixes_and_is_cleaned_next_time(tmp_path, monkeypatch):
    out = tmp_path / "r"
    _report("modes", "distribution").save(out)
    before = _files(out)
    renames = []
    real_rename = os.rename

    def rename_then_die(src, dst):
        renames.append((src, dst))
        real_rename(src, dst)
        if len(renames) == 1:  # the old report is moved away: stop before the new one moves in
            raise KeyboardInterrupt

    monkeypatch.setattr(_io.os, "rename", rename_then_die)
    with pytest.raises(KeyboardInterrupt):
        _report("modes").save(out)
    monkeypatch.undo()
    assert _files(out) == before and _hidden_siblings(out) == []  # the old report is back
    # a kill -9 between the renames leaves no report and two hidden folders: the next save
    # of that folder removes them
    os.rename(out, tmp_path / ".r.abcd1234.tmp")
    (tmp_path / ".r.efgh5678.tmp" / "figures").mkdir(parents=True)
    (tmp_path / ".r.efgh5678.tmp" / "figures" / "half.png").write_bytes(b"x")
    (tmp_path / ".other.abcd1234.tmp").mkdir()  # another folder's: not touched
    _report("modes").save(out)
    assert not any("distribution" in f for f in _files(out))
    assert _hidden_siblings(out) == [".other.abcd1234.tmp"]


def test_stale_temps_only_match_ganalyze_names(tmp_path) -> None:
    for name in (
        ".latest.pt.abcd_123.tmp",  # ours
        ".latest.pt.x1y2z3w4.tmp",  # ours
        ".latest.pt.tmp",  # no random part
        ".notes.txt.abcd1234.tmp",  # not a name we write
        "latest.pt.abcd1234.tmp",  # not hidden
        ".latest.pt.ABCD1234.tmp",  # not tempfile's alphabet
    ):
        (tmp_path / name).write_text("x")
    assert _io.remove_stale_temps(tmp_path, r"latest\.pt") == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        ".latest.pt.ABCD1234.tmp",
        ".latest.pt.tmp",
        ".notes.txt.abcd1234.tmp",
        "latest.pt.abcd1234.tmp",
    ]
    assert _io.remove_stale_temps(tmp_path / "missing", r"latest\.pt") == 0


def test_default_folders_of_different_specs_differ(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    for run in ("a", "b"):
        (tmp_path / "runs" / run / "checkpoints").mkdir(parents=True)
        (tmp_path / "runs" / run / "latest.pt").write_bytes(b"")
    a, b = default_name("runs/a/latest.pt"), default_name("runs/b/latest.pt")
    assert a != b and a.startswith("a-latest-") and b.startswith("b-latest-")
    assert default_name(str(tmp_path / "runs/a/latest.pt")) == a  # the resolved path decides
    assert default_name("runs/a/checkpoints/epoch_0010.pt").startswith("a-epoch_0010-")
    assert default_name("pkg.models:build").startswith("models-build-")
    assert default_name("pkg.models:build") != default_name("other.models:build")

    def fake_audit(spec, **options):
        return _report("modes", spec=spec)

    monkeypatch.setattr("ganalyze.pipeline.audit", fake_audit)
    for spec in ("runs/a/latest.pt", "runs/b/latest.pt"):
        result = CliRunner().invoke(main, ["report", spec, "--quiet"], catch_exceptions=False)
        assert result.exit_code == 0, result.output
    folders = sorted(p.name for p in (tmp_path / "reports").iterdir())
    assert folders == sorted([a, b])
    for folder in folders:
        meta = json.loads((tmp_path / "reports" / folder / "meta.json").read_text())
        assert meta["spec"] == f"runs/{folder[0]}/latest.pt"


def test_a_failed_report_leaves_no_folder(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "new" / "deeper" / "r"
    result = CliRunner().invoke(main, ["report", "nope.pt", "-o", str(out), "--quiet"])
    assert result.exit_code == 1 and "Error:" in result.output, result.output
    assert not (tmp_path / "new").exists() and not (tmp_path / "reports").exists()


def test_pdf_figures_embed_truetype_fonts_not_type3(tmp_path) -> None:
    fig = Figure(figsize=(2, 2))
    ax = fig.subplots()
    ax.plot([0, 1], [1, 0], label="a line")
    ax.set(title="Title", xlabel="x", ylabel="y")
    ax.legend()
    res = AnalysisResult("modes", "Modes", "digits", figures={"line": fig})
    out = Report(_report().meta, [res]).save(tmp_path / "r").parent
    pdf = (out / "figures" / "modes_line.pdf").read_bytes()
    assert b"/Type3" not in pdf
    assert b"/TrueType" in pdf or b"/CIDFontType2" in pdf
