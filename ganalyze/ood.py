"""The one rule that labels a sample out of distribution or unrecognizable.

A plain CNN is confidently wrong on things that are not digits, so unrecognizable samples are
found first, by a rule anchored in pixel space (after the deep nearest-neighbour idea of Sun et
al. 2022; k = 5 and the 99th percentile are ganalyze's calibration): a sample is out of
distribution if its distance to its 5th nearest MNIST-train image exceeds the 99th percentile of
that distance over the baseline (MNIST test), in the mnist_cnn space OR in pixel space. It is
unrecognizable if it is out of distribution or its top class probability is below 0.5.

The context labels samples, MNIST test and any images an analysis makes with
:func:`digit_labels`; the modes analysis reports the masks of :func:`unrecognizable`. Both come
from here, so the two can never disagree.

References
----------
Sun, Ming, Zhu, Li. "Out-of-Distribution Detection with Deep Nearest Neighbors." ICML 2022.
"""

from __future__ import annotations

import numpy as np

K_OOD = 5
"""The rule's k: the distance to the 5th nearest MNIST-train image."""
OOD_PERCENTILE = 99.0
MIN_CONFIDENCE = 0.5
SPACES = ("pixel", "mnist_cnn")
"""The spaces the rule looks in: a sample beyond the threshold in either is out of distribution."""
UNRECOGNIZABLE = 10
"""The label of an unrecognizable image (digits are 0-9)."""


def ood_thresholds(*, baseline_kth: dict[str, np.ndarray], q: float = OOD_PERCENTILE) -> dict:
    """Per space, the q-th percentile of the baseline's distance to its k-th MNIST-train
    neighbour (numpy's linear interpolation)."""
    return {space: float(np.percentile(d, q)) for space, d in baseline_kth.items()}


def unrecognizable(
    *,
    kth: dict[str, np.ndarray],
    thresholds: dict[str, float],
    probs: np.ndarray,
    min_confidence: float = MIN_CONFIDENCE,
) -> dict[str, np.ndarray]:
    """Boolean masks ``ood`` (beyond the threshold in any space, strict ``>``),
    ``low_confidence`` (top probability strictly below ``min_confidence``) and their union
    ``unrecognizable``."""
    ood = np.zeros(len(probs), dtype=bool)
    for space, d in kth.items():
        ood |= d > thresholds[space]
    low = probs.max(1) < min_confidence
    return {"ood": ood, "low_confidence": low, "unrecognizable": ood | low}


def unrecognizable_cheapest_first(
    *,
    probs: np.ndarray,
    beyond,
    thresholds: dict[str, float],
    min_confidence: float = MIN_CONFIDENCE,
) -> np.ndarray:
    """The ``unrecognizable`` mask of :func:`unrecognizable`, its tests cheapest first: an
    image unrecognizable by its confidence needs no neighbour search, one beyond the mnist_cnn
    threshold no pixel search. ``beyond(space, rows, threshold)`` says whether those rows' k-th
    MNIST-train distance in ``space`` exceeds ``threshold`` (``ExactIndex.kth_exceeds``, which
    answers most in-distribution rows without a search). The same mask as the full rule, for a
    fraction of the searches."""
    out = probs.max(1) < min_confidence
    for space in ("mnist_cnn", "pixel"):
        rows = np.flatnonzero(~out)
        if len(rows):
            out[rows] = beyond(space, rows, thresholds[space])
    return out


def digit_labels(
    *, probs: np.ndarray, kth: dict[str, np.ndarray], thresholds: dict[str, float]
) -> np.ndarray:
    """The top digit of each image, or :data:`UNRECOGNIZABLE` (10) where
    :func:`unrecognizable` says so."""
    masks = unrecognizable(kth=kth, thresholds=thresholds, probs=probs)
    return np.where(masks["unrecognizable"], UNRECOGNIZABLE, probs.argmax(1))


MEANINGFUL_MAX_UNRECOGNIZABLE = 0.5
"""Above this share of unrecognizable samples, metrics that count "unrecognizable" as a label
(latent_label_stability, label_changes and the like) or that measure distance to a copied digit
(authenticity) would look perfect on pure noise. They are then reported as NaN with a note."""


def not_meaningful(unrecognizable_rate: float, metric: str) -> str | None:
    """The note that says why ``metric`` is not reported, or None when it is meaningful: when
    more than :data:`MEANINGFUL_MAX_UNRECOGNIZABLE` of the samples are unrecognizable."""
    if unrecognizable_rate > MEANINGFUL_MAX_UNRECOGNIZABLE:
        return (
            f"{metric} is not meaningful here: {unrecognizable_rate:.0%} of the samples are "
            f"unrecognizable (above {MEANINGFUL_MAX_UNRECOGNIZABLE:.0%}), and an unrecognizable "
            "sample would count as a stable, novel or unchanged one. Reported as NaN."
        )
    return None
