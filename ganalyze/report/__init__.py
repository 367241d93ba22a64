"""The audit report: header, findings, tidy metrics, figures, tables, one HTML file.

Computation, report structure and HTML are separate layers: analyses compute results, a
:class:`Report` holds them, :mod:`ganalyze.report.html` renders any result with one generic
section.
"""

from __future__ import annotations

import json
import logging
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ganalyze._io import atomic_path, write_text
from ganalyze.analyses.base import METRIC_COLUMNS, AnalysisResult

logger = logging.getLogger(__name__)


@dataclass
class Report:
    """The outcome of :func:`ganalyze.audit`.

    Attributes
    ----------
    meta
        What was audited and how: spec, file hash, latent size, n, seed, ranges, versions, date.
    results
        One :class:`AnalysisResult` per analysis that ran.
    skipped
        (analysis, reason) for each analysis that could not run.
    """

    meta: dict[str, Any]
    results: list[AnalysisResult] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)

    @property
    def metrics(self) -> pd.DataFrame:
        """Every number, one row each (columns: analysis, metric, value, ci_low, ci_high,
        higher_is_better, target, feature_space, n_real, n_fake)."""
        frames = [r.metrics_frame() for r in self.results]
        if not frames:
            return pd.DataFrame(columns=METRIC_COLUMNS)
        return pd.concat(frames, ignore_index=True)

    @property
    def flags(self) -> list[tuple[str, Any]]:
        """(analysis, Flag) for every finding."""
        return [(r.name, f) for r in self.results for f in r.flags]

    def result(self, name: str) -> AnalysisResult:
        for r in self.results:
            if r.name == name:
                return r
        raise KeyError(f"no result for analysis {name!r}; ran: {[r.name for r in self.results]}")

    def to_frame(self, wide: bool = False) -> pd.DataFrame:
        """The metrics; ``wide=True`` gives one row for this spec and one column per
        analysis/metric[/feature_space], so reports of several checkpoints concatenate."""
        frame = self.metrics
        if not wide:
            return frame
        cols = [
            "/".join(p for p in (a, m, s) if p)
            for a, m, s in zip(frame.analysis, frame.metric, frame.feature_space, strict=True)
        ]
        return pd.DataFrame(
            [frame["value"].to_numpy()],
            columns=cols,
            index=pd.Index([self.meta["spec"]], name="spec"),
        )

    def to_html(self) -> str:
        from ganalyze.report.html import render

        return render(self)

    def _repr_html_(self) -> str:
        from ganalyze.report.html import render_summary

        return render_summary(self)

    def save(self, directory: str | Path) -> Path:
        """Write index.html, metrics.csv/json, meta.json, figures/ and tables/ to ``directory``.

        Returns the path of index.html.
        """
        from ganalyze.report.html import png_bytes

        out = Path(directory)
        (out / "figures").mkdir(parents=True, exist_ok=True)
        for r in self.results:
            for name, fig in r.figures.items():
                stem = out / "figures" / f"{r.name}_{name}"
                with atomic_path(stem.with_suffix(".png")) as tmp:
                    tmp.write_bytes(png_bytes(fig, self.__dict__.setdefault("_png_cache", {})))
                with atomic_path(stem.with_suffix(".pdf")) as tmp:
                    fig.savefig(tmp, format="pdf", bbox_inches="tight")
            for name, table in r.tables.items():
                stem = out / "tables" / f"{r.name}_{name}"
                with atomic_path(stem.with_suffix(".csv")) as tmp:
                    table.to_csv(tmp, index=False)
                with atomic_path(stem.with_suffix(".parquet")) as tmp:
                    table.to_parquet(tmp, index=False)
        metrics = self.metrics
        with atomic_path(out / "metrics.csv") as tmp:
            metrics.to_csv(tmp, index=False)
        write_text(
            json.dumps(_records(metrics), indent=1, allow_nan=False) + "\n", out / "metrics.json"
        )
        write_text(json.dumps(_jsonable(self.meta), indent=1) + "\n", out / "meta.json")
        index = write_text(self.to_html(), out / "index.html")
        logger.info("report written to %s", index)
        return index


def _records(frame: pd.DataFrame) -> list[dict]:
    """Rows as JSON records with NaN and NA written as null."""
    rows = []
    for rec in frame.astype(object).to_dict("records"):
        rows.append(
            {
                k: (
                    None
                    if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v))
                    else v
                )
                for k, v in rec.items()
            }
        )
    return rows


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


def default_name(spec: str) -> str:
    """A folder name for a spec: its file stem or entry-point name, made filesystem-safe."""
    base = (
        spec.rstrip("/\\").rsplit(":", 1)[-1]
        if ":" in spec and not Path(spec).exists()
        else (Path(spec).stem or Path(spec).name)
    )
    return re.sub(r"[^A-Za-z0-9._-]+", "_", base).strip("._") or "report"
