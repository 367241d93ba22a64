"""Figures as files: laid out once, the same PNG and PDF whether a helper process rendered them
while the audit ran or the report's own process did when it was saved."""

from __future__ import annotations

import io

import pandas as pd
import pytest
from matplotlib.figure import Figure
from PIL import Image

from ganalyze.analyses.base import AnalysisResult
from ganalyze.report import Report
from ganalyze.report import figures as figs


def _figure(kind: int) -> Figure:
    fig = Figure(figsize=(6, 3), layout="constrained")
    axes = fig.subplots(1, 2)
    for i, ax in enumerate(axes):
        ax.plot([0, 0.5, 1], [0, 0.1 * (kind + 1), 1], label=f"curve {i}")
        ax.set(title=f"panel {i}", xlabel="false-positive rate", ylabel="true-positive rate")
        ax.legend()
    return fig


def _report(kinds=(0, 1, 2)) -> Report:
    results = [
        AnalysisResult("modes", "Modes", "digits", figures={f"f{k}": _figure(k) for k in kinds},
                       tables={"t": pd.DataFrame({"x": [1, 2]})}),
        AnalysisResult("dscores", "D scores", "scores", figures={"h": _figure(9)}),
    ]  # fmt: skip
    meta = {"spec": "g.pt", "kind": "test", "versions": {"ganalyze": "test"}, "n_samples": 2,
            "seed": 0}  # fmt: skip
    return Report(meta, results)


def _pngs(folder) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((folder / "figures").glob("*.png"))}


def test_render_crops_like_savefig_tight_and_embeds_truetype() -> None:
    fig = _figure(0)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=figs.PNG_DPI, bbox_inches="tight")
    files = figs.render(_figure(0))
    assert Image.open(io.BytesIO(files.png)).size == Image.open(buf).size
    assert files.png.startswith(b"\x89PNG") and files.pdf.startswith(b"%PDF")
    assert b"/Type3" not in files.pdf
    assert b"/TrueType" in files.pdf or b"/CIDFontType2" in files.pdf


def test_the_helper_renders_what_save_writes(tmp_path, monkeypatch) -> None:
    plain = _report().save(tmp_path / "plain").parent
    report = _report()
    with figs.BackgroundRenderer() as renderer:
        for result in report.results:
            figs.submit(report, result, renderer)
        pending = dict(report.__dict__["_figure_files"])
        assert len(pending) == 4
        for future in pending.values():
            assert isinstance(future.result(timeout=120), figs.FigureFiles)

        def here(*args):
            raise AssertionError("rendered in the report's process, not by the helper")

        monkeypatch.setattr(figs, "render_result", here)
        helped = report.save(tmp_path / "helped").parent
    assert _pngs(helped) == _pngs(plain) and len(_pngs(plain)) == 4
    pdfs = sorted(p.name for p in (helped / "figures").glob("*.pdf"))
    assert pdfs == ["dscores_h.pdf", "modes_f0.pdf", "modes_f1.pdf", "modes_f2.pdf"]


def test_what_the_helper_cannot_do_is_rendered_at_save(tmp_path) -> None:
    plain = _report().save(tmp_path / "plain").parent
    report = _report()
    report.results[1].figures = {"h": lambda result: _figure(9)}  # does not pickle
    with figs.BackgroundRenderer() as renderer:
        for result in report.results:
            figs.submit(report, result, renderer)
        assert report.__dict__["_figure_files"][("dscores", "h")].exception() is not None
        helped = report.save(tmp_path / "helped").parent
    assert _pngs(helped) == _pngs(plain)


@pytest.mark.parametrize("when", ["before", "after"])
def test_a_helper_that_died_costs_nothing_but_time(tmp_path, when) -> None:
    plain = _report().save(tmp_path / "plain").parent
    report = _report()
    renderer = figs.BackgroundRenderer()
    try:
        if when == "before":
            renderer._proc.kill()
            renderer._proc.wait()
        for result in report.results:
            figs.submit(report, result, renderer)
        if when == "after":
            renderer._proc.kill()
        helped = report.save(tmp_path / "helped").parent
    finally:
        renderer.close()
    assert _pngs(helped) == _pngs(plain)


def test_switched_off_and_closed_helpers_render_nothing(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("GANALYZE_FIGURE_HELPER", "0")
    report = _report(kinds=(0,))
    with figs.BackgroundRenderer() as renderer:
        assert renderer._proc is None
        figs.submit(report, report.results[0], renderer)
    closed = figs.BackgroundRenderer(lazy=True)
    closed.close()
    assert closed._proc is None
    assert all(f.exception() is not None for f in closed.submit(report.results[1]).values())
    assert len(_pngs(report.save(tmp_path / "r").parent)) == 2


def test_the_helper_draws_with_the_audits_rcparams(tmp_path) -> None:
    import matplotlib

    with matplotlib.rc_context({"savefig.facecolor": "yellow"}):
        plain = _report().save(tmp_path / "plain").parent
        report = _report()
        with figs.BackgroundRenderer() as renderer:
            for result in report.results:
                figs.submit(report, result, renderer)
            for future in report.__dict__["_figure_files"].values():
                assert future.exception(timeout=120) is None
            helped = report.save(tmp_path / "helped").parent
    assert _pngs(helped) == _pngs(plain)
    corner = Image.open(helped / "figures" / "modes_f0.png").convert("RGB").getpixel((1, 1))
    assert corner == (255, 255, 0)


def test_after_the_helper_died_new_figures_fail_at_once(tmp_path) -> None:
    report = _report()
    with figs.BackgroundRenderer() as renderer:
        renderer._proc.kill()
        renderer._proc.wait()
        figs.submit(report, report.results[0], renderer)  # the reader sees the end meanwhile
        for future in report.__dict__["_figure_files"].values():
            assert future.exception(timeout=60) is not None
        later = renderer.submit(report.results[1])
        assert all(f.done() and f.exception() is not None for f in later.values())
        assert renderer._outbox.qsize() <= 1  # nothing piles up for a helper that is gone
    assert len(_pngs(report.save(tmp_path / "r").parent)) == 4
