"""Digit modes on planted truth: half A of MNIST test calibrates, half B plays the samples."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ganalyze.analyses.modes import mode_statistics, ood_thresholds, unrecognizable
from ganalyze.neighbors import knn
from ganalyze.reference import K_OOD, classify

SPACES = ("pixel", "mnist_cnn")


def _modes(reference, baseline_idx, sample_idx=None, images=None):
    """The modes maths on MNIST test rows (sample_idx) or on arbitrary images."""
    thresholds = ood_thresholds(
        baseline_kth={s: reference.test_to_train(s).kth[baseline_idx] for s in SPACES}
    )
    if images is None:
        kth = {s: reference.test_to_train(s).kth[sample_idx] for s in SPACES}
        probs = reference.probs("test")[sample_idx]
    else:
        probs, feats = classify(images)
        kth = {
            "pixel": knn(
                queries=images.reshape(len(images), -1),
                base=reference.space("train", "pixel"),
                k=K_OOD,
            ).kth,
            "mnist_cnn": knn(queries=feats, base=reference.features("train"), k=K_OOD).kth,
        }
    masks = unrecognizable(kth=kth, thresholds=thresholds, probs=probs)
    stats = mode_statistics(
        predicted=probs.argmax(1),
        unrecognizable=masks["unrecognizable"],
        train_shares=reference.train_shares,
    )
    return masks, stats


def test_mnist_test_half_looks_like_a_perfect_generator(reference, test_split) -> None:
    a, b = test_split
    masks, stats = _modes(reference, a, b)
    assert stats["modes_covered"] == 10 and stats["modes_covered_any"] == 10
    assert stats["kl_to_train"] < 0.005
    assert 0.005 <= masks["unrecognizable"].mean() <= 0.03
    assert stats["entropy"] == pytest.approx(np.log(10), abs=0.01)
    assert stats["shares"].sum() == pytest.approx(1 - masks["unrecognizable"].mean())


def test_only_ones_and_sevens_cover_two_modes(reference, test_split) -> None:
    a, b = test_split
    labels = reference.test.labels.numpy()
    b17 = b[np.isin(labels[b], [1, 7])]
    masks, stats = _modes(reference, a, b17)
    assert stats["modes_covered"] == 2
    assert set(np.flatnonzero(stats["covered"])) == {1, 7}
    assert stats["kl_to_train"] > 1.0  # about log(5): two of ten digits


def test_uniform_noise_looks_like_nothing(reference, test_split) -> None:
    a, _ = test_split
    noise = torch.rand(300, 1, 28, 28, generator=torch.Generator().manual_seed(7))
    masks, stats = _modes(reference, a, images=noise)
    assert masks["unrecognizable"].mean() >= 0.99
    assert stats["modes_covered"] == 0


def test_statistics_by_hand() -> None:
    predicted = np.array([1, 1, 7, 7, 3, 0])
    unrec = np.array([False, False, False, False, False, True])
    train = np.full(10, 0.1)
    stats = mode_statistics(predicted=predicted, unrecognizable=unrec, train_shares=train)
    np.testing.assert_allclose(stats["shares"][[1, 7, 3, 0]], [2 / 6, 2 / 6, 1 / 6, 0])
    p = np.array([0.4, 0.4, 0.2])
    assert stats["kl_to_train"] == pytest.approx(float(np.sum(p * np.log(p / 0.1))))
    assert stats["entropy"] == pytest.approx(float(-np.sum(p * np.log(p))))
    # covered: share >= 0.025, so 1, 7 and 3 (1/6), not 0 (its only sample is unrecognizable)
    assert stats["modes_covered"] == 3 and stats["modes_covered_any"] == 3
    none = mode_statistics(predicted=predicted, unrecognizable=np.ones(6, bool), train_shares=train)
    assert np.isnan(none["kl_to_train"]) and none["modes_covered"] == 0


def test_ood_rule_is_strict_and_uses_either_space() -> None:
    kth = {"pixel": np.array([1.0, 2.0, 1.0]), "mnist_cnn": np.array([0.1, 0.1, 0.3])}
    masks = unrecognizable(
        kth=kth,
        thresholds={"pixel": 1.0, "mnist_cnn": 0.2},
        probs=np.array([[0.9, 0.1], [0.9, 0.1], [0.5, 0.5]]),
    )
    assert masks["ood"].tolist() == [False, True, True]
    assert masks["low_confidence"].tolist() == [False, False, False]  # 0.5 is not below 0.5


def _shares_result(shares, train, n=1000):
    from ganalyze.analyses.base import AnalysisResult, Metric
    from ganalyze.stats import wilson_interval

    res = AnalysisResult("modes", "Digit modes", "digits")
    for c, (s, t) in enumerate(zip(shares, train, strict=True)):
        lo, hi = wilson_interval(round(s * n), n)
        res.metrics.append(Metric(f"share_{c}", s, "", target=t, ci_low=lo, ci_high=hi))
    res.metrics.append(Metric("unrecognizable_rate", 1 - sum(shares), "", False))
    return res


def test_over_production_is_flagged_above_twice_the_training_share() -> None:
    from ganalyze.analyses.modes import Modes

    train = np.full(10, 0.1)
    for share_1, flagged in ((0.29, True), (0.19, False), (0.21, False)):  # 0.21: CI holds 0.2
        shares = np.full(10, (1 - share_1) / 9)
        shares[1] = share_1
        res = _shares_result(shares, train)
        stats = {"covered": shares >= 0.025, "modes_covered": 10}
        Modes._flags(res, stats, train)
        over = [f for f in res.flags if "over-produced" in f.message]
        assert bool(over) == flagged, share_1
        if flagged:
            assert over[0].metrics == ["share_1"]
            assert "share_1 = 0.290 (95% CI 0.263 – 0.319)" in over[0].message
            assert "2.9x its training share 0.100" in over[0].message


def test_digit_grid_says_so_when_nothing_is_recognizable() -> None:
    import pandas as pd

    from ganalyze.analyses.base import AnalysisResult
    from ganalyze.analyses.modes import plot_digit_grid

    res = AnalysisResult("modes", "Digit modes", "digits")
    res.tables["samples"] = pd.DataFrame({"sample": range(50)})
    res.arrays["by_digit"] = [np.zeros((0, 28, 28))] * 10
    fig = plot_digit_grid(res)
    assert len(fig.axes) == 1
    assert "No recognizable digit among the 50 samples" in fig.axes[0].texts[0].get_text()
    # some digits: ten rows, an empty one says which digit is missing, on white
    res.arrays["by_digit"] = [np.ones((3, 28, 28))] * 3 + [np.zeros((0, 28, 28))] * 7
    fig = plot_digit_grid(res)
    assert len(fig.axes) == 10
    assert fig.axes[3].texts[0].get_text() == "no recognizable 3"
    assert fig.axes[3].images[0].get_array().max() == 0  # white, not a black bar
