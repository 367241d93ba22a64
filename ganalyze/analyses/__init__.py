"""Registered analyses: every public module of this package (found, not listed) and the
third-party analyses of the ``ganalyze.analyses`` entry-point group.

Importing this package registers them all. A new built-in analysis is one module here that
registers its class (``@register``); private modules (``_name``) and ``base`` are not analyses.
"""

import importlib
import pkgutil

from ganalyze.analyses.base import (
    METRIC_COLUMNS,
    PLUGINS,
    REGISTRY,
    Analysis,
    AnalysisResult,
    Flag,
    Metric,
    NoParams,
    PluginWarning,
    load_plugins,
    register,
    registered,
)


def _import_builtins() -> None:
    for module in sorted(m.name for m in pkgutil.iter_modules(__path__)):
        if not module.startswith("_") and module != "base":
            importlib.import_module(f"{__name__}.{module}")


_import_builtins()
load_plugins()

__all__ = [
    "METRIC_COLUMNS",
    "PLUGINS",
    "REGISTRY",
    "Analysis",
    "AnalysisResult",
    "Flag",
    "Metric",
    "NoParams",
    "PluginWarning",
    "load_plugins",
    "register",
    "registered",
]
