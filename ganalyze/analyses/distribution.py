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
PRDC_NAMES = ("precision", "recall", "density", "coverage")
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
    draws: dict[str, list[float]] = {name: [] for name in (*PRDC_NAMES, "fd", "vendi")}
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
        draws["fd"].append(value)
        draws["vendi"].append(vendi_from_gram((unit * f[:, None]).T @ unit / len(fake)))
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
                "_train": ("train", ref.train_to_train(SPACE).kth)}  # fmt: skip
        found: dict[str, dict] = {}
        vendi_ci: dict[str, float] = {}
        for suffix, (split, real_radii) in sets.items():
            real, against = ref.features(split), f"MNIST {split}"
            fd = frechet_distance(real=real, fake=fake)
            m = min(KID_SUBSET, len(real), len(fake))
            rows = kid_subsets(len(real), len(fake), m, KID_SUBSETS, ctx.seed)[1]
            kid, kid_std = kernel_inception_distance(
                real=real, fake=fake, n_subsets=KID_SUBSETS, subset_size=KID_SUBSET,
                seed=ctx.seed, real_within=ref.kid_real_within(split, SPACE, rows, ctx.seed),
            )  # fmt: skip
            ind = prdc(real=real, fake=fake, k=K, real_radii=real_radii, fake_radii=fake_radii)
            found[suffix] = {"fd": fd, "prdc": ind}
            if fd.residue > RESIDUE_WARNING:
                res.notes.append(f"Warning: fd{suffix} has a numerical residue of {fd.residue:.1e} "
                                 "(eigenvalues of S_r S_f off the non-negative reals); its "
                                 "trace term keeps their real parts.")  # fmt: skip
            ci = (bootstrap(real=real, fake=fake, indicators=ind, n_boot=n_boot,
                            seed=ctx.seed) if n_boot else {})  # fmt: skip
            lo_hi = {k: {"ci_low": v[0], "ci_high": v[1]} for k, v in ci.items()}
            n = {"n_real": len(real)}
            add(f"fd{suffix}", fd.value, f"Frechet distance to {against} features",
                higher_is_better=False, **n, **lo_hi.get("fd", {}))  # fmt: skip
            add(f"kid{suffix}", kid, f"kernel inception distance (unbiased MMD^2, cubic kernel) "
                f"to {against}", higher_is_better=False, **n)  # fmt: skip
            add(f"kid{suffix}_std", kid_std, "standard deviation of kid over 100 subsets", **n)
            text = {"precision": "share of generated samples inside the real manifold",
                    "recall": "share of real digits inside the generated manifold",
                    "density": "real k-NN balls per generated sample, over k (1: as dense as "
                               "real digits)",
                    "coverage": "share of real digits whose k-NN ball holds a generated "
                                "sample"}  # fmt: skip
            for name, value in ind.values().items():
                extra = {"target": 1.0} if name == "density" else {"higher_is_better": True}
                add(f"{name}{suffix}", value, f"{text[name]} ({against}, k = {K})", **n,
                    **extra, **lo_hi.get(name, {}))  # fmt: skip
            if not suffix:  # vendi's interval depends on the generated samples only
                vendi_ci = lo_hi.get("vendi", {})
        cs, cs_std = classifier_score(probs=ctx.probs, splits=CS_SPLITS)
        add("classifier_score", cs, "Inception-Score analogue with the bundled classifier "
            "(10 splits; at most 10)", higher_is_better=True, feature_space="")  # fmt: skip
        add("classifier_score_std", cs_std, "its standard deviation over the splits",
            feature_space="")  # fmt: skip
        test = ref.features("test")
        pick = np.random.default_rng(ctx.seed).permutation(len(test))[: min(len(fake), len(test))]
        base_vendi = vendi_score(features=test[pick])
        add("vendi", vendi_score(features=fake), "Vendi score: the effective number of distinct "
            "samples (cosine kernel)", target=base_vendi, **vendi_ci)  # fmt: skip
        add("vendi_baseline", base_vendi, f"Vendi score of {len(pick)} MNIST test digits",
            n_real=len(pick))  # fmt: skip
        cos = {
            "fake": ctx.neighbors_in_train(SPACE, k=1).kth.astype(np.float64) ** 2 / 2,
            "test": ref.test_to_train(SPACE).distances[:, 0].astype(np.float64) ** 2 / 2,
        }
        mi = mifid(fd_train=found["_train"]["fd"].value, fake_distance=cos["fake"],
                   test_distance=cos["test"])  # fmt: skip
        add("mifid", mi["mifid"], "memorization-informed FD: fd_train * max(1, mifid_epsilon / "
            "mifid_distance)", higher_is_better=False)  # fmt: skip
        add("mifid_distance", mi["mifid_distance"], "mean cosine distance of a generated "
            "sample to its nearest MNIST-train image")  # fmt: skip
        add("mifid_epsilon", mi["mifid_epsilon"], "the same mean for MNIST test digits (the "
            "threshold below which mifid grows)")  # fmt: skip
        fd = found[""]["fd"]
        res.notes.append(f"Features: mnist_cnn ({fd.dim} dims, L2-normalised); {len(fake)} "
                         f"generated samples, {fd.n_real} MNIST test and "
                         f"{found['_train']['fd'].n_real} MNIST train digits. k-NN radii of "
                         f"MNIST from the reference cache. Bootstrap: "
                         f"{n_boot or 'off'} resamples (--bootstrap).")  # fmt: skip
        res.arrays["fake"], res.arrays["test"] = fake, test
        return res

    def plot(self, res: AnalysisResult) -> dict[str, Figure]:
        return {"prdc": plot_prdc(res), "feature_pca": plot_feature_pca(res)}


def plot_prdc(res: AnalysisResult, ax=None) -> Figure | None:
    """Precision, recall, density and coverage against MNIST test and train, with intervals."""
    fig = None
    if ax is None:
        fig = Figure(figsize=(6.4, 3.0), layout="constrained")
        ax = fig.subplots()
    x = np.arange(len(PRDC_NAMES))
    bars = (
        (-0.2, "", "vs MNIST test", "tab:blue"),
        (0.2, "_train", "vs MNIST train", "tab:orange"),
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
    return fig


def plot_feature_pca(res: AnalysisResult, ax=None, n: int = 2000) -> Figure | None:
    """Generated and MNIST-test features on the test set's first two principal axes."""
    fig = None
    if ax is None:
        fig = Figure(figsize=(4.8, 4.2), layout="constrained")
        ax = fig.subplots()
    test, fake = res.arrays["test"].astype(np.float64), res.arrays["fake"].astype(np.float64)
    mu = test.mean(0)
    _, _, vt = np.linalg.svd(test - mu, full_matrices=False)
    rng = np.random.default_rng(0)
    for data, label, color in ((test, "MNIST test", "0.55"), (fake, "generated", "tab:red")):
        rows = rng.permutation(len(data))[:n]
        xy = (data[rows] - mu) @ vt[:2].T
        ax.scatter(xy[:, 0], xy[:, 1], s=3, alpha=0.4, color=color, label=label, linewidths=0)
    ax.set(xlabel="PC 1 (MNIST test)", ylabel="PC 2", xticks=[], yticks=[])
    ax.legend(frameon=False, fontsize="small", markerscale=4)
    return fig
