"""Privacy (black-box membership inference): the TPR-at-FPR convention, and planted truth on
real MNIST. Samples files are MNIST digits saved as uint8; queries never include a sample."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from ganalyze import audit
from ganalyze.analyses.base import make_params
from ganalyze.analyses.privacy import (
    Privacy,
    attack_metrics,
    matched_k,
    mnist_test_halves,
    reference_digits,
    roc_auc,
    roc_curve,
    tpr_at_fpr,
)
from ganalyze.errors import InputError

SPACES = ("pixel", "mnist_cnn")
ATTACKS = ("", "_calibrated")
# sizes that set the run time only: bases under 4,096 points take the flat exact search
QUICK = {"bootstrap": 200, "n_reference": 4000}


def _values(report, name: str) -> dict[str, dict[str, float]]:
    res = report.result("privacy")
    return {s: {a: res.metric(f"{name}{a}", s).value for a in ATTACKS} for s in SPACES}


def test_tpr_at_fpr_convention_by_hand() -> None:
    member = np.array([10.0, 7, 6, 3])
    nonmember = np.array([9.0, 6, 6, 2, 1, 1, 0, 0, 0, 0])
    # FPR <= 0.1 allows one false positive: thresholds 10 (0 FP), 9 and 7 (1 FP) qualify, 6
    # calls the member 6 and both non-member 6s at once (3 FP): TPR = 2/4. Carlini et al.'s
    # strict FPR < 0.1 would stop at threshold 10 (TPR 1/4).
    assert tpr_at_fpr(member=member, nonmember=nonmember, fpr=0.1) == 0.5
    assert tpr_at_fpr(member=member, nonmember=nonmember, fpr=0.0) == 0.25
    assert tpr_at_fpr(member=member, nonmember=nonmember, fpr=0.05) == 0.25  # floor(0.5) = 0
    assert tpr_at_fpr(member=member, nonmember=nonmember, fpr=0.2) == 0.5
    assert tpr_at_fpr(member=member, nonmember=nonmember, fpr=0.3) == 1.0  # 3 sits above 2
    assert tpr_at_fpr(member=member, nonmember=nonmember, fpr=1.0) == 1.0
    # a top score shared with a non-member: no threshold calls it without a false positive
    assert tpr_at_fpr(member=np.array([5.0, 1]), nonmember=np.array([5.0, 0]), fpr=0.0) == 0.0
    fpr, tpr = roc_curve(member=member, nonmember=nonmember)
    assert fpr[[0, 1, 2, 3, 4]].tolist() == [0, 0, 0.1, 0.1, 0.3] and fpr[-1] == tpr[-1] == 1
    assert tpr[[0, 1, 2, 3, 4]].tolist() == [0, 0.25, 0.25, 0.5, 0.75]


def test_auc_matches_sklearn_ties_included() -> None:
    rng = np.random.default_rng(0)
    member, nonmember = rng.integers(0, 6, 300).astype(float), rng.integers(0, 5, 200) * 1.0
    expected = roc_auc_score(np.r_[np.ones(300), np.zeros(200)], np.r_[member, nonmember])
    assert roc_auc(member=member, nonmember=nonmember) == pytest.approx(expected)
    found = attack_metrics(member=member, nonmember=nonmember, n_boot=200)
    value, lo, hi = found["mia_auc"]
    assert value == pytest.approx(expected) and lo < value < hi
    assert found["mia_tpr_at_fpr_1pct"][0] == tpr_at_fpr(member=member, nonmember=nonmember,
                                                         fpr=0.01)  # fmt: skip


def test_params_are_checked() -> None:
    with pytest.raises(InputError, match=r"privacy\.k must be an integer from 0 to 100; got 101"):
        make_params(Privacy, {"k": "101"})
    with pytest.raises(InputError, match=r"privacy\.bootstrap must be an integer from 100"):
        make_params(Privacy, {"bootstrap": 10})
    assert make_params(Privacy, {"n_members": "500"}).n_members == 500


def test_matched_k() -> None:
    assert matched_k(n_reference=10_000, n_samples=10_000) == 1
    assert matched_k(n_reference=10_000, n_samples=500) == 20
    assert matched_k(n_reference=10_000, n_samples=3) == 100  # at most K_MAX
    assert matched_k(n_reference=300, n_samples=10_000) == 1


def test_reference_keeps_digit_shares_and_avoids_queries() -> None:
    labels = np.repeat(np.arange(10), 100)
    members = np.flatnonzero(labels == 1)  # a member set of 1s only
    ref = reference_digits(labels=labels, members=members, queried=members[:60], n=200, seed=0)
    assert np.bincount(labels[ref], minlength=10).tolist() == [20] * 10
    assert not np.isin(ref, members[:60]).any()
    assert np.isin(ref, members).sum() == 20  # the 1s come from the members not queried


@pytest.fixture(scope="module")
def copier(reference, tmp_path_factory):
    """500 MNIST-train digits saved as a samples file, and their indices."""
    copied = np.sort(np.random.default_rng(16).choice(len(reference.train), 500, replace=False))
    path = tmp_path_factory.mktemp("privacy") / "copier.npy"
    np.save(path, reference.train.images.numpy()[copied])
    return path, copied


def test_copier_of_its_member_set_is_exposed(copier, reference) -> None:
    path, copied = copier
    report = audit(path, train_indices=copied, reference=reference, analyses="privacy",
                   params={"privacy": QUICK})  # fmt: skip
    res = report.result("privacy")
    for space in SPACES:
        for attack in ATTACKS:
            assert res.metric(f"mia_auc{attack}", space).value > 0.95
            assert res.metric(f"mia_tpr_at_fpr_0_1pct{attack}", space).value > 0.5
    assert {f.rule for f in res.flags} == {"lower bound of mia_tpr_at_fpr_0_1pct > 0.01",
                                           "CI of mia_auc above 0.55"}  # fmt: skip
    table = res.tables["queries"]
    assert table.member.sum() == 500 and (table.dist_pixel[table.member] < 1e-5).all()


def test_copier_of_all_of_mnist_train_has_auc_near_half_but_high_tpr(copier, reference):
    """500 copies among 60,000 members: the AUC cannot see them, the TPR at 0.1% FPR does."""
    path, _ = copier
    report = audit(path, reference=reference, analyses="privacy", params={"privacy": QUICK})
    res = report.result("privacy")
    auc, tpr = _values(report, "mia_auc"), _values(report, "mia_tpr_at_fpr_0_1pct")
    for space in SPACES:
        for attack in ATTACKS:
            assert abs(auc[space][attack] - 0.5) < 0.03, (space, attack, auc)
            assert tpr[space][attack] > 0.005, (space, attack, tpr)  # 500 / 60,000 = 0.0083
            assert res.metric(f"mia_tpr_at_fpr_0_1pct{attack}", space).ci_low > 0.001
    exposed = res.arrays["exposed"]
    assert (exposed["dist"] < 1e-5).all() and (exposed["baseline"] > 1).all()
    assert any("exposed with certainty" in note for note in res.notes)


def _natural(labels: np.ndarray, free: np.ndarray, n: int, rng) -> np.ndarray:
    """``n`` of the digits ``free`` (MNIST-train indices), each digit at its MNIST-train share."""
    shares = np.bincount(labels, minlength=10) / len(labels)
    return np.concatenate([rng.choice(free[labels[free] == c], round(n * shares[c]),
                                      replace=False) for c in range(10)])  # fmt: skip


def test_held_out_digits_leak_nothing(reference, tmp_path) -> None:
    """The control half of MNIST test as samples, against all of MNIST train as members; the
    non-member queries are the other half."""
    queried, control = mnist_test_halves(len(reference.test))
    path = tmp_path / "control.npy"
    np.save(path, reference.test.images.numpy()[control])
    report = audit(path, reference=reference, analyses="privacy", n_samples=4000,
                   params={"privacy": {**QUICK, "n_members": 5000}})  # fmt: skip
    res = report.result("privacy")
    table = res.tables["queries"]
    assert not np.isin(table["index"][table.split == "test"], control).any()
    assert set(table["index"][table.split == "test"]) == set(queried)
    assert not res.flags
    auc = _values(report, "mia_auc")
    for space in SPACES:
        # MNIST-test samples sit closer to the MNIST-test non-members than to train digits
        # (measured 0.46-0.47): below one half, never above it
        assert 0.45 < auc[space][""] < 0.51 and 0.44 < auc[space]["_calibrated"] < 0.51, auc
        for attack in ATTACKS:
            assert res.metric(f"mia_tpr_at_fpr_0_1pct{attack}", space).ci_low < 0.01


def test_train_like_digits_the_generator_never_saw_leak_nothing(reference, tmp_path) -> None:
    """Members: 5,000 MNIST-train digits; samples: 4,000 other train digits (no reference
    digit among them), in the natural digit mix."""
    labels = reference.train.labels.numpy()
    rng = np.random.default_rng(2)
    members = np.sort(rng.choice(len(labels), 5000, replace=False))
    ref_digits = reference_digits(labels=labels, members=members, queried=members,
                                  n=QUICK["n_reference"], seed=0)  # fmt: skip
    free = np.setdiff1d(np.arange(len(labels)), np.r_[members, ref_digits])
    path = tmp_path / "train_like.npy"
    np.save(path, reference.train.images.numpy()[_natural(labels, free, 4000, rng)])
    report = audit(path, train_indices=members, reference=reference, analyses="privacy",
                   params={"privacy": QUICK})  # fmt: skip
    assert not report.result("privacy").flags
    auc = _values(report, "mia_auc")
    for space in SPACES:
        for attack in ATTACKS:
            assert abs(auc[space][attack] - 0.5) < 0.03, auc


def test_calibration_removes_the_bias_of_members_rich_in_ones(reference, tmp_path) -> None:
    """A member set half 1s (MNIST train has 11%) and samples of other train digits in their
    natural mix: no member is copied, but 1s sit close to everything."""
    labels = reference.train.labels.numpy()
    rng = np.random.default_rng(1)
    ones = rng.permutation(np.flatnonzero(labels == 1))[:2500]
    members = np.sort(np.r_[ones, rng.permutation(np.flatnonzero(labels != 1))[:2500]])
    ref_digits = reference_digits(labels=labels, members=members, queried=members,
                                  n=QUICK["n_reference"], seed=0)  # fmt: skip
    free = np.setdiff1d(np.arange(len(labels)), np.r_[members, ref_digits])
    path = tmp_path / "natural.npy"
    np.save(path, reference.train.images.numpy()[_natural(labels, free, 4000, rng)])
    report = audit(path, train_indices=members, reference=reference, analyses="privacy",
                   params={"privacy": QUICK})  # fmt: skip
    auc = _values(report, "mia_auc")
    for space in SPACES:
        raw, calibrated = auc[space][""], auc[space]["_calibrated"]
        assert raw > 0.58 and abs(calibrated - 0.5) < 0.03, auc
    flags = report.result("privacy").flags
    assert [f.metrics for f in flags] == [["mia_auc"]]
    assert "calibrated attack does not confirm it" in flags[0].message


def test_a_member_set_of_five_skips_with_the_reason(copier, reference) -> None:
    path, copied = copier
    report = audit(path, train_indices=copied[:5], reference=reference, analyses="privacy")
    reason = ("Membership inference needs at least 10 member images; got 5. Give a larger "
              "member set with --train-indices.")  # fmt: skip
    assert report.skipped == [("privacy", reason)] and not report.results


def test_the_reference_distances_are_kept_per_queries_reference_and_k(
    synthetic_reference, monkeypatch
) -> None:
    from ganalyze.analyses import privacy

    ref = synthetic_reference
    rng = np.random.default_rng(5)
    member = np.sort(rng.choice(len(ref.train), 50, replace=False))
    nonmember = np.arange(40)
    reference = np.setdiff1d(np.arange(len(ref.train)), member)[:300]
    searched = []
    knn = privacy.knn
    monkeypatch.setattr(privacy, "knn", lambda **kw: searched.append(1) or knn(**kw))
    first = privacy._reference_distances(ref, "pixel", member, nonmember, reference, 3)
    again = privacy._reference_distances(ref, "pixel", member, nonmember, reference, 3)
    assert len(searched) == 1  # no generator plays a part: the second audit reads the cache
    np.testing.assert_array_equal(first, again)
    train = ref.space("train", "pixel")
    queries = np.concatenate([train[member], ref.space("test", "pixel")[nonmember]])
    expected = knn(queries=queries, base=train[reference], k=3).kth
    np.testing.assert_array_equal(first, expected.astype(np.float64))
    other_k = privacy._reference_distances(ref, "pixel", member, nonmember, reference, 4)
    assert len(searched) == 2 and (other_k >= first).all()
