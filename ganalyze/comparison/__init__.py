"""``compare(specs, ...) -> Comparison``: audit several generators and put them side by side.

The specs are expanded into entries (:mod:`ganalyze.comparison.specs`), each audited once or taken
from the result cache (:mod:`ganalyze.comparison.runner`), in this process, in local processes or on
a Dask cluster, with the same results. The comparison reads the reports only: their tidy rows,
their per-sample tables (for paired intervals, :mod:`ganalyze.comparison.stats`) and their flags.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from ganalyze.comparison.entries import Entry
from ganalyze.comparison.result import Comparison, is_comparison_dir
from ganalyze.comparison.runner import Outcome, Settings, run_dask, run_processes, run_serial
from ganalyze.errors import InputError

logger = logging.getLogger(__name__)

__all__ = ["Comparison", "Entry", "compare", "default_folder"]


def compare(
    specs: str | Path | Iterable[str | Path],
    *,
    out: str | Path | None = None,
    n_samples: int | None = None,
    seed: int = 0,
    analyses: str | Iterable[str] | None = None,
    params: Mapping[str, Mapping[str, Any]] | None = None,
    workers: int = 1,
    scheduler: Any = None,
    data_dir: str | Path | None = None,
    device: str = "cpu",
    cache: bool = True,
    pairs: str = "auto",
    load: Mapping[str, Any] | None = None,
) -> Comparison:
    """Audit every generator of ``specs`` with the same options and compare them.

    Parameters
    ----------
    specs
        Anything :func:`ganalyze.audit` accepts, ``ganalyze train`` run folders (every
        checkpoint, ordered by epoch) and manifests (.csv / .toml, one row per generator:
        spec, label, step, discriminator, weights, latent_dim, prior, output_range,
        d_input_range, d_output, train_indices; relative paths against the manifest's folder).
    out
        Folder to write the comparison to (``runs/<label>/`` per generator, metrics, comparisons,
        index.html, figures), swapped in whole at the end; None: write nothing (see
        :meth:`Comparison.save`).
    n_samples, seed, analyses, params
        As for :func:`ganalyze.audit`, the same for every generator: with one seed and one
        latent size, every generator gets the same latents (paired comparisons).
    workers
        Local processes to run the audits in (1: this process).
    scheduler
        The address of a Dask distributed scheduler ("tcp://host:8786") or a
        ``distributed.Client``: one task per generator on its workers (which need ganalyze,
        MNIST and a writable cache; ``out`` must be on a file system they share).
    cache
        Reuse the saved result of an audit whose files, options and versions are unchanged
        ($GANALYZE_CACHE/results/), and save new ones there.
    load
        Loading options (:class:`ganalyze.LoadOptions` fields, e.g. ``{"num_classes": 10}``)
        for every generator; a manifest row's own columns take precedence.
    pairs
        Which differences ``comparisons`` holds: "all" pairs, each against the "best", or
        "auto" (all pairs for up to 6 generators).

    Returns
    -------
    Comparison
        ``metrics`` (tidy rows with label, step and spec), ``comparisons``, ``reports``,
        ``failures``; an audit that fails is reported for its generator, the others complete.

    Raises
    ------
    InputError
        A bad spec, manifest row or run folder, duplicate labels, options out of range, mixed
        latent sizes in a trajectory, or no audit that completed. Nothing is written then.
    """
    from ganalyze.comparison.specs import expand_specs
    from ganalyze.pipeline import SEED_MAX, _check_int, analysis_params, select_analyses

    entries = expand_specs([specs] if isinstance(specs, str | Path) else list(specs))
    entries = _with_defaults(entries, load)
    names = select_analyses(analyses)
    analysis_params(params, names)  # checked here, before any audit
    _check_int("n_samples", n_samples, 1, None, "Draw at least one sample (default 10,000).")
    _check_int("seed", seed, 0, SEED_MAX, f"Use a seed from 0 to {SEED_MAX} (2^32 - 1).")
    _check_int("workers", workers, 1, 256, "Use --workers 1 (this process) up to 256.")
    if pairs not in ("auto", "all", "best"):
        raise InputError(f"pairs must be auto, all or best; got {pairs!r}.")
    settings = Settings(n_samples=n_samples, seed=seed,
                        analyses=tuple(names) if analyses is not None else None,
                        params={k: dict(v) for k, v in (params or {}).items()},
                        data_dir=str(data_dir) if data_dir is not None else None,
                        device=device, cache=cache)  # fmt: skip
    executor = "dask" if scheduler is not None else "processes" if workers > 1 else "serial"
    if out is None:
        outcomes = _run(entries, settings, None, workers, scheduler)
        return _assemble(entries, outcomes, settings, executor, pairs)
    from ganalyze._io import atomic_dir

    target = Path(os.path.abspath(Path(out).expanduser()))
    with atomic_dir(target, is_comparison_dir, what="comparison") as tmp:
        outcomes = _run(entries, settings, str(tmp / "runs"), workers, scheduler)
        comparison = _assemble(entries, outcomes, settings, executor, pairs)
        comparison.write(tmp)
    comparison.moved(target)
    return comparison


def _with_defaults(entries: list[Entry], load: Mapping[str, Any] | None) -> list[Entry]:
    """The entries with the loading options every generator shares (a row's own win), each
    combination checked as LoadOptions checks it."""
    import dataclasses

    from ganalyze.generators import LoadOptions

    if load is None:
        return entries
    if isinstance(load, LoadOptions):
        defaults = {f.name: getattr(load, f.name) for f in dataclasses.fields(LoadOptions)
                    if getattr(load, f.name) != f.default}  # fmt: skip
    else:
        defaults = {k: v for k, v in dict(load).items() if v is not None}
    LoadOptions(**defaults)  # a misspelt or bad option fails here, before any audit
    return [dataclasses.replace(e, load={**defaults, **e.load}) for e in entries]


def _run(entries, settings, runs, workers, scheduler) -> list[Outcome]:
    if runs is not None:
        Path(runs).mkdir(parents=True, exist_ok=True)
    if scheduler is not None:
        return run_dask(entries, settings, runs, scheduler)
    if workers > 1 and len(entries) > 1:
        return run_processes(entries, settings, runs, min(workers, len(entries)))
    return run_serial(entries, settings, runs)


def _assemble(entries: list[Entry], outcomes: list[Outcome], settings: Settings,
              executor: str, pairs: str) -> Comparison:  # fmt: skip
    from ganalyze.comparison.stats import differences, per_sample_values

    reports = {o.label: o.report for o in outcomes if o.report is not None}
    failures = {o.label: o.error for o in outcomes if o.error is not None}
    if not reports:
        if len(failures) > 1 and len(set(failures.values())) == 1:  # one cause (MNIST missing)
            labels = ", ".join(list(failures)[:5]) + (", ..." if len(failures) > 5 else "")
            error = next(iter(failures.values()))
            raise InputError(f"No audit completed: all {len(failures)} generators ({labels}) "
                             f"failed with {error}")  # fmt: skip
        shown = list(failures.items())[:3]
        detail = "; ".join(f"{label}: {error}" for label, error in shown)
        more = f"; and {len(failures) - 3} more" if len(failures) > 3 else ""
        raise InputError(f"No audit completed. {detail}{more}")
    comparison = Comparison(entries=entries, reports=reports, failures=failures)
    _check_latents(comparison)
    comparison.metrics = tidy_metrics(entries, reports)
    samples = {label: per_sample_values(r) for label, r in reports.items()}
    order = [e.label for e in entries if e.label in reports]
    comparison.comparisons = differences(
        comparison.metrics, samples, order=order, pairs=pairs, seed=settings.seed,
        paired=lambda a, b: paired(reports[a].meta, reports[b].meta))  # fmt: skip
    from ganalyze import __version__

    comparison.meta = {
        "comparison": True, "mode": comparison.mode, "executor": executor,
        "settings": {**settings.__dict__, "analyses": list(settings.analyses or []) or None},
        "entries": [e.to_dict() for e in entries],
        "reused": [o.label for o in outcomes if o.reused],
        "audited": [o.label for o in outcomes if o.report is not None and not o.reused],
        "failures": failures,
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "versions": {"ganalyze": __version__},
    }  # fmt: skip
    return comparison


def paired(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """Whether two audits sampled the same latents: both generators, one seed, one prior, one
    latent size and one sample count."""
    keys = ("seed", "latent_dim", "prior", "n_samples")
    return bool(a.get("has_generator") and b.get("has_generator")
                and all(a.get(k) == b.get(k) for k in keys))  # fmt: skip


def _check_latents(comparison: Comparison) -> None:
    """A trajectory compares the same latents across steps: its latent sizes must agree."""
    if comparison.mode != "trajectory":
        return
    sizes = {label: r.meta.get("latent_dim") for label, r in comparison.reports.items()
             if r.meta.get("has_generator")}  # fmt: skip
    if len(set(sizes.values())) > 1:
        listed = ", ".join(f"{label}: {size}" for label, size in sizes.items())
        raise InputError(
            f"A trajectory compares the same latents across steps, but the latent "
            f"sizes differ ({listed}). Compare checkpoints of one run, or leave "
            "out the steps (a model comparison) to compare them unpaired."
        )


def tidy_metrics(entries: list[Entry], reports: Mapping[str, Any]) -> pd.DataFrame:
    """The metric rows of every report, with label, step and spec in front (the reports'
    metrics.csv concatenated, the three columns added)."""
    frames = []
    for e in entries:
        if e.label not in reports:
            continue
        frame = reports[e.label].metrics.copy()
        frame.insert(0, "spec", e.spec)
        frame.insert(0, "step", pd.array([e.step] * len(frame), dtype="Int64"))
        frame.insert(0, "label", e.label)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def default_folder(specs: Iterable[str | Path]) -> Path:
    """``reports/compare-<name>``: the first spec's name (a run folder's, a manifest's stem),
    with the number of further specs, and 8 hex digits of all of them resolved."""
    import hashlib

    from ganalyze.report import default_name

    specs = [str(s) for s in specs]
    first = default_name(specs[0]).rsplit("-", 1)[0]
    if Path(specs[0]).is_dir():
        first = Path(specs[0]).resolve().name
    elif Path(specs[0]).suffix.lower() in (".csv", ".toml"):
        first = Path(specs[0]).stem
    more = f"-and-{len(specs) - 1}-more" if len(specs) > 1 else ""
    key = "\0".join(os.path.abspath(s) if Path(s).exists() else s for s in specs)
    digest = hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()[:8]
    return Path("reports") / f"compare-{first}{more}-{digest}"


def save_json(value: Any, path: Path) -> None:
    from ganalyze.report import _jsonable

    path.write_text(json.dumps(_jsonable(value), indent=1) + "\n", encoding="utf-8")
