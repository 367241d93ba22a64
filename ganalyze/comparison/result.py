"""The outcome of :func:`ganalyze.compare`: the reports of several generators side by side."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ganalyze.comparison.entries import Entry
from ganalyze.report import Report


@dataclass
class Comparison:
    """Several audits side by side.

    Attributes
    ----------
    entries
        The generators compared (:class:`Entry`), in order (by step in a trajectory).
    reports
        label -> :class:`~ganalyze.Report` of each generator whose audit completed.
    failures
        label -> the error that stopped its audit (the rest of the comparison completes).
    metrics
        The tidy metric rows of every report with the columns ``label``, ``step`` and ``spec``
        added in front.
    comparisons
        Differences between generators per metric with an interval (see
        :func:`ganalyze.comparison.stats.differences`).
    meta
        How the comparison was run: options, executor, which audits were reused, versions.
    """

    entries: list[Entry]
    reports: dict[str, Report]
    failures: dict[str, str] = field(default_factory=dict)
    metrics: pd.DataFrame = field(default_factory=pd.DataFrame)
    comparisons: pd.DataFrame = field(default_factory=pd.DataFrame)
    meta: dict[str, Any] = field(default_factory=dict)
    folder: Path | None = None

    @property
    def labels(self) -> list[str]:
        """Every entry's label, in order."""
        return [e.label for e in self.entries]

    @property
    def steps(self) -> dict[str, int | None]:
        return {e.label: e.step for e in self.entries}

    @property
    def mode(self) -> str:
        """ "trajectory" when every generator has a step (a training run), else "models"."""
        steps = [e.step for e in self.entries]
        return "trajectory" if steps and all(s is not None for s in steps) else "models"

    def save(self, directory: str | Path) -> Path:
        """Write the comparison to ``directory``: ``runs/<label>/`` (each generator's report),
        metrics.csv|parquet|json, comparisons.csv, meta.json, index.html and figures/. The
        folder is written beside and swapped in whole, as :meth:`Report.save` does. Returns the
        path of index.html."""
        from ganalyze._io import atomic_dir

        target = Path(os.path.abspath(Path(directory).expanduser()))
        with atomic_dir(target, is_comparison_dir, what="comparison") as tmp:
            self.write(tmp)
        self.moved(target)
        return target / "index.html"

    def write(self, out: Path) -> None:
        """Write every file into the (new, empty or staging) folder ``out``."""
        from ganalyze.comparison import save_json
        from ganalyze.comparison.view import write_outputs
        from ganalyze.report import _records

        runs = out / "runs"
        runs.mkdir(exist_ok=True)
        for entry in self.entries:
            report = self.reports.get(entry.label)
            target = runs / entry.folder
            if report is not None and report.folder is not None and not target.exists():
                shutil.copytree(report.folder, target)
        self.metrics.to_csv(out / "metrics.csv", index=False)
        self.metrics.to_parquet(out / "metrics.parquet", index=False)
        records = json.dumps(_records(self.metrics), indent=1, allow_nan=False)
        (out / "metrics.json").write_text(records + "\n", encoding="utf-8")
        self.comparisons.to_csv(out / "comparisons.csv", index=False)
        save_json(self.meta, out / "meta.json")
        write_outputs(self, out)

    def moved(self, target: Path) -> None:
        """Point the comparison and its reports at ``target`` once it is in place."""
        self.folder = target
        for entry in self.entries:
            if entry.label in self.reports:
                self.reports[entry.label].folder = target / "runs" / entry.folder

    def _repr_html_(self) -> str:
        from ganalyze.comparison.view import render_summary

        return render_summary(self)


COMPARISON_ENTRIES = frozenset({"index.html", "meta.json", "metrics.csv", "metrics.parquet",
                                "metrics.json", "metrics.tex", "comparisons.csv", "figures",
                                "runs"})  # fmt: skip


def is_comparison_dir(path: Path) -> bool:
    """Whether ``path`` holds a comparison that ganalyze wrote, and nothing else beside it."""
    if any(entry.name not in COMPARISON_ENTRIES for entry in path.iterdir()):
        return False
    try:
        meta = json.loads((path / "meta.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(meta, dict) and meta.get("comparison") is True
