"""Verdicts on planted truth: pure noise is not digits (and its label metrics are not
meaningful), a generator of 1s over-produces them, MNIST test itself copies nothing and
over-produces nothing; and the rules of each verdict on hand-built reports."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ganalyze import audit
from ganalyze.analyses.base import AnalysisResult, Flag, Metric
from ganalyze.report import Report


def _audit(images: np.ndarray, tmp_path, mnist_dir, name: str, analyses: str) -> Report:
    spec = tmp_path / f"{name}.npy"
    np.save(spec, images)
    return audit(spec, data_dir=mnist_dir, analyses=analyses, seed=0)


def _verdict(report: Report, key: str):
    return next(v for v in report.verdicts if v.key == key)


def _over_flags(report: Report) -> list[str]:
    return [f.message for a, f in report.flags if a == "modes" and "over-produced" in f.message]


def test_pure_noise_is_not_digits_and_its_label_metrics_mean_nothing(mnist_dir, tmp_path):
    noise = torch.rand(300, 28, 28, generator=torch.Generator().manual_seed(5)).numpy()
    rep = _audit(noise, tmp_path, mnist_dir, "noise", "modes,memorization")
    copies, digits = _verdict(rep, "copies"), _verdict(rep, "digits")
    assert (copies.answer, copies.status) == ("Not meaningful", "na")
    assert "no recognizable digit" in copies.text and "unrecognizable_rate = 1.000" in copies.text
    assert (digits.answer, digits.status) == ("Not digits", "bad")
    realism = _verdict(rep, "realism")
    assert realism.status == "bad" and "not digits" in realism.answer
    # authenticity would be 1.0 on noise ("every sample is novel"): NaN, with the reason
    mem = rep.result("memorization")
    assert math.isnan(mem.metric("authenticity", "pixel").value)
    assert 0.5 < mem.metric("authenticity_baseline", "pixel").value < 0.8  # real digits: kept
    assert any("authenticity not computed (NaN)" in n and "not meaningful" in n
               for n in mem.notes)  # fmt: skip
    html = rep.to_html()
    assert html.index('id="verdicts"') < html.index('id="findings"') < html.index('id="modes"')
    assert "Not meaningful" in html and "Not digits" in html


def test_a_generator_of_ones_over_produces_them(reference, test_split, mnist_dir, tmp_path):
    _, b = test_split
    labels = reference.test.labels.numpy()
    ones = reference.test.images[b[labels[b] == 1][:400]].numpy()
    rep = _audit(ones, tmp_path, mnist_dir, "ones", "modes")
    assert len(_over_flags(rep)) == 1 and "Digit 1 is over-produced" in _over_flags(rep)[0]
    digits = _verdict(rep, "digits")
    assert digits.status == "bad"  # it also misses the nine others
    assert digits.answer == "Misses 0, 2, 3, 4, 5, 6, 7, 8, 9; over-produces 1"


def test_ones_at_three_times_their_share_are_flagged_and_nothing_else(
    reference, test_split, mnist_dir, tmp_path
) -> None:
    _, b = test_split
    labels = reference.test.labels.numpy()
    rows = np.concatenate([b[labels[b] == 1][:330], b[labels[b] != 1][:670]])  # 33% ones
    rep = _audit(reference.test.images[rows].numpy(), tmp_path, mnist_dir, "many_ones", "modes")
    share = rep.result("modes").metric("share_1")
    assert share.value / share.target > 2.5
    assert len(_over_flags(rep)) == 1 and "share_1 = 0.3" in _over_flags(rep)[0]
    digits = _verdict(rep, "digits")
    assert (digits.answer, digits.status) == ("Over-produces 1", "warn")
    assert "x)" in digits.text and "training 0.11" in digits.text


def test_mnist_test_copies_nothing_and_over_produces_nothing(
    reference, test_split, mnist_dir, tmp_path
) -> None:
    _, b = test_split
    rep = _audit(reference.test.images[b[:1000]].numpy(), tmp_path, mnist_dir, "test_half",
                 "modes,memorization")  # fmt: skip
    assert _over_flags(rep) == []
    copies, digits = _verdict(rep, "copies"), _verdict(rep, "digits")
    assert (copies.answer, copies.status) == ("No", "ok")
    assert "copy_rate_adjusted = " in copies.text and "against 0.01 for new digits" in copies.text
    assert (digits.answer, digits.status) == ("None", "ok")
    assert math.isfinite(rep.result("memorization").metric("authenticity", "pixel").value)


# The rules of each verdict, on hand-built reports (no MNIST) -------------------------------


def _result(name: str, *metrics: Metric, flags=()) -> AnalysisResult:
    res = AnalysisResult(name, name.title(), name)
    res.metrics, res.flags = list(metrics), list(flags)
    return res


def _modes(unrecognizable: float) -> AnalysisResult:
    rate = Metric("unrecognizable_rate", unrecognizable, "", False,
                  ci_low=unrecognizable * 0.9, ci_high=unrecognizable * 1.1)  # fmt: skip
    return _result("modes", rate)


def test_raw_and_adjusted_copy_rates_that_disagree_are_explained() -> None:
    mem = _result(
        "memorization",
        Metric("copy_rate", 0.035, "", False, ci_low=0.03, ci_high=0.04, feature_space="pixel"),
        Metric("copy_rate_adjusted", 0.008, "", False, ci_low=0.005, ci_high=0.012,
               feature_space="pixel"),
    )  # fmt: skip
    rep = Report({"spec": "x"}, [_modes(0.02), mem])
    copies = _verdict(rep, "copies")
    assert copies.answer == "No"
    assert "raw copy_rate = 0.0350" in copies.text and "thin digits" in copies.text
    same_side = _result("memorization", *(
        Metric(n, v, "", False, feature_space="pixel")
        for n, v in (("copy_rate", 0.004), ("copy_rate_adjusted", 0.006))))  # fmt: skip
    assert "thin digits" not in _verdict(Report({"spec": "x"}, [same_side]), "copies").text


def test_fd_is_never_the_message_alone() -> None:
    dist = _result("distribution",
                   Metric("fd", 3.17, "", False, feature_space="mnist_cnn"),
                   Metric("precision", 0.41, "", True, feature_space="mnist_cnn"),
                   Metric("recall", 0.7, "", True, feature_space="mnist_cnn"))  # fmt: skip
    realism = _verdict(Report({"spec": "x"}, [_modes(0.44), dist]), "realism")
    assert (realism.answer, realism.status) == ("Partly", "warn")
    for text in ("unrecognizable_rate = 0.440", "precision = 0.410", "fd = 3.17",
                 "FD alone can rank"):  # fmt: skip
        assert text in realism.text
    assert "precision below 0.5" in realism.text and "unrecognizable_rate above 0.1" in realism.text
    good = _result("distribution", Metric("precision", 0.8, "", True, feature_space="mnist_cnn"))
    assert _verdict(Report({"spec": "x"}, [_modes(0.02), good]), "realism").answer == "Yes"


def test_d_memorizes_when_a_rule_fires_and_is_not_measured_without_d() -> None:
    auc = Metric("d_membership_auc", 0.7, "", target=0.5, ci_low=0.65, ci_high=0.75)
    flagged = _result("dscores", auc, flags=[Flag("D tells", "CI above 0.55", [auc.name])])
    verdict = _verdict(Report({"spec": "x"}, [flagged]), "d_memorizes")
    assert (verdict.answer, verdict.status) == ("Yes", "bad") and "0.700" in verdict.text
    none = Report({"spec": "x"}, [_modes(0.0)], skipped=[("dscores", "no discriminator")])
    verdict = _verdict(none, "d_memorizes")
    assert verdict.answer == "Not measured" and "no discriminator" in verdict.text


@pytest.mark.parametrize("stability", [math.nan, 0.9])
def test_walk_metrics_reported_as_nan_make_the_walk_verdict_not_meaningful(stability) -> None:
    walks = _result("latent_map", Metric("latent_label_stability", stability, "", True))
    verdict = _verdict(Report({"spec": "x"}, [_modes(0.05), walks]), "smooth")
    if math.isnan(stability):
        assert verdict.answer == "Not meaningful" and "latent_label_stability" in verdict.text
    else:
        assert (verdict.answer, verdict.status) == ("Yes", "ok")
