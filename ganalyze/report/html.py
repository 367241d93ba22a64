"""Render a Report as one self-contained HTML file (Jinja2, autoescape on, StrictUndefined)."""

from __future__ import annotations

import base64
import io
import math
from typing import Any

import jinja2

_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("ganalyze", "report/templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def fmt(value: Any, digits: int = 4) -> str:
    """Numbers for people: 4 significant digits, integers as integers, NaN as an en dash."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int) or (
        isinstance(value, float) and value.is_integer() and abs(value) < 1e9
    ):
        return f"{int(value):d}"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


_ENV.filters["fmt"] = fmt


def png_bytes(fig: Any, cache: dict) -> bytes:
    """The figure as PNG, rendered once per report (the file and the inlined copy agree)."""
    key = id(fig)
    if key not in cache:
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
        cache[key] = buf.getvalue()
    return cache[key]


def png_base64(fig: Any, cache: dict) -> str:
    return base64.b64encode(png_bytes(fig, cache)).decode("ascii")


def _ideal(row: dict) -> str:
    if row["target"] is not None and not (
        isinstance(row["target"], float) and math.isnan(row["target"])
    ):
        return f"target {fmt(row['target'])}"
    hib = row["higher_is_better"]
    if hib is True:
        return "higher"
    if hib is False:
        return "lower"
    return "–"


def _context(report) -> dict:
    cache = report.__dict__.setdefault("_png_cache", {})
    sections = []
    for r in report.results:
        rows = []
        for m in r.metrics:
            rows.append(
                {
                    "name": m.name,
                    "space": m.feature_space,
                    "value": m.value,
                    "ci_low": m.ci_low,
                    "ci_high": m.ci_high,
                    "description": m.description,
                    "ideal": _ideal({"target": m.target, "higher_is_better": m.higher_is_better}),
                }
            )
        figures = [{"name": name, "png": png_base64(fig, cache)} for name, fig in r.figures.items()]
        tables = [
            {
                "name": name,
                "rows": len(t),
                "preview": t.head(10).to_html(
                    index=False, float_format=lambda v: fmt(float(v)), border=0, classes="data"
                ),
            }
            for name, t in r.tables.items()
        ]
        sections.append({"r": r, "rows": rows, "figures": figures, "tables": tables})
    return {
        "meta": report.meta,
        "sections": sections,
        "skipped": report.skipped,
        "flags": report.flags,
    }


def render(report) -> str:
    """The full report page."""
    return _ENV.get_template("report.html.j2").render(**_context(report))


def render_summary(report) -> str:
    """A compact notebook view: findings and the metrics table."""
    return _ENV.get_template("summary.html.j2").render(**_context(report))
