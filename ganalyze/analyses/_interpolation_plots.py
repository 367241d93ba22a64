"""Figures of the interpolation analysis (drawing only: every number and every frame shown
comes from the result's arrays).

Each takes the result and ``ax=None``: the axes to draw into (a sequence of them for a figure
of several panels), or None for a new Figure; each returns the Figure.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from ganalyze.analyses.base import AnalysisResult

JUMP = 3.0  # a step larger than this many times its path's mean step is marked
STRIP_PATHS = 8  # paths in the strips and steps figures
FRAMES_SHOWN = 16  # frames shown per path
EXTREMES = 3  # smoothest and jumpiest paths shown


BAND = 12  # pixels of white above each frame, where its label is written


def _rows(ax, images: np.ndarray, labels: np.ndarray | None = None) -> None:
    """Rows of 28x28 images (rows, cols, 28, 28) as one picture; with ``labels``, each frame's
    digit (? for unrecognizable) in a white band above it, dark on white so it reads at any
    size."""
    r, c = images.shape[:2]
    top = BAND if labels is not None else 0
    tiles = np.pad(images, ((0, 0), (0, 0), (1 + top, 1), (1, 1)), constant_values=0.0)
    tiles[:, :, top, 1:-1] = tiles[:, :, -1, 1:-1] = 0.12  # thin frame lines
    tiles[:, :, top:, 0] = tiles[:, :, top:, -1] = 0.12
    h = 30 + top
    ax.imshow(tiles.transpose(0, 2, 1, 3).reshape(r * h, c * 30), cmap="gray_r", vmin=0, vmax=1,
              interpolation="nearest")  # fmt: skip
    if labels is not None:
        for (i, j), lab in np.ndenumerate(labels):
            unknown = lab == 10
            ax.text(j * 30 + 15, i * h + top / 2 + 0.5, "?" if unknown else str(lab),
                    ha="center", va="center", fontsize=8.5, fontweight="bold",
                    color="tab:red" if unknown else "0.1")  # fmt: skip
    ax.set(xticks=[], yticks=[])


def plot_strips(res: AnalysisResult, ax=None) -> Figure:
    """The first paths, linear (top block) and slerp (bottom block), 16 frames each."""
    if ax is None:
        ax = Figure(figsize=(8.0, 10.8), layout="constrained").subplots(2, 1)
    for a, sfx, title in zip(ax, ("", "_slerp"), ("linear", "slerp"), strict=True):
        strip = res.arrays[f"strips{sfx}"]
        _rows(a, strip["images"], strip["labels"])
        a.set_title(f"{title} interpolation (label above each frame: its digit, ? unrecognizable)",
                    fontsize="medium")  # fmt: skip
    return ax[0].figure


def plot_steps(res: AnalysisResult, ax=None) -> Figure:
    """Pixel step length along t for the first paths, steps above 3x the path's mean marked."""
    if ax is None:
        ax = Figure(figsize=(6.4, 3.4), layout="constrained").subplots()
    steps, jumps = res.arrays["steps"], res.arrays["jumps"]
    t = np.linspace(0, 1, steps.shape[1] + 1)[1:]
    for i in range(len(steps)):
        line = ax.plot(t, steps[i], lw=1.0)[0]
        ax.plot(t[jumps[i]], steps[i][jumps[i]], "o", color=line.get_color(), ms=5, mfc="none")
    ax.set(xlabel="t", ylabel="pixel step |G(z_t) - G(z_t-dt)|",
           title=f"step lengths (circles: jumps above {JUMP:g}x the path's mean step)")  # fmt: skip
    return ax.figure


def plot_extremes(res: AnalysisResult, ax=None) -> Figure:
    """The smoothest and the jumpiest linear paths by pixel jump ratio."""
    if ax is None:
        ax = Figure(figsize=(8.0, 6.0), layout="constrained").subplots(2, 1)
    for a, key in zip(ax, ("smoothest", "jumpiest"), strict=True):
        shown = res.arrays[key]
        if len(shown["images"]):
            _rows(a, shown["images"], shown["labels"])
        a.set_title(f"{key} paths (pixel jump ratio)", fontsize="medium")
    return ax[0].figure


def plot_anchors(res: AnalysisResult, ax=None) -> Figure:
    """The multi-anchor strip through the chosen digits (--interp-digits)."""
    a = res.arrays["anchors"]
    images = a["images"]
    if ax is None:
        ax = Figure(figsize=(min(12.0, 0.5 * len(images) + 1), 1.7),
                    layout="constrained").subplots()  # fmt: skip
    _rows(ax, images[None], a["labels"][None])
    ax.figure.suptitle(" -> ".join(map(str, a["digits"])), fontsize="medium")
    return ax.figure


def plot_d_curve(res: AnalysisResult, ax=None) -> Figure:
    """D's mean score along t, linear and slerp."""
    if ax is None:
        ax = Figure(figsize=(5.6, 3.2), layout="constrained").subplots()
    for sfx, label in (("", "linear"), ("_slerp", "slerp")):
        curve = res.arrays[f"d_curve{sfx}"]
        ax.plot(np.linspace(0, 1, len(curve)), curve, label=label)
    ax.set(xlabel="t", ylabel="mean D score", title="what D thinks along the paths")
    ax.legend(frameon=False, fontsize="small", loc="upper left", bbox_to_anchor=(1, 1))
    return ax.figure
