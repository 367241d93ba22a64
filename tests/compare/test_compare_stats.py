"""Differences between generators (ganalyze.comparison.stats): MOVER against Newcombe's published
example, bootstrap intervals with planted differences, their coverage, paired against unpaired,
the per-sample form of a metric, which pairs are compared, and the table's shape."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pandas as pd
import pytest

from ganalyze.analyses.base import METRIC_COLUMNS, AnalysisResult, Metric
from ganalyze.comparison.stats import (
    COLUMNS,
    bootstrap_means,
    differences,
    mover_difference,
    per_sample_values,
)
from ganalyze.errors import InputError
from ganalyze.report import Report
from ganalyze.stats import wilson_interval

KEY = ("modes", "ood_rate", "")


def never(a: str, b: str) -> bool:
    return False


def always(a: str, b: str) -> bool:
    return True


def row(label: str, value: float, low: float = np.nan, high: float = np.nan, *,
        analysis: str = "modes", metric: str = "ood_rate", space: str = "",
        higher_is_better: bool | None = False, target: float | None = None,
        n: int | None = None) -> dict:  # fmt: skip
    """One tidy metric row of a comparison (label, step and spec in front)."""
    return {"label": label, "step": None, "spec": f"{label}.pt", "analysis": analysis,
            "metric": metric, "value": value, "ci_low": low, "ci_high": high,
            "higher_is_better": higher_is_better, "target": target, "feature_space": space,
            "n_real": None, "n_fake": n}  # fmt: skip


def frame(rows: list[dict]) -> pd.DataFrame:
    out = pd.DataFrame(rows, columns=["label", "step", "spec", *METRIC_COLUMNS])
    out["higher_is_better"] = out["higher_is_better"].astype("boolean")
    for col in ("value", "ci_low", "ci_high", "target"):
        out[col] = out[col].astype("float64")
    return out


def rate_rows(arrays: dict[str, np.ndarray]) -> pd.DataFrame:
    """A rate per label (the mean of its booleans) with its Wilson interval."""
    rows = []
    for label, x in arrays.items():
        low, high = wilson_interval(float(x.sum()), len(x))
        rows.append(row(label, float(x.mean()), low, high, n=len(x)))
    return frame(rows)


def samples_of(arrays: dict[str, np.ndarray]) -> dict:
    return {label: {KEY: x.astype(np.float64)} for label, x in arrays.items()}


def test_mover_reproduces_newcombe_method_10() -> None:
    """Newcombe (1998), Table II, example (a): 56/70 - 48/80, method 10: 0.0524 to 0.3339."""
    low_a, high_a = wilson_interval(48, 80)
    low_b, high_b = wilson_interval(56, 70)
    low, high = mover_difference(48 / 80, low_a, high_a, 56 / 70, low_b, high_b)
    assert (low, high) == pytest.approx((0.0524, 0.3339), abs=6e-5)
    table = differences(frame([row("a", 48 / 80, low_a, high_a), row("b", 56 / 70, low_b, high_b)]),
                        {}, order=["a", "b"], paired=always)  # fmt: skip
    got = table.iloc[0]
    assert (got.ci_low, got.ci_high) == pytest.approx((0.0524, 0.3339), abs=6e-5)
    assert got.difference == pytest.approx(0.2)
    assert got.method.startswith("MOVER") and "independent" in got.method
    assert "share latents" in got.method  # paired samples without a per-sample form
    assert not got.paired and pd.isna(got.n_boot)
    assert got.excludes_zero and got.better == "a"  # a lower ood_rate is better


def test_planted_difference_is_found_and_the_better_named() -> None:
    rng = np.random.default_rng(1)
    arrays = {"low": rng.random(2000) < 0.10, "high": rng.random(2000) < 0.20}
    table = differences(rate_rows(arrays), samples_of(arrays), order=["low", "high"],
                        paired=never, pairs="all")  # fmt: skip
    assert len(table) == 1
    got = table.iloc[0]
    assert (got.label_a, got.label_b) == ("low", "high")
    assert got.method.startswith("independent bootstrap") and got.n_boot == 2000
    assert not got.paired
    assert got.excludes_zero and got.ci_low > 0.05
    assert got.ci_low < got.difference < got.ci_high
    assert got.better == "low"  # higher_is_better False
    flipped = differences(rate_rows(arrays), samples_of(arrays), order=["high", "low"],
                          paired=never)  # fmt: skip
    assert flipped.iloc[0].ci_high < -0.05 and flipped.iloc[0].better == "low"


def test_independent_bootstrap_covers_a_zero_difference() -> None:
    """Two generators with the same rate: the 95% interval covers 0 about 95% of the time."""
    rng = np.random.default_rng(2)
    covered = []
    for rep in range(200):
        arrays = {"a": rng.random(400) < 0.1, "b": rng.random(400) < 0.1}
        got = differences(rate_rows(arrays), samples_of(arrays), order=["a", "b"],
                          paired=never, n_boot=1000, seed=rep).iloc[0]  # fmt: skip
        covered.append(got.ci_low <= 0 <= got.ci_high)
        assert got.excludes_zero == (not covered[-1])
        lower = "a" if got.ci_low > 0 else "b"  # a lower ood_rate is better
        assert got.better == ("" if covered[-1] else lower)
    assert 0.90 <= np.mean(covered) <= 0.99


def test_paired_interval_is_narrower_and_the_exact_path_agrees() -> None:
    rng = np.random.default_rng(3)
    n = 2000
    a = rng.random(n) < 0.3
    b = a.copy()
    b[rng.choice(n, size=n // 50, replace=False)] ^= True  # 2% of the same latents flipped
    arrays = {"a": a, "b": b}
    rows, per_sample = rate_rows(arrays), samples_of(arrays)
    together = differences(rows, per_sample, order=["a", "b"], paired=always).iloc[0]
    apart = differences(rows, per_sample, order=["a", "b"], paired=never).iloc[0]
    assert together.paired and together.method.startswith("paired bootstrap")
    assert not apart.paired and apart.method.startswith("independent bootstrap")
    width = together.ci_high - together.ci_low
    assert width < 0.3 * (apart.ci_high - apart.ci_low)
    diff = b.astype(float) - a.astype(float)  # values in {-1, 0, 1}
    sd = diff.std() / np.sqrt(n)  # the bootstrap's own standard error
    assert width == pytest.approx(2 * 1.96 * sd, rel=0.15)
    exact = bootstrap_means(diff, n_boot=4000, rng=np.random.default_rng(4))
    plain = bootstrap_means(diff, n_boot=4000, rng=np.random.default_rng(5), max_distinct=0)
    assert exact.std() == pytest.approx(sd, rel=0.06)
    assert plain.std() == pytest.approx(sd, rel=0.06)
    assert exact.mean() == pytest.approx(diff.mean(), abs=4 * sd / np.sqrt(4000) + 1e-12)
    assert plain.mean() == pytest.approx(diff.mean(), abs=4 * sd / np.sqrt(4000) + 1e-12)
    assert np.allclose(np.quantile(exact, [0.025, 0.975]), np.quantile(plain, [0.025, 0.975]),
                       atol=0.25 * sd + 1 / n)  # fmt: skip


def test_index_resampling_of_continuous_values_stays_small() -> None:
    x = np.random.default_rng(6).normal(size=10_000)
    tracemalloc.start()
    try:
        means = bootstrap_means(x, n_boot=2000, rng=np.random.default_rng(7))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 100 * 2**20
    assert means.std() == pytest.approx(x.std() / 100, rel=0.08)


def test_intervals_are_reproducible_and_row_independent() -> None:
    rng = np.random.default_rng(8)
    arrays = {k: rng.random(500) < 0.2 for k in "abc"}
    rows, per_sample = rate_rows(arrays), samples_of(arrays)
    first = differences(rows, per_sample, order=list("abc"), paired=never)
    again = differences(rows.iloc[::-1], per_sample, order=list("abc"), paired=never)
    pd.testing.assert_frame_equal(first, again)
    other = differences(rows, per_sample, order=list("abc"), paired=never, seed=1)
    assert not np.allclose(first.ci_low, other.ci_low)


def memorization_report(n: int = 50) -> tuple[Report, pd.DataFrame]:
    rng = np.random.default_rng(9)
    table = pd.DataFrame({"sample": rng.permutation(n), "copy_pixel": rng.random(n) < 0.3,
                          "copy_mnist_cnn": rng.random(n) < 0.5})  # fmt: skip
    table["copy_rate_adjusted_pixel"] = table["copy_pixel"]  # its mean is not the adjusted rate
    table["short"] = table["copy_pixel"]
    pixel, cnn = float(table.copy_pixel.mean()), float(table.copy_mnist_cnn.mean())
    res = AnalysisResult("memorization", "Memorization", "", metrics=[
        Metric("copy_rate", pixel, "", False, ci_low=0.1, ci_high=0.5, feature_space="pixel",
               n_fake=n),
        Metric("copy_rate", cnn, "", False, ci_low=0.3, ci_high=0.7, feature_space="mnist_cnn",
               n_fake=n),
        Metric("copy_rate_adjusted", pixel + 0.01, "", False, ci_low=0.1, ci_high=0.5,
               feature_space="pixel", n_fake=n),
        Metric("short", pixel, "", False, ci_low=0.1, ci_high=0.5, n_fake=n + 1),
        Metric("distance_ratio", 1.0, "", True, feature_space="pixel", n_fake=n),
    ], tables={"samples": table,
               "by_digit": pd.DataFrame({"digit": [0], "copy_rate_pixel": [0.9]})})  # fmt: skip
    return Report(meta={"spec": "g.pt"}, results=[res]), table


def test_per_sample_values_finds_copy_pixel_and_refuses_what_does_not_reproduce() -> None:
    report, table = memorization_report()
    found = per_sample_values(report)
    assert set(found) == {("memorization", "copy_rate", "pixel"),
                          ("memorization", "copy_rate", "mnist_cnn")}  # fmt: skip
    by_sample = table.sort_values("sample")
    pixel = found[("memorization", "copy_rate", "pixel")]
    assert pixel.dtype == np.float64
    np.testing.assert_array_equal(pixel, by_sample.copy_pixel.to_numpy(float))
    np.testing.assert_array_equal(found[("memorization", "copy_rate", "mnist_cnn")],
                                  by_sample.copy_mnist_cnn.to_numpy(float))  # fmt: skip


def test_per_sample_values_of_a_rate_of_no_space() -> None:
    flags = np.array([True, False, False, True])
    res = AnalysisResult("modes", "Modes", "", metrics=[
        Metric("ood_rate", 0.5, "", False, ci_low=0.2, ci_high=0.8, n_fake=4),
        Metric("low_confidence_rate", 0.25, "", False, ci_low=0.0, ci_high=0.7, n_fake=4),
    ], tables={"samples": pd.DataFrame({"sample": np.arange(4), "ood": flags,
                                        "low_confidence": ~flags})})  # fmt: skip
    found = per_sample_values(Report(meta={}, results=[res]))
    assert list(found) == [("modes", "ood_rate", "")]  # low_confidence's mean is 0.5, not 0.25
    np.testing.assert_array_equal(found[("modes", "ood_rate", "")], [1.0, 0.0, 0.0, 1.0])


def test_a_metric_without_per_sample_form_in_one_report_uses_mover() -> None:
    rng = np.random.default_rng(10)
    arrays = {"a": rng.random(300) < 0.2, "b": rng.random(300) < 0.2}
    per_sample = samples_of(arrays)
    del per_sample["b"][KEY]
    got = differences(rate_rows(arrays), per_sample, order=["a", "b"], paired=always).iloc[0]
    assert got.method.startswith("MOVER") and "b has no per-sample form" in got.method


def seven_labels(**direction) -> pd.DataFrame:
    values = [0.30, 0.12, 0.50, 0.21, 0.45, 0.33, 0.27]
    return frame([row(f"g{i}", v, v - 0.01, v + 0.01, **direction) for i, v in enumerate(values)])


def test_best_pairs_each_against_the_best_and_auto_switches_above_six() -> None:
    order = [f"g{i}" for i in range(7)]
    for pairs in ("best", "auto"):
        lowest = differences(seven_labels(), {}, order=order, paired=never, pairs=pairs)
        assert set(lowest.label_a) == {"g1"} and list(lowest.label_b) == order[:1] + order[2:]
        assert lowest.excludes_zero.all() and set(lowest.better) == {"g1"}
    highest = differences(seven_labels(higher_is_better=True), {}, order=order, paired=never)
    assert set(highest.label_a) == {"g2"} and set(highest.better) == {"g2"}
    nearest = differences(seven_labels(higher_is_better=None, target=0.29), {}, order=order,
                          paired=never)  # fmt: skip
    assert set(nearest.label_a) == {"g0"} and len(nearest) == 6
    same_side = nearest.set_index("label_b").better
    assert same_side["g2"] == "g0" and same_side["g6"] == ""  # 0.27 is across the target
    undirected = seven_labels(higher_is_better=None)
    assert differences(undirected, {}, order=order, paired=never).empty
    everything = differences(undirected, {}, order=order, paired=never, pairs="all")
    assert len(everything) == 21 and set(everything.better) == {""}
    few = differences(seven_labels().iloc[:3], {}, order=order[:3], paired=never)
    pairs = few.label_a + "-" + few.label_b
    assert pairs.tolist() == ["g0-g1", "g0-g2", "g1-g2"]


def test_columns_dtypes_and_rows_without_interval() -> None:
    rows = seven_labels().iloc[:2].copy()
    extra = frame([row("g0", 1.0, metric="fid"), row("g1", 2.0, metric="fid"),
                   row("g1", 3.0, 2.0, 4.0, metric="only_one")])  # fmt: skip
    table = differences(pd.concat([rows, extra]), {}, order=["g0", "g1"], paired=never)
    assert list(table.columns) == COLUMNS
    assert len(table) == 1 and table.metric.tolist() == ["ood_rate"]
    expected = {"value_a": "float64", "ci_low": "float64", "excludes_zero": "bool",
                "paired": "bool", "n_boot": "Int64", "higher_is_better": "boolean",
                "target": "float64", "method": "object", "better": "object"}  # fmt: skip
    for column, dtype in expected.items():
        assert str(table[column].dtype) == dtype, column
    assert table.difference.iloc[0] == 0.12 - 0.30  # not rounded


@pytest.mark.parametrize("metrics", [pd.DataFrame(), frame([])])
def test_empty_input_gives_an_empty_table(metrics: pd.DataFrame) -> None:
    table = differences(metrics, {}, order=[], paired=never)
    assert table.empty and list(table.columns) == COLUMNS
    assert str(table.n_boot.dtype) == "Int64" and str(table.excludes_zero.dtype) == "bool"


def test_bad_options_are_refused() -> None:
    rows = seven_labels()
    with pytest.raises(InputError, match="pairs must be one of auto, all, best; got 'some'"):
        differences(rows, {}, order=["g0"], paired=never, pairs="some")
    with pytest.raises(InputError, match="n_boot must be a positive integer; got 0"):
        differences(rows, {}, order=["g0"], paired=never, n_boot=0)
    with pytest.raises(InputError, match="appears more than once"):
        differences(pd.concat([rows, rows]), {}, order=["g0"], paired=never)
