"""Differences between audited generators, metric by metric, each with an interval.

:func:`differences` fills ``comparisons.csv``: for every metric that has an interval in the
reports compared, the difference between two generators, its interval and whether that excludes
0. Where both reports hold the metric's per-sample form (:func:`per_sample_values`) the interval
is a bootstrap over samples: paired when both were sampled from the same latents, independent
otherwise. Where a metric has no per-sample form the interval is formed from the two reports'
own intervals (MOVER), and the ``method`` column says so.
"""

from __future__ import annotations

import hashlib
import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ganalyze.errors import InputError

if TYPE_CHECKING:
    from ganalyze.report import Report

Key = tuple[str, str, str]  # (analysis, metric, feature_space)

COLUMNS = [
    "analysis", "metric", "feature_space", "label_a", "label_b", "value_a", "value_b",
    "difference", "ci_low", "ci_high", "excludes_zero", "paired", "method", "n_boot",
    "higher_is_better", "target", "better",
]  # fmt: skip
DTYPES = {
    "analysis": object, "metric": object, "feature_space": object, "label_a": object,
    "label_b": object, "value_a": "float64", "value_b": "float64", "difference": "float64",
    "ci_low": "float64", "ci_high": "float64", "excludes_zero": bool, "paired": bool,
    "method": object, "n_boot": "Int64", "higher_is_better": "boolean", "target": "float64",
    "better": object,
}  # fmt: skip
PAIRS = ("auto", "all", "best")
AUTO_ALL_MAX = 6  # pairs="auto": every pair up to this many generators, else each against the best
FEW_DISTINCT = 64  # at most this many distinct values: resample their counts (multinomial)
CHUNK_ELEMENTS = 1_000_000  # resampled indices per chunk: 8 MB of indices, 8 MB of values
REPRODUCE_TOL = 1e-9  # relative: a per-sample form's mean must reproduce its metric exactly


def candidate_columns(metric: str, feature_space: str) -> list[str]:
    """The column names that may hold a metric's per-sample form, in the order tried."""
    stem = metric[: -len("_rate")] if metric.endswith("_rate") else metric
    if feature_space:
        names = [f"{metric}_{feature_space}", metric, f"{stem}_{feature_space}", stem]
    else:
        names = [metric, stem]
    return [name for name in dict.fromkeys(names) if name]


def per_sample_values(report: Report) -> dict[Key, np.ndarray]:
    """The per-sample form of each metric of a report that has one.

    Parameters
    ----------
    report
        An audit's report (live or read back with :meth:`~ganalyze.Report.load`).

    Returns
    -------
    dict
        (analysis, metric, feature_space) -> float64 array, one value per generated sample in
        the order of the table's ``sample`` column, whose mean is the metric. Only metrics with
        a finite interval (``ci_low`` and ``ci_high``) are looked for.

    Notes
    -----
    The per-sample form of a metric is a column of one of its analysis's tables that has a
    ``sample`` column (tables tried in name order). The column names tried, first match wins,
    are ``<metric>_<space>``, ``<metric>``, ``<stem>_<space>``, ``<stem>``, where ``stem`` is
    the metric without a trailing ``_rate`` and the names with ``_<space>`` are tried only for a
    metric of a feature space: memorization's ``copy_pixel`` is the per-sample form of
    ``copy_rate`` in pixel space, modes' ``ood`` that of ``ood_rate``. The column found is used
    only when it has ``n_fake`` values (where ``n_fake`` is known) and its mean reproduces the
    metric: ``|mean - value| <= 1e-9 * max(1, |value|)``. Otherwise the metric has no
    per-sample form (a reweighted rate such as ``copy_rate_adjusted`` is not a plain mean).
    """
    tables = {result.name: result.tables for result in report.results}
    found: dict[Key, np.ndarray] = {}
    for row in report.metrics.to_dict("records"):
        if not (_finite(row["ci_low"]) and _finite(row["ci_high"])):
            continue
        space = row["feature_space"] if isinstance(row["feature_space"], str) else ""
        values = _column(tables.get(row["analysis"], {}), row["metric"], space)
        if values is not None and _reproduces(values, row["value"], row["n_fake"]):
            found[(row["analysis"], row["metric"], space)] = values
    return found


def _column(tables: Mapping[str, pd.DataFrame], metric: str, space: str) -> np.ndarray | None:
    with_sample = [tables[name] for name in sorted(tables) if "sample" in tables[name].columns]
    for column in candidate_columns(metric, space):
        for table in with_sample:
            if column in table.columns:
                ordered = table.sort_values("sample", kind="stable")[column]
                try:
                    return ordered.to_numpy(dtype=np.float64, na_value=np.nan)
                except (TypeError, ValueError):
                    return None
    return None


def _reproduces(values: np.ndarray, value: Any, n_fake: Any) -> bool:
    if not pd.isna(n_fake) and len(values) != int(n_fake):
        return False
    if len(values) == 0 or not _finite(value):
        return False
    return abs(float(values.mean()) - float(value)) <= REPRODUCE_TOL * max(1.0, abs(float(value)))


def _finite(x: Any) -> bool:
    return not pd.isna(x) and math.isfinite(float(x))


def bootstrap_means(
    values: np.ndarray,
    *,
    n_boot: int,
    rng: np.random.Generator,
    max_distinct: int = FEW_DISTINCT,
) -> np.ndarray:
    """The means of ``n_boot`` bootstrap resamples (with replacement, size n) of ``values``.

    Parameters
    ----------
    values
        One value per sample (for a paired bootstrap: the per-sample differences).
    n_boot
        Number of resamples.
    rng
        The random generator drawn from.
    max_distinct
        With at most this many distinct values (booleans, or differences of booleans in
        {-1, 0, 1}), the resampled counts of each value are drawn directly.

    Returns
    -------
    numpy.ndarray
        float64 (n_boot,); NaN when ``values`` is empty.

    Notes
    -----
    Resampling n indices uniformly with replacement gives each of the k distinct values a
    count that is multinomial(n, shares of the values), so drawing those counts
    (``rng.multinomial``) is the same bootstrap exactly, in O(n_boot k) instead of
    O(n_boot n). Otherwise indices are resampled in chunks of about 10^6, which bounds memory
    (n = 10,000 and n_boot = 2,000 use about 16 MB at a time).
    """
    x = np.asarray(values, dtype=np.float64).ravel()
    n = len(x)
    if n == 0:
        return np.full(n_boot, np.nan)
    distinct, counts = np.unique(x, return_counts=True)
    if len(distinct) <= max_distinct:
        draws = rng.multinomial(n, counts / n, size=n_boot)
        return draws @ distinct / n
    means = np.empty(n_boot)
    chunk = max(1, CHUNK_ELEMENTS // n)
    for start in range(0, n_boot, chunk):
        stop = min(n_boot, start + chunk)
        means[start:stop] = x[rng.integers(0, n, size=(stop - start, n))].mean(axis=1)
    return means


def mover_difference(
    value_a: float, low_a: float, high_a: float, value_b: float, low_b: float, high_b: float
) -> tuple[float, float]:
    """Interval of ``value_b - value_a`` from each estimate's own interval (MOVER).

    Parameters
    ----------
    value_a, low_a, high_a
        The first estimate and its interval.
    value_b, low_b, high_b
        The second estimate and its interval (same confidence level).

    Returns
    -------
    (low, high)
        With d = value_b - value_a:
        low = d - sqrt((value_b - low_b)^2 + (high_a - value_a)^2),
        high = d + sqrt((high_b - value_b)^2 + (value_a - low_a)^2).

    Notes
    -----
    The method of variance estimates recovery treats the two estimates as independent; it keeps
    the asymmetry of each interval (a Wilson interval near 0 or 1). With Wilson intervals it is
    Newcombe's method 10 for a difference of proportions. For positively correlated estimates
    (generators sampled from the same latents, checkpoints of one run) it is conservative.

    References
    ----------
    R. G. Newcombe, "Interval estimation for the difference between independent proportions:
    comparison of eleven methods", Statistics in Medicine 17 (1998).
    G. Y. Zou and A. Donner, "Construction of confidence limits about effect measures: a general
    approach", Statistics in Medicine 27 (2008).
    """
    d = value_b - value_a
    low = d - math.hypot(value_b - low_b, high_a - value_a)
    high = d + math.hypot(high_b - value_b, value_a - low_a)
    return (low, high)


def differences(
    metrics: pd.DataFrame,
    samples: Mapping[str, Mapping[Key, np.ndarray]],
    *,
    order: Sequence[str],
    paired: Callable[[str, str], bool],
    pairs: str = "auto",
    n_boot: int = 2000,
    seed: int = 0,
    level: float = 0.95,
) -> pd.DataFrame:
    """Differences between generators, per metric with an interval, each with an interval.

    Parameters
    ----------
    metrics
        The tidy metric rows of several reports with a ``label`` column (other extra columns,
        such as ``step`` and ``spec``, are ignored). Only rows with a finite ``ci_low`` and
        ``ci_high`` and a label in ``order`` are compared.
    samples
        label -> :func:`per_sample_values` of that label's report.
    order
        The labels in order; in each pair ``label_a`` comes first.
    paired
        ``paired(label_a, label_b)``: whether the two were sampled from the same latents (same
        seed, latent size and number of samples).
    pairs
        ``"all"``: every pair; ``"best"``: each generator against the best one of the metric
        (``label_a``; highest or lowest value by ``higher_is_better``, else closest to
        ``target``; a metric with neither is left out); ``"auto"``: ``"all"`` for up to 6
        labels, else ``"best"``.
    n_boot
        Bootstrap resamples.
    seed
        Seed of the bootstrap; each (metric, feature space, pair) draws from its own stream,
        derived from the seed and a BLAKE2b hash of its key, so a row does not depend on
        which other rows are computed.
    level
        Confidence level of the bootstrap intervals. MOVER intervals have the level of the
        reports' own intervals (95%).

    Returns
    -------
    pandas.DataFrame
        One row per metric and pair, columns :data:`COLUMNS`: analysis, metric, feature_space,
        label_a, label_b, value_a, value_b, difference (value_b - value_a), ci_low, ci_high,
        excludes_zero, paired (the interval is a paired one), method (how the interval was
        formed, in words), n_boot (NA without a bootstrap), higher_is_better, target, better
        (the better label when the interval excludes 0 and the metric has a direction or a
        target, else ""). Values are not rounded.

    Notes
    -----
    Per pair and metric: both reports hold its per-sample form, were sampled from the same
    latents and have as many samples -> paired bootstrap of the mean difference over sample
    indices; both hold it otherwise -> independent bootstrap, each side resampled on its own;
    percentile intervals (:func:`bootstrap_means`). Otherwise the interval is MOVER from the two
    reports' own intervals (:func:`mover_difference`). For a metric with a target, the better
    label is the one nearer the target when both values lie on the same side of it; on opposite
    sides the difference says which is larger, not which is nearer, and ``better`` is "".

    References
    ----------
    B. Efron and R. J. Tibshirani, "An Introduction to the Bootstrap", Chapman & Hall (1993).
    G. Y. Zou and A. Donner, Statistics in Medicine 27 (2008); R. G. Newcombe, Statistics in
    Medicine 17 (1998).
    """
    _check_options(pairs, n_boot, seed, level)
    rows = _with_intervals(metrics, order)
    mode = pairs if pairs != "auto" else ("all" if len(order) <= AUTO_ALL_MAX else "best")
    found = []
    for key, group in rows.groupby(["analysis", "metric", "feature_space"], sort=False):
        by_label = {row["label"]: row for row in group.to_dict("records")}
        labels = [label for label in order if label in by_label]
        direction = _direction(by_label[labels[0]])
        for a, b in _pairs(labels, by_label, mode, direction):
            ctx = (tuple(key), samples, paired, n_boot, seed, level)
            found.append(_compare(by_label[a], by_label[b], direction, *ctx))
    return pd.DataFrame(found, columns=COLUMNS).astype(DTYPES)


def _check_options(pairs: str, n_boot: int, seed: int, level: float) -> None:
    if pairs not in PAIRS:
        raise InputError(f"pairs must be one of {', '.join(PAIRS)}; got {pairs!r}.")
    if isinstance(n_boot, bool) or not isinstance(n_boot, int | np.integer) or n_boot < 1:
        raise InputError(f"n_boot must be a positive integer; got {n_boot!r}.")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise InputError(f"seed must be a non-negative integer; got {seed!r}.")
    if not 0 < level < 1:
        raise InputError(f"level must lie strictly between 0 and 1 (0.95 for 95%); got {level!r}.")


def _with_intervals(metrics: pd.DataFrame, order: Sequence[str]) -> pd.DataFrame:
    if metrics.empty:
        return pd.DataFrame(columns=["label", "analysis", "metric", "feature_space"])
    frame = metrics[metrics["label"].isin(list(order))].copy()
    frame["feature_space"] = frame["feature_space"].fillna("").astype(object)
    low = pd.to_numeric(frame["ci_low"], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    high = pd.to_numeric(frame["ci_high"], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    frame = frame[np.isfinite(low) & np.isfinite(high)]
    keys = ["label", "analysis", "metric", "feature_space"]
    dup = frame.duplicated(keys)
    if dup.any():
        first = frame.loc[dup, keys].iloc[0].tolist()
        raise InputError(f"metric rows must be unique per (label, analysis, metric, "
                         f"feature_space); {first} appears more than once.")  # fmt: skip
    return frame


def _direction(row: Mapping[str, Any]) -> tuple[bool | None, float]:
    hib = None if pd.isna(row["higher_is_better"]) else bool(row["higher_is_better"])
    target = float(row["target"]) if _finite(row["target"]) else math.nan
    return hib, target


def _pairs(
    labels: list[str],
    by_label: Mapping[str, Mapping[str, Any]],
    mode: str,
    direction: tuple[bool | None, float],
) -> list[tuple[str, str]]:
    if mode == "all":
        return list(itertools.combinations(labels, 2))
    hib, target = direction
    values = np.array([float(by_label[label]["value"]) for label in labels])
    if hib is not None:
        score = values if hib else -values
    elif math.isfinite(target):
        score = -np.abs(values - target)
    else:
        return []
    best = labels[int(np.nanargmax(score))] if np.isfinite(score).any() else labels[0]
    return [(best, label) for label in labels if label != best]


def _compare(
    row_a: Mapping[str, Any],
    row_b: Mapping[str, Any],
    direction: tuple[bool | None, float],
    key: Key,
    samples: Mapping[str, Mapping[Key, np.ndarray]],
    paired: Callable[[str, str], bool],
    n_boot: int,
    seed: int,
    level: float,
) -> dict[str, Any]:
    a, b = str(row_a["label"]), str(row_b["label"])
    value_a, value_b = float(row_a["value"]), float(row_b["value"])
    x_a, x_b = samples.get(a, {}).get(key), samples.get(b, {}).get(key)
    same = bool(paired(a, b))
    if x_a is not None and x_b is not None:
        rng = _rng(seed, *key, a, b)
        low, high, is_paired, method = _bootstrap(x_a, x_b, same, rng, n_boot, level)
        boot: Any = n_boot
    else:
        bounds = [float(row[c]) for row in (row_a, row_b) for c in ("ci_low", "ci_high")]
        low, high = mover_difference(value_a, *bounds[:2], value_b, *bounds[2:])
        is_paired, boot, method = False, pd.NA, _mover_text(a, b, x_a, x_b, same)
    excludes = bool(low > 0 or high < 0)
    hib, target = direction
    return {
        "analysis": key[0], "metric": key[1], "feature_space": key[2], "label_a": a,
        "label_b": b, "value_a": value_a, "value_b": value_b, "difference": value_b - value_a,
        "ci_low": float(low), "ci_high": float(high), "excludes_zero": excludes,
        "paired": is_paired, "method": method, "n_boot": boot,
        "higher_is_better": pd.NA if hib is None else hib, "target": target,
        "better": _better(a, b, value_a, value_b, low, high, excludes, direction),
    }  # fmt: skip


def _bootstrap(
    x_a: np.ndarray,
    x_b: np.ndarray,
    same: bool,
    rng: np.random.Generator,
    n_boot: int,
    level: float,
) -> tuple[float, float, bool, str]:
    x_a, x_b = np.asarray(x_a, dtype=np.float64), np.asarray(x_b, dtype=np.float64)
    tail = f"{n_boot} resamples, {level * 100:g}% percentile interval"
    if same and len(x_a) == len(x_b):
        means = bootstrap_means(x_b - x_a, n_boot=n_boot, rng=rng)
        method = f"paired bootstrap over the same latents (per-sample differences), {tail}"
    else:
        means = bootstrap_means(x_b, n_boot=n_boot, rng=rng)
        means -= bootstrap_means(x_a, n_boot=n_boot, rng=rng)
        method = f"independent bootstrap (each generator's samples resampled apart), {tail}"
    low, high = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return float(low), float(high), bool(same and len(x_a) == len(x_b)), method


def _mover_text(a: str, b: str, x_a: Any, x_b: Any, same: bool) -> str:
    if x_a is None and x_b is None:
        why = "the metric has no per-sample form"
    else:
        why = f"{a if x_a is None else b} has no per-sample form of it"
    shared = "; the samples share latents" if same else ""
    return (f"MOVER from each report's own 95% interval (Zou & Donner 2008; Newcombe 1998), "
            f"the two estimates treated as independent: conservative when they are positively "
            f"correlated (e.g. paired checkpoints); used because {why}{shared}")  # fmt: skip


def _better(
    a: str,
    b: str,
    value_a: float,
    value_b: float,
    low: float,
    high: float,
    excludes: bool,
    direction: tuple[bool | None, float],
) -> str:
    hib, target = direction
    if not excludes:
        return ""
    if hib is not None:
        return b if (low > 0) == hib else a
    if not math.isfinite(target):
        return ""
    off_a, off_b = value_a - target, value_b - target
    if off_a * off_b < 0 or abs(off_a) == abs(off_b):
        return ""  # opposite sides of the target: the difference says which is larger only
    return b if abs(off_b) < abs(off_a) else a


def _rng(seed: int, *parts: str) -> np.random.Generator:
    digest = hashlib.blake2b("\x1f".join(parts).encode("utf-8"), digest_size=8).digest()
    return np.random.default_rng([int(seed), int.from_bytes(digest, "little")])
