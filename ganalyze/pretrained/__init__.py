"""Generators shipped with ganalyze, audited without training first.

``reference-gan`` is the study's GAN trained by ``ganalyze train --seed 0`` for all 300 epochs,
shipped at a few epochs along the run. Each shipped file is a ``ganalyze train`` checkpoint
slimmed to what an audit needs (G, D, the config with the member set, the history and the fixed
latents; no optimizer states), and its SHA-256 is recorded in the folder's ``manifest.json`` and
checked before the file is read:

- ``pretrained:reference-gan`` is the final checkpoint, ``pretrained:reference-gan@100`` the one
  after epoch 100, ``pretrained:reference-gan@*`` (``@all``) every one of them (for
  ``ganalyze compare``);
- :func:`load_pretrained` loads one from Python;
- ``ganalyze pretrained`` lists what is shipped.

``scripts/make_pretrained.py`` writes the files and the manifest from a training run.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ganalyze.errors import LoaderError

PREFIX = "pretrained:"
HERE = Path(__file__).resolve().parent
_SPEC = re.compile(r"pretrained:(?P<name>[A-Za-z0-9_.-]+)(?:@(?P<epoch>\*|all|\d+))?")


@dataclass(frozen=True)
class Shipped:
    """One shipped generator: its manifest, as written by ``scripts/make_pretrained.py``."""

    name: str
    description: str
    command: str
    trained: str
    default_epoch: int
    files: dict[int, dict[str, Any]]  # epoch -> {"file", "sha256", "bytes"}
    folder: Path

    @property
    def epochs(self) -> list[int]:
        return sorted(self.files)

    @property
    def total_bytes(self) -> int:
        return sum(int(f["bytes"]) for f in self.files.values())

    def path(self, epoch: int | None = None, verify: bool = True) -> Path:
        """The checkpoint file of ``epoch`` (the final one when None), its SHA-256 checked."""
        epoch = self.default_epoch if epoch is None else epoch
        if epoch not in self.files:
            raise LoaderError(
                f"pretrained:{self.name}@{epoch} is not shipped; the epochs shipped are "
                f"{', '.join(map(str, self.epochs))} (e.g. pretrained:{self.name}@"
                f"{self.epochs[0]}), or pretrained:{self.name}@* for all of them."
            )
        record = self.files[epoch]
        path = self.folder / record["file"]
        if verify:
            _verify(path, record["sha256"], f"pretrained:{self.name}@{epoch}")
        return path


def _verify(path: Path, expected: str, what: str) -> None:
    fix = "Reinstall ganalyze (pip install --force-reinstall ganalyze, or git checkout the file)."
    if not path.is_file():
        raise LoaderError(f"{what}: its file {path} is missing from the installation. {fix}")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != expected:
        raise LoaderError(
            f"{what}: {path} is damaged (sha256 {digest[:16]}..., expected {expected[:16]}... "
            f"as recorded in its manifest). {fix}"
        )


def shipped() -> dict[str, Shipped]:
    """Every shipped generator by name, from the manifests in this package's folders."""
    found = {}
    for manifest in sorted(HERE.glob("*/manifest.json")):
        data = json.loads(manifest.read_text(encoding="utf-8"))
        found[data["name"]] = Shipped(
            name=data["name"],
            description=data["description"],
            command=data["command"],
            trained=data["trained"],
            default_epoch=int(data["default_epoch"]),
            files={int(k): v for k, v in data["files"].items()},
            folder=manifest.parent,
        )
    return found


def get(name: str) -> Shipped:
    """The shipped generator ``name``; a LoaderError listing what is shipped otherwise."""
    available = shipped()
    if name not in available:
        names = ", ".join(sorted(available)) or "none (this installation ships no files)"
        raise LoaderError(
            f"pretrained:{name} is not shipped with ganalyze. Shipped: {names}. "
            "`ganalyze pretrained` lists them with their epochs."
        )
    return available[name]


def is_pretrained(spec: str | Path) -> bool:
    return isinstance(spec, str) and spec.startswith(PREFIX)


def parse(spec: str) -> tuple[Shipped, list[int]]:
    """The shipped generator a ``pretrained:NAME[@EPOCH|@*]`` spec names, and its epochs."""
    match = _SPEC.fullmatch(spec.strip())
    if match is None:
        raise LoaderError(
            f"{spec!r} is not a pretrained spec: expected pretrained:NAME, pretrained:NAME@EPOCH "
            "or pretrained:NAME@* (e.g. pretrained:reference-gan@100)."
        )
    item = get(match["name"])
    epoch = match["epoch"]
    if epoch in ("*", "all"):
        return item, item.epochs
    return item, [item.default_epoch if epoch is None else int(epoch)]


def resolve(spec: str) -> Path:
    """The verified checkpoint file of a ``pretrained:NAME[@EPOCH]`` spec (one file)."""
    item, epochs = parse(spec)
    if len(epochs) != 1:
        raise LoaderError(
            f"{spec} names {len(epochs)} checkpoints; `ganalyze report` audits one "
            f"(pretrained:{item.name}@{epochs[-1]}). Compare them all with "
            f"`ganalyze compare {spec}`."
        )
    return item.path(epochs[0])


def load_pretrained(name: str = "reference-gan", epoch: int | None = None, **options: Any):
    """Load a shipped generator (the final checkpoint unless ``epoch`` is given) as
    :func:`ganalyze.load_generator` loads any spec; ``options`` are its keywords.

    >>> g = ganalyze.load_pretrained("reference-gan", epoch=100)  # doctest: +SKIP
    >>> z, images = g.sample(16, seed=0)  # doctest: +SKIP
    """
    from ganalyze.generators import load_generator

    path = get(name).path(epoch)
    return load_generator(path, **options)


def listing() -> list[dict[str, Any]]:
    """One row per shipped generator: name, epochs, size and how it was trained."""
    return [
        {
            "name": item.name,
            "epochs": item.epochs,
            "default": item.default_epoch,
            "megabytes": round(item.total_bytes / 1e6, 2),
            "description": item.description,
            "command": item.command,
            "trained": item.trained,
        }
        for item in shipped().values()
    ]
