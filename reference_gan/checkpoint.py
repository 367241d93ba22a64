"""Checkpoints of the reference GAN: one self-describing file per save.

A checkpoint is a dict that ``torch.load(path, weights_only=True)`` reads (tensors, numbers,
strings, lists and dicts only):

- ``format``: the version tag :data:`FORMAT`;
- ``generator``, ``discriminator``: state_dicts of the ``nn.Sequential`` models (keys
  ``0.weight ... 4.bias``);
- ``opt_g``, ``opt_d``: Adam states (flat moment buffers, step count, lr, betas, eps);
- ``config``: every hyperparameter, plus what an auditor needs: the image range G emits and D
  expects (``image_range``), G's output shape, D's output kind (``d_output``), the prior, and the
  indices of the MNIST training images used (``train_indices``, the member set);
- ``epoch`` (completed epochs), ``step`` (steps done in the next epoch: non-zero only for a
  checkpoint written on interruption) and ``partial_logits`` (that epoch's logits so far);
- ``history``: one record per completed epoch (no wall-clock times);
- ``rng``: RNG states as tensors; ``fixed_z``: the latents of the sample grids;
- ``versions``: torch, torchvision, numpy, python and ganalyze versions.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ganalyze._io import save_torch
from ganalyze.errors import CheckpointError, LoaderError, UnsafeFileError
from reference_gan.schema import validate

FORMAT = "ganalyze.reference_gan/1"
REQUIRED_KEYS = (
    "format",
    "generator",
    "discriminator",
    "opt_g",
    "opt_d",
    "config",
    "epoch",
    "step",
    "history",
    "rng",
    "fixed_z",
    "versions",
)


def versions() -> dict[str, str]:
    """Versions of the software that wrote a checkpoint."""
    from importlib.metadata import PackageNotFoundError, version

    from ganalyze import __version__

    try:
        tv = version("torchvision")
    except PackageNotFoundError:
        tv = "not installed"
    return {
        "ganalyze": __version__,
        "torch": str(torch.__version__),
        "torchvision": tv,
        "numpy": np.__version__,
        "python": platform.python_version(),
    }


def save_checkpoint(state: dict[str, Any], path: str | os.PathLike[str]) -> Path:
    """Write ``state`` atomically (temporary file, then rename)."""
    missing = [k for k in REQUIRED_KEYS if k not in state and k != "format"]
    if missing:
        raise ValueError(f"checkpoint state lacks keys {missing}")
    return save_torch({"format": FORMAT, **state}, path)


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` (on the CPU), without unpickling
    any object, and check it against the schema (:mod:`reference_gan.schema`) for resuming.

    Raises
    ------
    CheckpointError
        When the file is missing, unreadable, or not a ganalyze reference-GAN checkpoint.
    """
    from ganalyze.generators.files import safe_load

    path = Path(path)
    if not path.exists():
        raise CheckpointError(
            f"Checkpoint {path} does not exist; expected a file written by "
            "`ganalyze train` (for example runs/<name>/latest.pt)."
        )
    try:
        obj = safe_load(path, what="checkpoint")
    except (UnsafeFileError, CheckpointError):
        raise
    except LoaderError as exc:
        raise CheckpointError(
            f"{exc} Expected a file written by `ganalyze train`; a truncated or foreign file "
            "cannot be resumed."
        ) from None
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        found = repr(obj.get("format"))[:60] if isinstance(obj, dict) else type(obj).__name__
        raise CheckpointError(
            f"{path} is not a ganalyze reference-GAN checkpoint: expected format {FORMAT!r}, "
            f"found {found}. Only checkpoints written by `ganalyze train` can be resumed."
        )
    validate(obj, str(path), resume=True)
    return obj
