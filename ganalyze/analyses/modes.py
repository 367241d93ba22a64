"""Digit modes: which digits a generator makes, misses or over-produces, and what is no digit.

A plain CNN is confidently wrong on things that are not digits, so unrecognizable samples are
set aside first, by the rule of :mod:`ganalyze.ood` (the context's ``ood_masks``, the same rule
that gives every other analysis its digit labels): out of distribution if the distance to the
5th nearest MNIST-train image exceeds the 99th percentile of that distance over MNIST test, in
the mnist_cnn space OR in pixel space; unrecognizable if out of distribution or the top class
probability is below 0.5.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure

from ganalyze import ood
from ganalyze.analyses.base import Analysis, AnalysisResult, Flag, metric_adder, register
from ganalyze.ood import K_OOD, MIN_CONFIDENCE, OOD_PERCENTILE
from ganalyze.report.numbers import cite, decimals, number
from ganalyze.stats import entropy, kl_divergence, wilson_interval

# the rule itself lives in ganalyze.ood; these names stay importable from here
ood_thresholds = ood.ood_thresholds
unrecognizable = ood.unrecognizable

COVERAGE_FRACTION = 0.25  # a digit is covered if its share reaches a quarter of its train share
OVER_FACTOR = 2.0  # a digit is over-produced when its share is surely above twice its train share
UNRECOGNIZABLE_FLAG = 0.10
PER_DIGIT, UNRECOGNIZABLE_SHOWN = 12, 48  # samples shown per digit, unrecognizable ones shown

# Metric names
UNRECOGNIZABLE_RATE, OOD_RATE = "unrecognizable_rate", "ood_rate"
LOW_CONFIDENCE_RATE = "low_confidence_rate"
SHARES = tuple(f"share_{c}" for c in range(10))  # SHARES[c]: the share of digit c
MODES_COVERED, MODES_COVERED_ANY = "modes_covered", "modes_covered_any"
KL_TO_TRAIN, KL_TO_UNIFORM, ENTROPY = "kl_to_train", "kl_to_uniform", "entropy"
METRICS = (UNRECOGNIZABLE_RATE, OOD_RATE, LOW_CONFIDENCE_RATE, *SHARES, MODES_COVERED,
           MODES_COVERED_ANY, KL_TO_TRAIN, KL_TO_UNIFORM, ENTROPY)  # fmt: skip


def mode_statistics(
    *, predicted: np.ndarray, unrecognizable: np.ndarray, train_shares: np.ndarray
) -> dict[str, np.ndarray | float | int]:
    """Shares, coverage and divergences of the predicted digits.

    Returns
    -------
    dict
        ``counts`` (10,) recognizable samples per digit; ``shares`` = counts / n (they sum to
        1 - unrecognizable_rate); ``covered`` (10,) bool, share >= 0.25 x train share;
        ``modes_covered`` (their number), ``modes_covered_any`` (digits predicted at least once
        among recognizable samples); ``p`` the shares renormalised over recognizable samples;
        ``kl_to_train`` = KL(p || p_train) and ``kl_to_uniform`` = KL(p || 1/10) in nats,
        ``entropy`` of p in nats (all NaN when nothing is recognizable).
    """
    n = len(predicted)
    counts = np.bincount(predicted[~unrecognizable], minlength=10).astype(np.int64)
    shares = counts / n if n else np.zeros(10)
    covered = shares >= COVERAGE_FRACTION * np.asarray(train_shares)
    total = counts.sum()
    if total:
        p = counts / total
        kl_train, kl_unif = kl_divergence(p, train_shares), kl_divergence(p, np.full(10, 0.1))
        ent = entropy(p)
    else:
        p, kl_train, kl_unif, ent = np.full(10, np.nan), np.nan, np.nan, np.nan
    return {
        "counts": counts,
        "shares": shares,
        "covered": covered,
        "p": p,
        MODES_COVERED: int(covered.sum()),
        MODES_COVERED_ANY: int((counts > 0).sum()),
        KL_TO_TRAIN: kl_train,
        KL_TO_UNIFORM: kl_unif,
        ENTROPY: ent,
    }


@register
class Modes(Analysis):
    name = "modes"
    title = "Digit modes"
    description = (
        "Which digits the generator makes, misses or over-produces, judged by the bundled MNIST "
        "classifier, after setting aside samples that are no recognizable digit."
    )
    needs = ("samples",)
    order = 10
    metric_names = METRICS

    def run(self, ctx) -> AnalysisResult:
        ref = ctx.reference
        thresholds, masks = ctx.ood_thresholds, ctx.ood_masks
        predicted = ctx.probs.argmax(1)
        stats = mode_statistics(
            predicted=predicted,
            unrecognizable=masks["unrecognizable"],
            train_shares=ref.train_shares,
        )
        n = len(predicted)
        res = self.result()
        add = metric_adder(res, n_fake=n, n_real=len(ref.train))

        def rate(name: str, mask: np.ndarray, text: str) -> None:
            lo, hi = wilson_interval(int(mask.sum()), n)
            add(name, mask.mean(), text, higher_is_better=False, ci_low=lo, ci_high=hi)

        rate(
            UNRECOGNIZABLE_RATE,
            masks["unrecognizable"],
            "share of samples that are out of distribution or classified with confidence < 0.5",
        )
        rate(
            OOD_RATE,
            masks["ood"],
            "share of samples beyond the 99th percentile of MNIST "
            "test's 5th-neighbour distance to MNIST train, in pixel or mnist_cnn space",
        )
        rate(
            LOW_CONFIDENCE_RATE,
            masks["low_confidence"],
            "share of samples whose top class probability is below 0.5",
        )
        for c in range(10):
            lo, hi = wilson_interval(int(stats["counts"][c]), n)
            add(
                SHARES[c],
                stats["shares"][c],
                f"share of all samples recognized as a {c} (target: its share of MNIST train)",
                target=float(ref.train_shares[c]),
                ci_low=lo,
                ci_high=hi,
            )
        add(
            MODES_COVERED,
            stats[MODES_COVERED],
            "digits whose share reaches a quarter of their MNIST-train share (of 10)",
            higher_is_better=True,
        )
        add(
            MODES_COVERED_ANY,
            stats[MODES_COVERED_ANY],
            "digits predicted at least once among recognizable samples (of 10)",
            higher_is_better=True,
        )
        add(
            KL_TO_TRAIN,
            stats[KL_TO_TRAIN],
            "KL(p || p_train) in nats, p the digit distribution of recognizable samples",
            higher_is_better=False,
        )
        add(
            KL_TO_UNIFORM,
            stats[KL_TO_UNIFORM],
            "KL(p || uniform over 10 digits) in nats",
            higher_is_better=False,
        )
        add(
            ENTROPY,
            stats[ENTROPY],
            "entropy of p in nats (log 10 = 2.303 for 10 equal digits)",
            higher_is_better=True,
        )
        res.rules = [
            f"Out of distribution: distance to the {K_OOD}th nearest MNIST-train image above "
            f"{thresholds['pixel']:.3f} in pixel space or {thresholds['mnist_cnn']:.4f} in "
            f"mnist_cnn space (the {OOD_PERCENTILE:g}th percentiles over MNIST test).",
            "Unrecognizable: out of distribution, or top class probability below 0.5.",
            f"A digit is covered when its share reaches {COVERAGE_FRACTION:g} x its share of "
            "MNIST train; a digit not covered is flagged.",
            f"A digit is over-produced, and flagged, when the Wilson 95% lower bound of its share "
            f"exceeds {OVER_FACTOR:g} x its share of MNIST train.",
            f"Flagged when {UNRECOGNIZABLE_RATE} exceeds {UNRECOGNIZABLE_FLAG:.0%}.",
        ]
        self._flags(res, stats, ref.train_shares)
        res.tables["samples"] = pd.DataFrame(
            {
                "sample": np.arange(n),
                "predicted": predicted,
                "confidence": ctx.probs.max(1),
                "kth_dist_pixel": masks["kth_pixel"],
                "kth_dist_mnist_cnn": masks["kth_mnist_cnn"],
                "ood": masks["ood"],
                "low_confidence": masks["low_confidence"],
                "unrecognizable": masks["unrecognizable"],
            }
        )
        res.tables["digits"] = pd.DataFrame(
            {
                "digit": np.arange(10),
                "count": stats["counts"],
                "share": stats["shares"],
                "train_share": ref.train_shares,
                "covered": stats["covered"],
            }
        )
        res.arrays = _shown(ctx.images, res.tables["samples"])
        res.figures = {"shares": plot_shares, "confidence": plot_confidence,
                       "by_digit": plot_digit_grid,
                       "unrecognizable": plot_unrecognizable}  # fmt: skip
        return res

    @staticmethod
    def _flags(res: AnalysisResult, stats: dict, train_shares: np.ndarray) -> None:
        missed = np.flatnonzero(~stats["covered"])
        rule = f"share below {COVERAGE_FRACTION:g} x training share"
        if len(missed) > 3:  # one finding, not ten
            names = [SHARES[c] for c in missed]
            res.flags.append(
                Flag(
                    f"{len(missed)} of 10 digits are under-produced "
                    f"({', '.join(map(str, missed))}): each has less than a quarter of its "
                    f"training share; {MODES_COVERED} = {stats[MODES_COVERED]}.",
                    rule,
                    names,
                )
            )
            missed = []
        for c in missed:
            m = res.metric(SHARES[c])
            res.flags.append(Flag(
                f"Digit {c} is under-produced: {cite(m)} is below a quarter of its training "
                f"share {_target(m)}.", rule, [m.name]))  # fmt: skip
        for c in range(10):
            m = res.metric(SHARES[c])
            if m.ci_low > OVER_FACTOR * m.target:
                res.flags.append(Flag(
                    f"Digit {c} is over-produced: {cite(m)} is {m.value / m.target:.1f}x its "
                    f"training share {_target(m)}.",
                    f"lower bound of the share above {OVER_FACTOR:g} x training share",
                    [m.name]))  # fmt: skip
        m = res.metric(UNRECOGNIZABLE_RATE)
        if m.value > UNRECOGNIZABLE_FLAG:
            res.flags.append(Flag(
                f"Samples are no recognizable digit: {cite(m)}.",
                f"{m.name} > {UNRECOGNIZABLE_FLAG:g}", [m.name]))  # fmt: skip


def _target(m) -> str:
    """A share's training share, written with the share's decimals."""
    return number(m.target, decimals(m.name, m.value, m.ci_low, m.ci_high))


def _shown(images, t: pd.DataFrame) -> dict:
    """What the sample figures show: the first PER_DIGIT recognizable samples of each digit,
    the first UNRECOGNIZABLE_SHOWN unrecognizable ones, and how many of those there are."""

    def pick(mask: pd.Series, count: int) -> np.ndarray:
        return images[torch.as_tensor(np.flatnonzero(mask)[:count]), 0].numpy()

    recognized = ~t.unrecognizable
    return {"by_digit": [pick((t.predicted == c) & recognized, PER_DIGIT) for c in range(10)],
            "unrecognizable": pick(t.unrecognizable, UNRECOGNIZABLE_SHOWN),
            "n_unrecognizable": int(t.unrecognizable.sum())}  # fmt: skip


def plot_shares(res: AnalysisResult, ax=None) -> Figure:
    """Share of each digit among samples, with Wilson intervals, against MNIST train."""
    if ax is None:
        ax = Figure(figsize=(7.6, 3.4), layout="constrained").subplots()
    shares = [res.metric(name) for name in SHARES]
    x = np.arange(10)
    vals = np.array([m.value for m in shares])
    err = np.clip([[m.value - m.ci_low, m.ci_high - m.value] for m in shares], 0, None).T
    ax.bar(x - 0.2, vals, 0.4, yerr=err, capsize=2, label="generated", color="tab:blue")
    ax.bar(x + 0.2, [m.target for m in shares], 0.4, label="MNIST train", color="0.7")
    ax.plot(
        x,
        [COVERAGE_FRACTION * m.target for m in shares],
        "_",
        ms=14,
        color="tab:red",
        label="coverage threshold",
    )
    ax.set(xticks=x, xlabel="predicted digit", ylabel="share of all samples")
    ax.legend(frameon=False, fontsize="small", loc="upper left", bbox_to_anchor=(1, 1))
    return ax.figure


def plot_confidence(res: AnalysisResult, ax=None) -> Figure:
    """Histogram of the classifier's top probability, recognizable vs unrecognizable samples."""
    if ax is None:
        ax = Figure(figsize=(6.4, 3.0), layout="constrained").subplots()
    t = res.tables["samples"]
    bins = np.linspace(0, 1, 41)
    for flag, label, color in (
        (False, "recognizable", "tab:blue"),
        (True, "unrecognizable", "tab:red"),
    ):
        ax.hist(
            t.loc[t.unrecognizable == flag, "confidence"],
            bins=bins,
            label=label,
            color=color,
            alpha=0.7,
        )
    ax.axvline(MIN_CONFIDENCE, color="k", lw=0.8, ls="--")
    ax.set(xlabel="top class probability", ylabel="samples", yscale="log")
    ax.legend(frameon=False, fontsize="small", loc="upper left", bbox_to_anchor=(1, 1))
    return ax.figure


def _grid(ax, images: np.ndarray, ncol: int) -> None:
    """Images in rows of ``ncol`` on white, each in a thin light frame; no image: all white."""
    rows = -(-len(images) // ncol) if len(images) else 1
    canvas = np.zeros((rows * 29 + 1, ncol * 29 + 1))
    for i, im in enumerate(images):
        r, c = divmod(i, ncol)
        canvas[r * 29 : r * 29 + 30, c * 29 : c * 29 + 30] = 0.15
        canvas[1 + r * 29 : 1 + r * 29 + 28, 1 + c * 29 : 1 + c * 29 + 28] = im
    ax.imshow(canvas, cmap="gray_r", vmin=0, vmax=1, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])


def plot_digit_grid(res: AnalysisResult, ax=None) -> Figure:
    """Recognizable samples, one row per predicted digit (``ax``: ten axes, or None); a digit
    never made says so in its row, and a generator with no recognizable sample gets one line
    saying that instead of ten empty rows."""
    rows = res.arrays["by_digit"]
    if ax is None and not any(len(images) for images in rows):
        ax = Figure(figsize=(PER_DIGIT * 0.45, 1.0), layout="constrained").subplots()
        ax.set_axis_off()
        ax.text(0.5, 0.5, f"No recognizable digit among the {len(res.tables['samples'])} "
                "samples: nothing to show per digit\n(see the unrecognizable samples below).",
                ha="center", va="center", fontsize="medium")  # fmt: skip
        return ax.figure
    if ax is None:
        ax = Figure(figsize=(PER_DIGIT * 0.45, 10 * 0.5), layout="constrained").subplots(10, 1)
    for c, (a, images) in enumerate(zip(ax, rows, strict=True)):
        _grid(a, images, PER_DIGIT)
        a.set_ylabel(str(c), rotation=0, labelpad=8, va="center")
        if not len(images):
            a.text(0.5, 0.5, f"no recognizable {c}", transform=a.transAxes, ha="center",
                   va="center", fontsize="small", color="0.35")  # fmt: skip
    return ax[0].figure


def plot_unrecognizable(res: AnalysisResult, ax=None) -> Figure:
    """Samples set aside as unrecognizable (out of distribution or low confidence)."""
    images = res.arrays["unrecognizable"]
    if ax is None:
        rows = max(1, -(-len(images) // 12))
        ax = Figure(figsize=(12 * 0.45, rows * 0.5 + 0.3), layout="constrained").subplots()
    _grid(ax, images, 12)
    ax.set_title(f"{res.arrays['n_unrecognizable']} unrecognizable samples (first "
                 f"{len(images)})", fontsize="small")  # fmt: skip
    return ax.figure
