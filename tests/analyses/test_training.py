"""The training record's figures: a run of one epoch gets a readable axis."""

from __future__ import annotations

import pandas as pd

from ganalyze.analyses.base import AnalysisResult
from ganalyze.analyses.training import plot_curves

ROW = {"d_loss": 1.2, "g_loss": 0.7, "d_train": 0.6, "d_test": 0.58, "d_gen": 0.3,
       "d_real": 0.62, "d_fake": 0.35}  # fmt: skip


def _result(epochs: int) -> AnalysisResult:
    res = AnalysisResult("training", "Training record", "history")
    res.tables["history"] = pd.DataFrame([{"epoch": e, **ROW} for e in range(1, epochs + 1)])
    return res


def test_one_epoch_curves_get_a_sensible_axis() -> None:
    fig = plot_curves(_result(1))
    losses, scores = fig.axes[:2]
    for ax in (losses, scores):
        assert ax.get_xlim() == (0.0, 2.0)
        assert list(ax.get_xticks()) == [0, 1, 2]
        points = [line for line in ax.get_lines() if len(line.get_xdata()) == 1]
        assert points and all(line.get_marker() == "o" for line in points)
        legend = ax.get_legend()
        assert legend is not None and legend.get_bbox_to_anchor().x0 >= ax.bbox.x1 - 1


def test_several_epochs_keep_their_own_axis() -> None:
    fig = plot_curves(_result(5))
    low, high = fig.axes[0].get_xlim()
    assert low < 1.5 and 4.5 < high < 6
