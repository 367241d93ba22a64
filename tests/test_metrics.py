"""Distribution metrics against reference implementations on fixed arrays, and planted truth."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg

from ganalyze.metrics import (
    classifier_score,
    frechet_distance,
    kernel_inception_distance,
    mifid,
    prdc,
    vendi_score,
)


def _arrays(seed=0, n_real=500, n_fake=400, d=16):
    rng = np.random.default_rng(seed)
    real = rng.normal(size=(n_real, d)).astype(np.float32)
    fake = (rng.normal(size=(n_fake, d)) * 1.3 + 0.4).astype(np.float32)
    return real, fake


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.filterwarnings("ignore::UserWarning:sklearn")
def test_prdc_equals_the_prdc_package(seed) -> None:
    from prdc import compute_prdc

    real, fake = _arrays(seed)
    ref = compute_prdc(real_features=real, fake_features=fake, nearest_k=5)
    ours = prdc(real=real, fake=fake, k=5).values()
    for name in ("precision", "recall", "density", "coverage"):
        assert ours[name] == pytest.approx(ref[name], rel=1e-6), name
    assert 0.1 < ours["precision"] < 0.95 and 0.1 < ours["coverage"] < 0.95  # not trivial


def test_prdc_convention_tight_cluster_inside_a_wide_cloud() -> None:
    rng = np.random.default_rng(2)
    real = rng.normal(size=(2000, 8)).astype(np.float32)
    fake = (rng.normal(size=(1000, 8)) * 0.1).astype(np.float32)
    v = prdc(real=real, fake=fake).values()
    assert v["precision"] > 0.95 and v["recall"] < 0.1 and v["coverage"] < 0.2
    swapped = prdc(real=fake, fake=real).values()  # the other way round: low precision
    assert swapped["precision"] < 0.1 and swapped["recall"] > 0.95


def test_prdc_is_strict_at_the_radius() -> None:
    # every real point's 5th neighbour is at distance 1; a fake point at exactly distance 1 of
    # a real point is outside its ball (strict <), one at 0.5 inside
    real = np.array([[i * 10.0, 0] for i in range(3)] + [[i * 10.0 + 1, 0] for i in range(3)]
                    + [[i * 10.0, 1] for i in range(3)] + [[i * 10.0 - 1, 0] for i in range(3)]
                    + [[i * 10.0, -1] for i in range(3)], dtype=np.float32)  # fmt: skip
    real_radii = np.full(len(real), 1.0)
    fake = np.array([[0.0, 2.0], [10.5, 0.0]], dtype=np.float32)
    out = prdc(real=real, fake=fake, real_radii=real_radii, fake_radii=np.ones(2))
    assert out.fake_in_real.tolist() == [False, True]


def test_frechet_distance_equals_scipy_sqrtm() -> None:
    real, fake = _arrays(3, 800, 700, 12)
    r, f = real.astype(np.float64), fake.astype(np.float64)
    s1, s2 = np.cov(r, rowvar=False), np.cov(f, rowvar=False)
    ref = ((r.mean(0) - f.mean(0)) ** 2).sum() + np.trace(s1) + np.trace(s2)
    ref -= 2 * np.trace(scipy.linalg.sqrtm(s1 @ s2)).real
    ours = frechet_distance(real=real, fake=fake)
    assert ours.value == pytest.approx(ref, rel=1e-5)
    assert ours.residue < 1e-9 and (ours.n_real, ours.n_fake, ours.dim) == (800, 700, 12)


def test_frechet_distance_of_singular_covariances_is_finite() -> None:
    real, fake = _arrays(4, 50, 40, 64)  # n < d: both covariances singular
    out = frechet_distance(real=real, fake=fake)
    assert np.isfinite(out.value) and out.value > 0


def _direct_kid(real, fake, n_subsets, subset_size, seed):
    f_rng, r_rng = np.random.default_rng([seed, 0]), np.random.default_rng([seed, 1])
    draws = [f_rng.choice(len(fake), subset_size, replace=False) for _ in range(n_subsets)]
    draws_real = [r_rng.choice(len(real), subset_size, replace=False) for _ in range(n_subsets)]
    d = real.shape[1]

    def k(a, b):
        return (float(np.dot(a, b)) / d + 1) ** 3

    values = []
    for fx, ry in zip(draws, draws_real, strict=True):
        x, y = fake[fx].astype(np.float64), real[ry].astype(np.float64)
        m = subset_size
        xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
        yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
        xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / (m * m)
        values.append(xx + yy - 2 * xy)
    return np.mean(values), np.std(values)


def test_kid_equals_a_direct_numpy_kid() -> None:
    real, fake = _arrays(5, 120, 100, 6)
    ours = kernel_inception_distance(real=real, fake=fake, n_subsets=4, subset_size=40, seed=7)
    ref = _direct_kid(real, fake, 4, 40, 7)
    assert ours[0] == pytest.approx(ref[0], rel=1e-6)
    assert ours[1] == pytest.approx(ref[1], rel=1e-6)
    same = kernel_inception_distance(real=real[:60], fake=real[60:], n_subsets=20, subset_size=50)
    assert abs(same[0]) < ours[0] / 5  # two halves of one distribution: near 0


def test_classifier_score_extremes() -> None:
    confident_all = np.eye(10)[np.arange(1000) % 10]
    one_digit = np.eye(10)[np.zeros(1000, int)]
    uniform = np.full((1000, 10), 0.1)
    assert classifier_score(probs=confident_all)[0] == pytest.approx(10)
    assert classifier_score(probs=one_digit)[0] == pytest.approx(1)
    assert classifier_score(probs=uniform)[0] == pytest.approx(1)


def test_vendi_counts_distinct_directions() -> None:
    rng = np.random.default_rng(0)
    basis = np.eye(20)[:5]
    copies = basis[rng.integers(0, 5, 500)]  # five orthogonal points, evenly used
    assert vendi_score(features=copies) == pytest.approx(5, rel=0.02)
    assert vendi_score(features=np.ones((100, 20))) == pytest.approx(1)
    # dual (d < n) and primal (d >= n) give the same value
    x = rng.normal(size=(30, 40))
    assert vendi_score(features=x) == pytest.approx(vendi_score(features=np.vstack([x, x])))


def test_mifid_is_continuous_at_epsilon() -> None:
    test = np.full(10, 0.013)
    at = mifid(fd_train=2.0, fake_distance=np.full(5, 0.013), test_distance=test)
    below = mifid(fd_train=2.0, fake_distance=np.full(5, 0.0129), test_distance=test)
    copier = mifid(fd_train=2.0, fake_distance=np.full(5, 0.0013), test_distance=test)
    assert at["mifid"] == 2.0 and below["mifid"] == pytest.approx(2.0 * 0.013 / 0.0129)
    assert copier["mifid"] == pytest.approx(20.0) and copier["mifid_epsilon"] == pytest.approx(
        0.013
    )


def test_mnist_test_against_train_and_planted_generators(reference) -> None:
    train, test = reference.features("train"), reference.features("test")
    sub = np.random.default_rng(0).choice(len(train), 10_000, replace=False)
    real = train[sub]
    good = frechet_distance(real=real, fake=test).value
    v = prdc(real=real, fake=test).values()
    assert v["precision"] > 0.7 and v["recall"] > 0.7
    noise = np.random.default_rng(1).random((2000, 128)).astype(np.float32)
    noise /= np.linalg.norm(noise, axis=1, keepdims=True)
    bad = frechet_distance(real=real, fake=noise).value
    assert bad > 20 * good
    assert prdc(real=real, fake=noise).values()["precision"] < 0.05
    ones = test[reference.test.labels.numpy() == 1]
    c = prdc(real=real, fake=ones).values()
    assert c["precision"] > 0.7 and c["recall"] < 0.3 and c["coverage"] < 0.3


def test_bootstrap_statistics_from_multiplicities_equal_the_resample() -> None:
    from ganalyze.metrics import frechet_from_moments, vendi_from_gram, weighted_moments

    real, fake = _arrays(8, 300, 200, 10)
    rng = np.random.default_rng(0)
    rows_r, rows_f = rng.integers(0, 300, 300), rng.integers(0, 200, 200)
    r64, f64 = real.astype(np.float64), fake.astype(np.float64)
    counts_r, counts_f = np.bincount(rows_r, minlength=300), np.bincount(rows_f, minlength=200)
    mu, cov = weighted_moments(r64, counts_r)
    np.testing.assert_allclose(mu, r64[rows_r].mean(0), rtol=1e-12)
    np.testing.assert_allclose(cov, np.cov(r64[rows_r], rowvar=False), rtol=1e-9, atol=1e-12)
    value, _ = frechet_from_moments(mu, cov, *weighted_moments(f64, counts_f))
    direct = frechet_distance(real=real[rows_r], fake=fake[rows_f]).value
    assert value == pytest.approx(direct, rel=1e-9)
    unit = f64 / np.linalg.norm(f64, axis=1, keepdims=True)
    weighted = vendi_from_gram((unit * counts_f[:, None]).T @ unit / 200)
    assert weighted == pytest.approx(vendi_score(features=fake[rows_f]), rel=1e-9)
