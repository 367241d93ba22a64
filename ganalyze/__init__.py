"""ganalyze: audit what a trained image generator really learned (MNIST first)."""

from __future__ import annotations

__version__ = "0.1.0"

from ganalyze.data import load_mnist, resolve_data_dir
from ganalyze.errors import (
    CheckpointError,
    DataError,
    GanalyzeError,
    InputError,
    LoaderError,
    TrainingInterrupted,
)

__all__ = [
    "CheckpointError",
    "DataError",
    "GanalyzeError",
    "InputError",
    "LoaderError",
    "TrainingInterrupted",
    "__version__",
    "load_mnist",
    "resolve_data_dir",
]
