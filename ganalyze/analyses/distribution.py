"""Distribution metrics in the mnist_cnn feature space, against MNIST test and MNIST train.

The maths (with each convention's source) is in :mod:`ganalyze.metrics`; this module feeds it
the samples' features, the reference radii from the cache, and adds bootstrap intervals.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from matplotlib.figure import Figure

from ganalyze.analyses.base import Analysis, AnalysisResult, check_number, metric_adder, register
from ganalyze.metrics import (
    PRDC,
    classifier_score,
    frechet_distance,
    frechet_from_moments,
    kernel_inception_distance,
    kid_real_within,
    kid_subsets,
    knn_radii,
    mifid,
    prdc,
    vendi_from_gram,
    vendi_score,
    weighted_moments,
)
from ganalyze.stats import MORE_SAMPLES, require

K = 5
KID_SUBSETS, KID_SUBSET = 100, 1000
SPACE = "mnist_cnn"
RESIDUE_WARNING = 1e-6
PCA_POINTS = 2000  # points of each set in the feature_pca figure

# Metric names. Against MNIST test; FD, KID, KID_STD and PRDC_NAMES also against MNIST train,
# with TRAIN after the name (kid_train_std: TRAIN before STD).
FD, KID, STD, TRAIN = "fd", "kid", "_std", "_train"
PRDC_NAMES = PRECISION, RECALL, DENSITY, COVERAGE = ("precision", "recall", "density", "coverage")
CLASSIFIER_SCORE, CLASSIFIER_SCORE_STD = "classifier_score", "classifier_score_std"
VENDI, VENDI_BASELINE = "vendi", "vendi_baseline"
MIFID, MIFID_DISTANCE, MIFID_EPSILON = "mifid", "mifid_distance", "mifid_epsilon"
METRICS = (
    *(n for sfx in ("", TRAIN) for n in (f"{FD}{sfx}", f"{KID}{sfx}", f"{KID}{sfx}{STD}",
                                         *(f"{p}{sfx}" for p in PRDC_NAMES))),
    CLASSIFIER_SCORE, CLASSIFIER_SCORE_STD, VENDI, VENDI_BASELINE, MIFID, MIFID_DISTANCE,
    MIFID_EPSILON,
)  # fmt: skip
CS_SPLITS = 10
MIN_SAMPLES = max(K + 1, CS_SPLITS)  # each sample's Kth other sample; one sample per split
MAX_BOOTSTRAP = 10_000


def bootstrap(
    *, real: np.ndarray, fake: np.ndarray, indicators: PRDC, n_boot: int, seed: int = 0
) -> dict[str, tuple[float, float]]:
    """Percentile 95% intervals from ``n_boot`` resamples (seeded).

    precision and density resample the generated samples, recall and coverage the real ones,
    with the k-NN radii held fixed (resampled duplicates would have radius 0); fd resamples
    both sets of points, vendi the generated ones. Duplicates in a resample add to fd's
    finite-sample bias, so near 0 fd's interval can lie above the estimate.
    """
    rng = np.random.default_rng(seed)
    per_fake = {"precision": indicators.fake_in_real, "density": indicators.fake_density}
    per_real = {"recall": indicators.real_in_fake, "coverage": indicators.real_covered}
    draws: dict[str, list[float]] = {name: [] for name in (*PRDC_NAMES, FD, VENDI)}
    r64, f64 = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    unit = f64 / np.maximum(np.linalg.norm(f64, axis=1, keepdims=True), 1e-12)
    for _ in range(n_boot):
        # a resample is its multiplicities: statistics come from weighted sums, not copies
        f = np.bincount(rng.integers(0, len(fake), len(fake)), minlength=len(fake))
        r = np.bincount(rng.integers(0, len(real), len(real)), minlength=len(real))
        for name, values in per_fake.items():
            draws[name].append(float(f @ values / len(fake)))
        for name, values in per_real.items():
            draws[name].append(float(r @ values / len(real)))
        value, _ = frechet_from_moments(*weighted_moments(r64, r), *weighted_moments(f64, f))
        draws[FD].append(value)
        draws[VENDI].append(vendi_from_gram((unit * f[:, None]).T @ unit / len(fake)))
    return {k: tuple(np.percentile(v, [2.5, 97.5]).tolist()) for k, v in draws.items()}


@register
class Distribution(Analysis):
    name = "distribution"
    title = "Distribution metrics"
    description = (
        "How the generated digits' distribution compares with real digits in the mnist_cnn "
        "feature space (the bundled classifier's L2-normalised embedding, where these metrics "
        "mean something for 28x28 digits, unlike ImageNet features): Frechet distance, KID, "
        "precision/recall/density/coverage, the classifier score, diversity (Vendi) and a "
        "memorization-informed FD. Against MNIST test; the _train rows against MNIST train."
    )
    order = 40
    metric_names = METRICS

    @dataclass(frozen=True)
    class Params:
        bootstrap: int = field(default=0, metadata={"help": (
            "Resamples for percentile 95% intervals of fd, vendi and precision/recall/density/"
            f"coverage, seeded by the audit's seed (0: none; at most {MAX_BOOTSTRAP:,}; each "
            "costs about 0.1 s at 10,000 samples). Alias: --bootstrap.")})  # fmt: skip

        def __post_init__(self) -> None:
            check_number("distribution.bootstrap", self.bootstrap, 0, MAX_BOOTSTRAP,
                         f"Use 0 (no intervals) to {MAX_BOOTSTRAP:,}: 1,000-2,000 resamples "
                         "settle a 95% interval.")  # fmt: skip

    def run(self, ctx) -> AnalysisResult:
        ref, fake = ctx.reference, np.ascontiguousarray(ctx.space(SPACE), np.float32)
        require(len(fake), MIN_SAMPLES, "samples", f"The distribution analysis (precision, recall, "
                f"density and coverage: each sample's {K}th nearest other sample; the classifier "
                f"score: {CS_SPLITS} splits)", MORE_SAMPLES)  # fmt: skip
        res, n_boot = self.result(), self.params.bootstrap
        add = metric_adder(res, n_fake=len(fake), feature_space=SPACE)
        fake_radii = knn_radii(fake, K)
        sets = {"": ("test", ref.test_to_test(SPACE).kth),
                TRAIN: ("train", ref.train_to_train(SPACE).kth)}  # fmt: skip
        found: dict[str, dict] = {}
        vendi_ci: dict[str, float] = {}
        fake_within: dict[int, np.ndarray] = {}  # KID's fake subsets serve test and train
        for suffix, (split, real_radii) in sets.items():
            real, against = ref.features(split), f"MNIST {split}"
            fd = frechet_distance(real=real, fake=fake, real_moments=ref.moments(split, SPACE))
            m = min(KID_SUBSET, len(real), len(fake))
            fake_rows, rows = kid_subsets(len(real), len(fake), m, KID_SUBSETS, ctx.seed)
            if m not in fake_within:
                fake_within[m] = kid_real_within(np.asarray(fake, np.float64), fake_rows)
            kid, kid_std = kernel_inception_distance(
                real=real, fake=fake, n_subsets=KID_SUBSETS, subset_size=KID_SUBSET,
                seed=ctx.seed, real_within=ref.kid_real_within(split, SPACE, rows, ctx.seed),
                fake_within=fake_within[m],
            )  # fmt: skip
            ind = prdc(real=real, fake=fake, k=K, real_radii=real_radii, fake_radii=fake_radii)
            found[suffix] = {"fd": fd, "prdc": ind}
            if fd.residue > RESIDUE_WARNING:
                res.notes.append(f"Warning: {FD}{suffix} has a numerical residue of "
                                 f"{fd.residue:.1e} (eigenvalues of S_r S_f off the "
                                 "non-negative reals); its trace term keeps their real "
                                 "parts.")  # fmt: skip
            ci = (bootstrap(real=real, fake=fake, indicators=ind, n_boot=n_boot,
                            seed=ctx.seed) if n_boot else {})  # fmt: skip
            lo_hi = {k: {"ci_low": v[0], "ci_high": v[1]} for k, v in ci.items()}
            n = {"n_real": len(real)}
            add(f"{FD}{suffix}", fd.value, f"Frechet distance to {against} features",
                higher_is_better=False, **n, **lo_hi.get(FD, {}))  # fmt: skip
            add(f"{KID}{suffix}", kid, f"kernel inception distance (unbiased MMD^2, cubic kernel) "
                f"to {against}", higher_is_better=False, **n)  # fmt: skip
            add(f"{KID}{suffix}{STD}", kid_std, "standard deviation of kid over 100 subsets", **n)
            text = {PRECISION: "share of generated samples inside the real manifold",
                    RECALL: "share of real digits inside the generated manifold",
                    DENSITY: "real k-NN balls per generated sample, over k (1: as dense as "
                             "real digits)",
                    COVERAGE: "share of real digits whose k-NN ball holds a generated "
                              "sample"}  # fmt: skip
            for name, value in ind.values().items():
                extra = {"target": 1.0} if name == DENSITY else {"higher_is_better": True}
                add(f"{name}{suffix}", value, f"{text[name]} ({against}, k = {K})", **n,
                    **extra, **lo_hi.get(name, {}))  # fmt: skip
            if not suffix:  # vendi's interval depends on the generated samples only
                vendi_ci = lo_hi.get(VENDI, {})
        cs, cs_std = classifier_score(probs=ctx.probs, splits=CS_SPLITS)
        add(CLASSIFIER_SCORE, cs, "Inception-Score analogue with the bundled classifier "
            "(10 splits; at most 10)", higher_is_better=True, feature_space="")  # fmt: skip
        add(CLASSIFIER_SCORE_STD, cs_std, "its standard deviation over the splits",
            feature_space="")  # fmt: skip
        test = ref.features("test")
        pick = np.random.default_rng(ctx.seed).permutation(len(test))[: min(len(fake), len(test))]
        base_vendi = vendi_score(features=test[pick])
        add(VENDI, vendi_score(features=fake), "Vendi score: the effective number of distinct "
            "samples (cosine kernel)", target=base_vendi, **vendi_ci)  # fmt: skip
        add(VENDI_BASELINE, base_vendi, f"Vendi score of {len(pick)} MNIST test digits",
            n_real=len(pick))  # fmt: skip
        cos = {
            "fake": ctx.neighbors_in_train(SPACE, k=1).kth.astype(np.float64) ** 2 / 2,
            "test": ref.test_to_train(SPACE).distances[:, 0].astype(np.float64) ** 2 / 2,
        }
        mi = mifid(fd_train=found[TRAIN]["fd"].value, fake_distance=cos["fake"],
                   test_distance=cos["test"])  # fmt: skip
        add(MIFID, mi["mifid"], "memorization-informed FD: fd_train * max(1, mifid_epsilon / "
            "mifid_distance)", higher_is_better=False)  # fmt: skip
        add(MIFID_DISTANCE, mi["mifid_distance"], "mean cosine distance of a generated "
            "sample to its nearest MNIST-train image")  # fmt: skip
        add(MIFID_EPSILON, mi["mifid_epsilon"], "the same mean for MNIST test digits (the "
            "threshold below which mifid grows)")  # fmt: skip
        fd = found[""]["fd"]
        res.notes.append(f"Features: mnist_cnn ({fd.dim} dims, L2-normalised); {len(fake)} "
                         f"generated samples, {fd.n_real} MNIST test and "
                         f"{found['_train']['fd'].n_real} MNIST train digits. k-NN radii of "
                         f"MNIST from the reference cache. Bootstrap: "
                         f"{n_boot or 'off'} resamples (--bootstrap).")  # fmt: skip
        res.arrays["pca"] = feature_pca(test=test, fake=fake)
        res.figures = {"prdc": plot_prdc, "feature_pca": plot_feature_pca}
        return res


def feature_pca(*, test: np.ndarray, fake: np.ndarray, n: int = PCA_POINTS) -> dict:
    """Up to ``n`` seeded MNIST-test and generated features each, projected on the test set's
    first two principal axes: {"test": (m, 2), "fake": (m', 2)}."""
    test, fake = test.astype(np.float64), fake.astype(np.float64)
    mu = test.mean(0)
    # the axes from the d x d scatter matrix (as the SVD's, a fraction of its cost), each
    # signed so that its largest coordinate is positive
    centred = test - mu
    _, vecs = np.linalg.eigh(centred.T @ centred)
    vt = vecs[:, ::-1].T
    vt *= np.sign(vt[np.arange(len(vt)), np.abs(vt).argmax(1)])[:, None]
    rng = np.random.default_rng(0)
    out = {}
    for key, data in (("test", test), ("fake", fake)):
        rows = rng.permutation(len(data))[:n]
        out[key] = (data[rows] - mu) @ vt[:2].T
    return out


def plot_prdc(res: AnalysisResult, ax=None) -> Figure:
    """Precision, recall, density and coverage against MNIST test and train, with intervals."""
    if ax is None:
        ax = Figure(figsize=(6.4, 3.0), layout="constrained").subplots()
    x = np.arange(len(PRDC_NAMES))
    bars = (
        (-0.2, "", "vs MNIST test", "tab:blue"),
        (0.2, TRAIN, "vs MNIST train", "tab:orange"),
    )
    for shift, suffix, label, color in bars:
        ms = [res.metric(f"{n}{suffix}", SPACE) for n in PRDC_NAMES]
        vals = np.array([m.value for m in ms])
        err = np.array([[m.value - m.ci_low, m.ci_high - m.value] for m in ms]).T
        ax.bar(x + shift, vals, 0.4, label=label, color=color,
               yerr=None if np.isnan(err).all() else err, capsize=3)  # fmt: skip
    ax.axhline(1.0, color="0.6", lw=0.8)
    ax.set_xticks(x, PRDC_NAMES)
    ax.set(ylabel="value (k = 5)")
    ax.legend(frameon=False, fontsize="small")
    return ax.figure


def plot_feature_pca(res: AnalysisResult, ax=None) -> Figure:
    """Generated and MNIST-test features on the test set's first two principal axes."""
    if ax is None:
        ax = Figure(figsize=(4.8, 4.2), layout="constrained").subplots()
    pca = res.arrays["pca"]
    for key, label, color in (("test", "MNIST test", "0.55"), ("fake", "generated", "tab:red")):
        xy = pca[key]
        ax.scatter(xy[:, 0], xy[:, 1], s=3, alpha=0.4, color=color, label=label, linewidths=0,
                   rasterized=True)  # fmt: skip
    ax.set(xlabel="PC 1 (MNIST test)", ylabel="PC 2", xticks=[], yticks=[])
    ax.legend(frameon=False, fontsize="small", markerscale=4)
    return ax.figure
