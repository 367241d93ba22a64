"""The comparison page and its figures, drawn from the tidy rows of a :class:`Comparison`.

Nothing is computed here beyond selecting rows and ordering values: the intervals shown are the
reports' own (metric rows) and those of the comparisons rows (differences between generators).
Figures use matplotlib's object API; the page is one self-contained HTML file rendered by
Jinja2 with autoescape on and StrictUndefined.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from ganalyze._io import atomic_path
from ganalyze.comparison.result import Comparison
from ganalyze.report.html import fmt

# (analysis, metric, feature_space): the metrics of the summary table and the figures.
HEADLINE: tuple[tuple[str, str, str], ...] = (
    ("modes", "unrecognizable_rate", ""),
    ("modes", "modes_covered", ""),
    ("modes", "kl_to_train", ""),
    ("memorization", "copy_rate", "pixel"),
    ("memorization", "nn_dist_ratio", "pixel"),
    ("memorization", "ct_statistic", "mnist_cnn"),
    ("dscores", "d_membership_auc", ""),
    ("dscores", "d_train_mean", ""),
    ("dscores", "d_test_mean", ""),
    ("dscores", "d_gen_mean", ""),
    ("distribution", "fd", "mnist_cnn"),
    ("distribution", "precision", "mnist_cnn"),
    ("distribution", "recall", "mnist_cnn"),
    ("interpolation", "ppl", "mnist_cnn"),
)
# The study's D score curves: metric -> legend text.
D_CURVES = {
    "d_train_mean": "training digits (members)",
    "d_test_mean": "held-out test digits",
    "d_gen_mean": "generated samples",
}
PREVIEW_COLUMNS = 12  # samples per row of the sample grids
MAX_GRID_ROWS = 24  # a longer trajectory shows evenly spaced steps, first and last included

_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("ganalyze", "report/templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_ENV.filters["fmt"] = fmt


@dataclass
class Column:
    """One headline metric across the generators: label -> (value, ci_low, ci_high)."""

    analysis: str
    metric: str
    feature_space: str
    higher_is_better: bool | None
    target: float | None
    values: dict[str, tuple[float, float, float]]

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.analysis, self.metric, self.feature_space)

    @property
    def name(self) -> str:
        return f"{self.metric} ({self.feature_space})" if self.feature_space else self.metric

    @property
    def ideal(self) -> str:
        """ "higher is better", "lower is better", "target <t>" or "" (no ideal)."""
        if self.higher_is_better is not None:
            return "higher is better" if self.higher_is_better else "lower is better"
        return f"target {fmt(self.target)}" if self.target is not None else ""

    def score(self, label: str) -> float:
        """How good ``label``'s value is (larger is better); NaN without a value or ideal."""
        value = self.values.get(label, (math.nan,) * 3)[0]
        if self.higher_is_better is not None:
            return value if self.higher_is_better else -value
        return -abs(value - self.target) if self.target is not None else math.nan

    def best(self, labels: list[str]) -> list[str]:
        """The labels (in the given order) holding the best value; ties all count."""
        scores = {lab: self.score(lab) for lab in labels}
        finite = [s for s in scores.values() if math.isfinite(s)]
        return [lab for lab, s in scores.items() if finite and s == max(finite)]


def _metric_rows(comparison: Comparison) -> pd.DataFrame:
    frame = comparison.metrics
    if frame is None or frame.empty or "label" not in frame.columns:
        parts = [r.metrics.assign(label=lab) for lab, r in comparison.reports.items()]
        parts = [p for p in parts if not p.empty]
        if not parts:
            return pd.DataFrame(columns=["label", "analysis", "metric", "feature_space"])
        frame = pd.concat(parts, ignore_index=True)
    frame = frame.copy()
    frame["feature_space"] = frame["feature_space"].fillna("").astype(str)
    return frame


def _float(value: Any) -> float:
    return math.nan if value is None or pd.isna(value) else float(value)


def headline_columns(comparison: Comparison) -> list[Column]:
    """The :data:`HEADLINE` metrics present in the comparison's rows, in that order."""
    frame = _metric_rows(comparison)
    columns = []
    for analysis, metric, space in HEADLINE:
        rows = frame[(frame["analysis"] == analysis) & (frame["metric"] == metric)
                     & (frame["feature_space"] == space)]  # fmt: skip
        if rows.empty:
            continue
        hib = rows["higher_is_better"].dropna()
        target = rows["target"].dropna()
        values = {str(r["label"]): (_float(r["value"]), _float(r["ci_low"]), _float(r["ci_high"]))
                  for r in rows.to_dict("records")}  # fmt: skip
        columns.append(Column(analysis, metric, space,
                              bool(hib.iloc[0]) if len(hib) else None,
                              float(target.iloc[0]) if len(target) else None, values))  # fmt: skip
    return columns


def _labels(comparison: Comparison) -> list[str]:
    """Entry labels in order; by step in a trajectory."""
    labels = comparison.labels
    if comparison.mode == "trajectory":
        steps = comparison.steps
        labels = sorted(labels, key=lambda lab: steps[lab])
    return labels


def _run_link(comparison: Comparison, label: str) -> str:
    """The relative link to a generator's report: ``runs/<its folder>/index.html``."""
    entry = next((e for e in comparison.entries if e.label == label), None)
    folder = getattr(entry, "folder", None) or label
    return f"runs/{quote(folder, safe='')}/index.html"


def _finite(*values: float) -> bool:
    return all(v is not None and math.isfinite(v) for v in values)


def summary_rows(comparison: Comparison) -> list[dict[str, Any]]:
    """One row per entry, in order (by step in a trajectory).

    Each row: label, step, link (``runs/<its folder>/index.html``; None without a report), cells
    (one per :func:`headline_columns` column: value, ci_low, ci_high, has_ci, best), failure
    (the audit's error message, or None) and notes ("dscores skipped: no discriminator").
    ``best`` marks the best value of a column: the highest or lowest by the metric's direction,
    else the closest to its target; ties are all marked, and a metric with neither has none.
    """
    labels = _labels(comparison)
    columns = headline_columns(comparison)
    best = {c.key: set(c.best(labels)) for c in columns}
    steps = comparison.steps
    rows = []
    for label in labels:
        report = comparison.reports.get(label)
        cells = []
        for c in columns:
            value, low, high = c.values.get(label, (math.nan,) * 3)
            cells.append({"value": value, "ci_low": low, "ci_high": high,
                          "has_ci": _finite(low, high), "best": label in best[c.key]})  # fmt: skip
        notes = [f"{name} skipped: {reason}" for name, reason in report.skipped] if report else []
        rows.append({"label": label, "step": steps.get(label), "cells": cells,
                     "link": _run_link(comparison, label) if report is not None else None,
                     "failure": comparison.failures.get(label), "notes": notes})  # fmt: skip
    return rows


def _fired(comparison: Comparison) -> dict[tuple[str, str], list[tuple[str, str]]]:
    """(analysis, rule) -> [(label, message of its first flag by that rule)] in label order."""
    fired: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for label in _labels(comparison):
        report = comparison.reports.get(label)
        seen: set[tuple[str, str]] = set()
        for analysis, flag in report.flags if report is not None else ():
            key = (analysis, flag.rule)
            if key not in seen:
                seen.add(key)
                fired.setdefault(key, []).append((label, flag.message))
    return fired


def _ran(comparison: Comparison, label: str, analysis: str) -> bool:
    report = comparison.reports.get(label)
    return report is not None and any(r.name == analysis for r in report.results)


def first_flags(comparison: Comparison) -> list[dict[str, Any]]:
    """Trajectory mode: for every flag rule that fires at some step, the first step it fires.

    Returns one dict per (analysis, rule), by first step: analysis, rule, first_step,
    first_label, message (the flag's message at that step), steps (every step it fires at),
    persistent (it fires at every later step whose audit ran that analysis) and ``when``, the
    phrase for a reader ("from step 7 on", "at step 7 only", "first at step 7; also at step 9").
    Rules that never fire are not listed; in models mode the list is empty.
    """
    if comparison.mode != "trajectory":
        return []
    steps, labels = comparison.steps, _labels(comparison)
    out = []
    for (analysis, rule), hits in _fired(comparison).items():
        first, message = hits[0]
        fired = [lab for lab, _ in hits]
        later = [lab for lab in labels[labels.index(first) :] if _ran(comparison, lab, analysis)]
        persistent = all(lab in fired for lab in later)
        if persistent and len(later) > 1:
            when = f"from step {steps[first]} on"
        elif persistent:
            when = f"at step {steps[first]}, the last step audited"
        elif len(fired) == 1:
            when = f"at step {steps[first]} only"
        else:
            when = (f"first at step {steps[first]}; also at step{'s' * (len(fired) > 2)} "
                    f"{', '.join(str(steps[lab]) for lab in fired[1:])}")  # fmt: skip
        out.append({"analysis": analysis, "rule": rule, "first_step": steps[first],
                    "first_label": first, "message": message, "when": when,
                    "steps": [steps[lab] for lab in fired], "persistent": persistent})  # fmt: skip
    return sorted(out, key=lambda f: f["first_step"])


def best_steps(comparison: Comparison) -> list[dict[str, Any]]:
    """Trajectory mode: per headline metric with a direction or target, the best step.

    Returns one dict per metric: analysis, metric, feature_space, name, ideal, best_step,
    best_label, value, ci_low, ci_high (at the best step; the earliest of ties), last_step and
    last_value (the last step with a value). Metrics without any value are left out.
    """
    if comparison.mode != "trajectory":
        return []
    steps, labels = comparison.steps, _labels(comparison)
    out = []
    for c in headline_columns(comparison):
        best = c.best(labels)
        if not best:
            continue
        value, low, high = c.values[best[0]]
        last = [lab for lab in labels if _finite(c.values.get(lab, (math.nan,))[0])][-1]
        out.append({"analysis": c.analysis, "metric": c.metric, "feature_space": c.feature_space,
                    "name": c.name, "ideal": c.ideal, "best_step": steps[best[0]],
                    "best_label": best[0], "value": value, "ci_low": low, "ci_high": high,
                    "has_ci": _finite(low, high), "last_step": steps[last],
                    "last_value": c.values[last][0]})  # fmt: skip
    return out


def _comparison_rows(comparison: Comparison) -> pd.DataFrame:
    frame = comparison.comparisons
    if frame is None or frame.empty or "label_a" not in frame.columns:
        return pd.DataFrame(columns=["analysis", "metric", "feature_space", "label_a", "label_b"])
    frame = frame.copy()
    frame["feature_space"] = frame["feature_space"].fillna("").astype(str)
    return frame


def _versus_best(rows: pd.DataFrame, best: str, label: str) -> dict[str, Any]:
    """The comparisons row of ``label`` against ``best``: its verdict and the difference
    (label - best) with its interval."""
    pair = rows[((rows["label_a"] == best) & (rows["label_b"] == label))
                | ((rows["label_a"] == label) & (rows["label_b"] == best))]  # fmt: skip
    none = {"verdict": "no interval", "difference": math.nan, "diff_low": math.nan,
            "diff_high": math.nan, "method": ""}  # fmt: skip
    if pair.empty:
        return none
    row = pair.iloc[0]
    diff, low, high = _float(row["difference"]), _float(row["ci_low"]), _float(row["ci_high"])
    if row["label_a"] == label:  # stored as best - label
        diff, low, high = -diff, -high, -low
    if not _finite(low, high) or pd.isna(row["excludes_zero"]):
        return {**none, "difference": diff}
    verdict = "significantly different" if bool(row["excludes_zero"]) else (
        "not significantly different")  # fmt: skip
    return {"verdict": verdict, "difference": diff, "diff_low": low, "diff_high": high,
            "method": str(row.get("method", ""))}  # fmt: skip


def ranking(comparison: Comparison) -> list[dict[str, Any]]:
    """Models mode: per headline metric with a direction or target, the labels best first.

    Returns one dict per metric: analysis, metric, feature_space, name, ideal, ``order`` (one
    dict per label with a value: label, value, ci_low, ci_high, has_ci, verdict, difference,
    diff_low, diff_high, method) and ``tied`` (the labels not significantly different from the
    best). ``verdict`` is "best", or from the comparisons row pairing the label with the best:
    "not significantly different" (its interval of the difference holds 0), "significantly
    different", or "no interval". In trajectory mode the list is empty.
    """
    if comparison.mode != "models":
        return []
    rows, labels, out = _comparison_rows(comparison), _labels(comparison), []
    for c in headline_columns(comparison):
        scored = [lab for lab in labels if math.isfinite(c.score(lab))]
        if not scored:
            continue
        order = sorted(scored, key=lambda lab: -c.score(lab))
        mine = rows[(rows["analysis"] == c.analysis) & (rows["metric"] == c.metric)
                    & (rows["feature_space"] == c.feature_space)]  # fmt: skip
        items = []
        for lab in order:
            value, low, high = c.values[lab]
            versus = (_versus_best(mine, order[0], lab) if lab != order[0] else
                      {"verdict": "best", "difference": 0.0, "diff_low": math.nan,
                       "diff_high": math.nan, "method": ""})  # fmt: skip
            items.append({"label": lab, "value": value, "ci_low": low, "ci_high": high,
                          "has_ci": _finite(low, high), **versus})  # fmt: skip
        tied = [i["label"] for i in items if i["verdict"] == "not significantly different"]
        out.append({"analysis": c.analysis, "metric": c.metric, "feature_space": c.feature_space,
                    "name": c.name, "ideal": c.ideal, "order": items, "tied": tied})  # fmt: skip
    return out


# Figures ------------------------------------------------------------------------------------


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
    rows = _preview_rows(comparison)
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
    labels, steps = _labels(comparison), comparison.steps
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
    labels, steps = _labels(comparison), comparison.steps
    fig = Figure(figsize=(6.4, 3.8), layout="constrained")
    ax = fig.subplots()
    for c in curves:
        _draw_series(ax, c, labels, steps, label=D_CURVES[c.metric])
    _mark_failed(ax, comparison)
    ax.set_xlabel("step")
    ax.set_ylabel("mean D score")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title("Discriminator scores over training", fontsize=11)
    ax.legend(fontsize=8)
    return fig


def _plot_models(comparison: Comparison, columns: list[Column]) -> Figure:
    labels = _labels(comparison)
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


def _preview_rows(comparison: Comparison, thin: bool = True) -> list[tuple[str, np.ndarray]]:
    """(row name, (k, 28, 28) in 0-255) of every report with a preview, evenly thinned to
    :data:`MAX_GRID_ROWS` rows (first and last kept)."""
    rows = []
    for label in _labels(comparison):
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


# Page ---------------------------------------------------------------------------------------


def _plain(value: Any) -> str:
    return ", ".join(map(str, value)) if isinstance(value, list | tuple) else str(value)


def _option(comparison: Comparison, key: str) -> str:
    """An audit setting for the header: from the comparison's meta (its ``settings``), else
    the distinct values in its reports' meta."""
    meta = comparison.meta
    for source in (meta.get("settings"), meta.get("options"), meta):
        if isinstance(source, dict) and source.get(key) is not None:
            return _plain(source[key])
    seen = {_plain(r.meta[key]): None for r in comparison.reports.values()
            if r.meta.get(key) is not None}  # fmt: skip
    return "; ".join(seen) or "–"


def _header(comparison: Comparison) -> list[tuple[str, str]]:
    n, failed, meta = len(comparison.entries), len(comparison.failures), comparison.meta
    mode = (
        "trajectory: checkpoints of one training run, by step"
        if comparison.mode == "trajectory"
        else "models: several generators side by side"
    )
    rows = comparison.comparisons
    methods = []
    if rows is not None and "method" in rows.columns:
        methods = list(dict.fromkeys(str(m) for m in rows["method"].dropna() if str(m)))
    header = [("generators", f"{n} ({n - failed} audited, {failed} failed)"), ("mode", mode),
              ("samples", f"{_option(comparison, 'n_samples')} per generator "
                          f"(seed {_option(comparison, 'seed')})"),
              ("analyses", _option(comparison, "analyses")),
              ("intervals of differences", "; ".join(methods) or "none computed")]  # fmt: skip
    if isinstance(meta.get("reused"), list):
        header.append(("audits", f"{len(meta['reused'])} reused from the cache, "
                                 f"{len(meta.get('audited') or [])} run"))  # fmt: skip
    if meta.get("executor"):
        header.append(("executor", _plain(meta["executor"])))
    if meta.get("date"):
        header.append(("date (UTC)", str(meta["date"])))
    if isinstance(meta.get("versions"), dict):
        header.append(("versions", ", ".join(f"{k} {v}" for k, v in meta["versions"].items())))
    return header


_CAPTIONS = {
    "_by_step": "{analysis}: its headline metrics at each step. Shaded: the 95% interval where "
    "the analysis reports one; dashed: the target value; red dotted lines: steps whose audit "
    "failed.",
    "d_scores_by_step": "The discriminator's mean score on the digits it trained on (members), "
    "on held-out test digits and on generated samples, at each step. Members pulling away from "
    "held-out digits means D is memorizing its training set; samples close to real digits mean "
    "G fools D.",
    "headline_metrics": "Each headline metric per model: dot = value, line = 95% interval, "
    "orange = best value (by the metric's direction or closest to its target); dashed: target.",
    "samples_by_step": "The first samples of each step, from the same seed: each column follows "
    "one latent through training.",
    "samples_by_model": "The first samples of each model, from the same seed (the same latents "
    "where the models' latent spaces agree).",
}


def _caption(comparison: Comparison, name: str) -> str:
    if name.startswith("samples_by_"):
        n = len(_preview_rows(comparison, thin=False))
        shown = len(_preview_rows(comparison))
        note = f" {shown} of {n} rows shown, evenly spaced." if shown < n else ""
        return _CAPTIONS.get(name, "") + note
    if name in _CAPTIONS:
        return _CAPTIONS[name]
    if name.endswith("_by_step"):
        return _CAPTIONS["_by_step"].format(analysis=name[: -len("_by_step")])
    return ""


def _model_flags(comparison: Comparison) -> list[dict[str, Any]]:
    return [{"analysis": a, "rule": rule, "labels": [lab for lab, _ in hits],
             "message": hits[0][1], "first_label": hits[0][0]}
            for (a, rule), hits in _fired(comparison).items()]  # fmt: skip


def _context(comparison: Comparison, pngs: dict[str, bytes] | None) -> dict[str, Any]:
    compact, pngs = pngs is None, pngs or {}
    names = [n for n in figures(comparison) if n in pngs] if pngs else []
    names += [n for n in pngs if n not in names]
    shown = [{"name": n, "caption": _caption(comparison, n),
              "png": base64.b64encode(pngs[n]).decode("ascii")} for n in names]  # fmt: skip
    trajectory = comparison.mode == "trajectory"
    return {
        "compact": compact, "trajectory": trajectory, "header": _header(comparison),
        "n": len(comparison.entries), "columns": headline_columns(comparison),
        "rows": summary_rows(comparison), "failures": list(comparison.failures.items()),
        "first_flags": first_flags(comparison), "best_steps": best_steps(comparison),
        "ranking": ranking(comparison),
        "model_flags": [] if trajectory else _model_flags(comparison),
        "figures": shown,
        "runs": [(lab, _run_link(comparison, lab)) for lab in _labels(comparison)
                 if lab in comparison.reports],
    }  # fmt: skip


def render(comparison: Comparison, pngs: dict[str, bytes]) -> str:
    """The comparison page (index.html): header, summary table, the trajectory or models
    section, the figures in ``pngs`` (name -> PNG bytes) inlined, links to every report."""
    return _ENV.get_template("compare.html.j2").render(**_context(comparison, pngs))


def render_summary(comparison: Comparison) -> str:
    """A compact notebook view: the summary table only, no figures."""
    return _ENV.get_template("compare.html.j2").render(**_context(comparison, None))


def write_outputs(comparison: Comparison, out: str | Path) -> None:
    """Draw every figure once, write ``out/figures/<name>.png`` (dpi 100) and ``.pdf`` (vector)
    and ``out/index.html``, whose inlined images are the PNG files' bytes. Each file is written
    atomically."""
    out = Path(out)
    folder = out / "figures"
    folder.mkdir(parents=True, exist_ok=True)
    pngs: dict[str, bytes] = {}
    for name, draw in figures(comparison).items():
        fig = draw()
        try:
            buf = io.BytesIO()
            fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
            pngs[name] = buf.getvalue()
            with atomic_path(folder / f"{name}.png") as tmp:
                tmp.write_bytes(pngs[name])
            with atomic_path(folder / f"{name}.pdf") as tmp:
                fig.savefig(tmp, format="pdf", bbox_inches="tight")
        finally:
            fig.clear()
    with atomic_path(out / "index.html") as tmp:
        tmp.write_text(render(comparison, pngs), encoding="utf-8")
