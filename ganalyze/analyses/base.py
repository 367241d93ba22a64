"""What every analysis returns, and the registry that finds analyses by name.

An analysis is a class with a stable snake_case ``name``, a ``title``, a one-paragraph
``description``, the ``needs`` it has of the audited source, and ``run(context)`` returning an
:class:`AnalysisResult`. Registering it (``@register``) is all it takes to appear in reports.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import pandas as pd

METRIC_COLUMNS = [
    "analysis",
    "metric",
    "value",
    "ci_low",
    "ci_high",
    "higher_is_better",
    "target",
    "feature_space",
    "n_real",
    "n_fake",
]

# What an analysis may need; the context says which of these the audited source provides.
NEEDS = ("samples", "generator", "latents", "discriminator", "history")


@dataclass
class Metric:
    """One number of a report: a row of the tidy metrics table.

    ``higher_is_better`` is True or False for a metric with a direction, None when its ideal is
    the ``target`` value (a share at its training share, a statistic at 0).
    """

    name: str
    value: float
    description: str
    higher_is_better: bool | None = None
    target: float | None = None
    ci_low: float = math.nan
    ci_high: float = math.nan
    feature_space: str = ""
    n_real: int | None = None
    n_fake: int | None = None


@dataclass
class Flag:
    """A finding raised by a stated rule, citing the numbers behind it."""

    message: str
    rule: str
    metrics: list[str] = field(default_factory=list)


@dataclass
class AnalysisResult:
    """Metrics, flags, per-sample tables, figures and notes of one analysis."""

    name: str
    title: str
    description: str
    metrics: list[Metric] = field(default_factory=list)
    flags: list[Flag] = field(default_factory=list)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    figures: dict[str, Any] = field(default_factory=dict)  # name -> matplotlib Figure
    notes: list[str] = field(default_factory=list)
    rules: list[str] = field(default_factory=list)
    arrays: dict[str, Any] = field(default_factory=dict)  # inputs of figures, not exported

    def metrics_frame(self) -> pd.DataFrame:
        """The tidy metrics of this analysis (columns :data:`METRIC_COLUMNS`)."""
        rows = [
            {
                "analysis": self.name,
                "metric": m.name,
                "value": float(m.value),
                "ci_low": float(m.ci_low),
                "ci_high": float(m.ci_high),
                "higher_is_better": m.higher_is_better,
                "target": m.target,
                "feature_space": m.feature_space,
                "n_real": m.n_real,
                "n_fake": m.n_fake,
            }
            for m in self.metrics
        ]
        frame = pd.DataFrame(rows, columns=METRIC_COLUMNS)
        frame["higher_is_better"] = frame["higher_is_better"].astype("boolean")
        for col in ("target", "ci_low", "ci_high", "value"):
            frame[col] = frame[col].astype("float64")
        for col in ("n_real", "n_fake"):
            frame[col] = frame[col].astype("Int64")
        keys = frame[["metric", "feature_space"]]
        if keys.duplicated().any():
            raise ValueError(f"{self.name}: duplicate metric rows {keys[keys.duplicated()]}")
        return frame

    def metric(self, name: str, feature_space: str = "") -> Metric:
        for m in self.metrics:
            if m.name == name and m.feature_space == feature_space:
                return m
        raise KeyError((name, feature_space))


class Analysis:
    """Base class: subclasses set the class attributes and implement :meth:`run`."""

    name: ClassVar[str]
    title: ClassVar[str]
    description: ClassVar[str]
    needs: ClassVar[tuple[str, ...]] = ("samples",)
    order: ClassVar[int] = 50  # position in reports: lower first

    def run(self, context: Any) -> AnalysisResult:  # pragma: no cover - abstract
        raise NotImplementedError

    def plot(self, result: AnalysisResult) -> dict[str, Any]:
        """Figures of a result (matplotlib Figures by name); no computation here."""
        return {}

    def result(self) -> AnalysisResult:
        """An empty result carrying this analysis's name, title and description."""
        return AnalysisResult(self.name, self.title, self.description)


REGISTRY: dict[str, type[Analysis]] = {}


def registered() -> list[str]:
    """Registered analysis names in report order."""
    return sorted(REGISTRY, key=lambda name: (REGISTRY[name].order, name))


def register(cls: type[Analysis]) -> type[Analysis]:
    """Class decorator: make an analysis available under its ``name``."""
    name = getattr(cls, "name", None)
    if not name or not name.replace("_", "").isalnum() or name != name.lower():
        raise ValueError(f"analysis name must be snake_case, got {name!r}")
    if name in REGISTRY and REGISTRY[name] is not cls:
        raise ValueError(f"analysis {name!r} is already registered")
    unknown = set(cls.needs) - set(NEEDS)
    if unknown:
        raise ValueError(f"{name}: unknown needs {sorted(unknown)}; expected some of {NEEDS}")
    REGISTRY[name] = cls
    return cls


def metric_adder(result: AnalysisResult, **defaults: Any) -> Callable[..., Metric]:
    """A helper that appends metrics to ``result`` with shared defaults (n_fake, space...)."""

    def add(name: str, value: float, description: str, **kw: Any) -> Metric:
        m = Metric(name=name, value=float(value), description=description, **{**defaults, **kw})
        result.metrics.append(m)
        return m

    return add
