"""The audit report: header, findings, tidy metrics, figures, tables, one HTML file.

Computation, report structure and HTML are separate layers: analyses compute results, a
:class:`Report` holds them, :mod:`ganalyze.report.html` renders any result with one generic
section.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ganalyze._io import atomic_dir
from ganalyze.analyses.base import METRIC_COLUMNS, AnalysisResult

logger = logging.getLogger(__name__)


@dataclass
class Report:
    """The outcome of :func:`ganalyze.audit`.

    Attributes
    ----------
    meta
        What was audited and how, as plain values: spec, kind, file hash, latent size and
        prior, n, seed, output range and its source, native shape, discriminator, member set,
        analyses and their parameters, neighbour search and its measured recall, versions,
        date. The header (:attr:`header`) is formatted from it when rendered.
    results
        One :class:`AnalysisResult` per analysis that ran.
    skipped
        (analysis, reason) for each analysis that could not run.
    """

    meta: dict[str, Any]
    results: list[AnalysisResult] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    preview: Any = None  # uint8 (k, 28, 28): the first samples, for grids across reports
    folder: Path | None = None  # where it was saved or loaded from

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

    @property
    def header(self) -> list[tuple[str, str]]:
        """The rows (label, text) of the report's header, formatted from ``meta``."""
        from ganalyze.report.html import header_rows

        return header_rows(self.meta)

    def result(self, name: str) -> AnalysisResult:
        for r in self.results:
            if r.name == name:
                return r
        raise KeyError(f"no result for analysis {name!r}; ran: {[r.name for r in self.results]}")

    @property
    def label(self) -> str:
        """A name for this report's row in tables of several reports: ``meta["label"]`` when
        set (by :func:`ganalyze.compare`), else the spec with its weights file, if any."""
        if self.meta.get("label"):
            return str(self.meta["label"])
        spec = str(self.meta.get("spec", "report"))
        weights = self.meta.get("weights")
        return f"{spec} [weights {weights}]" if weights else spec

    def to_frame(self, wide: bool = False, intervals: bool = False) -> pd.DataFrame:
        """The metrics; ``wide=True`` gives one row, indexed by :attr:`label`, with one column
        per analysis/metric[/feature_space], so that reports of several generators concatenate
        (``pd.concat([r.to_frame(wide=True) for r in reports])``) into a model-by-metric table.
        ``intervals=True`` adds the columns ``<column>/ci_low`` and ``<column>/ci_high``."""
        frame = self.metrics
        if not wide:
            return frame
        cols = wide_columns(frame)
        values = dict(zip(cols, frame["value"].to_numpy(), strict=True))
        if intervals:
            for col, low, high in zip(cols, frame["ci_low"], frame["ci_high"], strict=True):
                values[f"{col}/ci_low"], values[f"{col}/ci_high"] = low, high
        return pd.DataFrame([values], index=pd.Index([self.label], name="label"))

    @property
    def verdicts(self) -> list:
        """One :class:`~ganalyze.report.verdicts.Verdict` per question the report answers
        (copying, digits missed or over-produced, D memorizing, closeness to real digits,
        smooth latent walks), each with its numbers and a status (ok, warn, bad, na)."""
        from ganalyze.report.verdicts import verdicts

        return verdicts(self)

    def to_latex(self) -> str:
        """The headline metrics with their 95% intervals as a booktabs LaTeX table (what
        :meth:`save` writes to metrics.tex); needs ``\\usepackage{booktabs}``."""
        from ganalyze.report.latex import report_latex

        return report_latex(self)

    def __getstate__(self) -> dict[str, Any]:
        """Pickled without figures still being rendered by a helper (they are rendered again
        when the copy is saved)."""
        state = dict(self.__dict__)
        state.pop("_figure_files", None)
        return state

    def to_html(self) -> str:
        from ganalyze.report.html import render

        return render(self)

    def _repr_html_(self) -> str:
        from ganalyze.report.html import render_summary

        return render_summary(self)

    def save(self, directory: str | Path) -> Path:
        """Write index.html, metrics.csv/json/tex, meta.json, figures/ and tables/ to
        ``directory`` (figures as PNG and as PDF with TrueType fonts).

        The report is written into a hidden sibling folder and swapped in whole: a folder that
        held an earlier report ends up holding this report's files only, and an interrupted
        save leaves the earlier report as it was. A non-empty ``directory`` that is not a
        ganalyze report, or holds other files beside one, is refused
        (:class:`~ganalyze.errors.InputError`), never deleted.

        Returns the path of index.html.
        """
        from ganalyze.report.figures import figure_files, settle

        target = Path(os.path.abspath(Path(directory).expanduser()))
        settle(self)  # figures a helper process has not rendered yet are rendered here
        with atomic_dir(target, is_report_dir, what="report") as out:
            (out / "figures").mkdir()
            if any(r.tables for r in self.results):
                (out / "tables").mkdir()
            for r in self.results:
                for name in r.figures:  # drawn from the result's data, here or by a helper
                    stem = out / "figures" / f"{r.name}_{name}"
                    files = figure_files(self, r, name)
                    stem.with_suffix(".png").write_bytes(files.png)
                    stem.with_suffix(".pdf").write_bytes(files.pdf)
                for name, table in r.tables.items():
                    stem = out / "tables" / f"{r.name}_{name}"
                    table.to_csv(stem.with_suffix(".csv"), index=False)
                    table.to_parquet(stem.with_suffix(".parquet"), index=False)
            metrics = self.metrics
            metrics.to_csv(out / "metrics.csv", index=False)
            records = json.dumps(_records(metrics), indent=1, allow_nan=False)
            (out / "metrics.json").write_text(records + "\n", encoding="utf-8")
            (out / "metrics.tex").write_text(self.to_latex(), encoding="utf-8")
            meta = json.dumps(_jsonable(self.meta), indent=1)
            (out / "meta.json").write_text(meta + "\n", encoding="utf-8")
            results = json.dumps(_jsonable(self._results_record()), indent=1, allow_nan=False)
            (out / "results.json").write_text(results + "\n", encoding="utf-8")
            if self.preview is not None:
                np.save(out / "preview.npy", np.asarray(self.preview, dtype=np.uint8),
                        allow_pickle=False)  # fmt: skip
            (out / "index.html").write_text(self.to_html(), encoding="utf-8")
        index = target / "index.html"
        self.folder = target
        logger.info("report written to %s", index)
        return index

    def _results_record(self) -> dict[str, Any]:
        """What results.json holds: per analysis its title, description, metric descriptions,
        flags, notes and rules, and the skipped analyses (what :meth:`load` restores)."""
        return {
            "results": [
                {
                    "name": r.name, "title": r.title, "description": r.description,
                    "descriptions": {m.name: m.description for m in r.metrics},
                    "flags": [{"message": f.message, "rule": f.rule, "metrics": list(f.metrics)}
                              for f in r.flags],
                    "notes": list(r.notes), "rules": list(r.rules),
                    "tables": sorted(r.tables),
                }
                for r in self.results
            ],
            "skipped": [list(item) for item in self.skipped],
        }  # fmt: skip

    @classmethod
    def load(cls, directory: str | Path) -> Report:
        """A report saved by :meth:`save`, read back: meta, metrics (as saved, to the last
        digit), flags, notes, skipped analyses, tables (from their parquet files) and the
        preview. Figures stay files in ``figures/``; nothing is unpickled.

        Raises
        ------
        InputError
            When ``directory`` holds no report saved by this version of ganalyze.
        """
        from ganalyze.analyses.base import Flag, Metric
        from ganalyze.errors import InputError

        folder = Path(directory).expanduser()
        try:
            meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
            record = json.loads((folder / "results.json").read_text(encoding="utf-8"))
            metrics = read_metrics(folder / "metrics.csv")
        except (OSError, ValueError) as exc:
            raise InputError(f"{folder} holds no complete ganalyze report (meta.json, "
                             f"results.json and metrics.csv): {exc}. Write it again with "
                             "`ganalyze report`.") from None  # fmt: skip
        report = cls(meta=meta, skipped=[tuple(s) for s in record["skipped"]], folder=folder)
        for item in record["results"]:
            rows = metrics[metrics["analysis"] == item["name"]]
            res = AnalysisResult(item["name"], item["title"], item["description"],
                                 notes=item["notes"], rules=item["rules"])  # fmt: skip
            res.flags = [Flag(f["message"], f["rule"], f["metrics"]) for f in item["flags"]]
            for row in rows.to_dict("records"):
                res.metrics.append(Metric(
                    name=row["metric"], value=row["value"],
                    description=item["descriptions"].get(row["metric"], ""),
                    higher_is_better=None if pd.isna(row["higher_is_better"])
                    else bool(row["higher_is_better"]),
                    target=None if pd.isna(row["target"]) else row["target"],
                    ci_low=row["ci_low"], ci_high=row["ci_high"],
                    feature_space=row["feature_space"],
                    n_real=None if pd.isna(row["n_real"]) else int(row["n_real"]),
                    n_fake=None if pd.isna(row["n_fake"]) else int(row["n_fake"])))  # fmt: skip
            for name in item["tables"]:
                path = folder / "tables" / f"{item['name']}_{name}.parquet"
                if path.is_file():  # a trimmed folder (the committed showcase) may lack some
                    res.tables[name] = pd.read_parquet(path)
            report.results.append(res)
        if (folder / "preview.npy").is_file():
            report.preview = np.load(folder / "preview.npy", allow_pickle=False)
        return report


REPORT_ENTRIES = frozenset({"index.html", "meta.json", "metrics.csv", "metrics.json",
                            "metrics.tex", "results.json", "preview.npy", "figures",
                            "tables"})  # fmt: skip


def wide_columns(frame: pd.DataFrame) -> list[str]:
    """The column names of tidy metric rows in a wide table: analysis/metric[/feature_space]."""
    return [
        "/".join(p for p in (a, m, s) if isinstance(p, str) and p)
        for a, m, s in zip(frame.analysis, frame.metric, frame.feature_space, strict=True)
    ]


METRIC_DTYPES = {"analysis": "string", "metric": "string", "feature_space": "string",
                 "higher_is_better": "boolean", "n_real": "Int64", "n_fake": "Int64"}  # fmt: skip


def read_metrics(path: str | Path) -> pd.DataFrame:
    """A saved metrics.csv with the dtypes it was written with (text, nullable booleans and
    integers, floats to the last digit; an empty feature_space stays empty)."""
    frame = pd.read_csv(
        path,
        dtype=METRIC_DTYPES,
        keep_default_na=False,
        na_values={c: [""] for c in METRIC_COLUMNS if c != "feature_space"},
    )
    missing = [c for c in METRIC_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"metrics.csv lacks the columns {missing}")
    for col in ("analysis", "metric", "feature_space"):
        frame[col] = frame[col].astype(object)
    return frame


def is_report_dir(path: Path) -> bool:
    """Whether ``path`` holds a report that ganalyze wrote (its meta.json or index.html) and
    nothing else beside it: a file the user added there is never deleted by the next save."""
    if any(entry.name not in REPORT_ENTRIES for entry in path.iterdir()):
        return False
    try:
        meta = json.loads((path / "meta.json").read_text(encoding="utf-8"))
        if isinstance(meta, dict) and "ganalyze" in (meta.get("versions") or {}):
            return True
    except (OSError, ValueError, TypeError):
        pass
    try:
        with open(path / "index.html", encoding="utf-8", errors="replace") as fh:
            return "<title>ganalyze report:" in fh.read(4096)
    except OSError:
        return False


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
    """The default report folder name of a spec: ``<folder>-<name>-<hash>``.

    ``<folder>`` is the folder of the file (its run folder for a file in ``checkpoints/``),
    ``<name>`` the file stem or the entry point's module and callable, ``<hash>`` the first 8 hex
    digits of the SHA-256 of the resolved spec (absolute path, or ``path.py:name`` with the path
    resolved). Readable, deterministic, and different for different specs:
    ``runs/a/latest.pt`` -> ``a-latest-<hash>``, ``runs/b/latest.pt`` -> ``b-latest-<hash>``.
    """
    path = Path(spec).expanduser()
    if ":" in spec and not path.exists():
        source, _, attr = spec.rstrip("/\\").rpartition(":")
        src = Path(source).expanduser()
        if src.suffix == ".py":
            key, parts = f"{src.resolve()}:{attr}", [src.stem, attr]
        else:
            key, parts = f"{source}:{attr}", [source.rsplit(".", 1)[-1], attr]
    else:
        resolved = path.resolve()
        folder = resolved.parent
        if folder.name == "checkpoints":
            folder = folder.parent
        key, parts = str(resolved), [folder.name, resolved.stem or resolved.name]
    digest = hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()[:8]
    safe = [re.sub(r"[^A-Za-z0-9._-]+", "_", p).strip("._-") for p in parts]
    return "-".join([*(p for p in safe if p), digest])
