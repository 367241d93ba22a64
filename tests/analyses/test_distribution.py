"""The distribution analysis end to end on planted samples files: real digits, noise, one digit."""

from __future__ import annotations

import numpy as np
import pytest

from ganalyze import audit

NAMES = ["fd", "kid", "kid_std", "precision", "recall", "density", "coverage"]


def _audit(tmp_path, images, name, **kw):
    path = tmp_path / f"{name}.npy"
    np.save(path, images)
    return audit(path, analyses="distribution", **kw).result("distribution")


def test_real_digits_noise_and_one_digit(reference, mnist_dir, tmp_path) -> None:
    rng = np.random.default_rng(0)
    train = reference.train_images.numpy()
    real_like = _audit(tmp_path, train[rng.choice(len(train), 2000, replace=False)], "train",
                       data_dir=mnist_dir, bootstrap=20, seed=3)  # fmt: skip
    names = {m.name for m in real_like.metrics}
    expected = NAMES + [f"{n}_train" for n in NAMES if n != "kid_std"] + ["kid_train_std"]
    expected += ["classifier_score", "classifier_score_std", "vendi", "vendi_baseline", "mifid",
                 "mifid_distance", "mifid_epsilon"]  # fmt: skip
    assert names == set(expected)
    fd = real_like.metric("fd", "mnist_cnn")
    assert fd.n_fake == 2000 and fd.n_real == 10_000
    assert real_like.metric("precision", "mnist_cnn").value > 0.8
    assert real_like.metric("recall", "mnist_cnn").value > 0.7
    assert real_like.metric("classifier_score").value > 9
    vendi = real_like.metric("vendi", "mnist_cnn").value
    assert vendi == pytest.approx(real_like.metric("vendi_baseline", "mnist_cnn").value, rel=0.1)
    for name in ("precision", "recall", "density", "coverage", "coverage_train"):
        m = real_like.metric(name, "mnist_cnn")
        assert m.ci_low <= m.value <= m.ci_high and m.ci_low < m.ci_high, name
    # resampled points include duplicates: fd's bootstrap carries its finite-sample bias
    # upward, so near 0 its percentile interval lies above the estimate
    fd_ci = real_like.metric("fd", "mnist_cnn")
    assert fd.value < fd_ci.ci_low < fd_ci.ci_high < 10 * fd.value
    v_ci = real_like.metric("vendi", "mnist_cnn")
    assert 0.9 * vendi < v_ci.ci_low < vendi < v_ci.ci_high < 1.1 * vendi
    # training digits sit much closer to MNIST train than test digits do: mifid reacts
    assert real_like.metric("mifid_distance", "mnist_cnn").value == 0.0
    assert np.isinf(real_like.metric("mifid", "mnist_cnn").value)

    noise = _audit(tmp_path, rng.random((1000, 28, 28), dtype=np.float32), "noise",
                   data_dir=mnist_dir)  # fmt: skip
    assert noise.metric("fd", "mnist_cnn").value > 20 * fd.value
    assert noise.metric("precision", "mnist_cnn").value < 0.05
    assert np.isnan(noise.metric("precision", "mnist_cnn").ci_low)  # no --bootstrap: no interval

    labels = reference.test.labels.numpy()
    test = reference.test_images.numpy()
    sevens = _audit(tmp_path, test[labels == 7][:800], "sevens", data_dir=mnist_dir)
    assert sevens.metric("precision", "mnist_cnn").value > 0.8
    assert sevens.metric("recall", "mnist_cnn").value < 0.3
    assert sevens.metric("coverage", "mnist_cnn").value < 0.2
    assert sevens.metric("classifier_score").value < 1.5
    assert sevens.metric("vendi", "mnist_cnn").value < 0.5 * vendi
