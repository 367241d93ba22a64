"""Turn the specs given to ``ganalyze compare`` into :class:`Entry` rows.

A spec is one of: anything ``ganalyze report`` accepts (one entry); a ``ganalyze train`` run
folder (one entry per checkpoint, ordered by epoch and step; ``latest.pt`` only when it is not a
copy of one of them); a manifest, ``.csv`` or ``.toml``, with one row per generator. Every
problem is found here, before anything is audited or written, and named with its row or file.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib


from ganalyze.comparison.entries import Entry
from ganalyze.comparison.runner import file_digest
from ganalyze.errors import InputError, LoaderError

# The columns of a manifest row besides spec: its label and step, and the load options.
PATH_COLUMNS = ("discriminator", "weights", "d_weights", "train_indices")
LOAD_COLUMNS = ("discriminator", "weights", "d_weights", "latent_dim", "prior", "output_range",
                "d_input_range", "d_output", "resize", "latent_shape", "d_input_shape",
                "init_kwargs", "num_classes", "label_input", "labels")  # fmt: skip
INTEGER_COLUMNS = ("latent_dim", "num_classes")
COLUMNS = ("spec", "label", "step", *LOAD_COLUMNS, "train_indices")
CHOICES = {"prior": ("normal", "uniform"),
           "output_range": ("auto", "-1,1", "0,1", "0,255"),
           "d_input_range": ("auto", "-1,1", "0,1", "0,255"),
           "d_output": ("auto", "probs", "logits"),
           "resize": ("auto", "crop", "resize", "none"),
           "label_input": ("auto", "index", "onehot"),
           "labels": ("uniform", "train")}  # fmt: skip
MANIFEST_SUFFIXES = (".csv", ".toml")
CHECKPOINT_NAME = re.compile(r"epoch_(\d{4,})(?:_step_(\d{5,}))?\.pt")
LABEL_CHARS = re.compile(r"[^A-Za-z0-9._+@=-]+")
MAX_ENTRIES = 10_000


def expand_specs(specs: Iterable[str | Path]) -> list[Entry]:
    """The entries of ``specs`` in order, with unique labels (see the module docstring).

    Raises
    ------
    InputError
        A missing file, a run folder without checkpoints, a manifest with an unknown or
        missing column, a bad value or path (naming its row), or two entries with one label.
    """
    specs = [str(s) for s in specs]
    if not specs:
        raise InputError("Nothing to compare: give one or more specs (checkpoints, run folders, "
                         "manifests or anything `ganalyze report` accepts).")  # fmt: skip
    entries: list[Entry] = []
    for i, spec in enumerate(specs, 1):
        path = Path(spec).expanduser()
        if path.is_file() and path.suffix.lower() in MANIFEST_SUFFIXES:
            entries += read_manifest(path)
        elif path.is_dir() and is_run_folder(path):
            entries += run_folder_entries(path)
        elif spec.startswith("pretrained:"):
            entries += pretrained_entries(spec)
        else:
            entries.append(_entry(spec, Path.cwd(), {}, f"argument {i}"))
    if len(entries) > MAX_ENTRIES:
        raise InputError(f"{len(entries):,} generators to compare; at most {MAX_ENTRIES:,} "
                         "are supported. Compare a subset.")  # fmt: skip
    return unique_labels(entries)


def is_run_folder(path: Path) -> bool:
    """Whether ``path`` is a ``ganalyze train`` run folder (holds checkpoints/, latest.pt or
    the run's config.json and history.csv)."""
    return ((path / "checkpoints").is_dir() or (path / "latest.pt").is_file()
            or ((path / "config.json").is_file() and (path / "history.csv").is_file()))  # fmt: skip


def run_folder_entries(folder: Path) -> list[Entry]:
    """One entry per checkpoint of a run folder, by epoch and step; ``latest.pt`` is added
    only when it is not a copy of one of them (an interrupted run's last save)."""
    folder = folder.resolve()
    found = []
    ckpts = folder / "checkpoints"
    for path in sorted(ckpts.iterdir()) if ckpts.is_dir() else ():
        match = CHECKPOINT_NAME.fullmatch(path.name)
        if match and path.is_file():
            found.append(((int(match[1]), int(match[2] or 0)), path))
    found.sort()
    latest = folder / "latest.pt"
    if latest.is_file():
        digests = {file_digest(path) for _, path in found}
        if file_digest(latest) not in digests:
            found.append(((_checkpoint_epoch(latest), 1 << 62), latest))
    if not found:
        raise InputError(f"Run folder {folder} holds no checkpoints: expected "
                         "checkpoints/epoch_NNNN.pt or latest.pt, as `ganalyze train` writes "
                         "them. Train first, or name checkpoint files directly.")  # fmt: skip
    return [Entry(label=path.stem, spec=str(path), step=epoch,
                  source=f"run folder {folder}")
            for (epoch, _), path in found]  # fmt: skip


def _checkpoint_epoch(path: Path) -> int | None:
    """The epoch a ganalyze checkpoint records (read without unpickling), or None."""
    from ganalyze.errors import GanalyzeError
    from ganalyze.generators.files import safe_load

    try:
        obj = safe_load(path, what="checkpoint")
    except GanalyzeError as exc:
        raise InputError(f"Run folder {path.parent}: {path.name} cannot be read ({exc})") from None
    epoch = obj.get("epoch") if isinstance(obj, dict) else None
    return int(epoch) if isinstance(epoch, int) and not isinstance(epoch, bool) else None


def read_manifest(path: Path) -> list[Entry]:
    """The entries of a manifest (CSV with a header row, or TOML with ``[[generator]]``
    tables); relative paths resolve against the manifest's folder."""
    rows = _toml_rows(path) if path.suffix.lower() == ".toml" else _csv_rows(path)
    if not rows:
        raise InputError(f"Manifest {path} lists no generators; expected one row per "
                         f"generator with at least the column spec.")  # fmt: skip
    base = path.resolve().parent
    entries = []
    for number, row in rows:
        where = f"manifest {path}, {'row' if path.suffix.lower() == '.csv' else 'generator'} " \
                f"{number}"  # fmt: skip
        unknown = sorted(set(row) - set(COLUMNS))
        if unknown:
            raise InputError(f"{where}: unknown column(s) {', '.join(map(repr, unknown))}; "
                             f"expected {', '.join(COLUMNS)} (spec required).")  # fmt: skip
        values = {k: v for k, v in row.items() if v is not None and str(v).strip() != ""}
        if "spec" not in values:
            raise InputError(
                f"{where}: no spec; every row needs the column spec (a checkpoint, "
                "samples file or entry point, relative to the manifest)."
            )
        entries.append(_entry(str(values.pop("spec")).strip(), base, values, where))
    return entries


def _csv_rows(path: Path) -> list[tuple[int, dict[str, Any]]]:
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            if not reader.fieldnames or "spec" not in [f.strip() for f in reader.fieldnames]:
                raise InputError(f"Manifest {path} has no column spec; its header row must name "
                                 f"the columns, among {', '.join(COLUMNS)} (spec required); got "
                                 f"{reader.fieldnames}.")  # fmt: skip
            rows = []
            for number, row in enumerate(reader, 2):
                if None in row:
                    raise InputError(f"Manifest {path}, row {number}: more values than the "
                                     f"header's {len(reader.fieldnames)} columns.")  # fmt: skip
                rows.append((number, {k.strip(): v for k, v in row.items()}))
                if len(rows) > MAX_ENTRIES:
                    break
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputError(f"Manifest {path} cannot be read as CSV (UTF-8, a header row, then one "
                         f"row per generator): {exc}.") from None  # fmt: skip
    return rows


def _toml_rows(path: Path) -> list[tuple[int, dict[str, Any]]]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise InputError(f"Manifest {path} cannot be read as TOML: {exc}. Expected one "
                         "[[generator]] table per generator, e.g. [[generator]] spec = "
                         '"G.ckpt" discriminator = "D.ckpt" step = 10.') from None  # fmt: skip
    tables = data.get("generator", data.get("generators"))
    other = sorted(set(data) - {"generator", "generators"})
    if other or not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise InputError(f"Manifest {path}: expected only [[generator]] tables (one per "
                         f"generator); got the keys {sorted(data)}.")  # fmt: skip
    return list(enumerate(tables[: MAX_ENTRIES + 1], 1))


def _entry(spec: str, base: Path, values: dict[str, Any], where: str) -> Entry:
    """One entry: the spec and file options resolved against ``base`` and checked."""
    label = values.pop("label", None)
    step = _integer(values.pop("step", None), "step", where)
    load: dict[str, Any] = {}
    for column in LOAD_COLUMNS:
        if column not in values:
            continue
        value = values[column]
        if value is None or str(value).strip() == "":
            continue  # an empty CSV cell: the option's default
        if column in PATH_COLUMNS:
            value = _existing(str(value), base, column, where)
        elif column in INTEGER_COLUMNS:
            value = _integer(value, column, where, low=1)
        elif column in CHOICES and str(value) not in CHOICES[column]:
            raise InputError(f"{where}: {column} must be one of {', '.join(CHOICES[column])}; "
                             f"got {value!r}.")  # fmt: skip
        if isinstance(value, list | tuple):  # a TOML array: latent_shape = [100, 1, 1]
            value = ",".join(map(str, value))
        keep = column in PATH_COLUMNS or column in INTEGER_COLUMNS or isinstance(value, dict)
        load[column] = value if keep else str(value)  # a TOML table stays init_kwargs' dict
    _check_load(load, where)
    indices = values.get("train_indices")
    indices = _existing(str(indices), base, "train_indices", where) if indices else None
    return Entry(label=str(label).strip() if label is not None else default_label(spec, load),
                 spec=resolve_spec(spec, base, where), step=step, load=load,
                 train_indices=indices, source=where, labelled=label is not None)  # fmt: skip


def _check_load(load: dict[str, Any], where: str) -> None:
    """A row's loading options as LoadOptions checks them (shapes, JSON, label options),
    its errors named with the row."""
    from ganalyze.generators import LoadOptions

    try:
        LoadOptions(**load)
    except InputError as exc:
        raise InputError(f"{where}: {exc}") from None


def resolve_spec(spec: str, base: Path, where: str) -> str:
    """``spec`` with its file resolved against ``base``: an existing path, ``file.py:name`` with
    an existing file, ``pretrained:...``, or ``package.module:name``; else an InputError."""
    path = (base / Path(spec).expanduser()) if not Path(spec).expanduser().is_absolute() \
        else Path(spec).expanduser()  # fmt: skip
    if path.exists():
        return str(path.resolve())
    source, colon, attr = spec.rpartition(":")
    if colon and source.endswith(".py"):
        file = _existing(source, base, "spec", where)
        return f"{file}:{attr}"
    if colon and re.fullmatch(r"[A-Za-z_][\w.]*", source) and attr:
        return spec  # package.module:name or pretrained:name, resolved by the loader
    raise InputError(f"{where}: spec {spec!r} does not exist (looked for {path}). Expected a "
                     "checkpoint, samples file or folder, file.py:name, package.module:name, "
                     "a run folder or a manifest.")  # fmt: skip


def _existing(value: str, base: Path, column: str, where: str) -> str:
    path = Path(value).expanduser()
    path = path if path.is_absolute() else base / path
    if not path.is_file():
        what = "is a folder" if path.is_dir() else "does not exist"
        raise InputError(f"{where}: {column} {value!r} {what} (looked for {path}); expected a "
                         "file, relative to the manifest's folder.")  # fmt: skip
    return str(path.resolve())


def _integer(value: Any, column: str, where: str, low: int = 0) -> int | None:
    if value is None:
        return None
    try:
        number = int(str(value).strip()) if not isinstance(value, bool) else None
    except ValueError:
        number = None
    if number is None or number < low:
        raise InputError(f"{where}: {column} must be an integer of at least {low}; got "
                         f"{value!r}.")  # fmt: skip
    return number


def pretrained_entries(spec: str) -> list[Entry]:
    """The shipped checkpoints a ``pretrained:NAME[@EPOCH|@*]`` spec names, their files
    checked, labelled ``NAME@EPOCH`` with the epoch as step."""
    from ganalyze.pretrained import parse

    try:
        item, epochs = parse(spec)
        return [Entry(label=f"{item.name}@{epoch}", spec=str(item.path(epoch)), step=epoch,
                      source=f"pretrained {item.name}") for epoch in epochs]  # fmt: skip
    except LoaderError as exc:
        raise InputError(str(exc)) from None


def default_label(spec: str, load: dict[str, Any]) -> str:
    """A readable label: the file stem (an entry point's file and name), with the weights
    file's stem when there is one, so that two weight files of one entry point differ."""
    source, colon, attr = spec.rpartition(":")
    if colon and (source.endswith(".py") or not Path(spec).expanduser().exists()):
        label = f"{Path(source).stem if source.endswith('.py') else source}:{attr}"
    else:
        path = Path(spec).expanduser()
        label = path.stem or path.name or spec
    if load.get("weights"):
        label += f"+{Path(str(load['weights'])).stem}"
    return label


def folder_name(label: str) -> str:
    """The report folder name of a label (``runs/<name>/``): unsafe characters replaced."""
    name = LABEL_CHARS.sub("_", label).strip("._") or "generator"
    return name[:100]


def unique_labels(entries: list[Entry]) -> list[Entry]:
    """``entries`` with derived labels made unique (by their folder, then a number); two
    entries given the same label, or labels whose folder names clash, are an error."""
    from dataclasses import replace

    out = []
    seen: dict[str, Entry] = {}
    counts: dict[str, int] = {}
    for e in entries:
        counts[e.label] = counts.get(e.label, 0) + 1
    for e in entries:
        label = e.label
        if counts[label] > 1 and not e.labelled:
            parent = Path(e.spec.rpartition(":")[0] if ":" in e.spec and not Path(e.spec).exists()
                          else e.spec).parent  # fmt: skip
            parent = parent.parent if parent.name == "checkpoints" else parent
            label = f"{parent.name}-{label}" if parent.name else label
        key = folder_name(label)
        if key in seen:
            other = seen[key]
            raise InputError(
                f"Duplicate label {label!r}: {other.source} ({other.spec}) and "
                f"{e.source} ({e.spec}) would share the report folder runs/{key}/. "
                "Give each a distinct label (the manifest's label column)."
            )
        seen[key] = e
        out.append(replace(e, label=label))
    return out
