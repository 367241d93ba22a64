"""Tables for papers: the headline metrics as booktabs LaTeX (pandas' Styler.to_latex).

Every text cell is escaped (``_`` -> ``\\_``, ``%`` -> ``\\%``, ...); numbers are written as the
HTML report writes them (:mod:`ganalyze.report.numbers`: one format per metric, the same for
value and interval). The tables need ``\\usepackage{booktabs}`` and nothing else.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from ganalyze.report.numbers import decimals, number

# (analysis, metric, feature_space): the headline metrics of a report and of a comparison.
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
# A report's table adds the digit-adjusted copy rate, the one its verdict uses.
REPORT_HEADLINE = (*HEADLINE[:4], ("memorization", "copy_rate_adjusted", "pixel"), *HEADLINE[4:])

_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
            "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}",
            "^": r"\textasciicircum{}", "–": "--", "−": "-"}  # fmt: skip


def escape(text: Any) -> str:
    """``text`` with LaTeX's special characters escaped (as Styler's ``escape="latex"``), and
    en dashes as ``--``."""
    return "".join(_SPECIAL.get(ch, ch) for ch in str(text))


def _finite(value: Any) -> bool:
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def cell(value: Any, low: Any, high: Any, places: int) -> str:
    """``0.0595 [0.0550, 0.0643]``, the interval left out when there is none; ``--`` for no
    value. Plain text: the Styler escapes it."""
    if not _finite(value):
        return "--"
    text = number(value, places)
    if _finite(low) and _finite(high):
        text += f" [{number(low, places)}, {number(high, places)}]"
    return text


def _ideal(higher_is_better: Any, target: Any) -> str:
    if higher_is_better is True or higher_is_better is False:
        return "higher" if higher_is_better else "lower"
    return f"target {number(target, decimals('', target))}" if _finite(target) else ""


def _to_latex(styler, frame: pd.DataFrame, caption: str, label: str, align: str) -> str:
    return styler.hide(axis="index").to_latex(
        hrules=True,  # booktabs: \toprule, \midrule, \bottomrule
        column_format=align,
        environment="table",
        position_float="centering",
        caption=escape(caption),
        label=label,
    )


def report_latex(report) -> str:
    """The headline metrics of ``report`` (those of :data:`REPORT_HEADLINE` it has) as a
    booktabs table: analysis, metric, space, value, 95% interval, ideal."""
    rows = []
    frame = report.metrics
    spaces = frame["feature_space"].fillna("").astype(str)
    for analysis, metric, space in REPORT_HEADLINE:
        hit = frame[(frame["analysis"] == analysis) & (frame["metric"] == metric)
                    & (spaces == space)]  # fmt: skip
        if hit.empty:
            continue
        r = hit.iloc[0]
        places = decimals(metric, r["value"], r["ci_low"], r["ci_high"])
        has_ci = _finite(r["ci_low"]) and _finite(r["ci_high"])
        hib = None if pd.isna(r["higher_is_better"]) else bool(r["higher_is_better"])
        rows.append({"Analysis": analysis, "Metric": metric, "Space": space,
                     "Value": number(r["value"], places) if _finite(r["value"]) else "--",
                     "95% CI": (f"[{number(r['ci_low'], places)}, {number(r['ci_high'], places)}]"
                                if has_ci else ""),
                     "Ideal": _ideal(hib, r["target"])})  # fmt: skip
    table = pd.DataFrame(rows, columns=["Analysis", "Metric", "Space", "Value", "95% CI", "Ideal"])
    meta = report.meta
    caption = (f"Headline metrics of {meta.get('spec', 'the generator')} (ganalyze, "
               f"{meta.get('n_samples', '?')} samples, seed {meta.get('seed', '?')}); 95% "
               "intervals where the analysis gives one.")  # fmt: skip
    styler = table.style.format(escape="latex").format_index(escape="latex", axis=1)
    return _to_latex(styler, table, caption, "tab:ganalyze-metrics", "lllrrl")


def comparison_latex(comparison) -> str:
    """The comparison's model-by-metric table (one row per generator, one column per headline
    metric, value [95% interval]) with the best value of each column in bold."""
    from ganalyze.comparison.tables import headline_columns, ordered_labels

    labels, columns = ordered_labels(comparison), headline_columns(comparison)
    trajectory = comparison.mode == "trajectory"
    data: dict[str, list[str]] = {"Generator": labels}
    if trajectory:
        data["Step"] = [str(comparison.steps.get(lab, "")) for lab in labels]
    bold = pd.DataFrame(False, index=range(len(labels)), columns=list(data))
    for c in columns:
        values = [c.values.get(lab, (math.nan,) * 3) for lab in labels]
        places = max((decimals(c.metric, *v) for v in values if _finite(v[0])), default=0)
        header = escape(c.name) + {True: r" $\uparrow$", False: r" $\downarrow$"}.get(
            c.higher_is_better, "")  # fmt: skip
        if c.higher_is_better is None and c.target is not None:
            header += escape(f" (target {number(c.target, decimals('', c.target))})")
        data[header] = [cell(*v, places) for v in values]
        best = set(c.best(labels))
        bold[header] = [lab in best for lab in labels]
    table = pd.DataFrame(data)
    styler = table.style.format(escape="latex")
    styler = styler.apply(lambda _: bold.map(lambda b: "textbf: --rwrap;" if b else ""), axis=None)
    kind = "checkpoints of one run, by step" if trajectory else "generators"
    caption = (f"Headline metrics of {len(labels)} {kind} (ganalyze compare): value [95% "
               "interval]; best per column in bold (highest or lowest by the arrow, else closest "
               "to the target).")  # fmt: skip
    align = "l" * (2 if trajectory else 1) + "r" * len(columns)
    return _to_latex(styler, table, caption, "tab:ganalyze-comparison", align)
