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
import pickle
import platform
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ganalyze._io import save_torch
from ganalyze.errors import CheckpointError

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


def load_checkpoint(path: str | os.PathLike[str], map_location: str = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint`, without unpickling any object.

    Raises
    ------
    CheckpointError
        When the file is missing, unreadable, or not a ganalyze reference-GAN checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(
            f"Checkpoint {path} does not exist; expected a file written by "
            "`ganalyze train` (for example runs/<name>/latest.pt)."
        )
    try:
        obj = torch.load(path, map_location=map_location, weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError) as exc:
        raise CheckpointError(
            f"Could not read {path} as a checkpoint ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''}). Expected a file written by "
            "`ganalyze train`; a truncated or foreign file cannot be resumed."
        ) from exc
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        found = obj.get("format") if isinstance(obj, dict) else type(obj).__name__
        raise CheckpointError(
            f"{path} is not a ganalyze reference-GAN checkpoint: expected format {FORMAT!r}, "
            f"found {found!r}. Only checkpoints written by `ganalyze train` can be resumed."
        )
    missing = [k for k in REQUIRED_KEYS if k not in obj]
    if missing:
        raise CheckpointError(f"{path} lacks the keys {missing}; it cannot be resumed.")
    return obj
