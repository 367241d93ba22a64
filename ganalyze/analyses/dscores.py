"""What the discriminator believes: its scores on member, held-out and generated digits.

D is always called through the wrapper that feeds it its native input (range and shape); its
outputs are taken as probabilities if D ends in a Sigmoid or all its outputs on 1,000 test
digits lie in [0, 1], else as logits. A conditional D(x, y) is fed each real digit's own label
and each sample's conditioning label (the classifier's digit for samples of an unconditional
generator). A discriminator audited alone (no generator) is scored on member and test digits
only: the membership AUC is the point.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from ganalyze.analyses.base import Analysis, AnalysisResult, Flag, metric_adder, register
from ganalyze.stats import MORE_MEMBERS, auc_from_counts, score_counts, score_groups

AUC_FLAG = 0.55
N_MEMBERS = 10_000
N_BOOTSTRAP = 1_000
MIN_MEMBERS = 10  # below, resampling the members cannot give the AUC an honest interval

# Metric names
D_TRAIN_MEAN, D_TEST_MEAN, D_GEN_MEAN = "d_train_mean", "d_test_mean", "d_gen_mean"
D_ACC_REAL_TRAIN, D_ACC_REAL_TEST = "d_acc_real_train", "d_acc_real_test"
D_ACC_FAKE, D_MEMBERSHIP_AUC = "d_acc_fake", "d_membership_auc"
METRICS = (D_TRAIN_MEAN, D_TEST_MEAN, D_GEN_MEAN, D_ACC_REAL_TRAIN, D_ACC_REAL_TEST, D_ACC_FAKE,
           D_MEMBERSHIP_AUC)  # fmt: skip
MEANS = {"train": D_TRAIN_MEAN, "test": D_TEST_MEAN, "gen": D_GEN_MEAN}  # scores -> their mean


def roc_auc(*, positive: np.ndarray, negative: np.ndarray) -> float:
    """ROC AUC of scores separating ``positive`` from ``negative`` (ties count one half):
    the Mann-Whitney U of positive against negative over n_pos * n_neg."""
    return auc_from_counts(*score_counts(positive, negative))


def bootstrap_auc(
    *, positive: np.ndarray, negative: np.ndarray, n_boot: int = N_BOOTSTRAP, seed: int = 0
) -> tuple[float, float]:
    """Percentile 95% interval of :func:`roc_auc`, resampling each class separately (a
    resample of scores is a count of their distinct-score groups: no sort per resample)."""
    g_pos, g_neg, size = score_groups(positive, negative)
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(n_boot):  # the draws of rng.choice(positive, n1), rng.choice(negative, n0)
        pos = np.bincount(g_pos[rng.integers(0, len(g_pos), len(g_pos))], minlength=size)
        neg = np.bincount(g_neg[rng.integers(0, len(g_neg), len(g_neg))], minlength=size)
        values.append(auc_from_counts(pos.astype(np.float64), neg.astype(np.float64)))
    lo, hi = np.percentile(values, [2.5, 97.5])
    return float(lo), float(hi)


@register
class DScores(Analysis):
    name = "dscores"
    title = "Discriminator scores"
    description = (
        "The discriminator's scores on digits it was trained on (the member set), on held-out "
        "MNIST test digits and on generated digits: the study's score plot as full "
        "distributions, and whether D can tell members from new digits (memorization by D)."
    )
    needs = ("discriminator",)
    order = 30
    metric_names = METRICS

    def run(self, ctx) -> AnalysisResult:
        d, ref = ctx.discriminator, ctx.reference
        members, source = ctx.members
        pool = np.arange(len(ref.train)) if members is None else members
        rng = np.random.default_rng(ctx.seed)
        chosen = np.sort(rng.choice(pool, min(N_MEMBERS, len(pool)), replace=False))
        s = {"train": _scores(d, ref.train_images[chosen], ref.train.labels[chosen]),
             "test": _scores(d, ref.test_images, ref.test.labels)}  # fmt: skip
        if len(ctx.images):
            s["gen"] = _scores(d, ctx.images, ctx.conditioning)
        res = self.result()
        add = metric_adder(res, n_real=len(s["test"]), n_fake=len(s.get("gen", ())) or None)
        add(D_TRAIN_MEAN, s["train"].mean(), "mean D score on member digits")
        add(D_TEST_MEAN, s["test"].mean(), "mean D score on held-out MNIST test digits")
        if "gen" in s:
            add(D_GEN_MEAN, s["gen"].mean(), "mean D score on generated digits")
        add(
            D_ACC_REAL_TRAIN,
            (s["train"] > 0.5).mean(),
            "share of member digits D calls real",
            higher_is_better=True,
        )
        add(
            D_ACC_REAL_TEST,
            (s["test"] > 0.5).mean(),
            "share of test digits D calls real",
            higher_is_better=True,
        )
        if "gen" in s:
            add(D_ACC_FAKE, (s["gen"] < 0.5).mean(), "share of generated digits D calls fake")
        else:
            res.notes.append(f"No generated digits (a discriminator audited alone): {D_GEN_MEAN} "
                             f"and {D_ACC_FAKE} are left out.")  # fmt: skip
        auc = lo = hi = np.nan
        if len(chosen) >= MIN_MEMBERS:
            auc = roc_auc(positive=s["train"], negative=s["test"])
            lo, hi = bootstrap_auc(positive=s["train"], negative=s["test"], seed=ctx.seed)
        else:
            res.notes.append(f"{D_MEMBERSHIP_AUC} not computed (NaN): it needs at least "
                             f"{MIN_MEMBERS} member digits; got {len(chosen)}. "
                             f"{MORE_MEMBERS}")  # fmt: skip
        add(D_MEMBERSHIP_AUC, auc, "ROC AUC of D's score separating member digits from test "
            "digits (0.5: D cannot tell them apart; higher: D memorized its training set)",
            target=0.5, ci_low=lo, ci_high=hi)  # fmt: skip
        res.rules = [
            f"Flagged when the 95% bootstrap interval of {D_MEMBERSHIP_AUC} "
            f"({N_BOOTSTRAP} resamples per class, percentile) lies above {AUC_FLAG}."
        ]
        if lo > AUC_FLAG:
            res.flags.append(Flag(
                f"D tells its training digits from new ones: {D_MEMBERSHIP_AUC} = {auc:.3f} (95% "
                f"CI {lo:.3f}-{hi:.3f}); mean score {s['train'].mean():.3f} on members against "
                f"{s['test'].mean():.3f} on test digits.", f"CI above {AUC_FLAG}",
                [D_MEMBERSHIP_AUC]))  # fmt: skip
        res.notes.append(f"Member digits: {len(chosen)} drawn (seed {ctx.seed}) from {source}. "
                         f"D output taken as {d.output}; input {d.input_range}, shape "
                         f"{d.input_shape}.")  # fmt: skip
        if d.conditional:
            gen_labels = ("their conditioning labels" if ctx.conditioning is not None
                          else "the digit the classifier reads in each")  # fmt: skip
            res.notes.append(f"D is conditional, D(x, y), fed labels as {d.label_input} "
                             f"({d.label_rule}): real digits their own labels, generated digits "
                             f"{gen_labels}.")  # fmt: skip
        res.arrays["scores"] = s
        res.figures = {"histograms": plot_histograms}
        return res


def _scores(d, images, labels=None) -> np.ndarray:
    return d.scores(images, labels).numpy().astype(np.float64)


def plot_histograms(res: AnalysisResult, ax=None) -> Figure:
    """Overlaid histograms of D's scores on member, test and generated digits."""
    if ax is None:
        ax = Figure(figsize=(6.4, 3.2), layout="constrained").subplots()
    bins = np.linspace(0, 1, 51)
    s = res.arrays["scores"]
    for key, label, color in (("train", "member digits", "tab:green"),
                              ("test", "test digits (held out)", "tab:purple"),
                              ("gen", "generated", "tab:red")):  # fmt: skip
        if key not in s:
            continue
        ax.hist(s[key], bins=bins, density=True, histtype="step", lw=1.6, color=color,
                label=f"{label} (mean {res.metric(MEANS[key]).value:.3f})")  # fmt: skip
    ax.axvline(0.5, color="0.6", lw=0.8)
    ax.set(xlabel="D score (probability of real)", ylabel="density")
    ax.legend(frameon=False, fontsize="small")
    return ax.figure
