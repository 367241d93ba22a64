"""ganalyze: audit what a trained image generator really learned (MNIST first).

The public API is imported lazily, so that ``ganalyze --help`` answers without loading torch.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_API = {
    "audit": "ganalyze.pipeline",
    "compare": "ganalyze.comparison",
    "Comparison": "ganalyze.comparison",
    "load_generator": "ganalyze.generators",
    "load_pretrained": "ganalyze.pretrained",
    "Generator": "ganalyze.generators",
    "LoadOptions": "ganalyze.generators",
    "Report": "ganalyze.report",
    "Context": "ganalyze.context",
    "REGISTRY": "ganalyze.analyses",
    "Analysis": "ganalyze.analyses.base",
    "AnalysisResult": "ganalyze.analyses.base",
    "Metric": "ganalyze.analyses.base",
    "Flag": "ganalyze.analyses.base",
    "load_mnist": "ganalyze.data",
    "resolve_data_dir": "ganalyze.data",
    "GanalyzeError": "ganalyze.errors",
    "InputError": "ganalyze.errors",
    "DataError": "ganalyze.errors",
    "LoaderError": "ganalyze.errors",
    "CheckpointError": "ganalyze.errors",
    "TrainingInterrupted": "ganalyze.errors",
}

__all__ = ["__version__", *_API]


def __getattr__(name: str) -> Any:
    if name in _API:
        value = getattr(importlib.import_module(_API[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'ganalyze' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
