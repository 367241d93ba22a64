"""Conditional generators G(z, y): does the label set the digit, and is each class diverse?

Run when the generator is conditional (``--num-classes 10``). Three questions:

- class fidelity: the share of samples the bundled classifier reads as their conditioning
  class, over all n (unrecognizable samples count as wrong), overall and per class;
- diversity within each class (mode collapse inside one class is the typical cGAN failure):
  recall, coverage and Vendi of each class's samples against that class's MNIST test digits, in
  the mnist_cnn space, each beside the same statistic for as many real digits of the class
  (MNIST train) as its baseline;
- style paths: walks in z with y fixed should never change the digit.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure

from ganalyze.analyses.base import (
    Analysis,
    AnalysisResult,
    Flag,
    Metric,
    check_number,
    metric_adder,
    register,
)
from ganalyze.metrics import prdc, vendi_score
from ganalyze.stats import NotEnoughData, wilson_interval

CLASSES = 10
K = 5  # k-NN balls of recall and coverage (Naeem et al. 2020, as the distribution analysis)
MIN_PER_CLASS = 10  # samples of a class below which its diversity is not computed (NaN)
CONSISTENCY_FLAG = 0.9
RECALL_FACTOR = 0.5  # a class whose recall is below this share of the mean is flagged
GRID_COLUMNS = 8

# Metric names
CLASS_CONSISTENCY = "class_consistency"
PER_CLASS = tuple(f"{CLASS_CONSISTENCY}_{c}" for c in range(CLASSES))
DIVERSITY = ("class_recall", "class_coverage", "class_vendi")
_PER_CLASS_DIVERSITY = tuple(f"{m}_{c}{sfx}" for m in DIVERSITY for c in range(CLASSES)
                             for sfx in ("", "_baseline"))  # fmt: skip
_SUMMARIES = tuple(f"{m}_{s}{sfx}" for m in DIVERSITY for s in ("worst", "mean")
                   for sfx in ("", "_baseline"))  # fmt: skip
LABEL_CHANGES_FIXED_Y = "label_changes_fixed_y"
METRICS = (CLASS_CONSISTENCY, *PER_CLASS, *_PER_CLASS_DIVERSITY, *_SUMMARIES,
           LABEL_CHANGES_FIXED_Y, f"{LABEL_CHANGES_FIXED_Y}_baseline")  # fmt: skip


def class_diversity(
    *, fake: np.ndarray, real: np.ndarray, baseline: np.ndarray, k: int = K
) -> dict[str, float]:
    """Recall, coverage (:func:`ganalyze.metrics.prdc`, k-NN balls, strict ``<``) and Vendi
    of one class's generated features ``fake`` against its real digits ``real``, and of
    ``baseline`` (as many other real digits of the class) against the same ``real``."""
    out = {}
    for sfx, points in (("", fake), ("_baseline", baseline)):
        values = prdc(real=real, fake=points, k=k).values()
        out[f"class_recall{sfx}"] = values["recall"]
        out[f"class_coverage{sfx}"] = values["coverage"]
        out[f"class_vendi{sfx}"] = vendi_score(features=points)
    return out


def label_changes(labels: np.ndarray) -> float:
    """Mean number of label changes along paths ``labels`` (P, T) (10: unrecognizable)."""
    lab = np.asarray(labels)
    return float((lab[:, 1:] != lab[:, :-1]).sum(1).mean())


@register
class Conditional(Analysis):
    name = "conditional"
    title = "Conditional generator"
    description = (
        "For a generator G(z, y) conditioned on a digit label: whether each sample shows the "
        "digit it was asked for (class consistency and the confusion of asked against read "
        "digits), whether each class is diverse or collapsed (recall, coverage and Vendi "
        "within the class, against that class's real digits), and whether walks in z with y "
        "fixed keep the digit."
    )
    needs = ("samples", "generator", "labels")
    order = 15
    metric_names = METRICS

    @dataclass(frozen=True)
    class Params:
        pairs: int = field(default=32, metadata={"help": "Style paths walked in z with y fixed "
                                                 "(and real same-digit pairs blended), 4 to "
                                                 "1,000."})  # fmt: skip
        frames: int = field(default=16, metadata={"help": "Frames per style path, ends "
                                                  "included, 3 to 256."})  # fmt: skip

        def __post_init__(self) -> None:
            check_number("conditional.pairs", self.pairs, 4, 1000)
            check_number("conditional.frames", self.frames, 3, 256)

    def run(self, ctx) -> AnalysisResult:
        gen = ctx.generator
        if gen.num_classes != CLASSES:
            raise NotEnoughData(f"the conditional analysis reads labels as MNIST's 10 digits; "
                                f"the generator has {gen.num_classes} classes")  # fmt: skip
        y = ctx.conditioning.numpy()
        read = ctx.sample_labels
        res = self.result()
        add = metric_adder(res, n_fake=len(y))
        hits = read == y
        lo, hi = wilson_interval(hits.sum(), len(y))
        add(CLASS_CONSISTENCY, hits.mean(), "share of samples the classifier reads as their "
            "conditioning digit (unrecognizable: wrong)", higher_is_better=True, ci_low=lo,
            ci_high=hi)  # fmt: skip
        for c in range(CLASSES):
            mask = y == c
            lo, hi = wilson_interval(hits[mask].sum(), int(mask.sum()))
            add(PER_CLASS[c], hits[mask].mean() if mask.any() else np.nan, f"class consistency "
                f"of the samples conditioned on {c}", higher_is_better=True, ci_low=lo,
                ci_high=hi, n_fake=int(mask.sum()))  # fmt: skip
        per_class = self._diversity(ctx, y, res)
        self._paths(ctx, res)
        self._flags(res, per_class)
        confusion = np.zeros((CLASSES, CLASSES + 1), np.int64)
        np.add.at(confusion, (y, read), 1)
        res.arrays.update(confusion=confusion, grid=_grid(ctx))
        res.tables["conditional_samples"] = pd.DataFrame(
            {"label": y, "predicted": read, "consistent": hits}
        )
        res.tables["conditional_classes"] = per_class
        res.notes.append(f"{gen.num_classes} classes; labels fed as {gen.label_input} "
                         f"({gen.label_source or 'given'}), drawn {gen.labels} (seed "
                         f"{ctx.seed}).")  # fmt: skip
        res.figures = {"confusion": plot_confusion, "class_grid": plot_grid}
        return res

    def _diversity(self, ctx, y: np.ndarray, res: AnalysisResult) -> pd.DataFrame:
        ref, rng = ctx.reference, np.random.default_rng(ctx.seed)
        test_y, train_y = ref.test.labels.numpy(), ref.train.labels.numpy()
        test, train = ref.space("test", "mnist_cnn"), ref.space("train", "mnist_cnn")
        rows, too_few = [], []
        for c in range(CLASSES):
            fake = ctx.features[y == c]
            pool = np.flatnonzero(train_y == c)
            if len(fake) < MIN_PER_CLASS:
                too_few.append(c)
                values = dict.fromkeys((f"{m}{s}" for m in DIVERSITY for s in ("", "_baseline")),
                                       np.nan)  # fmt: skip
            else:
                base = train[rng.choice(pool, min(len(fake), len(pool)), replace=False)]
                values = class_diversity(fake=fake, real=test[test_y == c], baseline=base)
            rows.append({"class": c, "n_fake": len(fake), "n_real": int((test_y == c).sum()),
                         **values})  # fmt: skip
        table = pd.DataFrame(rows)
        for m in DIVERSITY:
            what = {"class_recall": "recall", "class_coverage": "coverage",
                    "class_vendi": "Vendi score"}[m]  # fmt: skip
            for c, row in table.iterrows():
                for sfx, of in (("", "its samples"), ("_baseline", "as many MNIST train digits")):
                    res.metrics.append(_metric(f"{m}_{c}{sfx}", row[f"{m}{sfx}"], f"{what} of "
                                               f"{of} of class {c} against its MNIST test "
                                               "digits", row))  # fmt: skip
            for sfx in ("", "_baseline"):
                values = table[f"{m}{sfx}"]
                for s, v in (("worst", values.min()), ("mean", values.mean())):
                    res.metrics.append(_metric(f"{m}_{s}{sfx}", v, f"{what} within a class, "
                                               f"{s} of the 10 classes{' (baseline)' * bool(sfx)}",
                                               None))  # fmt: skip
        if too_few:
            res.notes.append(f"Classes {too_few} have fewer than {MIN_PER_CLASS} samples: their "
                             "within-class diversity is NaN.")  # fmt: skip
        return table

    def _paths(self, ctx, res: AnalysisResult) -> None:
        gen, p = ctx.generator, self.params
        g = torch.Generator().manual_seed(ctx.seed + 1)
        z0, z1 = (gen.split(gen.prior_sample(p.pairs, g))[0] for _ in range(2))
        y = torch.arange(p.pairs) % CLASSES
        t = torch.linspace(0, 1, p.frames)[None, :, None]
        z = ((1 - t) * z0[:, None] + t * z1[:, None]).reshape(p.pairs * p.frames, -1)
        labels = ctx.labels_of(gen.generate(gen.code(z, y.repeat_interleave(p.frames))))
        test, test_y = ctx.reference.test_images, ctx.reference.test.labels.numpy()
        rng = np.random.default_rng(ctx.seed)
        pairs = np.stack([rng.choice(np.flatnonzero(test_y == c), 2, replace=False)
                          for c in y.numpy()])  # fmt: skip
        w = t[..., None, None]
        blends = (1 - w) * test[pairs[:, 0]][:, None] + w * test[pairs[:, 1]][:, None]
        base = ctx.labels_of(blends.reshape(-1, 1, 28, 28))
        add = metric_adder(res, n_fake=p.pairs)
        add(LABEL_CHANGES_FIXED_Y, label_changes(labels.reshape(p.pairs, p.frames)),
            f"mean digit changes along {p.pairs} linear walks in z with y fixed ({p.frames} "
            "frames; unrecognizable counts as a label)", higher_is_better=False)  # fmt: skip
        add(f"{LABEL_CHANGES_FIXED_Y}_baseline", label_changes(base.reshape(p.pairs, p.frames)),
            "the same for pixel blends of two MNIST test digits of one class",
            n_fake=None, n_real=p.pairs)  # fmt: skip

    @staticmethod
    def _flags(res: AnalysisResult, table: pd.DataFrame) -> None:
        res.rules = [f"Flagged when {CLASS_CONSISTENCY} is below {CONSISTENCY_FLAG}, and for "
                     f"each class whose class_recall is below {RECALL_FACTOR} x class_recall_mean "
                     "(collapse within that class)."]  # fmt: skip
        m = res.metric(CLASS_CONSISTENCY)
        if m.value < CONSISTENCY_FLAG:
            res.flags.append(Flag(
                f"The label does not set the digit: {CLASS_CONSISTENCY} = {m.value:.3f} (95% CI "
                f"{m.ci_low:.3f}-{m.ci_high:.3f}); a generator that ignores y scores about 0.1.",
                f"< {CONSISTENCY_FLAG}", [CLASS_CONSISTENCY]))  # fmt: skip
        mean = res.metric("class_recall_mean", "mnist_cnn").value
        for c, recall in zip(table["class"], table["class_recall"], strict=True):
            if recall < RECALL_FACTOR * mean:
                base = res.metric(f"class_recall_{c}_baseline", "mnist_cnn").value
                res.flags.append(Flag(
                    f"Class {c} is collapsed: class_recall_{c} = {recall:.3f}, below half the "
                    f"mean over classes ({mean:.3f}); as many real digits of {c} reach "
                    f"{base:.3f}.", f"< {RECALL_FACTOR} x mean",
                    [f"class_recall_{c}", "class_recall_mean"]))  # fmt: skip


def _metric(name: str, value: float, description: str, row) -> Metric:
    counts = {} if row is None else {"n_fake": int(row["n_fake"]), "n_real": int(row["n_real"])}
    better = None if "baseline" in name or "vendi" in name else True  # Vendi: the baseline
    return Metric(name=name, value=float(value), description=description, higher_is_better=better,
                  feature_space="mnist_cnn", **counts)  # fmt: skip


def _grid(ctx) -> np.ndarray:
    """(10, columns, 28, 28): row y is G(z_j, y) for the same first latents z_j."""
    gen = ctx.generator
    z = gen.split(ctx.latents[:GRID_COLUMNS])[0]
    y = torch.arange(CLASSES).repeat_interleave(len(z))
    images = gen.generate(gen.code(z.repeat(CLASSES, 1), y))
    return images[:, 0].numpy().reshape(CLASSES, len(z), 28, 28)


def plot_confusion(res: AnalysisResult, ax=None) -> Figure:
    """Conditioning digit (rows) against the digit read (columns, ? unrecognizable), as shares
    of each row."""
    if ax is None:
        ax = Figure(figsize=(5.6, 4.8), layout="constrained").subplots()
    counts = res.arrays["confusion"]
    shares = counts / np.maximum(counts.sum(1, keepdims=True), 1)
    image = ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    for (i, j), v in np.ndenumerate(shares):
        if v >= 0.005:
            ax.text(j, i, f"{v:.2f}"[1:] if v < 1 else "1", ha="center", va="center",
                    fontsize=6, color="white" if v > 0.5 else "black")  # fmt: skip
    ax.set_xticks(range(CLASSES + 1), [*map(str, range(CLASSES)), "?"])
    ax.set_yticks(range(CLASSES))
    ax.set(xlabel="digit read by the classifier", ylabel="conditioning label y",
           title="confusion: asked against read (share of each row)")  # fmt: skip
    ax.figure.colorbar(image, ax=ax, shrink=0.8)
    return ax.figure


def plot_grid(res: AnalysisResult, ax=None) -> Figure:
    """One row per label y, the same latents z across rows: z should carry style, y the digit."""
    grid = res.arrays["grid"]
    if ax is None:
        ax = Figure(figsize=(0.5 * grid.shape[1] + 0.6, 5.4), layout="constrained").subplots()
    r, c = grid.shape[:2]
    tiles = np.pad(grid, ((0, 0), (0, 0), (1, 1), (1, 1)), constant_values=1.0)
    ax.imshow(tiles.transpose(0, 2, 1, 3).reshape(r * 30, c * 30), cmap="gray_r", vmin=0, vmax=1)
    ax.set_yticks(np.arange(r) * 30 + 15, [f"y={i}" for i in range(r)])
    ax.set_xticks([])
    ax.set_title("G(z, y): one row per y, the same z in each column", fontsize="medium")
    return ax.figure
