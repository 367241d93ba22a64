"""Small statistics shared by analyses: intervals, divergences, entropies."""

from __future__ import annotations

from statistics import NormalDist

import numpy as np

from ganalyze.errors import InputError, NotEnoughData  # noqa: F401 (re-exported)

MORE_SAMPLES = "Audit more samples: a larger --n-samples, or a samples file with more images."
MORE_MEMBERS = "Give a larger member set with --train-indices."


def require(count: int, minimum: int, what: str, why: str, fix: str = "") -> None:
    """Raise :class:`NotEnoughData` unless ``count >= minimum``, saying what needs how many.

    The message reads "<why> needs at least <minimum> <what>; got <count>. <fix>".
    """
    if count < minimum:
        raise NotEnoughData(f"{why} needs at least {minimum} {what}; got {count}. {fix}".strip())


def wilson_interval(successes: float, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion.

    Parameters
    ----------
    successes
        Number of successes (may be fractional, e.g. a rounded weighted count).
    n
        Number of trials; with n = 0 the interval is (nan, nan).
    confidence
        Two-sided confidence level.

    Returns
    -------
    (low, high)
        The interval, clipped to [0, 1].

    Notes
    -----
    With p = successes / n and z the normal quantile, the centre is
    (p + z^2 / 2n) / (1 + z^2 / n) and the half-width
    z sqrt(p (1 - p) / n + z^2 / 4n^2) / (1 + z^2 / n) (Wilson 1927). Unlike the normal
    approximation it stays inside [0, 1] and is sensible at p = 0 or 1.

    References
    ----------
    E. B. Wilson, "Probable inference, the law of succession, and statistical inference",
    JASA 22 (1927).
    """
    if n <= 0:
        return (float("nan"), float("nan"))
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (float(min(p, max(0.0, centre - half))), float(max(p, min(1.0, centre + half))))


def score_groups(positive: np.ndarray, negative: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Each score's rank among the distinct scores of both sets (ascending): the groups of
    ``positive``, of ``negative``, and how many distinct scores there are. Counting a
    resample's groups (``np.bincount``) gives its :func:`auc_from_counts` without a sort."""
    _, inverse = np.unique(np.concatenate([positive, negative]), return_inverse=True)
    inverse = inverse.ravel()
    return inverse[: len(positive)], inverse[len(positive) :], int(inverse.max(initial=-1) + 1)


def score_counts(positive: np.ndarray, negative: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positives and negatives per distinct score, scores ascending (float64 counts)."""
    g_pos, g_neg, size = score_groups(positive, negative)
    return (np.bincount(g_pos, minlength=size).astype(np.float64),
            np.bincount(g_neg, minlength=size).astype(np.float64))  # fmt: skip


def auc_from_counts(pos: np.ndarray, neg: np.ndarray) -> float:
    """ROC AUC (ties count one half) from the positives and negatives per distinct score,
    ascending: the Mann-Whitney U of positives against negatives over n_pos * n_neg, exact
    (U is a sum of half-integers)."""
    return float((pos * (np.cumsum(neg) - 0.5 * neg)).sum() / (pos.sum() * neg.sum()))


def mann_whitney_u(x: np.ndarray, y: np.ndarray) -> float:
    """The Mann-Whitney U statistic of ``x`` against ``y`` (pairs with x > y, ties counting one
    half), exact: scipy.stats.mannwhitneyu(x, y).statistic without importing scipy.stats."""
    pos, neg = score_counts(x, y)
    return float((pos * (np.cumsum(neg) - 0.5 * neg)).sum())


def kl_divergence(p: np.ndarray, q: np.ndarray) -> float:
    """KL(p || q) in nats; terms with p = 0 contribute 0; inf where p > 0 = q."""
    p, q = np.asarray(p, dtype=np.float64), np.asarray(q, dtype=np.float64)
    mask = p > 0
    if np.any(q[mask] == 0):
        return float("inf")
    return float(np.sum(p[mask] * np.log(p[mask] / q[mask])))


def entropy(p: np.ndarray) -> float:
    """Shannon entropy in nats of a probability vector."""
    p = np.asarray(p, dtype=np.float64)
    p = p[p > 0]
    return float(-np.sum(p * np.log(p)))
