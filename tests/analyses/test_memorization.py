"""Memorization on planted truth. Half A of MNIST test is the baseline, half B the samples."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ganalyze import audit
from ganalyze.analyses import memorization
from ganalyze.analyses.memorization import authenticity, copy_rates, ct_statistic, distance_ratios
from ganalyze.errors import InputError


@pytest.fixture(scope="module")
def halves(reference, test_split):
    a, b = test_split
    nn = reference.test_to_train("pixel")
    pred = reference.probs("test").argmax(1)
    return {
        "a": a,
        "b": b,
        "dist": nn.kth if nn.distances.shape[1] == 1 else nn.distances[:, 0],
        "pred": pred,
    }


def _rates(h, b_rows):
    return copy_rates(
        fake_dist=h["dist"][b_rows],
        real_dist=h["dist"][h["a"]],
        fake_pred=h["pred"][b_rows],
        real_pred=h["pred"][h["a"]],
    )


def test_held_out_digits_copy_at_the_baseline_rate(halves) -> None:
    rates = _rates(halves, halves["b"])
    assert 0.003 <= rates["copy_rate"] <= 0.02
    assert 0.003 <= rates["copy_rate_adjusted"] <= 0.02
    ratios = distance_ratios(
        fake_dist=halves["dist"][halves["b"]],
        real_dist=halves["dist"][halves["a"]],
        fake_pred=halves["pred"][halves["b"]],
        real_pred=halves["pred"][halves["a"]],
    )
    assert ratios["nn_dist_ratio"] == pytest.approx(1, abs=0.03)
    assert ratios["nn_dist_ratio_adjusted"] == pytest.approx(1, abs=0.03)


def test_over_produced_ones_raise_copy_rate_but_not_the_adjusted_rate(halves) -> None:
    b, pred = halves["b"], halves["pred"]
    ones = b[pred[b] == 1]
    rng = np.random.default_rng(0)
    skewed = np.concatenate([rng.choice(ones, 3000), b[pred[b] != 1][:2000]])  # 60% ones
    rates = _rates(halves, skewed)
    assert rates["copy_rate"] > 0.02
    assert rates["copy_rate_adjusted"] < 0.02


def test_ct_statistic_near_zero_for_new_digits(reference, halves) -> None:
    feats = reference.features("test")
    ct, cells = ct_statistic(
        train=reference.features("train"), fake=feats[halves["b"]], real=feats[halves["a"]]
    )
    assert abs(ct) < 2
    assert len(cells) > 30 and cells.weight.sum() <= 1


def test_ct_convention_negative_for_copies_positive_for_underfitting() -> None:
    rng = np.random.default_rng(1)
    train = rng.normal(size=(3000, 2))
    real = rng.normal(size=(1500, 2))
    copies = train[:1500] + rng.normal(scale=0.01, size=(1500, 2))
    blurred = rng.normal(scale=1.6, size=(1500, 2))
    ct_copy, _ = ct_statistic(train=train, fake=copies, real=real, n_cells=5)
    ct_far, _ = ct_statistic(train=train, fake=blurred, real=real, n_cells=5)
    assert ct_copy < -5 and ct_far > 2


def test_ct_cells_are_fitted_once_per_member_set_and_give_the_same_statistic(
    synthetic_reference, monkeypatch
) -> None:
    ref = synthetic_reference
    train, real = ref.features("train"), ref.features("test")
    fake = real[::2] + 0.01
    members = np.sort(np.random.default_rng(11).choice(len(train), len(train) // 2, replace=False))
    fitted = []
    fit = memorization.ct_cells
    monkeypatch.setattr(memorization, "ct_cells", lambda **kw: fitted.append(1) or fit(**kw))
    first = memorization.cached_ct_cells(ref, members, 7)
    again = memorization.cached_ct_cells(ref, members, 7)
    assert len(fitted) == 1  # the second audit of this member set reads the reference cache
    for name in memorization.CtCells.__dataclass_fields__:
        np.testing.assert_array_equal(getattr(first, name), getattr(again, name))
    other = memorization.cached_ct_cells(ref, members[: len(members) // 2], 7)
    assert len(fitted) == 2 and len(other.train_cells) == len(members) // 2
    direct = ct_statistic(train=train[members], fake=fake, real=real, n_cells=7)
    cached = ct_statistic(train=train[members], fake=fake, real=real, n_cells=7, cells=again)
    assert direct[0] == cached[0]
    assert direct[1].equals(cached[1])


def test_ct_cell_without_real_points_is_an_error() -> None:
    rng = np.random.default_rng(2)
    train = np.concatenate([rng.normal(size=(500, 2)), rng.normal(size=(500, 2)) + 50])
    with pytest.raises(InputError, match="no real ones"):
        ct_statistic(
            train=train, fake=train[500:] + 0.01, real=rng.normal(size=(300, 2)), n_cells=2
        )


def test_authenticity_rule_by_hand() -> None:
    radius = np.array([1.0, 0.5, 2.0])
    assert authenticity(
        dist=np.array([1.5, 0.4, 2.0]), neighbor=np.array([0, 1, 2]), train_radius=radius
    ) == pytest.approx(1 / 3)  # strict >


def test_a_copying_generator_is_flagged(reference, mnist_dir, tmp_path) -> None:
    members = np.arange(5000, 10000)
    np.savetxt(tmp_path / "members.txt", members, fmt="%d")
    gen = torch.Generator().manual_seed(0)
    copies = reference.train_images[members[:1500]]
    copies = (copies + 0.05 * torch.randn(copies.shape, generator=gen)).clamp(0, 1)
    np.save(tmp_path / "copier.npy", copies.numpy())
    rep = audit(
        tmp_path / "copier.npy",
        data_dir=mnist_dir,
        analyses="memorization",
        train_indices=tmp_path / "members.txt",
    )
    res = rep.result("memorization")
    pixel = {m.name: m.value for m in res.metrics if m.feature_space == "pixel"}
    assert pixel["copy_rate_adjusted"] > 0.9
    assert pixel["nn_dist_ratio"] < 0.5
    assert pixel["authenticity"] < 0.1
    assert 0.5 < pixel["authenticity_baseline"] < 0.8
    assert res.metric("ct_statistic", "mnist_cnn").value < -5
    assert any("copy" in f.message for f in res.flags)
    t = res.tables["samples"]
    assert (t.neighbor_pixel.to_numpy() == members[:1500]).mean() > 0.95
    assert "5000 MNIST training images (--train-indices)" in res.notes[0]


def test_limit_checkpoint_is_audited_against_its_own_members(tiny_checkpoint, mnist_dir) -> None:
    rep = audit(tiny_checkpoint, n_samples=300, data_dir=mnist_dir, analyses="memorization")
    res = rep.result("memorization")
    assert res.tables["samples"].neighbor_pixel.max() < 2048
    assert "2048 MNIST training images (the training indices recorded" in res.notes[0]
