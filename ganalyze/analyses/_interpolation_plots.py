"""Figures of the interpolation analysis (drawing only: every number comes from the result)."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from ganalyze.analyses.base import AnalysisResult

JUMP = 3.0  # a step larger than this many times its path's mean step is marked


def figures(res: AnalysisResult) -> dict[str, Figure]:
    figs = {"strips": plot_strips(res), "steps": plot_steps(res), "extremes": plot_extremes(res)}
    if res.arrays.get("anchors"):
        figs["anchors"] = plot_anchors(res)
    if "d_curve" in res.arrays:
        figs["d_path"] = plot_d_curve(res)
    return figs


def _rows(ax, images: np.ndarray, labels: np.ndarray | None = None) -> None:
    """Rows of 28x28 images (rows, cols, 28, 28) as one picture, labels over each frame."""
    r, c = images.shape[:2]
    tiles = np.pad(images, ((0, 0), (0, 0), (1, 1), (1, 1)), constant_values=1.0)
    ax.imshow(tiles.transpose(0, 2, 1, 3).reshape(r * 30, c * 30), cmap="gray_r", vmin=0, vmax=1)
    if labels is not None:
        for (i, j), lab in np.ndenumerate(labels):
            ax.text(j * 30 + 2, i * 30 + 8, "?" if lab == 10 else str(lab), fontsize=6,
                    color="tab:red")  # fmt: skip
    ax.set(xticks=[], yticks=[])


def _frames(res: AnalysisResult, paths, cols: int = 16, sfx: str = "") -> tuple:
    images = res.arrays[f"images{sfx}"].numpy()[:, 0]
    steps = res.arrays[f"labels{sfx}"].shape[1]
    pick = np.linspace(0, steps - 1, cols).round().astype(int)
    imgs = images.reshape(-1, steps, 28, 28)[np.asarray(paths)][:, pick]
    return imgs, res.arrays[f"labels{sfx}"][np.asarray(paths)][:, pick]


def plot_strips(res: AnalysisResult, n: int = 8) -> Figure:
    """The first n paths, linear (top block) and slerp (bottom block), 16 frames each."""
    fig = Figure(figsize=(8.0, 8.4), layout="constrained")
    for ax, sfx, title in zip(fig.subplots(2, 1), ("", "_slerp"), ("linear", "slerp"),
                              strict=True):  # fmt: skip
        _rows(ax, *_frames(res, range(n), sfx=sfx))
        ax.set_title(f"{title} interpolation (digit or ? per frame)", fontsize="medium")
    return fig


def plot_steps(res: AnalysisResult, n: int = 8) -> Figure:
    """Pixel step length along t for n paths, steps above 3x the path's mean marked."""
    fig = Figure(figsize=(6.4, 3.4), layout="constrained")
    ax = fig.subplots()
    steps = res.arrays["steps_pixel"]
    t = np.linspace(0, 1, steps.shape[1] + 1)[1:]
    for i in range(min(n, len(steps))):
        line = ax.plot(t, steps[i], lw=1.0)[0]
        jumps = steps[i] > JUMP * max(steps[i].mean(), 1e-12)
        ax.plot(t[jumps], steps[i][jumps], "o", color=line.get_color(), ms=5, mfc="none")
    ax.set(xlabel="t", ylabel="pixel step |G(z_t) - G(z_t-dt)|",
           title=f"step lengths (circles: jumps above {JUMP:g}x the path's mean step)")  # fmt: skip
    return fig


def plot_extremes(res: AnalysisResult, n: int = 3) -> Figure:
    """The n smoothest and the n jumpiest linear paths by pixel jump ratio."""
    steps = res.arrays["steps_pixel"]
    moving = np.flatnonzero(steps.sum(1) > 0)
    ratio = steps[moving].max(1) / steps[moving].mean(1)
    order = moving[np.argsort(ratio, kind="stable")]
    fig = Figure(figsize=(8.0, 5.0), layout="constrained")
    for ax, paths, title in zip(fig.subplots(2, 1), (order[:n], order[::-1][:n]),
                                ("smoothest", "jumpiest"), strict=True):  # fmt: skip
        if len(paths):
            _rows(ax, *_frames(res, paths))
        ax.set_title(f"{title} paths (pixel jump ratio)", fontsize="medium")
    return fig


def plot_anchors(res: AnalysisResult) -> Figure:
    """The multi-anchor strip through the chosen digits (--interp-digits)."""
    a = res.arrays["anchors"]
    images = a["images"].numpy()[:, 0]
    fig = Figure(figsize=(min(12.0, 0.5 * len(images) + 1), 1.4), layout="constrained")
    _rows(fig.subplots(), images[None], a["labels"][None])
    fig.suptitle(" -> ".join(map(str, a["digits"])), fontsize="medium")
    return fig


def plot_d_curve(res: AnalysisResult) -> Figure:
    """D's mean score along t, linear and slerp."""
    fig = Figure(figsize=(5.6, 3.2), layout="constrained")
    ax = fig.subplots()
    for sfx, label in (("", "linear"), ("_slerp", "slerp")):
        curve = res.arrays[f"d_curve{sfx}"]
        ax.plot(np.linspace(0, 1, len(curve)), curve, label=label)
    ax.set(xlabel="t", ylabel="mean D score", title="what D thinks along the paths")
    ax.legend(frameon=False, fontsize="small")
    return fig
