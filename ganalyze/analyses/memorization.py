"""Memorization: does the generator copy its training digits?

Every generated sample gets its exact nearest neighbour in the member set (the images the
generator was trained on), in pixel space ([0, 1] images) and in the mnist_cnn space. The
baseline is the same search for MNIST test: how close genuinely new digits come. Thin digits
sit closer to their neighbours (every MNIST-test digit below the 1st percentile of that
distance is a "1"), so each statistic is also computed per predicted digit against that digit's
own test baseline, and verdicts use these digit-adjusted values.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import partial

import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure

from ganalyze.analyses.base import (
    Analysis,
    AnalysisResult,
    Flag,
    check_number,
    metric_adder,
    register,
)
from ganalyze.errors import InputError
from ganalyze.ood import not_meaningful
from ganalyze.report.numbers import cite
from ganalyze.stats import (
    MORE_MEMBERS,
    MORE_SAMPLES,
    NotEnoughData,
    mann_whitney_u,
    require,
    wilson_interval,
)

COPY_PERCENTILE = 1.0
MIN_DIGIT_SAMPLES = 10
COPY_FLAG_FACTOR = 2.0  # flag above twice the held-out rate (0.02 at the 1st percentile)
CT_FLAG = -3.0
CT_CELLS = 50
CT_MIN_FAKE = 20
PAIRS = 12  # generated digits shown over their nearest members, per pairs figure

# Metric names: one row per space, CT_STATISTIC in mnist_cnn only
NN_DIST_MEDIAN, NN_DIST_MEDIAN_BASELINE = "nn_dist_median", "nn_dist_median_baseline"
NN_DIST_RATIO, NN_DIST_RATIO_ADJUSTED = "nn_dist_ratio", "nn_dist_ratio_adjusted"
COPY_RATE, COPY_RATE_ADJUSTED = "copy_rate", "copy_rate_adjusted"
AUTHENTICITY, AUTHENTICITY_BASELINE = "authenticity", "authenticity_baseline"
CT_STATISTIC = "ct_statistic"
METRICS = (NN_DIST_MEDIAN, NN_DIST_MEDIAN_BASELINE, NN_DIST_RATIO, NN_DIST_RATIO_ADJUSTED,
           COPY_RATE, COPY_RATE_ADJUSTED, AUTHENTICITY, AUTHENTICITY_BASELINE,
           CT_STATISTIC)  # fmt: skip


def digit_weights(*, fake_pred: np.ndarray, min_count: int = MIN_DIGIT_SAMPLES) -> dict[int, float]:
    """share_c = the fraction of all samples whose top prediction is c, for digits with at least
    ``min_count`` samples, renormalised to sum to 1."""
    counts = np.bincount(fake_pred, minlength=10)
    kept = {c: counts[c] for c in range(10) if counts[c] >= min_count}
    total = sum(kept.values())
    return {c: v / total for c, v in kept.items()} if total else {}


def distance_ratios(
    *, fake_dist: np.ndarray, real_dist: np.ndarray, fake_pred: np.ndarray, real_pred: np.ndarray
) -> dict[str, float]:
    """nn_dist_median (generated), nn_dist_median_baseline (real), nn_dist_ratio (their ratio)
    and nn_dist_ratio_adjusted: sum over digits of share_c * median_fake_c / median_real_c."""
    med_f, med_r = float(np.median(fake_dist)), float(np.median(real_dist))
    weights = digit_weights(fake_pred=fake_pred)
    adjusted = sum(
        w * np.median(fake_dist[fake_pred == c]) / np.median(real_dist[real_pred == c])
        for c, w in weights.items()
        if np.any(real_pred == c)
    )
    return {NN_DIST_MEDIAN: med_f, NN_DIST_MEDIAN_BASELINE: med_r,
            NN_DIST_RATIO: med_f / med_r if med_r > 0 else np.nan,
            NN_DIST_RATIO_ADJUSTED: float(adjusted) if weights else np.nan}  # fmt: skip


def copy_rates(
    *, fake_dist: np.ndarray, real_dist: np.ndarray, fake_pred: np.ndarray, real_pred: np.ndarray,
    percentile: float = COPY_PERCENTILE,
) -> dict:  # fmt: skip
    """copy_rate: the share of samples nearer to their neighbour than the 1st percentile of the
    real-to-train distances (strict ``<``); copy_rate_adjusted = sum over digits of share_c *
    rate_c, where rate_c uses digit c's own 1st-percentile threshold; ``per_digit`` a table."""
    threshold = float(np.percentile(real_dist, percentile))
    rows = []
    for c, w in digit_weights(fake_pred=fake_pred).items():
        real_c = real_dist[real_pred == c]
        if not len(real_c):
            continue
        t_c = float(np.percentile(real_c, percentile))
        rows.append({"digit": c, "share": w, "threshold": t_c,
                     "rate": float(np.mean(fake_dist[fake_pred == c] < t_c)),
                     "rate_baseline": float(np.mean(real_c < t_c))})  # fmt: skip
    table = pd.DataFrame(rows, columns=["digit", "share", "threshold", "rate", "rate_baseline"])
    adjusted = float((table.share * table.rate).sum() / table.share.sum()) if rows else np.nan
    return {COPY_RATE: float(np.mean(fake_dist < threshold)), "threshold": threshold,
            COPY_RATE_ADJUSTED: adjusted, "per_digit": table}  # fmt: skip


def authenticity(*, dist: np.ndarray, neighbor: np.ndarray, train_radius: np.ndarray) -> float:
    """The share of samples whose distance to their nearest training image j is larger than
    j's distance to its own nearest other training image (``train_radius[j]``): the per-sample
    rule of Alaa et al. 2022 as dgm-eval implements it (strict ``>``)."""
    return float(np.mean(dist > train_radius[neighbor]))


@dataclass(frozen=True)
class CtCells:
    """C_T's partition of a training set, which no generator changes: the seeded k-means
    centres, each training point's cell, and each real (held-out) point's cell and distance L
    to the nearest training point of that cell."""

    centers: np.ndarray
    train_cells: np.ndarray
    real_cells: np.ndarray
    real_dist: np.ndarray


def ct_cells(*, train: np.ndarray, real: np.ndarray, n_cells: int = CT_CELLS,
             seed: int = 0) -> CtCells:  # fmt: skip
    """Fit C_T's ``n_cells`` k-means cells on ``train`` (scikit-learn, ``random_state=seed``,
    one initialisation, as Meehan et al.'s MNIST script) and place the ``real`` points in them
    (:func:`nearest_center`)."""
    from sklearn.cluster import KMeans

    from ganalyze.neighbors import knn

    require(len(train), n_cells, "member images", f"C_T ({n_cells} k-means cells)", MORE_MEMBERS)
    km = KMeans(n_clusters=n_cells, random_state=seed, n_init=1).fit(train)
    centers, train_cells = np.asarray(km.cluster_centers_), np.asarray(km.labels_)
    real_cells = nearest_center(real, centers)
    real_dist = np.full(len(real), np.nan)
    for c in np.unique(real_cells):
        rows = np.flatnonzero(real_cells == c)
        base = train[train_cells == c]
        real_dist[rows] = knn(queries=real[rows], base=base, k=1).kth
    return CtCells(centers, train_cells, real_cells, real_dist)


def nearest_center(points: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """The index of each point's nearest centre (squared distances in float64, ties to the
    lower index): k-means' ``predict``."""
    x, c = np.asarray(points, np.float64), np.asarray(centers, np.float64)
    best = np.empty(len(x), dtype=np.int64)
    step = max(1, (1 << 21) // max(1, c.size))  # about 16 MB of differences at a time
    for a in range(0, len(x), step):
        d2 = ((x[a : a + step, None, :] - c[None]) ** 2).sum(-1)
        best[a : a + step] = d2.argmin(1)
    return best


def ct_statistic(
    *, train: np.ndarray, fake: np.ndarray, real: np.ndarray, n_cells: int = CT_CELLS,
    seed: int = 0, min_fake: int = CT_MIN_FAKE, cells: CtCells | None = None,
) -> tuple[float, pd.DataFrame]:  # fmt: skip
    """The data-copying test C_T of Meehan, Chaudhuri and Dasgupta (2020), as their MNIST
    script runs it.

    Notes
    -----
    ``n_cells`` seeded k-means cells are fitted on ``train``; in each cell L(x) is the distance
    of x to the nearest training point of that cell. Per cell, the Mann-Whitney U of generated
    against real L values gives Z_U = (U - (nm/2 - 0.5)) / sqrt(nm(n + m + 1)/12) (continuity
    correction), n generated and m real points. Cells with more than ``min_fake`` generated
    points are averaged, weighted by each cell's share of the real points. Negative: the
    generated points sit closer to the training set than real new points (copying); positive:
    farther (underfitting). With few cells the test confuses mode imbalance with copying.
    ``cells``: the cells and the real points' L values of this ``train`` and ``real``
    (:func:`ct_cells`), when already at hand (an audit keeps them in the reference cache).

    Raises :class:`~ganalyze.stats.NotEnoughData` when ``train`` has fewer points than cells or
    no cell holds more than ``min_fake`` generated points (the test is then undefined).
    """
    from ganalyze.neighbors import knn

    require(len(train), n_cells, "member images", f"C_T ({n_cells} k-means cells)", MORE_MEMBERS)
    require(len(fake), min_fake + 1, "generated samples",
            f"C_T (more than {min_fake} samples in a k-means cell)", MORE_SAMPLES)  # fmt: skip
    if cells is None:
        cells = ct_cells(train=train, real=real, n_cells=n_cells, seed=seed)
    fake_cells = nearest_center(fake, cells.centers)
    rows = []
    for c in range(n_cells):
        in_cell = fake_cells == c
        if np.count_nonzero(in_cell) <= min_fake:
            continue
        lr = cells.real_dist[cells.real_cells == c]
        if not len(lr):
            raise InputError(f"C_T cell {c} holds {np.count_nonzero(in_cell)} generated points "
                             "but no real ones; the test is undefined. Use more real "
                             "points.")  # fmt: skip
        base = train[cells.train_cells == c]
        lf = knn(queries=fake[in_cell], base=base, k=1).kth
        n, m = len(lf), len(lr)
        u = mann_whitney_u(lf, lr)
        z = (u - (n * m / 2 - 0.5)) / np.sqrt(n * m * (n + m + 1) / 12)
        rows.append({"cell": c, "n_fake": n, "n_real": m, "weight": m / len(real), "z_u": z})
    table = pd.DataFrame(rows, columns=["cell", "n_fake", "n_real", "weight", "z_u"])
    if not rows:
        fullest = int(np.bincount(fake_cells, minlength=n_cells).max())
        raise NotEnoughData(f"C_T needs a k-means cell holding more than {min_fake} generated "
                            f"samples; the fullest of {n_cells} holds {fullest} (of {len(fake)}). "
                            f"{MORE_SAMPLES}")  # fmt: skip
    return float((table.weight * table.z_u).sum() / table.weight.sum()), table


def cached_ct_cells(ref, members: np.ndarray | None, n_cells: int) -> CtCells:
    """:func:`ct_cells` of the member set's and MNIST test's mnist_cnn features, kept in the
    reference cache per member set and number of cells: the same for every audit of one
    member set."""
    import sklearn

    key = "all" if members is None else hashlib.sha256(
        np.asarray(members, np.int64).tobytes()).hexdigest()[:16]  # fmt: skip

    def compute() -> np.ndarray:  # one array, so that no two fits can mix
        train = ref.features("train")
        cells = ct_cells(train=train if members is None else train[members],
                         real=ref.features("test"), n_cells=n_cells)  # fmt: skip
        parts = [cells.centers, cells.train_cells, cells.real_cells, cells.real_dist]
        sizes = [cells.centers.shape[1], len(cells.train_cells), len(cells.real_cells)]
        return np.concatenate([[n_cells, *sizes], *(np.ravel(p) for p in parts)]).astype(float)

    # the fit is scikit-learn's: its version is part of the name
    packed = ref.cached(f"ct_cells_v1_sk{sklearn.__version__}_{key}_c{n_cells}", compute)
    n, d, m, r = (int(v) for v in packed[:4])
    bounds = np.cumsum([4, n * d, m, r, r])
    return CtCells(centers=packed[bounds[0] : bounds[1]].reshape(n, d),
                   train_cells=packed[bounds[1] : bounds[2]].astype(np.int64),
                   real_cells=packed[bounds[2] : bounds[3]].astype(np.int64),
                   real_dist=packed[bounds[3] : bounds[4]])  # fmt: skip


SPACES = ("pixel", "mnist_cnn")
RAW_VERSUS_ADJUSTED = (
    f"Why {COPY_RATE} and {COPY_RATE_ADJUSTED} can disagree: {COPY_RATE} uses one threshold, "
    "the 1st percentile of every MNIST-test digit's distance to its nearest training image; "
    f"{COPY_RATE_ADJUSTED} uses each digit's own 1st percentile and weights the digits by "
    "their shares among the samples. Thin digits (1s) sit much closer to their neighbours than "
    "round ones (0s, 8s), so a generator rich in 1s gets a high raw rate without copying, and "
    "a sample of a round digit can be nearer than its digit's threshold (a copy by the adjusted "
    "rate) while farther than the overall one (raw 0). Digits with fewer than "
    f"{MIN_DIGIT_SAMPLES} samples are left out of the adjusted rate. The flag uses the "
    "adjusted rate."
)


@register
class Memorization(Analysis):
    name = "memorization"
    title = "Memorization"
    description = (
        "Whether generated digits copy training digits: the exact nearest neighbour of every "
        "sample in the member set, against how close genuinely new digits (MNIST test) come, "
        "overall and per predicted digit."
    )
    needs = ("samples",)
    order = 20
    metric_names = METRICS

    @dataclass(frozen=True)
    class Params:
        copy_percentile: float = field(default=COPY_PERCENTILE, metadata={"help": (
            "A sample is a copy when nearer to its nearest member than this percentile of "
            "MNIST test's distances (overall and per digit), 0.1 to 50; copy_rate flags above "
            f"{COPY_FLAG_FACTOR:g}x this held-out rate.")})  # fmt: skip

        ct_cells: int = field(default=CT_CELLS, metadata={"help": (
            "k-means cells of the data-copying test C_T (2 to 1,000); with few cells the test "
            "confuses mode imbalance with copying.")})  # fmt: skip

        def __post_init__(self) -> None:
            check_number("memorization.copy_percentile", self.copy_percentile, 0.1, 50,
                         integer=False)  # fmt: skip
            check_number("memorization.ct_cells", self.ct_cells, 2, 1000)

    def run(self, ctx) -> AnalysisResult:
        res = self.result()
        members, source = ctx.members
        if members is not None:
            require(len(members), 2, "member images", "Memorization (authenticity compares each "
                    "member with its nearest other member)", MORE_MEMBERS)  # fmt: skip
        ref = ctx.reference
        fake_pred, real_pred = ctx.probs.argmax(1), ref.probs("test").argmax(1)
        n, m = len(fake_pred), len(real_pred)
        radius = np.full(len(ref.train), np.nan)
        # authenticity counts an unrecognizable sample as novel: noise would score 1.0
        unusable = not_meaningful(float(ctx.ood_masks["unrecognizable"].mean()), AUTHENTICITY)
        table = {"sample": np.arange(n), "predicted": fake_pred}
        for space in SPACES:
            add = metric_adder(res, feature_space=space, n_fake=n, n_real=m)
            fake, real = ctx.member_neighbors("fake", space), ctx.member_neighbors("test", space)
            own = ctx.member_neighbors("train", space)
            radius[members if members is not None else slice(None)] = own.kth
            kw = {"fake_pred": fake_pred, "real_pred": real_pred}
            ratios = distance_ratios(fake_dist=fake.kth, real_dist=real.kth, **kw)
            copies = copy_rates(fake_dist=fake.kth, real_dist=real.kth, **kw,
                                percentile=self.params.copy_percentile)  # fmt: skip
            self._distance_metrics(add, ratios, copies, n, self.params.copy_percentile)
            value = np.nan if unusable else authenticity(
                dist=fake.kth, neighbor=fake.indices[:, 0], train_radius=radius)  # fmt: skip
            add(AUTHENTICITY, value, "share of samples farther from their nearest training "
                "image than that image is from its own nearest training neighbour",
                higher_is_better=True)  # fmt: skip
            add(AUTHENTICITY_BASELINE, authenticity(dist=real.kth, neighbor=real.indices[:, 0],
                train_radius=radius), "the same for MNIST test digits (about 0.67 in pixel space)",
                higher_is_better=None)  # fmt: skip
            table[f"neighbor_{space}"] = fake.indices[:, 0]
            table[f"dist_{space}"] = fake.kth
            # per-sample form of copy_rate (its mean): compare's paired intervals use it
            table[f"copy_{space}"] = fake.kth < copies["threshold"]
            res.tables[f"copy_rate_by_digit_{space}"] = copies["per_digit"]
            res.arrays[f"dists_{space}"] = (fake.kth, real.kth, copies["threshold"])
        train_feats = ref.features("train") if members is None else ref.features("train")[members]
        try:
            ct, cells = ct_statistic(train=train_feats, fake=ctx.features,
                                     real=ref.features("test"), n_cells=self.params.ct_cells,
                                     cells=cached_ct_cells(ref, members,
                                                           self.params.ct_cells))  # fmt: skip
        except NotEnoughData as exc:
            ct, cells = np.nan, pd.DataFrame(columns=["cell", "n_fake", "n_real", "weight", "z_u"])
            res.notes.append(f"{CT_STATISTIC} not computed (NaN): {exc}")
        metric_adder(res, feature_space="mnist_cnn", n_fake=n, n_real=m)(
            CT_STATISTIC,
            ct,
            f"data-copying test C_T (Meehan et al. 2020, {self.params.ct_cells} k-means "
            "cells): negative means copying, positive underfitting",
            target=0.0,
        )
        res.tables["ct_cells"] = cells
        res.tables["samples"] = samples = pd.DataFrame(table)
        for closest in (True, False):
            order = (samples.sort_values(["dist_pixel", "sample"]).index if closest else
                     samples.sample(frac=1.0, random_state=0).index)[:PAIRS]  # fmt: skip
            res.arrays[f"pairs_{'closest' if closest else 'random'}"] = _pairs(ctx, samples, order)
        res.notes.append(f"Member set: {source}.")
        if unusable:
            res.notes.append(f"{AUTHENTICITY} not computed (NaN): {unusable}")
        res.notes.append(RAW_VERSUS_ADJUSTED)
        res.arrays["copy_percentile"] = self.params.copy_percentile
        self._flags(res, self.params.copy_percentile)
        res.figures = {"pairs_closest": partial(plot_pairs, closest=True),
                       "pairs_random": partial(plot_pairs, closest=False),
                       "distances": plot_distances,
                       "copy_rate_by_digit": plot_copy_by_digit}  # fmt: skip
        return res

    @staticmethod
    def _distance_metrics(add, ratios: dict, copies: dict, n: int, percentile: float) -> None:
        add(
            NN_DIST_MEDIAN,
            ratios[NN_DIST_MEDIAN],
            "median distance of a sample to its nearest training image",
        )
        add(
            NN_DIST_MEDIAN_BASELINE,
            ratios[NN_DIST_MEDIAN_BASELINE],
            "the same for MNIST test digits",
        )
        add(
            NN_DIST_RATIO,
            ratios[NN_DIST_RATIO],
            f"{NN_DIST_MEDIAN} / {NN_DIST_MEDIAN_BASELINE} "
            "(below 1: closer to training than new digits are)",
            target=1.0,
        )
        add(
            NN_DIST_RATIO_ADJUSTED,
            ratios[NN_DIST_RATIO_ADJUSTED],
            "share-weighted mean over predicted digits of the per-digit ratios",
            target=1.0,
        )
        lo, hi = wilson_interval(round(n * copies[COPY_RATE]), n)
        add(
            COPY_RATE,
            copies[COPY_RATE],
            "share of samples nearer to a training image than the "
            f"{_ordinal(percentile)} percentile of test-to-train distances (MNIST test: "
            f"{percentile / 100:g})",
            higher_is_better=False,
            ci_low=lo,
            ci_high=hi,
        )
        adj = copies[COPY_RATE_ADJUSTED]
        lo, hi = wilson_interval(round(n * adj), n) if adj == adj else (np.nan, np.nan)
        add(
            COPY_RATE_ADJUSTED,
            adj,
            "copy rate with each digit's own threshold, weighted by "
            "the digit shares (corrects for digit mix)",
            higher_is_better=False,
            ci_low=lo,
            ci_high=hi,
        )

    @staticmethod
    def _flags(res: AnalysisResult, percentile: float) -> None:
        held_out = percentile / 100
        limit = COPY_FLAG_FACTOR * held_out
        res.rules = [
            f"Flagged when the Wilson 95% lower bound of {COPY_RATE_ADJUSTED} exceeds {limit:g} "
            f"({COPY_FLAG_FACTOR:g}x the held-out rate) in either space, or {CT_STATISTIC} is "
            f"below {CT_FLAG:g}.",
            f"Per-digit statistics drop digits with fewer than {MIN_DIGIT_SAMPLES} samples.",
        ]
        for space in SPACES:
            m = res.metric(COPY_RATE_ADJUSTED, space)
            if m.ci_low > limit:
                res.flags.append(Flag(
                    f"Samples copy training digits: {cite(m)} in {space} space, against "
                    f"{held_out:g} for new digits.", f"lower bound of {m.name} > {limit:g}",
                    [m.name]))  # fmt: skip
        m = res.metric(CT_STATISTIC, "mnist_cnn")
        if m.value < CT_FLAG:
            res.flags.append(
                Flag(
                    "The data-copying test finds samples closer to the training set than new "
                    f"digits are: "
                    f"{m.name} = {m.value:.2f}.",
                    f"{m.name} < {CT_FLAG:g}",
                    [m.name],
                )
            )


def _pairs(ctx, samples: pd.DataFrame, order) -> dict[str, np.ndarray]:
    """The samples ``order`` (images, (m, 28, 28)), their nearest members in pixel space and
    the distances: what a pairs figure shows."""
    rows = np.asarray(order, dtype=np.int64)
    members = samples.neighbor_pixel.to_numpy()[rows].astype(np.int64)
    return {"images": ctx.images[torch.as_tensor(rows), 0].numpy(),
            "neighbors": ctx.reference.train_images[torch.as_tensor(members), 0].numpy(),
            "dist": samples.dist_pixel.to_numpy()[rows]}  # fmt: skip


def plot_pairs(res: AnalysisResult, ax=None, *, closest: bool) -> Figure:
    """Generated digits (top) over their nearest training digits, pixel distance under each
    (``ax``: a 2 x count grid of axes, or None for a new Figure)."""
    pairs = res.arrays[f"pairs_{'closest' if closest else 'random'}"]
    count = len(pairs["images"])
    if ax is None:
        fig = Figure(figsize=(PAIRS * 0.8, 2.0), layout="constrained")
        ax = fig.subplots(2, PAIRS, squeeze=False)
    axes = np.asarray(ax).reshape(2, -1)
    for j in range(count):
        axes[0, j].imshow(pairs["images"][j], cmap="gray_r", vmin=0, vmax=1)
        axes[1, j].imshow(pairs["neighbors"][j], cmap="gray_r", vmin=0, vmax=1)
        axes[1, j].set_xlabel(f"{pairs['dist'][j]:.2f}", fontsize="small")
    for a in axes.flat:
        a.set_xticks([])
        a.set_yticks([])
    axes[0, 0].set_ylabel("generated", fontsize="small")
    axes[1, 0].set_ylabel("nearest\ntraining", fontsize="small")
    fig = axes[0, 0].figure
    fig.suptitle("closest pairs first" if closest else "random samples", fontsize="small")
    return fig


def plot_distances(res: AnalysisResult, ax=None) -> Figure:
    """Overlaid histograms of generated-to-train and test-to-train distances, per space
    (``ax``: one axes per space, or None for a new Figure)."""
    if ax is None:
        ax = Figure(figsize=(10, 3.2), layout="constrained").subplots(1, 2)
    percentile = _ordinal(res.arrays.get("copy_percentile", COPY_PERCENTILE))
    for a, space in zip(ax, SPACES, strict=True):
        fake, real, threshold = res.arrays[f"dists_{space}"]
        bins = np.linspace(0, max(fake.max(), real.max()), 60)
        a.hist(real, bins=bins, alpha=0.6, density=True, label="MNIST test", color="0.5")
        a.hist(fake, bins=bins, alpha=0.6, density=True, label="generated", color="tab:blue")
        a.axvline(threshold, color="tab:red", lw=1, label=f"{percentile} percentile (test)")
        a.set(xlabel=f"distance to nearest training image ({space})", ylabel="density")
    ax[-1].legend(frameon=False, fontsize="small", loc="upper left", bbox_to_anchor=(1, 1))
    return ax[0].figure


def plot_copy_by_digit(res: AnalysisResult, ax=None) -> Figure:
    """Copy rate per predicted digit against the digit's own held-out rate (pixel space)."""
    t = res.tables["copy_rate_by_digit_pixel"]
    if ax is None:
        ax = Figure(figsize=(6.4, 3.0), layout="constrained").subplots()
    ax.bar(t.digit - 0.2, t.rate, 0.4, label="generated", color="tab:blue")
    ax.bar(t.digit + 0.2, t.rate_baseline, 0.4, label="MNIST test", color="0.6")
    ax.set(xticks=range(10), xlabel="predicted digit", ylabel="copy rate (pixel)")
    ax.legend(frameon=False, fontsize="small", loc="upper left", bbox_to_anchor=(1, 1))
    return ax.figure


def _ordinal(p: float) -> str:
    """1st, 2nd, 3rd, 11th, 0.5th."""
    if p != int(p):
        return f"{p:g}th"
    n = int(p)
    return f"{n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"
