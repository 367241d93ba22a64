"""Figures of a training run: sample grids and training curves (matplotlib's object API)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from PIL import Image

from ganalyze._io import atomic_path, save_figure


def save_grid(images: torch.Tensor, path: str | os.PathLike[str], nrow: int = 8) -> Path:
    """Save (n, 784) or (n, 1, 28, 28) images in [-1, 1] as one PNG grid, 2-pixel gaps."""
    x = images.detach().float().cpu().reshape(-1, 28, 28).clamp(-1, 1).add(1).mul(127.5)
    x = x.round().to(torch.uint8).numpy()
    n = x.shape[0]
    ncol = min(nrow, n)
    nrows = -(-n // ncol)
    pad = 2
    grid = np.zeros((nrows * (28 + pad) + pad, ncol * (28 + pad) + pad), dtype=np.uint8)
    for i in range(n):
        r, c = divmod(i, ncol)
        top, left = pad + r * (28 + pad), pad + c * (28 + pad)
        grid[top : top + 28, left : left + 28] = x[i]
    with atomic_path(path) as tmp:
        Image.fromarray(grid).save(tmp, format="PNG")
    return Path(path)


def plot_training_curves(history: Sequence[dict], axes: Sequence | None = None) -> Figure | None:
    """Losses (left) and D's mean scores on train, test and generated digits (right) per epoch.

    With ``axes`` (two matplotlib axes) it draws into them and returns None; else it returns a
    new Figure.
    """
    fig = None
    if axes is None:
        fig = Figure(figsize=(10, 3.8), layout="constrained")
        axes = fig.subplots(1, 2)
    epochs = [h["epoch"] for h in history]

    def col(key: str) -> list[float]:
        return [h[key] for h in history]

    ax = axes[0]
    ax.plot(epochs, col("d_loss"), label="D loss", color="tab:blue")
    ax.plot(epochs, col("g_loss"), label="G loss", color="tab:orange")
    ax.set(xlabel="epoch", ylabel="BCE loss (epoch mean)", title="Losses")
    ax.legend(frameon=False)
    ax = axes[1]
    ax.plot(epochs, col("d_train"), label="D(train digits)", color="tab:green")
    ax.plot(epochs, col("d_test"), label="D(test digits, held out)", color="tab:purple")
    ax.plot(epochs, col("d_gen"), label="D(G(z))", color="tab:red")
    ax.plot(epochs, col("d_real"), ls=":", color="tab:green", label="D(x) during epoch")
    ax.plot(epochs, col("d_fake"), ls=":", color="tab:red", label="D(G(z)) during epoch")
    ax.axhline(0.5, color="0.6", lw=0.8)
    ax.set(xlabel="epoch", ylabel="mean D score", ylim=(0, 1), title="Discriminator scores")
    ax.legend(frameon=False, fontsize="small")
    for a in axes:
        a.xaxis.set_major_locator(MaxNLocator(integer=True))
    if len(epochs) == 1:
        for a in axes:
            for line in a.get_lines():
                line.set_marker("o")
    return fig


def save_training_curves(history: Sequence[dict], stem: str | os.PathLike[str]) -> list[Path]:
    """Write the training-curves figure as ``stem.png`` and ``stem.pdf``."""
    return save_figure(plot_training_curves(history), stem)
