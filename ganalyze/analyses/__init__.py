"""Registered analyses. Importing this package registers every built-in analysis."""

from ganalyze.analyses import (  # noqa: F401  (registration)
    distribution,
    dscores,
    interpolation,
    latent_map,
    memorization,
    modes,
    training,
)
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
