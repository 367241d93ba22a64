"""What the comparison page shows, as plain rows: the headline metrics per generator with the
best marked, the first step of each finding, the best step per metric, and a ranking with the
significance of each difference from the best.

Nothing is computed here beyond selecting rows and ordering values: the intervals shown are the
reports' own (metric rows) and those of the comparisons rows (differences between generators).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import pandas as pd

from ganalyze.comparison.result import Comparison
from ganalyze.report.html import fmt
from ganalyze.report.latex import HEADLINE
from ganalyze.report.numbers import decimals, number

# HEADLINE (analysis, metric, feature_space): the metrics of the summary table, the figures and
# metrics.tex; one list for reports and comparisons.
# The study's D score curves: metric -> legend text.
D_CURVES = {
    "d_train_mean": "training digits (members)",
    "d_test_mean": "held-out test digits",
    "d_gen_mean": "generated samples",
}


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
        """The labels (in the given order) holding the best value; ties all count, but when
        every value is the same (every sample unrecognizable at every step) none is best."""
        scores = {lab: self.score(lab) for lab in labels}
        finite = [s for s in scores.values() if math.isfinite(s)]
        if len(finite) > 1 and min(finite) == max(finite):
            return []
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


def ordered_labels(comparison: Comparison) -> list[str]:
    """Entry labels in order; by step in a trajectory."""
    labels = comparison.labels
    if comparison.mode == "trajectory":
        steps = comparison.steps
        labels = sorted(labels, key=lambda lab: steps[lab])
    return labels


def run_link(comparison: Comparison, label: str) -> str:
    """The relative link to a generator's report: ``runs/<its folder>/index.html``."""
    entry = next((e for e in comparison.entries if e.label == label), None)
    folder = getattr(entry, "folder", None) or label
    return f"runs/{quote(folder, safe='')}/index.html"


def _finite(*values: float) -> bool:
    return all(v is not None and math.isfinite(v) for v in values)


def column_decimals(column: Column) -> int:
    """One format for a column: the most decimals any of its values needs (the report's rule,
    :func:`ganalyze.report.numbers.decimals`)."""
    return max((decimals(column.metric, *v) for v in column.values.values() if _finite(v[0])),
               default=0)  # fmt: skip


def summary_rows(comparison: Comparison) -> list[dict[str, Any]]:
    """One row per entry, in order (by step in a trajectory).

    Each row: label, step, link (``runs/<its folder>/index.html``; None without a report), cells
    (one per :func:`headline_columns` column: value, ci_low, ci_high, has_ci, best, and text and
    ci_text, written with one format per column), failure
    (the audit's error message, or None) and notes ("dscores skipped: no discriminator").
    ``best`` marks the best value of a column: the highest or lowest by the metric's direction,
    else the closest to its target; ties are all marked, and a metric with neither has none.
    """
    labels = ordered_labels(comparison)
    columns = headline_columns(comparison)
    best = {c.key: set(c.best(labels)) for c in columns}
    places = {c.key: column_decimals(c) for c in columns}
    steps = comparison.steps
    rows = []
    for label in labels:
        report = comparison.reports.get(label)
        cells = []
        for c in columns:
            value, low, high = c.values.get(label, (math.nan,) * 3)
            p = places[c.key]
            cells.append({"value": value, "ci_low": low, "ci_high": high,
                          "has_ci": _finite(low, high), "best": label in best[c.key],
                          "text": number(value, p),
                          "ci_text": f"{number(low, p)} – {number(high, p)}"})  # fmt: skip
        notes = [f"{name} skipped: {reason}" for name, reason in report.skipped] if report else []
        rows.append({"label": label, "step": steps.get(label), "cells": cells,
                     "link": run_link(comparison, label) if report is not None else None,
                     "failure": comparison.failures.get(label), "notes": notes})  # fmt: skip
    return rows


def fired_rules(comparison: Comparison) -> dict[tuple[str, str], list[tuple[str, str]]]:
    """(analysis, rule) -> [(label, message of its first flag by that rule)] in label order."""
    fired: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for label in ordered_labels(comparison):
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
    steps, labels = comparison.steps, ordered_labels(comparison)
    out = []
    for (analysis, rule), hits in fired_rules(comparison).items():
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
    last_value (the last step with a value), and text, ci_text ("" without an interval) and
    last_text, written in the column's one format (as :func:`summary_rows`). Metrics without
    any value are left out.
    """
    if comparison.mode != "trajectory":
        return []
    steps, labels = comparison.steps, ordered_labels(comparison)
    out = []
    for c in headline_columns(comparison):
        best = c.best(labels)
        if not best:
            continue
        value, low, high = c.values[best[0]]
        last = [lab for lab in labels if _finite(c.values.get(lab, (math.nan,))[0])][-1]
        p = column_decimals(c)
        out.append({"analysis": c.analysis, "metric": c.metric, "feature_space": c.feature_space,
                    "name": c.name, "ideal": c.ideal, "best_step": steps[best[0]],
                    "best_label": best[0], "value": value, "ci_low": low, "ci_high": high,
                    "has_ci": _finite(low, high), "last_step": steps[last],
                    "last_value": c.values[last][0], **_texts(value, low, high, p),
                    "last_text": number(c.values[last][0], p)})  # fmt: skip
    return out


def _texts(value: float, low: float, high: float, places: int, prefix: str = "") -> dict:
    """``text`` and ``ci_text`` ("" without an interval) of a value in ``places`` decimals."""
    ci = f"{number(low, places)} – {number(high, places)}" if _finite(low, high) else ""
    return {f"{prefix}text": number(value, places), f"{prefix}ci_text": ci}


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
    diff_low, diff_high, method, and as text text and ci_text in the column's one format (as
    :func:`summary_rows`), diff_text and diff_ci_text in one format for the metric's
    differences; a ci_text is "" without an interval) and ``tied`` (the labels not
    significantly different from the best). ``verdict`` is "best", or from the comparisons row
    pairing the label with the best: "not significantly different" (its interval of the
    difference holds 0), "significantly different", or "no interval". In trajectory mode the
    list is empty.
    """
    if comparison.mode != "models":
        return []
    rows, labels, out = _comparison_rows(comparison), ordered_labels(comparison), []
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
        places = column_decimals(c)
        diffs = [(i["difference"], i["diff_low"], i["diff_high"]) for i in items
                 if i["verdict"] != "best" and _finite(i["difference"])]  # fmt: skip
        diff_places = max((decimals(c.metric, *d) for d in diffs), default=places)
        for i in items:
            i.update(_texts(i["value"], i["ci_low"], i["ci_high"], places))
            i.update(_texts(i["difference"], i["diff_low"], i["diff_high"], diff_places, "diff_"))
        tied = [i["label"] for i in items if i["verdict"] == "not significantly different"]
        out.append({"analysis": c.analysis, "metric": c.metric, "feature_space": c.feature_space,
                    "name": c.name, "ideal": c.ideal, "order": items, "tied": tied})  # fmt: skip
    return out
