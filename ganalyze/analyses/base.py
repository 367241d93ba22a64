"""What every analysis returns, the registry that finds analyses by name, and their parameters.

An analysis is a class with a stable snake_case ``name``, a ``title``, a one-paragraph
``description``, the ``needs`` it has of the audited source, its options as a frozen ``Params``
dataclass, and ``run(context)`` returning an :class:`AnalysisResult` (reading its options from
``self.params``). A module of ``ganalyze/analyses/`` that registers its class (``@register``) is
all it takes to appear in reports; a third-party analysis is named in the ``ganalyze.analyses``
entry-point group instead (:func:`load_plugins`).
"""

from __future__ import annotations

import dataclasses
import importlib
import math
import typing
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import pandas as pd

from ganalyze.errors import InputError

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
NEEDS = ("samples", "generator", "latents", "discriminator", "history", "labels")


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


# Draws one figure from a result's data, no computation: ``spec(result, ax=None) -> Figure``.
FigureSpec = Callable[..., Any]


@dataclass
class AnalysisResult:
    """Metrics, flags, per-sample tables, figures and notes of one analysis.

    ``figures`` names the result's figures: each value is a :data:`FigureSpec`, a function
    drawing from this result's data (``arrays``, ``tables``, ``metrics``) when the report is
    saved or rendered (:meth:`draw`); a ready matplotlib Figure is accepted too. ``arrays``
    holds what the figures show and nothing more; it is not exported.
    """

    name: str
    title: str
    description: str
    metrics: list[Metric] = field(default_factory=list)
    flags: list[Flag] = field(default_factory=list)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    figures: dict[str, FigureSpec | Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    rules: list[str] = field(default_factory=list)
    arrays: dict[str, Any] = field(default_factory=dict)

    def draw(self, name: str) -> Any:
        """The figure ``name`` as a new matplotlib Figure, drawn from this result's data."""
        spec = self.figures[name]
        return spec if hasattr(spec, "savefig") else spec(self)

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


@dataclass(frozen=True)
class NoParams:
    """The parameters of an analysis that has none."""


class Analysis:
    """Base class: subclasses set the class attributes and implement :meth:`run`.

    ``Params`` is a frozen dataclass of the analysis's options: each field with a default and
    ``metadata={"help": ...}``, values checked in ``__post_init__`` (raise
    :class:`~ganalyze.errors.InputError`). They are set from outside as ``--param
    name.field=value`` or ``audit(params={name: {field: value}})``; ``run`` reads
    ``self.params``.

    ``metric_names`` lists every metric ``run`` may emit, each name defined once as a module
    constant (README documents each; tests/test_metric_docs.py checks both). ``run`` puts the
    data its figures show in ``result.arrays`` and names the figures in ``result.figures``
    (``name -> plot function``); the report draws them when it is saved or rendered.
    """

    name: ClassVar[str]
    title: ClassVar[str]
    description: ClassVar[str]
    needs: ClassVar[tuple[str, ...]] = ("samples",)
    order: ClassVar[int] = 50  # position in reports: lower first (built-ins before plugins)
    Params: ClassVar[type] = NoParams

    def __init__(self, params: Any = None) -> None:
        self.params = self.Params() if params is None else params

    def run(self, context: Any) -> AnalysisResult:  # pragma: no cover - abstract
        raise NotImplementedError

    metric_names: ClassVar[tuple[str, ...]] = ()  # every metric run() may emit

    def plot(self, result: AnalysisResult) -> dict[str, Any]:
        """The figures of a result drawn now (matplotlib Figures by name). Reports draw them
        when saved or rendered, from the specs in ``result.figures``."""
        return {name: result.draw(name) for name in result.figures}

    def result(self) -> AnalysisResult:
        """An empty result carrying this analysis's name, title and description."""
        return AnalysisResult(self.name, self.title, self.description)


REGISTRY: dict[str, type[Analysis]] = {}
PLUGINS: dict[str, str] = {}  # analysis name -> its entry point ("name = module:Class")
ENTRY_POINT_GROUP = "ganalyze.analyses"


class PluginWarning(UserWarning):
    """A third-party analysis that could not be imported or registered (it is left out)."""


def registered() -> list[str]:
    """Registered analysis names in report order: built-ins by ``order``, then plugins."""
    return sorted(REGISTRY, key=lambda name: (name in PLUGINS, REGISTRY[name].order, name))


def register(cls: type[Analysis]) -> type[Analysis]:
    """Class decorator: make an analysis available under its ``name``."""
    name = getattr(cls, "name", None)
    if not isinstance(cls, type) or not issubclass(cls, Analysis):
        raise ValueError(f"expected a subclass of ganalyze.Analysis, got {cls!r}")
    if not isinstance(name, str) or not name.replace("_", "").isalnum() or name != name.lower():
        raise ValueError(f"analysis name must be snake_case, got {name!r}")
    if name in REGISTRY and REGISTRY[name] is not cls:
        raise ValueError(f"analysis {name!r} is already registered ({REGISTRY[name].__module__})")
    for attr in ("title", "description"):
        if not isinstance(getattr(cls, attr, None), str):
            raise ValueError(f"{name}: {attr} must be a string")
    unknown = set(cls.needs) - set(NEEDS)
    if unknown:
        raise ValueError(f"{name}: unknown needs {sorted(unknown)}; expected some of {NEEDS}")
    params = cls.Params
    if not dataclasses.is_dataclass(params) or not params.__dataclass_params__.frozen:
        raise ValueError(f"{name}: Params must be a frozen dataclass, got {params!r}")
    REGISTRY[name] = cls
    return cls


def load_plugins(*, reload: bool = False) -> list[str]:
    """Register the analyses named in the ``ganalyze.analyses`` entry-point group (once).

    Each entry point's value is ``module:Class``, an :class:`Analysis` subclass. One that fails
    to import or to register gives one :class:`PluginWarning` naming it and is left out.
    ``reload`` forgets the plugins found before and looks again (after installing one).
    Returns the names of the registered plugins.
    """
    global _plugins_loaded
    if _plugins_loaded and not reload:
        return list(PLUGINS)
    from importlib.metadata import entry_points

    for name in PLUGINS:
        REGISTRY.pop(name, None)
    PLUGINS.clear()
    importlib.invalidate_caches()
    _plugins_loaded = True
    for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        label = f"{ep.name} = {ep.value}"
        try:
            cls = ep.load()
        except Exception as exc:  # a plugin's import may raise anything
            warnings.warn(f"Analysis plugin {label!r} could not be imported and is left out: "
                          f"{type(exc).__name__}: {exc}", PluginWarning, stacklevel=2)  # fmt: skip
            continue
        try:
            name = getattr(cls, "name", None)
            taken = REGISTRY.get(name) if isinstance(name, str) else None
            # the same class is fine once: a plugin module may register its class itself
            if taken is not None and (taken is not cls or name in PLUGINS or _builtin(taken)):
                raise ValueError(f"analysis {name!r} is already registered "
                                 f"({taken.__module__}:{taken.__qualname__})")  # fmt: skip
            register(cls)
        except Exception as exc:
            warnings.warn(f"Analysis plugin {label!r} could not be registered and is left out: "
                          f"{exc}", PluginWarning, stacklevel=2)  # fmt: skip
            continue
        PLUGINS[cls.name] = label
    return list(PLUGINS)


_plugins_loaded = False


def _builtin(cls: type) -> bool:
    return cls.__module__.startswith(f"{__package__}.")


# Parameters ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ParamSpec:
    """One parameter of an analysis: its field, type, default and help text."""

    analysis: str
    name: str
    type: Any
    default: Any
    help: str

    @property
    def type_name(self) -> str:
        args = typing.get_args(self.type)
        if typing.get_origin(self.type) is tuple:
            return f"tuple[{args[0].__name__}, ...]"
        return getattr(self.type, "__name__", str(self.type))


def param_specs(cls: type[Analysis]) -> list[ParamSpec]:
    """The parameters an analysis declares, in declaration order."""
    hints = typing.get_type_hints(cls.Params)
    return [
        ParamSpec(
            cls.name,
            f.name,
            hints[f.name],
            f.default if f.default is not dataclasses.MISSING else f.default_factory(),
            f.metadata.get("help", ""),
        )  # fmt: skip
        for f in dataclasses.fields(cls.Params)
    ]


def format_value(value: Any) -> str:
    """A parameter value as ``--param`` takes it ("9,7,1" for a tuple)."""
    if isinstance(value, tuple):
        return ",".join(map(str, value))
    return str(value).lower() if isinstance(value, bool) else str(value)


_BOOLS = {"true": True, "1": True, "yes": True, "on": True,
          "false": False, "0": False, "no": False, "off": False}  # fmt: skip


def _parse_scalar(tp: Any, text: str) -> Any:
    text = text.strip()
    if tp is bool:
        if text.lower() not in _BOOLS:
            raise ValueError
        return _BOOLS[text.lower()]
    return tp(text)


def parse_value(spec: ParamSpec, value: Any) -> Any:
    """``value`` for the parameter ``spec``: text is parsed by the field's type (int, float,
    bool, str, or tuple[int, ...] written "9,7,1"); a list becomes a tuple. The dataclass
    checks the result."""
    tp = spec.type
    tuple_of = typing.get_args(tp)[0] if typing.get_origin(tp) is tuple else None
    if not isinstance(value, str) or tp is str:
        return tuple(value) if tuple_of and isinstance(value, list) else value
    try:
        if tuple_of:
            return tuple(_parse_scalar(tuple_of, part) for part in value.split(","))
        return _parse_scalar(tp, value)
    except ValueError:
        example = format_value(spec.default)
        raise InputError(f"{spec.analysis}.{spec.name} expects a {spec.type_name} (e.g. "
                         f"{example}); got {value!r}.") from None  # fmt: skip


def make_params(cls: type[Analysis], values: Mapping[str, Any] | None = None) -> Any:
    """``cls.Params`` with ``values`` (field -> value or its text) over the defaults."""
    specs = {s.name: s for s in param_specs(cls)}
    values = dict(values or {})
    unknown = sorted(set(values) - set(specs))
    if unknown:
        valid = ", ".join(f"{cls.name}.{n}" for n in specs) or "none"
        raise InputError(f"Unknown parameter {', '.join(f'{cls.name}.{n}' for n in unknown)}; "
                         f"the parameters of {cls.name} are: {valid} (see `ganalyze analyses "
                         "--params`).")  # fmt: skip
    return cls.Params(**{k: parse_value(specs[k], v) for k, v in values.items()})


def resolve_params(
    params: Mapping[str, Mapping[str, Any]] | None, names: Iterable[str] | None = None
) -> dict[str, Any]:
    """Each analysis of ``names`` (default: every registered one) with its Params instance,
    ``params`` ({analysis: {field: value}}) over the defaults. Every analysis in ``params`` is
    checked, run or not: an unknown analysis or field, or a bad value, is an InputError (the
    first two naming the valid parameters)."""
    params = dict(params or {})
    unknown = sorted(set(params) - set(REGISTRY))
    if unknown:
        valid = [f"{s.analysis}.{s.name}" for n in registered() for s in param_specs(REGISTRY[n])]
        raise InputError(f"Parameters for unknown analyses {unknown}; the parameters are: "
                         f"{', '.join(valid)} (analyses: {', '.join(registered())}; see "
                         "`ganalyze analyses --params`).")  # fmt: skip
    made = {}
    for name, values in params.items():
        if not isinstance(values, Mapping):
            raise InputError(f"params[{name!r}] must be a mapping of field to value, like "
                             f"{{'field': value}}; got {values!r}.")  # fmt: skip
        made[name] = make_params(REGISTRY[name], values)
    return {name: made[name] if name in made else make_params(REGISTRY[name])
            for name in (registered() if names is None else names)}  # fmt: skip


def params_dict(params: Any) -> dict[str, Any]:
    """A Params instance as {field: value} (for meta.json)."""
    return {f.name: getattr(params, f.name) for f in dataclasses.fields(params)}


def check_number(
    where: str, value: Any, low: float | None, high: float | None, fix: str = "",
    *, integer: bool = True,
) -> None:  # fmt: skip
    """Raise an InputError unless ``value`` is a number (an integer if ``integer``) in [low,
    high]; for ``Params.__post_init__``."""
    import numpy as np

    kind = "an integer" if integer else "a number"
    bounds = (f"from {low} to {high}" if low is not None and high is not None else
              f"of at least {low}" if low is not None else f"of at most {high}")  # fmt: skip
    types = (int, np.integer) if integer else (int, float, np.integer, np.floating)
    fix = f" {fix}" if fix else ""
    if isinstance(value, bool) or not isinstance(value, types) or value != value:
        raise InputError(f"{where} must be {kind} {bounds}; got {value!r}.{fix}")
    if (low is not None and value < low) or (high is not None and value > high):
        raise InputError(f"{where} must be {kind} {bounds}; got {value}.{fix}")


def metric_adder(result: AnalysisResult, **defaults: Any) -> Callable[..., Metric]:
    """A helper that appends metrics to ``result`` with shared defaults (n_fake, space...)."""

    def add(name: str, value: float, description: str, **kw: Any) -> Metric:
        m = Metric(name=name, value=float(value), description=description, **{**defaults, **kw})
        result.metrics.append(m)
        return m

    return add
