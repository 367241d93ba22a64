"""The Python side of compare: ganalyze.compare, Report.to_frame(wide=True) of several reports,
Report.load of a saved report."""

from __future__ import annotations

import numpy as np
import pandas as pd

import ganalyze
from ganalyze.analyses.base import AnalysisResult, Flag, Metric
from ganalyze.comparison import tidy_metrics
from ganalyze.comparison.entries import Entry
from ganalyze.report import Report


def _report(weights: str | None, value: float) -> Report:
    res = AnalysisResult("memorization", "Memorization", "copies")
    res.metrics = [
        Metric("copy_rate", value, "share of copies", higher_is_better=False, ci_low=value - 0.01,
               ci_high=value + 0.02, feature_space="pixel", n_real=10, n_fake=4),
        Metric("ct_statistic", -value, "C_T", target=0.0, feature_space="mnist_cnn"),
    ]  # fmt: skip
    res.flags = [Flag("copies", "rule", ["copy_rate"])]
    res.tables["samples"] = pd.DataFrame({"sample": np.arange(4), "copy_pixel": [1, 0, 0, 0]})
    meta = {"spec": "net.py:make", "weights": weights, "seed": 0}
    return Report(meta=meta, results=[res], skipped=[("dscores", "no discriminator")],
                  preview=np.zeros((2, 28, 28), np.uint8))  # fmt: skip


def test_compare_is_the_function_and_comparison_the_class():
    assert callable(ganalyze.compare) and ganalyze.compare.__name__ == "compare"
    assert ganalyze.Comparison.__name__ == "Comparison"


def test_wide_frames_of_two_weight_files_concatenate_with_intervals():
    a, b = _report("a.pt", 0.25), _report("b.pt", 0.5)
    wide = pd.concat([r.to_frame(wide=True, intervals=True) for r in (a, b)])
    assert list(wide.index) == ["net.py:make [weights a.pt]", "net.py:make [weights b.pt]"]
    assert wide.loc["net.py:make [weights b.pt]", "memorization/copy_rate/pixel"] == 0.5
    assert wide.loc["net.py:make [weights a.pt]", "memorization/copy_rate/pixel/ci_high"] == 0.27
    assert "memorization/ct_statistic/mnist_cnn/ci_low" in wide.columns
    # consistent with the tidy metrics pivoted
    entries = [Entry("A", "net.py:make"), Entry("B", "net.py:make")]
    tidy = tidy_metrics(entries, {"A": a, "B": b})
    tidy["column"] = tidy.analysis + "/" + tidy.metric + "/" + tidy.feature_space
    pivot = tidy.pivot(index="label", columns="column", values="value")
    values = wide[[c for c in wide.columns if not c.endswith(("/ci_low", "/ci_high"))]]
    np.testing.assert_array_equal(pivot[values.columns].to_numpy(), values.to_numpy())


def test_a_saved_report_loads_back_exactly(tmp_path):
    report = _report("a.pt", 1 / 3)
    report.meta["versions"] = {"ganalyze": ganalyze.__version__}
    report.save(tmp_path / "r")
    loaded = Report.load(tmp_path / "r")
    pd.testing.assert_frame_equal(loaded.metrics, report.metrics)
    assert loaded.metrics.value[0] == 1 / 3  # to the last digit
    assert [(n, f.message, f.rule) for n, f in loaded.flags] == [("memorization", "copies",
                                                                  "rule")]  # fmt: skip
    assert loaded.skipped == [("dscores", "no discriminator")]
    pd.testing.assert_frame_equal(loaded.result("memorization").tables["samples"],
                                  report.result("memorization").tables["samples"])  # fmt: skip
    assert loaded.preview.shape == (2, 28, 28)
    assert loaded.result("memorization").metric("copy_rate", "pixel").description == (
        "share of copies"
    )
