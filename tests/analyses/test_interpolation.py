"""Interpolation metrics on planted generators: linear, a step, constant and scaled maps."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ganalyze.analyses.interpolation import (
    Interpolation,
    label_path_stats,
    lerp,
    path_smoothness,
    ppl,
    slerp,
)
from ganalyze.context import Context
from ganalyze.generators.base import Generator

W = torch.randn(64, 784, generator=torch.Generator().manual_seed(0)) * 0.01


def linear(z):  # linear in z, outputs kept inside [0, 1] for |z| of a few std
    return (0.5 + z @ W).clamp(0, 1).reshape(-1, 1, 28, 28)


def _paths(fn, interp=lerp, p=16, t=32):
    g = torch.Generator().manual_seed(1)
    z0, z1 = torch.randn(p, 64, generator=g), torch.randn(p, 64, generator=g)
    ts = torch.linspace(0, 1, t)
    z = interp(z0[:, None], z1[:, None], ts[None, :, None]).reshape(-1, 64)
    return fn(z).reshape(p, t, -1).numpy()


def test_linear_generator_moves_evenly_and_straight() -> None:
    frames = _paths(linear)
    assert frames.min() > 0 and frames.max() < 1  # never clipped: truly linear
    s = path_smoothness(frames=frames)
    assert s["jump_ratio"] == pytest.approx(1.0, abs=1e-3)
    assert s["path_efficiency"] == pytest.approx(1.0, abs=1e-4)
    assert s["n_static_paths"] == 0
    curved = path_smoothness(frames=_paths(linear, slerp))
    assert curved["path_efficiency"] < 0.999  # slerp bends the path


def test_step_generator_jumps_once() -> None:
    def step(z):
        return (z[:, :1] > 0).float().expand(-1, 784)

    frames = _paths(step)
    s = path_smoothness(frames=frames)
    crossing = (frames[:, 0, 0] != frames[:, -1, 0]).sum()
    assert s["n_static_paths"] == 16 - crossing and crossing > 0
    assert s["jump_ratio"] == pytest.approx(31.0)  # all motion in one of 31 steps
    labels = frames[:, :, 0].astype(int)  # the "digit" is the step's side
    stats = label_path_stats(labels=labels)
    assert stats["label_changes"] == pytest.approx(crossing / 16)
    assert stats["excess_label_changes"] == 0 and stats["off_manifold_rate"] == 0


def test_labels_and_unrecognizable_frames() -> None:
    labels = np.array([[1, 1, 10, 7, 7], [3, 5, 3, 5, 3]])
    s = label_path_stats(labels=labels)
    assert s["label_changes"] == pytest.approx((2 + 4) / 2)
    assert s["excess_label_changes"] == pytest.approx((1 + 4) / 2)
    assert s["off_manifold_rate"] == pytest.approx(1 / 6)


def test_ppl_is_zero_for_constant_and_scales_with_c_squared() -> None:
    g = torch.Generator().manual_seed(2)
    z0, z1, t = torch.randn(2000, 64, generator=g), torch.randn(2000, 64, generator=g), None
    t = torch.rand(2000, 1, generator=g)

    def nonlinear(z):
        return torch.tanh(z @ W * 30).double().numpy()

    assert ppl(fn=lambda z: np.ones((len(z), 5)), z0=z0, z1=z1, t=t) == 0
    base = ppl(fn=nonlinear, z0=z0, z1=z1, t=t)
    assert base > 0
    assert ppl(fn=lambda z: 3 * nonlinear(z), z0=z0, z1=z1, t=t) == pytest.approx(9 * base)


def test_slerp_keeps_latents_as_drawn() -> None:
    z0, z1 = torch.tensor([[2.0, 0.0]]), torch.tensor([[0.0, 2.0]])
    mid = slerp(z0, z1, torch.tensor([[0.5]]))
    assert mid.norm().item() == pytest.approx(2.0)  # not pulled onto the unit sphere
    assert torch.allclose(slerp(z0, z1, torch.zeros(1, 1)), z0)


def test_analysis_on_a_step_generator(reference) -> None:
    test, labels = reference.test_images, reference.test.labels.numpy()
    one, seven = test[np.flatnonzero(labels == 1)[0]], test[np.flatnonzero(labels == 7)[0]]

    def fn(z):
        return torch.where((z[:, 0] > 0)[:, None, None, None], one, seven)

    gen = Generator(kind="planted", spec="step", fn=fn, latent_dim=64, output_range="0,1")
    ctx = Context(gen, n_samples=300, seed=0, reference=reference, progress=False)
    res = Interpolation(Interpolation.Params(digits=(1, 7))).run(ctx)
    jump = res.metric("jump_ratio", "pixel").value
    assert jump == pytest.approx(63.0)
    assert 0 < res.metric("label_changes").value <= 1
    assert res.metric("excess_label_changes").value == 0
    assert res.metric("off_manifold_rate").value == 0
    assert res.metric("n_static_paths").value > 0
    # flat on both sides of the step: the rare triple that straddles it lies above the 99th
    # percentile that PPL trims, so the path length is exactly zero
    assert res.metric("ppl", "pixel").value == 0
    assert res.metric("ppl_slerp", "pixel").value == 0
    # blending two real digits passes through non-digits: the baseline is not zero
    assert res.metric("off_manifold_rate_baseline").value > 0
    assert not res.flags
    figs = Interpolation().plot(res)
    assert {"strips", "steps", "extremes", "anchors"} <= set(figs)


def _noise(z):  # a noise image that is a function of its latent
    g = torch.Generator().manual_seed(int(z.abs().sum() * 1e3) % 2**31)
    return torch.rand(len(z), 1, 28, 28, generator=g)


def _run_planted(reference, fn, name):
    gen = Generator(kind="planted", spec=name, fn=fn, latent_dim=64, output_range="0,1")
    ctx = Context(gen, n_samples=300, seed=0, reference=reference, progress=False)
    return ctx, Interpolation(Interpolation.Params(pairs=8, frames=16)).run(ctx)


def test_label_changes_of_pure_noise_are_not_meaningful(reference) -> None:
    """Noise is unrecognizable all along a walk: zero label changes would look perfect."""
    ctx, res = _run_planted(reference, _noise, "noise")
    assert (ctx.sample_labels == 10).mean() > 0.5
    for name in ("label_changes", "excess_label_changes", "label_changes_slerp",
                 "excess_label_changes_slerp"):  # fmt: skip
        assert np.isnan(res.metric(name).value), name
    assert res.metric("off_manifold_rate").value == 1.0  # still reported: every frame is off
    assert not np.isnan(res.metric("label_changes_baseline").value)
    assert sum("not meaningful" in note for note in res.notes) == 1


def test_a_generator_of_real_digits_keeps_its_label_changes(reference) -> None:
    test = reference.test_images

    def real(z):  # real test digits, switching with the sign pattern of z's first coordinates
        idx = ((z[:, :12] > 0).long() * (2 ** torch.arange(12))).sum(1) % len(test)
        return test[idx]

    ctx, res = _run_planted(reference, real, "real")
    assert (ctx.sample_labels == 10).mean() < 0.1
    for name in ("label_changes", "excess_label_changes", "label_changes_slerp"):
        assert res.metric(name).value > 0, name  # digits change along the walks
    assert not any("not meaningful" in note for note in res.notes)


def test_frame_labels_follow_the_one_rule(reference) -> None:
    """labels_and_features skips searches its cheaper tests make needless; its labels equal
    the rule of ganalyze.ood applied to every frame's searches."""
    from ganalyze import ood
    from ganalyze.reference import classify

    test = reference.test_images[:300]
    rng = torch.Generator().manual_seed(0)
    images = torch.cat([test, 0.5 * test + 0.5 * test.flip(0), torch.rand(100, 1, 28, 28,
                        generator=rng), test[:50] * 0.4])  # fmt: skip
    gen = Generator(kind="planted", spec="x", fn=lambda z: test[: len(z)], latent_dim=64,
                    output_range="0,1")  # fmt: skip
    ctx = Context(gen, n_samples=20, seed=0, reference=reference, progress=False)
    labels, feats = ctx.labels_and_features(images)
    probs, want_feats = classify(images)
    kth = {"pixel": ctx.train_index("pixel").search(images.reshape(len(images), -1), 5).kth,
           "mnist_cnn": ctx.train_index("mnist_cnn").search(want_feats, 5).kth}  # fmt: skip
    want = ood.digit_labels(probs=probs, kth=kth, thresholds=ctx.ood_thresholds)
    np.testing.assert_array_equal(labels, want)
    assert 0 < (want == 10).mean() < 1  # both kinds present
    np.testing.assert_allclose(feats, want_feats, atol=1e-6)
