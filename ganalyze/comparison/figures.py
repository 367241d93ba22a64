"""The comparison's figures, drawn on demand from its tidy rows (matplotlib's object API)."""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial
from typing import Any

import matplotlib
import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from ganalyze.comparison.result import Comparison
from ganalyze.comparison.tables import D_CURVES, Column, headline_columns, ordered_labels

PREVIEW_COLUMNS = 12  # samples per row of the sample grids
MAX_GRID_ROWS = 24  # a longer trajectory shows evenly spaced steps, first and last included


def _text(value: Any) -> str:
    """A label for matplotlib: a dollar sign would start mathtext."""
    return str(value).replace("$", r"\$")


def figures(comparison: Comparison) -> dict[str, Callable[[], Figure]]:
    """The comparison's figures, name -> a function drawing it as a new Figure.

    Trajectory mode: ``<analysis>_by_step`` (its headline metrics against step, 95% bands where
    the metric has an interval), ``d_scores_by_step`` (the mean D score on members, held-out
    digits and samples, when dscores ran) and ``samples_by_step``. Models mode:
    ``headline_metrics`` (dot and interval per model, one panel per metric) and
    ``samples_by_model``. A figure with nothing to show is left out.
    """
    columns, specs = headline_columns(comparison), {}
    if comparison.mode == "trajectory":
        for analysis in dict.fromkeys(c.analysis for c in columns):
            group = [c for c in columns if c.analysis == analysis and c.metric not in D_CURVES]
            if group:
                specs[f"{analysis}_by_step"] = partial(_plot_trajectory, comparison, group)
        curves = [c for c in columns if c.analysis == "dscores" and c.metric in D_CURVES]
        if curves:
            specs["d_scores_by_step"] = partial(_plot_d_scores, comparison, curves)
    elif columns:
        specs["headline_metrics"] = partial(_plot_models, comparison, columns)
    rows = preview_rows(comparison)
    if rows:
        name = "samples_by_step" if comparison.mode == "trajectory" else "samples_by_model"
        specs[name] = partial(_plot_samples, rows)
    return specs


def _xy(c: Column, labels: list[str], steps: dict) -> tuple[np.ndarray, ...]:
    arr = np.array([c.values.get(lab, (math.nan,) * 3) for lab in labels], dtype=float)
    x = np.array([steps[lab] for lab in labels], dtype=float)
    return x, arr[:, 0], arr[:, 1], arr[:, 2]


def _draw_series(ax: Any, c: Column, labels: list[str], steps: dict, **kw: Any) -> None:
    """The values against step as a line, their 95% intervals as a band (a bar when only one
    step has one)."""
    x, v, low, high = _xy(c, labels, steps)
    shown = np.isfinite(v)
    (line,) = ax.plot(x[shown], v[shown], marker="o", ms=3, **kw)
    ci = np.isfinite(low) & np.isfinite(high)
    if ci.sum() > 1:  # joined across steps without an interval, as the line is
        ax.fill_between(x[ci], low[ci], high[ci], color=line.get_color(), alpha=0.2, lw=0)
    elif ci.any():
        ax.vlines(x[ci], low[ci], high[ci], color=line.get_color(), alpha=0.5)


def _mark_failed(ax: Any, comparison: Comparison) -> None:
    steps = comparison.steps
    for label in comparison.failures:
        if steps.get(label) is not None:
            ax.axvline(steps[label], color="tab:red", ls=":", lw=1)


def _note_empty(ax: Any, c: Column, axis: str) -> bool:
    """Say so on a panel whose metric has no value anywhere (NaN at every step or model)."""
    if any(math.isfinite(v[0]) for v in c.values.values()):
        return False
    ax.text(0.5, 0.5, "no value", transform=ax.transAxes, ha="center", va="center",
            color="0.4", bbox={"fc": "white", "ec": "none"})  # fmt: skip
    getattr(ax, f"set_{axis}ticks")([])
    return True


def _plot_trajectory(comparison: Comparison, group: list[Column]) -> Figure:
    labels, steps = ordered_labels(comparison), comparison.steps
    ncols = min(len(group), 4)
    nrows = math.ceil(len(group) / ncols)
    fig = Figure(figsize=(3.8 * ncols, 3.0 * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax, c in zip(axes, group, strict=False):
        _draw_series(ax, c, labels, steps)
        if c.target is not None:
            ax.axhline(c.target, color="0.4", ls="--", lw=1)
        _mark_failed(ax, comparison)
        ax.set_title(f"{c.name}\n{c.ideal or 'no ideal value'}", fontsize=9)
        ax.set_xlabel("step")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if _note_empty(ax, c, "y"):
            x = [steps[lab] for lab in labels]
            ax.set_xlim(min(x) - 0.5, max(x) + 0.5)
    for ax in axes[len(group) :]:
        ax.set_visible(False)
    fig.suptitle(f"{group[0].analysis} over training", fontsize=11)
    return fig


def _plot_d_scores(comparison: Comparison, curves: list[Column]) -> Figure:
    labels, steps = ordered_labels(comparison), comparison.steps
    fig = Figure(figsize=(6.4, 3.8), layout="constrained")
    ax = fig.subplots()
    for c in curves:
        _draw_series(ax, c, labels, steps, label=D_CURVES[c.metric])
    _mark_failed(ax, comparison)
    ax.set_xlabel("step")
    ax.set_ylabel("mean D score")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title("Discriminator scores over training", fontsize=11)
    ax.legend(fontsize=8, frameon=False, loc="upper left", bbox_to_anchor=(1, 1))
    return fig


def _plot_models(comparison: Comparison, columns: list[Column]) -> Figure:
    labels = ordered_labels(comparison)
    ncols = min(len(columns), 3)
    nrows = math.ceil(len(columns) / ncols)
    height = 0.3 * len(labels) + 1.0
    fig = Figure(figsize=(3.6 * ncols + 1.5, height * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False, sharey=True).ravel()
    y = np.arange(len(labels))
    names = [_text(lab) + (" (failed)" if lab in comparison.failures else "") for lab in labels]
    for ax, c in zip(axes, columns, strict=False):
        _, v, low, high = _xy(c, labels, {lab: 0 for lab in labels})
        best = np.isin(labels, c.best(labels))
        ci = np.isfinite(low) & np.isfinite(high)
        ax.hlines(y[ci], low[ci], high[ci], color="0.35", lw=1.5)
        ax.plot(v[~best], y[~best], "o", color="tab:blue", ms=5)
        ax.plot(v[best], y[best], "o", color="tab:orange", ms=6)
        if c.target is not None:
            ax.axvline(c.target, color="0.4", ls="--", lw=1)
        ax.set_title(f"{c.analysis}: {c.name}\n{c.ideal or 'no ideal value'}", fontsize=9)
        ax.set_yticks(y, names)
        ax.set_ylim(len(labels) - 0.5, -0.5)
        _note_empty(ax, c, "x")
    for ax in axes[len(columns) :]:
        ax.set_visible(False)
    return fig


def preview_rows(comparison: Comparison, thin: bool = True) -> list[tuple[str, np.ndarray]]:
    """(row name, (k, 28, 28) in 0-255) of every report with a preview, evenly thinned to
    :data:`MAX_GRID_ROWS` rows (first and last kept)."""
    rows = []
    for label in ordered_labels(comparison):
        report = comparison.reports.get(label)
        preview = None if report is None else report.preview
        if preview is None:
            continue
        arr = np.asarray(preview)
        if arr.size == 0 or arr.size % 784:
            continue
        arr = arr.reshape(-1, 28, 28).astype(float)
        if arr.max() <= 1.0:  # a [0, 1] float preview
            arr = arr * 255.0
        step = comparison.steps.get(label)
        rows.append((f"step {step}" if comparison.mode == "trajectory" else label, arr))
    if thin and len(rows) > MAX_GRID_ROWS:
        keep = np.unique(np.linspace(0, len(rows) - 1, MAX_GRID_ROWS).round().astype(int))
        rows = [rows[i] for i in keep]
    return rows


def _plot_samples(rows: list[tuple[str, np.ndarray]]) -> Figure:
    k = min(PREVIEW_COLUMNS, max(len(a) for _, a in rows))
    tile, gap = 28, 2
    pitch = tile + gap
    mosaic = np.full((len(rows) * pitch - gap, k * pitch - gap), np.nan)
    for i, (_, arr) in enumerate(rows):
        for j in range(min(k, len(arr))):
            mosaic[i * pitch : i * pitch + tile, j * pitch : j * pitch + tile] = arr[j]
    fig = Figure(figsize=(0.42 * k + 1.4, 0.42 * len(rows) + 0.4), layout="constrained")
    ax = fig.subplots()
    cmap = matplotlib.colormaps["gray"].with_extremes(bad="white")
    ax.imshow(mosaic, cmap=cmap, vmin=0, vmax=255, interpolation="nearest")
    ax.set_yticks([i * pitch + tile / 2 for i in range(len(rows))],
                  [_text(name) for name, _ in rows], fontsize=8)  # fmt: skip
    ax.set_xticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)
    return fig
