"""Latent interpolation: does the image move evenly along a straight walk in z, or jump?

P random pairs of latents from the prior, T frames per path by linear interpolation and by
slerp (on the latents as drawn, never normalised), measured in pixel and mnist_cnn space,
labelled by the classifier (unrecognizable frames count as a label of their own), and scored
by D when there is one. A naive baseline, pixel blends of MNIST test digit pairs, says what a
morph without any generator looks like.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from ganalyze import ood
from ganalyze.analyses import _interpolation_plots as plots
from ganalyze.analyses.base import (
    Analysis,
    AnalysisResult,
    Flag,
    check_number,
    metric_adder,
    register,
)
from ganalyze.errors import InputError
from ganalyze.reference import classify

N_PATHS, N_STEPS = 64, 64
MIN_PATHS = 8  # the strips figure shows eight paths
MAX_FRAMES = 65_536  # paths x frames images per interpolation, held at once
PPL_TRIPLES, PPL_EPS = 10_000, 1e-4
BASELINE_FACTOR = 2.0
DEFAULT_DIGITS = (9, 7, 1)
SPACES = ("pixel", "mnist_cnn")

# Metric names. Each of PATH_METRICS also along slerp paths (SLERP after the name); each of
# LABEL_STATS also for pixel blends of MNIST test digits (BASELINE after the name).
PPL, JUMP_RATIO, PATH_EFFICIENCY = "ppl", "jump_ratio", "path_efficiency"  # one row per space
LABEL_STATS = LABEL_CHANGES, EXCESS_LABEL_CHANGES, OFF_MANIFOLD_RATE = (
    "label_changes", "excess_label_changes", "off_manifold_rate")  # fmt: skip
COUNTS = (LABEL_CHANGES, EXCESS_LABEL_CHANGES)  # NaN when most samples are unrecognizable
N_STATIC_PATHS = "n_static_paths"
D_PATH_MEAN, D_PATH_DIP = "d_path_mean", "d_path_dip"  # with a discriminator
SLERP, BASELINE = "_slerp", "_baseline"
PATH_METRICS = (PPL, JUMP_RATIO, PATH_EFFICIENCY, *LABEL_STATS, N_STATIC_PATHS, D_PATH_MEAN,
                D_PATH_DIP)  # fmt: skip
METRICS = (*(f"{name}{sfx}" for sfx in ("", SLERP) for name in PATH_METRICS),
           *(f"{name}{BASELINE}" for name in LABEL_STATS))  # fmt: skip


def lerp(z0: torch.Tensor, z1: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """(1 - t) z0 + t z1, row by row (``t`` of shape (n, 1))."""
    return (1 - t) * z0 + t * z1


def slerp(z0: torch.Tensor, z1: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """sin((1 - t) theta) / sin(theta) z0 + sin(t theta) / sin(theta) z1, theta the angle
    between z0 and z1 as drawn (no normalisation); linear where theta is tiny."""
    norms = z0.norm(dim=-1, keepdim=True) * z1.norm(dim=-1, keepdim=True)
    cos = (z0 * z1).sum(-1, keepdim=True) / norms.clamp_min(1e-12)
    theta = torch.arccos(cos.clamp(-1, 1))
    sin = torch.sin(theta)
    out = (torch.sin((1 - t) * theta) * z0 + torch.sin(t * theta) * z1) / sin.clamp_min(1e-12)
    return torch.where(sin > 1e-6, out, lerp(z0, z1, t))


def path_smoothness(*, frames: np.ndarray) -> dict:
    """jump_ratio (largest step over mean step, averaged over paths), path_efficiency
    (straight-line over travelled distance, averaged) and n_static_paths (travel 0, left out
    of both) of paths ``frames`` (P, T, D); ``steps`` (P, T - 1) Euclidean step lengths."""
    f = np.asarray(frames, np.float64)
    steps = np.linalg.norm(np.diff(f, axis=1), axis=2)
    travel = steps.sum(1)
    moving = travel > 0
    jump = steps.max(1)[moving] / steps.mean(1)[moving]
    straight = np.linalg.norm(f[:, -1] - f[:, 0], axis=1)[moving]
    return {JUMP_RATIO: float(jump.mean()) if moving.any() else np.nan,
            PATH_EFFICIENCY: float((straight / travel[moving]).mean()) if moving.any()
            else np.nan, N_STATIC_PATHS: int((~moving).sum()), "steps": steps}  # fmt: skip


def label_path_stats(*, labels: np.ndarray, unrecognizable: int = 10) -> dict[str, float]:
    """label_changes (mean label changes along a path), excess_label_changes (beyond one when
    the endpoints differ, else zero) and off_manifold_rate (share of intermediate frames that
    are unrecognizable) of ``labels`` (P, T)."""
    lab = np.asarray(labels)
    changes = (lab[:, 1:] != lab[:, :-1]).sum(1)
    minimum = (lab[:, 0] != lab[:, -1]).astype(int)
    return {LABEL_CHANGES: float(changes.mean()),
            EXCESS_LABEL_CHANGES: float((changes - minimum).mean()),
            OFF_MANIFOLD_RATE: float((lab[:, 1:-1] == unrecognizable).mean())}  # fmt: skip


def ppl(
    *,
    fn: Callable[[torch.Tensor], np.ndarray],
    z0: torch.Tensor,
    z1: torch.Tensor,
    t: torch.Tensor,
    eps: float = PPL_EPS,
    interpolate: Callable = lerp,
) -> float:
    """Perceptual-path-length style: E[d(fn(z_t), fn(z_t+eps))] / eps^2, d the squared
    Euclidean distance, keeping values within the 1st-99th percentile (as the StyleGAN
    reference does). ``fn`` maps latents to (n, D) points."""
    return ppl_from_points(a=fn(interpolate(z0, z1, t)), b=fn(interpolate(z0, z1, t + eps)),
                           eps=eps)  # fmt: skip


def ppl_from_points(*, a: np.ndarray, b: np.ndarray, eps: float = PPL_EPS) -> float:
    """:func:`ppl` from the points at t and t + eps."""
    d = ((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2).sum(1) / eps**2
    lo, hi = np.percentile(d, [1, 99])
    return float(d[(d >= lo) & (d <= hi)].mean())


@register
class Interpolation(Analysis):
    name = "interpolation"
    title = "Latent interpolation"
    description = (
        "Straight walks between random latent pairs (linear and slerp): whether the image "
        "moves evenly or jumps, takes detours, passes through non-digits or extra digits, and "
        "what D thinks along the way; against pixel blends of real digit pairs."
    )
    needs = ("samples", "generator")
    order = 50
    metric_names = METRICS

    @dataclass(frozen=True)
    class Params:
        digits: tuple[int, ...] = field(default=DEFAULT_DIGITS, metadata={"help": (
            "Digits whose most confident samples anchor the multi-anchor strip, in order "
            "(two or more of 0-9). Alias: --interp-digits.")})  # fmt: skip
        pairs: int = field(default=N_PATHS, metadata={"help": (
            "Random latent pairs walked (and MNIST test pairs blended for the baseline), "
            f"at least {MIN_PATHS}.")})  # fmt: skip
        frames: int = field(default=N_STEPS, metadata={"help": (
            "Frames per walk, both ends included (at least 3); pairs x frames at most "
            f"{MAX_FRAMES:,}.")})  # fmt: skip

        def __post_init__(self) -> None:
            digits = self.digits
            if (not isinstance(digits, tuple) or len(digits) < 2
                    or any(isinstance(d, bool) or not isinstance(d, int | np.integer)
                           or not 0 <= d <= 9 for d in digits)):  # fmt: skip
                raise InputError(f"interpolation.digits expects two or more digits 0-9 "
                                 f"separated by commas (e.g. 9,7,1); got {digits!r}.")  # fmt: skip
            object.__setattr__(self, "digits", tuple(int(d) for d in digits))
            check_number("interpolation.pairs", self.pairs, MIN_PATHS, MAX_FRAMES // 3)
            check_number("interpolation.frames", self.frames, 3, MAX_FRAMES // MIN_PATHS)
            if self.pairs * self.frames > MAX_FRAMES:
                raise InputError(f"interpolation.pairs x interpolation.frames must be at most "
                                 f"{MAX_FRAMES:,}; got {self.pairs} x {self.frames} = "
                                 f"{self.pairs * self.frames:,}. Use fewer pairs or "
                                 "frames.")  # fmt: skip

    def run(self, ctx) -> AnalysisResult:
        res, gen = self.result(), torch.Generator().manual_seed(ctx.seed + 10)
        paths, steps = self.params.pairs, self.params.frames
        z0, z1 = ctx.generator.prior_sample(paths, gen), ctx.generator.prior_sample(paths, gen)
        t = torch.linspace(0, 1, steps)
        add = metric_adder(res, n_fake=paths)
        d = ctx.discriminator
        walks = {sfx: ctx.generator.generate(interp(z0[:, None], z1[:, None], t[None, :, None])
                                             .reshape(-1, z0.shape[1]))
                 for sfx, interp in (("", lerp), (SLERP, slerp))}  # fmt: skip
        # both walks labelled in one pass: their shared endpoints are classified once
        both_labels, both_feats = ctx.labels_and_features(torch.cat(list(walks.values())))
        rate = float(np.mean(ctx.sample_labels == ood.UNRECOGNIZABLE))
        counted = [f"{name}{sfx}" for sfx in ("", SLERP) for name in COUNTS]
        # unrecognizable all along would count as no change
        note = ood.not_meaningful(rate, f"{', '.join(counted[:-1])} and {counted[-1]}")
        if note is not None:
            res.notes.append(note)
        for part, (sfx, interp) in enumerate((("", lerp), (SLERP, slerp))):
            images = walks[sfx]
            rows = slice(part * len(images), (part + 1) * len(images))
            labels, feats = both_labels[rows].reshape(paths, steps), both_feats[rows]
            frames = {"pixel": images.reshape(paths, steps, -1).numpy(),
                      "mnist_cnn": feats.reshape(paths, steps, -1)}  # fmt: skip
            shown = images[:, 0].numpy().reshape(paths, steps, 28, 28), labels
            res.arrays[f"strips{sfx}"] = _frames(*shown, range(plots.STRIP_PATHS))
            lengths = self._ppl(ctx, interp)
            for space in SPACES:
                s = path_smoothness(frames=frames[space])
                if space == "pixel" and not sfx:
                    res.arrays.update(_step_views(s["steps"], *shown))
                add(f"{PPL}{sfx}", lengths[space], "perceptual path length: "
                    "E[|G(z_t) - G(z_t+eps)|^2] / eps^2, eps = 1e-4, 10,000 triples, 1st-99th "
                    "percentile", higher_is_better=False, feature_space=space)  # fmt: skip
                add(f"{JUMP_RATIO}{sfx}", s[JUMP_RATIO], "largest step over mean step along a "
                    "path, averaged over paths (1: even motion)", target=1.0,
                    feature_space=space)  # fmt: skip
                add(
                    f"{PATH_EFFICIENCY}{sfx}",
                    s[PATH_EFFICIENCY],
                    "straight-line over travelled distance (1: no detour)",
                    target=1.0,
                    feature_space=space,
                )
                if space == "pixel":
                    static = s[N_STATIC_PATHS]
            stats = label_path_stats(labels=labels)
            for name, value in stats.items():
                if note is not None and name in COUNTS:
                    value = float("nan")
                add(f"{name}{sfx}", value, _LABEL_TEXT[name], higher_is_better=False)
            add(f"{N_STATIC_PATHS}{sfx}", static, "paths whose image never changes (left out of "
                "jump_ratio and path_efficiency)", higher_is_better=False)  # fmt: skip
            if d is not None:
                scores = d.scores(images).numpy().astype(np.float64).reshape(paths, steps)
                curve = scores.mean(0)
                res.arrays[f"d_curve{sfx}"] = curve
                add(f"{D_PATH_MEAN}{sfx}", scores.mean(), "mean D score along the paths")
                add(f"{D_PATH_DIP}{sfx}", (curve[0] + curve[-1]) / 2 - curve.min(), "mean D at "
                    "the endpoints minus the minimum of the mean-D curve along t (0: no dip)",
                    higher_is_better=False)  # fmt: skip
        self._baseline(ctx, res, t, paths)
        res.arrays["anchors"] = _anchor_strip(ctx, res, self.params.digits)
        res.figures = {"strips": plots.plot_strips, "steps": plots.plot_steps,
                       "extremes": plots.plot_extremes}  # fmt: skip
        if res.arrays["anchors"]:
            res.figures["anchors"] = plots.plot_anchors
        if "d_curve" in res.arrays:
            res.figures["d_path"] = plots.plot_d_curve
        return res

    @staticmethod
    def _ppl(ctx, interp: Callable) -> dict[str, float]:
        """:func:`ppl` in both spaces from one set of 10,000 seeded triples."""
        gen = torch.Generator().manual_seed(ctx.seed + 11)
        z0 = ctx.generator.prior_sample(PPL_TRIPLES, gen)
        z1 = ctx.generator.prior_sample(PPL_TRIPLES, gen)
        t = torch.rand(PPL_TRIPLES, 1, generator=gen)
        ends = [ctx.generator.generate(interp(z0, z1, s)) for s in (t, t + PPL_EPS)]
        pixel = [x.reshape(PPL_TRIPLES, -1).numpy() for x in ends]
        feats = [classify(x)[1] for x in ends]
        return {"pixel": ppl_from_points(a=pixel[0], b=pixel[1]),
                "mnist_cnn": ppl_from_points(a=feats[0], b=feats[1])}  # fmt: skip

    @staticmethod
    def _baseline(ctx, res: AnalysisResult, t: torch.Tensor, paths: int) -> None:
        test = ctx.reference.test_images

        def labels() -> np.ndarray:
            pairs = np.random.default_rng(ctx.seed).choice(len(test), (paths, 2))
            x0, x1 = test[pairs[:, 0]][:, None], test[pairs[:, 1]][:, None]
            w = t[None, :, None, None, None]
            return ctx.labels_of(((1 - w) * x0 + w * x1).reshape(-1, 1, 28, 28))

        # real digits only: the same for every generator audited with this seed and these
        # paths, so kept in the reference cache
        name = f"interpolation_blend_labels_s{ctx.seed}_p{paths}_f{len(t)}"
        stats = label_path_stats(labels=ctx.reference.cached(name, labels).reshape(paths, len(t)))
        add = metric_adder(res, n_real=paths)
        for name, value in stats.items():
            add(f"{name}{BASELINE}", value, f"{_LABEL_TEXT[name]}, for pixel blends of "
                f"{paths} seeded MNIST test digit pairs")  # fmt: skip
        res.rules.append(f"Flagged when excess_label_changes or off_manifold_rate (linear or "
                         f"slerp) exceeds {BASELINE_FACTOR:g}x its _baseline value.")  # fmt: skip
        for name in (EXCESS_LABEL_CHANGES, OFF_MANIFOLD_RATE):
            base = stats[name]
            for sfx in ("", SLERP):
                value = res.metric(f"{name}{sfx}").value
                if value > BASELINE_FACTOR * base:
                    message = (f"Latent walks are rougher than blending real digits: {name}{sfx} "
                               f"= {value:.3f} against {base:.3f} for pixel blends.")  # fmt: skip
                    cited = [f"{name}{sfx}", f"{name}{BASELINE}"]
                    res.flags.append(Flag(message, f"> {BASELINE_FACTOR:g}x baseline", cited))


_LABEL_TEXT = {
    LABEL_CHANGES: "mean number of classifier label changes along a path",
    EXCESS_LABEL_CHANGES: "label changes beyond the minimum (one when the endpoints differ)",
    OFF_MANIFOLD_RATE: "share of intermediate frames that are unrecognizable",
}


def _frames(images: np.ndarray, labels: np.ndarray, paths) -> dict[str, np.ndarray]:
    """FRAMES_SHOWN evenly spaced frames of ``paths``: images (m, cols, 28, 28) and labels."""
    rows = np.asarray(paths, dtype=np.int64)
    pick = np.linspace(0, labels.shape[1] - 1, plots.FRAMES_SHOWN).round().astype(int)
    return {"images": images[rows][:, pick], "labels": labels[rows][:, pick]}


def _step_views(steps: np.ndarray, images: np.ndarray, labels: np.ndarray) -> dict:
    """What the steps and extremes figures show of the linear paths' pixel steps (P, T - 1):
    the first STRIP_PATHS paths' steps and their jumps (above JUMP x the path's mean step),
    and the frames of the EXTREMES smoothest and jumpiest paths by jump ratio."""
    first = steps[: plots.STRIP_PATHS]
    jumps = first > plots.JUMP * np.maximum(first.mean(1, keepdims=True), 1e-12)
    moving = np.flatnonzero(steps.sum(1) > 0)
    ratio = steps[moving].max(1) / steps[moving].mean(1)
    order = moving[np.argsort(ratio, kind="stable")]
    return {"steps": first, "jumps": jumps,
            "smoothest": _frames(images, labels, order[: plots.EXTREMES]),
            "jumpiest": _frames(images, labels, order[::-1][: plots.EXTREMES])}  # fmt: skip


def _anchor_strip(ctx, res: AnalysisResult, digits: tuple[int, ...], frames: int = 10) -> dict:
    """A path through the most confident sample of each of ``digits`` in turn."""
    labels, conf = ctx.sample_labels, ctx.probs.max(1)
    anchors, missing = [], []
    for digit in digits:
        pool = np.flatnonzero(labels == digit)
        if len(pool):
            anchors.append(int(pool[np.argmax(conf[pool])]))
        else:
            missing.append(digit)
    if missing or len(anchors) < 2:
        absent = ", ".join(map(str, missing)) or "second digit"
        wanted = ", ".join(map(str, digits))
        res.notes.append(f"No anchor strip for digits {wanted}: the samples hold no "
                         f"recognizable {absent}.")  # fmt: skip
        return {}
    z, t = ctx.samples.z, torch.linspace(0, 1, frames)[:-1, None]
    path = [lerp(z[a], z[b], t) for a, b in zip(anchors, anchors[1:], strict=False)]
    latents = torch.cat([*path, z[anchors[-1]][None]])
    images = ctx.generator.generate(latents)
    shown = images[:, 0].numpy()
    res.notes.append(f"Anchor strip: digits {', '.join(map(str, digits))} (samples "
                     f"{', '.join(map(str, anchors))}, the most confident of each; "
                     "--interp-digits).")  # fmt: skip
    return {"digits": digits, "images": shown, "labels": ctx.labels_of(images)}
