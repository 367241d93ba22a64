"""How G carves its unimodal prior into digit modes: UMAP views of images and latents.

The image side places generated samples, and one latent interpolation path, on the fixed MNIST
map: the UMAP layout of MNIST test in each space (mnist_cnn, then pixel), fitted once and kept
in the reference cache (:meth:`ganalyze.reference.ReferenceData.test_map`), so that every
report, and every step of a trajectory, draws its samples over the same map. Samples are
placed on it (:func:`ganalyze.embedding.place`): started as umap-learn's ``transform`` starts
new points, then optimised over their edges to the map and to each other, the map fixed.
The latent side shows z by PCA and by UMAP (a layout of their own,
:func:`ganalyze.embedding.umap_layout`), coloured by the digit G(z) becomes, and a slice
G(a u + b v) through the prior. The layouts are umap-learn's algorithm without numba's
compile (:mod:`ganalyze.embedding`).
"""

from __future__ import annotations

from functools import partial

import numpy as np
import torch
from matplotlib.figure import Figure

from ganalyze import ood
from ganalyze.analyses.base import Analysis, AnalysisResult, metric_adder, register
from ganalyze.embedding import (
    N_EPOCHS,
    N_NEIGHBORS,
    place_later,
    side_by_side,
    umap_layout,
    umap_layout_later,
)
from ganalyze.reference import classify
from ganalyze.stats import wilson_interval

N_STABILITY = 2000
STABILITY_RADIUS = 0.5  # times the prior's per-coordinate standard deviation
SLICE_STEPS, SLICE_SPAN = 15, 2.5
PATH_FRAMES = 32
LABEL_COLORS = [*[f"C{i}" for i in range(10)], "0.15"]  # digits 0-9, then "unrecognizable"

SPACES = ("mnist_cnn", "pixel")
LATENT_LABEL_STABILITY = "latent_label_stability"  # the metric's name
METRICS = (LATENT_LABEL_STABILITY,)


def label_stability(*, labels: np.ndarray, perturbed: np.ndarray) -> float:
    """Share of latents whose perturbed image keeps the label of the original (labels 0-9, and
    10 for unrecognizable, which counts as a label of its own)."""
    return float(np.mean(np.asarray(labels) == np.asarray(perturbed)))


def perturb(z: torch.Tensor, radius: float, gen: torch.Generator) -> torch.Tensor:
    """z + radius * u, with u a random unit vector per latent."""
    u = torch.randn(z.shape, generator=gen)
    return z + radius * u / u.norm(dim=1, keepdim=True)


def latent_label_stability(ctx, labels: np.ndarray) -> tuple[float, int]:
    """:func:`label_stability` of the first min(n, 2,000) samples' latents, each perturbed once
    (radius 0.5 prior std, seeded), and how many latents it used."""
    z = ctx.samples.z
    m = min(len(z), N_STABILITY)
    gen = torch.Generator().manual_seed(ctx.seed + 2)
    moved = perturb(z[:m], STABILITY_RADIUS * ctx.prior_std, gen)
    after = ctx.labels_of(ctx.generator.generate(moved))
    return label_stability(labels=labels[:m], perturbed=after), m


def embed(points: np.ndarray, seed: int) -> np.ndarray:
    """2-D UMAP of ``points`` from their 15-NN graph (FAISS flat, float32)."""
    return umap_layout(points, seed=seed)


@register
class LatentMap(Analysis):
    name = "latent_map"
    title = "Latent map"
    description = (
        "Where generated digits sit among real ones (UMAP of both, in the mnist_cnn and pixel "
        "spaces), and how the latent prior is carved into digit regions: z by PCA and UMAP "
        "coloured by the digit G(z) becomes, a slice through the prior, and how often a small "
        "step in z keeps the digit."
    )
    order = 60
    metric_names = METRICS

    def run(self, ctx) -> AnalysisResult:
        ref, res = ctx.reference, self.result()
        fake_labels, test_labels = ctx.sample_labels, ctx.test_labels
        res.arrays.update(fake_labels=fake_labels, test_labels=test_labels)
        path = _path(ctx, fake_labels) if ctx.generator.has_generator else None
        n = len(fake_labels)
        # the three layouts' neighbour searches one after the other (each on every core),
        # then their optimisations side by side (each on one core)
        layouts = {}
        for space in SPACES:
            new = [ctx.space(space)] + ([path[space]] if path is not None else [])
            layouts[space] = place_later(np.concatenate(new), reference=ref.space("test", space),
                                         reference_embedding=ref.test_map(space),
                                         seed=ctx.seed)  # fmt: skip
        z = ctx.samples.z if ctx.generator.has_generator else None
        if z is not None and len(z) > N_NEIGHBORS:
            layouts["z"] = umap_layout_later(z.numpy(), seed=ctx.seed)
        layouts = side_by_side(layouts)
        for space in SPACES:
            placed, fixed = layouts[space], ref.test_map(space)
            res.arrays[f"umap_{space}"] = np.concatenate([placed[:n], fixed, placed[n:]])
        res.arrays["n_fake"] = n
        res.figures = {f"umap_{s}": partial(plot_image_map, space=s) for s in SPACES}
        res.notes.append(f"UMAP: the fixed MNIST map (the layout of the {len(test_labels)} MNIST "
                         f"test digits, {N_NEIGHBORS}-NN graph, {N_EPOCHS} epochs, min_dist 0.1, "
                         f"fitted once and shared by every report); the {n} generated samples "
                         f"are placed on it: each starts at the weighted mean of its "
                         f"{N_NEIGHBORS} nearest test digits' positions (umap-learn's transform), "
                         f"then {N_EPOCHS} epochs over their edges to test digits and to each "
                         f"other move only them (seed {ctx.seed}).")  # fmt: skip
        if not ctx.generator.has_generator:
            res.notes.append("The latent views need a generator: a file of samples has none.")
            return res
        zc = z.numpy().astype(np.float64) - z.numpy().mean(0)
        xy = zc @ np.linalg.svd(zc, full_matrices=False)[2][:2].T
        res.arrays["z_pca"] = np.pad(xy, ((0, 0), (0, 2 - xy.shape[1])))  # n = 1: one axis
        if "z" in layouts:
            res.arrays["z_umap"] = layouts["z"]
        else:
            res.notes.append(f"No UMAP of z: it needs more latents than its {N_NEIGHBORS} "
                             f"neighbours; got {len(z)}.")  # fmt: skip
        gen = torch.Generator().manual_seed(ctx.seed + 1)
        basis, _ = torch.linalg.qr(torch.randn(z.shape[1], 2, generator=gen))
        steps = torch.linspace(-SLICE_SPAN, SLICE_SPAN, SLICE_STEPS) * ctx.prior_std
        grid = torch.stack(torch.meshgrid(steps, steps, indexing="ij"), -1).reshape(-1, 2)
        slice_images = ctx.generator.generate(grid @ basis.T)
        res.arrays["slice"] = slice_images[:, 0].numpy()
        res.arrays["slice_labels"] = ctx.labels_of(slice_images)
        res.figures.update(latent=plot_latent, latent_slice=plot_slice)
        rate = float(np.mean(fake_labels == ood.UNRECOGNIZABLE))
        note = ood.not_meaningful(rate, LATENT_LABEL_STABILITY)
        if note is None:
            value, m = latent_label_stability(ctx, fake_labels)
            lo, hi = wilson_interval(round(value * m), m)
        else:  # unrecognizable is a stable label: noise would look perfectly stable
            res.notes.append(note)
            value = lo = hi = float("nan")
            m = min(len(fake_labels), N_STABILITY)
        add = metric_adder(res, n_fake=m)
        add(LATENT_LABEL_STABILITY, value, f"share of latents z whose perturbation z + r u (u a "
            f"random unit vector, r = {STABILITY_RADIUS} prior std) keeps the digit of G(z)",
            higher_is_better=True, ci_low=lo, ci_high=hi)  # fmt: skip
        return res


def _path(ctx, labels: np.ndarray) -> dict[str, np.ndarray]:
    """A straight latent path between the first two samples of different recognizable digits,
    in both spaces, to be embedded with the rest."""
    ok = np.flatnonzero(labels < 10)
    first = ok[0] if len(ok) else 0
    other = [i for i in ok if labels[i] != labels[first]]
    second = other[0] if other else (1 if len(labels) > 1 else 0)
    z = ctx.samples.z
    t = torch.linspace(0, 1, PATH_FRAMES)[:, None]
    images = ctx.generator.generate((1 - t) * z[first] + t * z[second])
    return {"pixel": images.reshape(len(images), -1).numpy(), "mnist_cnn": classify(images)[1]}


def _scatter(ax, xy: np.ndarray, labels: np.ndarray, size: float = 2.0, alpha=0.6) -> None:
    colors = np.array(LABEL_COLORS, dtype=object)[labels]
    # rasterized: 20,000 vector markers make a PDF that takes a second to write and to open
    ax.scatter(xy[:, 0], xy[:, 1], s=size, c=list(colors), alpha=alpha, linewidths=0,
               rasterized=True)  # fmt: skip
    ax.set(xticks=[], yticks=[])


def plot_image_map(res: AnalysisResult, ax=None, *, space: str) -> Figure:
    """MNIST test (left) and generated digits over the test cloud (right), one UMAP (``ax``:
    two axes, or None for a new Figure)."""
    if ax is None:
        ax = Figure(figsize=(9.6, 4.4), layout="constrained").subplots(1, 2, sharex=True,
                                                                        sharey=True)  # fmt: skip
    left, right = ax
    fig = left.figure
    emb, n = res.arrays[f"umap_{space}"], res.arrays["n_fake"]
    test_labels = res.arrays["test_labels"]
    fake, test, path = emb[:n], emb[n : n + len(test_labels)], emb[n + len(test_labels) :]
    _scatter(left, test, test_labels)
    left.set_title(f"MNIST test ({space})", fontsize="medium")
    right.scatter(test[:, 0], test[:, 1], s=2, color="0.85", linewidths=0, rasterized=True)
    _scatter(right, fake, res.arrays["fake_labels"])
    if len(path):
        right.plot(path[:, 0], path[:, 1], "-o", color="k", ms=2.5, lw=1.0, label="latent path")
        right.legend(frameon=False, fontsize="small", loc="lower right")
    right.set_title("generated (over MNIST test in grey)", fontsize="medium")
    handles = [left.scatter([], [], s=12, color=c) for c in LABEL_COLORS]
    fig.legend(handles, [*map(str, range(10)), "unrecognizable"], loc="outside right center",
               frameon=False, fontsize="small", title="digit")  # fmt: skip
    return fig


def plot_latent(res: AnalysisResult, ax=None) -> Figure:
    """z by PCA and by UMAP (when there is one), coloured by the digit G(z) becomes (``ax``:
    one axes per panel, or None for a new Figure)."""
    panels = [(k, t) for k, t in (("z_pca", "PCA of z"), ("z_umap", "UMAP of z"))
              if k in res.arrays]  # fmt: skip
    if ax is None:
        fig = Figure(figsize=(4.8 * len(panels), 4.4), layout="constrained")
        ax = fig.subplots(1, len(panels), squeeze=False)[0]
    for a, (key, title) in zip(ax, panels, strict=True):
        _scatter(a, res.arrays[key], res.arrays["fake_labels"], size=3)
        a.set_title(f"{title}, coloured by the digit of G(z)", fontsize="medium")
    return ax[0].figure


def plot_slice(res: AnalysisResult, ax=None) -> Figure:
    """G(a u + b v) over a plane through the prior's centre, each image framed by its digit."""
    images, labels = res.arrays["slice"], res.arrays["slice_labels"]
    k = SLICE_STEPS
    tiles = np.pad(images.reshape(k, k, 28, 28), ((0, 0), (0, 0), (1, 1), (1, 1)))
    if ax is None:
        ax = Figure(figsize=(6.0, 6.0), layout="constrained").subplots()
    ax.imshow(tiles.transpose(0, 2, 1, 3).reshape(k * 30, k * 30), cmap="gray_r", vmin=0, vmax=1)
    for idx, lab in enumerate(labels):
        r, c = divmod(idx, k)
        ax.text(c * 30 + 2, r * 30 + 8, "?" if lab == 10 else str(lab), fontsize=6,
                color=LABEL_COLORS[lab])  # fmt: skip
    ax.set(xticks=[], yticks=[], title=f"G(a u + b v), a, b in [-{SLICE_SPAN}, {SLICE_SPAN}] std")
    return ax.figure
