"""One audit per entry, cached, run in this process, in local processes or on a Dask cluster.

An audit is a pure function of (entry, settings, reference data): :func:`run_entry` audits an
entry unless its result is in the cache (``$GANALYZE_CACHE/results/<key>/``, a saved report),
copies the report into ``runs/<label>/`` of the output folder when there is one, and returns it
read back from disk, so that a fresh, a cached and a remote result are the same thing. The key
hashes the contents of every file the entry names, the options, the reference data, the ganalyze
version and the classifier weights.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import secrets
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ganalyze.comparison.entries import Entry
from ganalyze.errors import GanalyzeError, InputError

logger = logging.getLogger(__name__)

RESULTS_VERSION = "1"  # bump when a saved report's layout changes


@dataclass(frozen=True)
class Settings:
    """The options every audit of a comparison shares."""

    n_samples: int | None = None
    seed: int = 0
    analyses: tuple[str, ...] | None = None
    params: dict[str, dict[str, Any]] = field(default_factory=dict)
    data_dir: str | None = None
    device: str = "cpu"
    cache: bool = True


@dataclass
class Outcome:
    """What one audit task returns: the report read back from disk, or the error."""

    label: str
    report: Any = None  # ganalyze.report.Report
    error: str | None = None
    reused: bool = False


# One reference data object per worker process: MNIST and its cached arrays are read once per
# worker. A serial comparison keeps its own, which goes when the comparison ends.
_REFERENCES: dict[str | None, Any] = {}


def _reference(data_dir: str | None, store: dict[str | None, Any] | None = None):
    """The reference data for ``data_dir``, read once per ``store`` (default: this process's);
    a failure to read it is raised again for every audit that asks, as its own error."""
    from ganalyze.reference import ReferenceData

    store = _REFERENCES if store is None else store
    if data_dir not in store:
        store[data_dir] = ReferenceData(data_dir, progress=False)
    return store[data_dir]


def file_digest(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a file, or of a folder's files (names and contents, sorted)."""
    path = Path(path)
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        digest.update(str(file.relative_to(path)).encode() if path.is_dir() else b"")
        with open(file, "rb") as fh:
            while chunk := fh.read(1 << 22):
                digest.update(chunk)
    return digest.hexdigest()


def cache_key(entry: Entry, settings: Settings, reference_key: str) -> str | None:
    """The result cache's key of an entry, or None when it cannot be keyed by content (a
    ``package.module:name`` entry point: its code is only found by importing it)."""
    from ganalyze import __version__
    from ganalyze.analyses.base import params_dict
    from ganalyze.classifier.model import WEIGHTS_PATH, file_sha256
    from ganalyze.pipeline import analysis_params, select_analyses

    source, colon, _ = entry.spec.rpartition(":")
    if Path(entry.spec).exists():
        spec_digest = file_digest(entry.spec)
    elif colon and source.endswith(".py") and Path(source).is_file():
        spec_digest = file_digest(source) + entry.spec.rpartition(":")[2]
    else:
        return None
    names = select_analyses(settings.analyses)
    chosen = analysis_params(settings.params, names)
    files = {k: file_digest(v) for k, v in entry.load.items()
             if k in ("discriminator", "weights")}  # fmt: skip
    record = {
        "version": RESULTS_VERSION, "ganalyze": __version__, "spec": spec_digest,
        "classifier": file_sha256(WEIGHTS_PATH), "reference": reference_key,
        "load": {k: files.get(k, v) for k, v in sorted(entry.load.items())},
        "train_indices": file_digest(entry.train_indices) if entry.train_indices else None,
        "n_samples": settings.n_samples, "seed": settings.seed, "analyses": names,
        "params": {n: params_dict(p) for n, p in chosen.items()},
        "device": str(settings.device),
    }  # fmt: skip
    text = json.dumps(record, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def results_dir() -> Path:
    from ganalyze.data import cache_dir

    return cache_dir() / "results"


def run_entry(
    entry: Entry,
    settings: Settings,
    runs: str | None = None,
    renderer: Any = None,
    references: dict[str | None, Any] | None = None,
) -> Outcome:
    """Audit ``entry`` (or take its cached result) and return it as an :class:`Outcome`; the
    report is copied to ``runs/<folder>/`` when ``runs`` is given. Never raises for a bad
    entry: its error is in the outcome, so that the other audits complete. ``renderer``: a
    :class:`~ganalyze.report.figures.BackgroundRenderer` for the audit's figures;
    ``references``: where the :class:`~ganalyze.reference.ReferenceData` is read once and kept
    (default: this process, for the audits still to come)."""
    try:
        return _run_entry(entry, settings, runs, renderer, references)
    except GanalyzeError as exc:
        return Outcome(entry.label, error=str(exc))
    except Exception as exc:  # a bug or a foreign failure: reported for this entry only
        logger.debug("audit of %s failed", entry.label, exc_info=True)
        return Outcome(entry.label, error=f"{type(exc).__name__}: {exc}")


def _run_entry(
    entry: Entry, settings: Settings, runs: str | None, renderer: Any, references: Any
) -> Outcome:
    from ganalyze.generators import LoadOptions
    from ganalyze.pipeline import audit
    from ganalyze.report import Report

    reference = _reference(settings.data_dir, references)
    key = cache_key(entry, settings, reference.key) if settings.cache else None
    stored = results_dir() / key if key else None
    reused = stored is not None and (stored / "results.json").is_file()
    if not reused:
        report = audit(
            entry.spec, n_samples=settings.n_samples, seed=settings.seed,
            analyses=settings.analyses, params=settings.params, reference=reference,
            progress=False, renderer=renderer,  # compare logs one line per audit
            train_indices=entry.train_indices, load=LoadOptions(device=settings.device,
                                                                **entry.load),
        )  # fmt: skip
        if stored is None:  # not keyed: kept only where the comparison is written
            stored = results_dir() / f"unkeyed-{secrets.token_hex(8)}"
        _save(report, stored)
    if runs is None:
        loaded = Report.load(stored)
    else:
        target = Path(runs) / entry.folder
        _copy_report(stored, target)
        _label_meta(target, entry)
        loaded = Report.load(target)
    loaded.meta.update(label=entry.label, step=entry.step)
    return Outcome(entry.label, loaded, reused=reused)


def _save(report, stored: Path) -> None:
    """Save to the cache; when another process saved the same key meanwhile, keep theirs."""
    try:
        report.save(stored)
    except (OSError, InputError):
        if not (stored / "results.json").is_file():
            raise


def _copy_report(source: Path, target: Path) -> None:
    """Copy a saved report (hard links where the file system allows) and record its label."""
    if target.exists():
        shutil.rmtree(target)

    def link(src: str, dst: str) -> None:
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)

    shutil.copytree(source, target, copy_function=link)


def _label_meta(folder: Path, entry: Entry) -> None:
    """Record the entry's label and step in the copy's meta.json (a new file: the cache's
    hard-linked one stays as it was)."""
    path = folder / "meta.json"
    meta = json.loads(path.read_text(encoding="utf-8"))
    meta.update(label=entry.label, step=entry.step)
    path.unlink()
    path.write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")


Runner = Callable[[list[Entry], Settings, str | None], list[Outcome]]


def run_serial(entries: list[Entry], settings: Settings, runs: str | None) -> list[Outcome]:
    """Every audit in this process, one after the other, their figures rendered by a helper
    process on the core an audit leaves idle (started at the first audit that runs). The
    reference data (MNIST, its neighbour indexes) is read once and let go at the end."""
    from ganalyze.report.figures import BackgroundRenderer

    outcomes = []
    references: dict[str | None, Any] = {}
    with BackgroundRenderer(lazy=True) as renderer:
        for i, entry in enumerate(entries, 1):
            outcome = run_entry(entry, settings, runs, renderer, references)
            _log(outcome, i, len(entries))
            outcomes.append(outcome)
    return outcomes


def _log(outcome: Outcome, i: int, n: int) -> None:
    state = ("failed: " + outcome.error if outcome.error
             else "reused from the cache" if outcome.reused else "audited")  # fmt: skip
    logger.info("[%d/%d] %s %s", i, n, outcome.label, state)


def _init_worker(threads: int, level: int) -> None:
    import torch

    torch.set_num_threads(threads)
    with contextlib.suppress(ImportError):
        import faiss

        faiss.omp_set_num_threads(threads)
    logging.getLogger("ganalyze").setLevel(level)


def run_processes(
    entries: list[Entry], settings: Settings, runs: str | None, workers: int
) -> list[Outcome]:
    """The audits in ``workers`` local processes (spawned), the cores shared among them."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from concurrent.futures.process import BrokenProcessPool

    threads = max(1, (os.cpu_count() or 1) // workers)
    context = multiprocessing.get_context("spawn")
    level = logging.getLogger("ganalyze").getEffectiveLevel()
    outcomes: dict[str, Outcome] = {}
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker,
                             initargs=(threads, logging.WARNING)) as pool:  # fmt: skip
        futures = {pool.submit(run_entry, e, settings, runs): e for e in entries}
        broken = []
        for future in as_completed(futures):
            entry = futures[future]
            try:
                outcomes[entry.label] = outcome = future.result()
            except BrokenProcessPool:  # a worker died: which entry killed it is unknown
                broken.append(entry)
                continue
            if level <= logging.INFO:
                _log(outcome, len(outcomes), len(entries))
    for entry in broken:  # again, each in a process of its own: only the culprit fails
        with ProcessPoolExecutor(1, mp_context=context, initializer=_init_worker,
                                 initargs=(threads, logging.WARNING)) as pool:  # fmt: skip
            try:
                outcome = pool.submit(run_entry, entry, settings, runs).result()
            except BrokenProcessPool as exc:
                outcome = Outcome(entry.label, error=f"its worker process died ({exc})")
        outcomes[entry.label] = outcome
        _log(outcome, len(outcomes), len(entries))
    return [outcomes[e.label] for e in entries]


def run_dask(
    entries: list[Entry], settings: Settings, runs: str | None, scheduler: Any
) -> list[Outcome]:
    """One task per entry on a Dask distributed cluster: ``scheduler`` is its address
    ("tcp://host:8786") or a ``distributed.Client``. A task that raises or whose worker dies is
    reported for its entry; the others complete."""
    try:
        from distributed import Client, as_completed
    except ImportError:
        raise InputError("--scheduler needs Dask's distributed package: pip install "
                         "'ganalyze[cluster]' (on the workers too).") from None  # fmt: skip
    own = not isinstance(scheduler, Client)
    try:
        client = Client(scheduler, timeout="30s") if own else scheduler
    except (OSError, TimeoutError, ValueError) as exc:
        raise InputError(f"Cannot reach the Dask scheduler at {scheduler!r} ({exc}); start one "
                         "with `dask scheduler` and workers with `dask worker ADDRESS`, then "
                         "pass its address, e.g. tcp://127.0.0.1:8786.") from None  # fmt: skip
    token = secrets.token_hex(4)
    try:
        futures = {client.submit(run_entry, e, settings, runs, pure=False,
                                 key=f"ganalyze-audit-{e.folder}-{token}"): e
                   for e in entries}  # fmt: skip
        outcomes: dict[str, Outcome] = {}
        suspects = []
        for done, future in enumerate(as_completed(futures), 1):
            entry = futures[future]
            try:
                outcome = future.result()
            except Exception as exc:  # KilledWorker, a lost connection, a failed unpickling
                if type(exc).__name__ == "KilledWorker":  # it, or a task beside it, killed it
                    suspects.append(entry)
                    continue
                outcome = Outcome(entry.label, error=f"its Dask task failed: "
                                  f"{type(exc).__name__}: {exc}")  # fmt: skip
            outcomes[entry.label] = outcome
            _log(outcome, done, len(entries))
        for entry in suspects:  # again, one at a time: only the culprit's worker dies again
            key = f"ganalyze-audit-{entry.folder}-{token}-alone"
            try:
                outcome = client.submit(run_entry, entry, settings, runs, pure=False,
                                        key=key).result()  # fmt: skip
            except Exception as exc:
                outcome = Outcome(entry.label, error=f"its Dask task failed: "
                                  f"{type(exc).__name__}: {exc}")  # fmt: skip
            outcomes[entry.label] = outcome
            _log(outcome, len(outcomes), len(entries))
    finally:
        if own:
            client.close()
    return [outcomes[e.label] for e in entries]


def settings_record(settings: Settings) -> dict[str, Any]:
    record = asdict(settings)
    record["analyses"] = list(settings.analyses) if settings.analyses else None
    return record
