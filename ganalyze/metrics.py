"""Distribution metrics between real and generated feature sets, as plain numpy functions.

Every two-set function takes ``real=`` and ``fake=`` by keyword. Each convention the literature
disagrees on is stated in the docstring with its source and pinned by a test in
``tests/test_metrics.py`` (against the ``prdc`` package, ``scipy.linalg.sqrtm`` and a direct
numpy KID).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import xlogy

from ganalyze.neighbors import pairs_within_both
from ganalyze.stats import require


@dataclass(frozen=True)
class Frechet:
    """A Frechet distance with what it was computed from."""

    value: float
    residue: float  # largest |imaginary| or negative part of eig(S1 S2), relative to the largest
    n_real: int
    n_fake: int
    dim: int


def frechet_distance(
    *,
    real: np.ndarray,
    fake: np.ndarray,
    real_moments: tuple[np.ndarray, np.ndarray] | None = None,
) -> Frechet:
    """Frechet distance between Gaussians fitted to two feature sets.

    Parameters
    ----------
    real, fake
        (n, d) features.
    real_moments
        The mean and unbiased covariance of ``real`` (:func:`moments`), when known (the
        reference cache keeps MNIST's).

    Returns
    -------
    Frechet
        ``value`` = |mu_r - mu_f|^2 + tr S_r + tr S_f - 2 tr sqrt(S_r S_f), with the covariances
        unbiased (ddof 1, as pytorch-fid) and the trace term the sum of the real parts of the
        square roots of eig(S_r S_f), in float64. ``residue`` measures how far those
        eigenvalues are from real and non-negative (0 in exact arithmetic; reports warn above
        1e-6).

    Notes
    -----
    Heusel et al. (2017). pytorch-fid takes ``scipy.linalg.sqrtm`` of the product, which warns
    and may return complex values on singular covariances (real feature covariances often are);
    the eigenvalue form gives the same trace on full-rank inputs and stays finite otherwise.
    """
    r, f = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    for name, x in (("real", r), ("generated", f)):
        require(len(x), 2, f"{name} points", "The Frechet distance (a covariance per set)")
    mu_r, s_r = moments(r) if real_moments is None else real_moments
    value, residue = frechet_from_moments(mu_r, s_r, *moments(f))
    return Frechet(value, residue, len(r), len(f), r.shape[1])


def moments(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and unbiased covariance (ddof 1) of the rows of ``x``, in float64."""
    x = np.asarray(x, np.float64)
    return x.mean(0), np.cov(x, rowvar=False)


def weighted_moments(x: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and unbiased covariance of the rows of ``x`` repeated ``counts`` times (a bootstrap
    resample), without building the resample."""
    n = counts.sum()
    mu = counts @ x / n
    cov = (x * counts[:, None]).T @ x - n * np.outer(mu, mu)
    return mu, cov / (n - 1)


def frechet_from_moments(
    mu_r: np.ndarray, s_r: np.ndarray, mu_f: np.ndarray, s_f: np.ndarray
) -> tuple[float, float]:
    """The Frechet distance of two Gaussians and the residue of eig(S_r S_f) (see
    :func:`frechet_distance`)."""
    eig = np.linalg.eigvals(s_r @ s_f)
    scale = max(float(np.abs(eig).max()), 1e-300)
    residue = float(max(np.abs(eig.imag).max(), max(0.0, -eig.real.min()))) / scale
    trace_sqrt = float(np.sqrt(eig.astype(np.complex128)).real.sum())
    value = float(((mu_r - mu_f) ** 2).sum() + np.trace(s_r) + np.trace(s_f) - 2 * trace_sqrt)
    return value, residue


def kernel_inception_distance(
    *,
    real: np.ndarray,
    fake: np.ndarray,
    n_subsets: int = 100,
    subset_size: int = 1000,
    seed: int = 0,
    real_within: np.ndarray | None = None,
    fake_within: np.ndarray | None = None,
) -> tuple[float, float]:
    """KID: unbiased MMD^2 with the cubic polynomial kernel k(x, y) = (x.y / d + 1)^3.

    Parameters
    ----------
    real, fake
        (n, d) features.
    n_subsets, subset_size
        ``n_subsets`` pairs of subsets of m = min(subset_size, n_real, n_fake) points each,
        drawn without replacement: the fake ones by ``np.random.default_rng([seed, 0])``, the
        real ones by ``default_rng([seed, 1])`` (see :func:`kid_subsets`).
    real_within, fake_within
        The real and the fake subsets' within-set kernel sums (:func:`kid_real_within` of the
        rows of :func:`kid_subsets`), when known: the fake ones serve every real set.

    Returns
    -------
    (kid, kid_std)
        Mean and standard deviation (ddof 0) of the per-subset estimates.

    Notes
    -----
    Binkowski et al. (2018), as torch-fidelity computes it: per subset,
    (sum_{i != j} k(x_i, x_j) + sum_{i != j} k(y_i, y_j)) / (m (m - 1)) - 2 mean k(x_i, y_j).
    """
    f = np.asarray(fake, np.float64)
    m = min(subset_size, len(real), len(f))
    require(m, 2, "points per set", "KID (an unbiased MMD over pairs within each subset)")
    d = f.shape[1]
    fake_rows, real_rows = kid_subsets(len(real), len(f), m, n_subsets, seed)
    if real_within is None:
        real_within = kid_real_within(real, real_rows)
    if fake_within is None:
        fake_within = kid_real_within(f, fake_rows)
    values = np.empty(n_subsets)
    for s in range(n_subsets):
        x, y = f[fake_rows[s]], np.asarray(real[real_rows[s]], np.float64)
        k_xy = _cubic_kernel_sums(x, y, d)
        values[s] = (fake_within[s] + real_within[s]) / (m * (m - 1))
        values[s] -= 2 * k_xy[0] / (m * m)
    return float(values.mean()), float(values.std())


def kid_subsets(
    n_real: int, n_fake: int, m: int, n_subsets: int = 100, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """The KID subsets' rows, (n_subsets, m) for the fake and for the real set: separate
    seeded streams, so that the real side does not depend on the generated set."""
    f_rng, r_rng = np.random.default_rng([seed, 0]), np.random.default_rng([seed, 1])
    fake = np.stack([f_rng.choice(n_fake, m, replace=False) for _ in range(n_subsets)])
    real = np.stack([r_rng.choice(n_real, m, replace=False) for _ in range(n_subsets)])
    return fake, real


def kid_real_within(real: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Per subset of ``real`` (rows of ``rows``), the sum of its kernel matrix off the diagonal
    (cacheable for real sets; for the fake set, shared by its comparisons with several)."""
    d = real.shape[1]
    out = np.empty(len(rows))
    for s, r in enumerate(rows):
        y = np.asarray(real[r], np.float64)
        total, trace = _cubic_kernel_sums(y, y, d)
        out[s] = total - trace
    return out


def _cubic_kernel_sums(a: np.ndarray, b: np.ndarray, d: int) -> tuple[float, float]:
    """Sum and trace of the kernel matrix (a b^T / d + 1)^3 (in place: no temporaries)."""
    g = a @ b.T
    g *= 1.0 / d
    g += 1.0
    trace = float((np.diagonal(g) ** 3).sum()) if a is b else 0.0
    cube = g * g
    cube *= g
    return float(cube.sum()), trace


@dataclass(frozen=True)
class PRDC:
    """Per-sample indicators behind precision, recall, density and coverage (Naeem et al.)."""

    fake_in_real: np.ndarray  # (n_fake,) inside some real point's k-NN ball: precision
    fake_density: np.ndarray  # (n_fake,) number of real balls containing it / k: density
    real_in_fake: np.ndarray  # (n_real,) inside some fake point's k-NN ball: recall
    real_covered: np.ndarray  # (n_real,) its own ball contains a fake point: coverage

    def values(self) -> dict[str, float]:
        return {"precision": float(self.fake_in_real.mean()),
                "recall": float(self.real_in_fake.mean()),
                "density": float(self.fake_density.mean()),
                "coverage": float(self.real_covered.mean())}  # fmt: skip


def knn_radii(points: np.ndarray, k: int = 5) -> np.ndarray:
    """Distance of every point to its k-th nearest other point of the same set (exact)."""
    from ganalyze.neighbors import knn

    require(len(points), k + 1, "points", f"A k-NN radius (each point's {k}th nearest other point)")
    return knn(queries=points, base=points, k=k, exclude_self=True).kth.astype(np.float64)


def prdc(
    *,
    real: np.ndarray,
    fake: np.ndarray,
    k: int = 5,
    real_radii: np.ndarray | None = None,
    fake_radii: np.ndarray | None = None,
) -> PRDC:
    """Precision, recall, density and coverage with the conventions of the ``prdc`` package.

    Parameters
    ----------
    real, fake
        (n, d) features.
    k
        Each point's ball has the radius of its k-th nearest other point of its own set.
    real_radii, fake_radii
        Those radii when known (the reference cache holds MNIST's); else computed.

    Returns
    -------
    PRDC
        ``.values()``: precision (share of fake points inside some real ball), recall (share of
        real points inside some fake ball), density (mean number of real balls containing a
        fake point, over k) and coverage (share of real points whose ball contains a fake
        point).

    Notes
    -----
    Naeem et al. (2020), k = 5 and strict ``<`` as their ``prdc`` package. Kynkaenniemi et al.
    (2019) used k = 3 and ``<=``: numbers under the two conventions are not comparable.

    No dense distance matrix: one exact range search of the shared neighbours module
    (:func:`ganalyze.neighbors.pairs_within_both`) finds every (fake, real ball) pair, which
    precision, density and coverage all read, and from the same products the pairs the other
    way, (real, fake ball), for recall.
    """
    r = np.ascontiguousarray(real, np.float32)
    f = np.ascontiguousarray(fake, np.float32)
    r_rad = knn_radii(r, k) if real_radii is None else np.asarray(real_radii, np.float64)
    f_rad = knn_radii(f, k) if fake_radii is None else np.asarray(fake_radii, np.float64)
    (fi, rj), (fj, ri) = pairs_within_both(queries=f, base=r, base_radius=r_rad,
                                           query_radius=f_rad)  # fmt: skip
    count = np.bincount(fi, minlength=len(f))
    covered = np.zeros(len(r), bool)
    covered[rj] = True
    recalled = np.zeros(len(r), bool)
    recalled[ri] = True
    return PRDC(count > 0, count / k, recalled, covered)


def classifier_score(*, probs: np.ndarray, splits: int = 10) -> tuple[float, float]:
    """The Inception-Score analogue with the bundled classifier.

    Returns (mean, std) over ``splits`` consecutive parts of exp(E_x KL(p(y|x) || p(y))), with
    p(y) the mean prediction of the part (Salimans et al. 2016, as torch-fidelity splits it).
    High when each sample is confidently one digit and all digits appear: at most 10.
    """
    require(len(probs), splits, "samples", f"The classifier score ({splits} splits)")
    scores = []
    for part in np.array_split(np.asarray(probs, np.float64), splits):
        marginal = part.mean(0, keepdims=True)
        kl = (xlogy(part, part) - xlogy(part, marginal)).sum(1).mean()
        scores.append(np.exp(kl))
    return float(np.mean(scores)), float(np.std(scores))


def vendi_score(*, features: np.ndarray) -> float:
    """The Vendi score (Friedman and Dieng 2023), cosine kernel, order 1.

    exp of the Shannon entropy of the eigenvalues of K / n, K_ij = cos(x_i, x_j): the effective
    number of distinct samples (1 for copies of one point, n for orthogonal ones). Computed
    through the dual, the d x d matrix X^T X / n with the same non-zero eigenvalues, when the
    dimension is below n.
    """
    x = np.asarray(features, np.float64)
    require(len(x), 1, "samples", "The Vendi score")
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    n = len(x)
    return vendi_from_gram(x.T @ x / n if x.shape[1] < n else x @ x.T / n)


def vendi_from_gram(gram: np.ndarray) -> float:
    """The Vendi score from K / n or its dual X^T X / n (rows of X unit length)."""
    w = np.clip(np.linalg.eigvalsh(gram), 0, None)
    w = w / w.sum()
    return float(np.exp(-xlogy(w, w).sum()))


def mifid(
    *, fd_train: float, fake_distance: np.ndarray, test_distance: np.ndarray
) -> dict[str, float]:
    """Memorization-informed FD, in the generated-to-train direction, epsilon calibrated.

    Parameters
    ----------
    fd_train
        Frechet distance of the generated samples to the training set.
    fake_distance, test_distance
        For each generated sample and each MNIST-test image, the cosine distance (1 - cos) to its
        nearest training image.

    Returns
    -------
    dict
        mifid_distance d = mean over generated samples, mifid_epsilon = the same mean for MNIST
        test, and mifid = fd_train * max(1, epsilon / d).

    Notes
    -----
    Bai et al. (2021), Kaggle's "I'm Something of a Painter Myself". The direction is each
    generated sample to its nearest training image, the one that reacts to a few copies (some
    implementations average each training image to its nearest generated sample instead).
    Two deviations, both deliberate: epsilon is the held-out value in this feature space (about
    0.013; the usual 0.1 would penalise every generator, MNIST test included), and the penalty
    is max(1, epsilon / d), continuous at epsilon, where the Kaggle form divides by d only below
    epsilon and so jumps 1 / epsilon-fold (77-fold here) right where good generators sit.
    """
    d = float(np.mean(fake_distance))
    eps = float(np.mean(test_distance))
    factor = np.inf if d == 0 else max(1.0, eps / d)
    return {"mifid": float(fd_train * factor), "mifid_distance": d, "mifid_epsilon": eps}
