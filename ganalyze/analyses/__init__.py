"""Registered analyses. Importing this package registers every built-in analysis."""

from ganalyze.analyses import dscores, memorization, modes, training  # noqa: F401  (registration)
from ganalyze.analyses.base import (
    METRIC_COLUMNS,
    REGISTRY,
    Analysis,
    AnalysisResult,
    Flag,
    Metric,
    register,
)

__all__ = ["METRIC_COLUMNS", "REGISTRY", "Analysis", "AnalysisResult", "Flag", "Metric", "register"]
