"""How a metric's numbers are written for people: one format per metric, chosen once.

The number of decimals is chosen once per metric, from its value and interval, and used for the
value and both bounds, so that ``0.0595 (0.0550 – 0.0643)`` never appears as ``0.0595`` beside
``0.05503 – 0.06431``. Shares (rates, shares, precision, recall, accuracies: numbers in [0, 1]
that a reader reads as a fraction of samples) are written in fixed point, never in scientific
notation. The findings, the verdicts, the tables and ``metrics.tex`` all use these functions, so
they agree to the digit. Values are never rounded in data (metrics.csv/json); only text is.
"""

from __future__ import annotations

import math
import re
from typing import Any

SIGNIFICANT = 3  # significant digits of the largest of value and bounds
MAX_DECIMALS = 8
_SHARE = re.compile(
    r"^(share_\d|.*_rate(_|$)|precision|recall|coverage|authenticity|d_acc_|"
    r"latent_label_stability|mia_tpr_|off_manifold)"
)


def is_share(metric: str) -> bool:
    """Whether ``metric`` is read as a fraction of samples (written in fixed point)."""
    return bool(_SHARE.match(metric))


def _finite(*values: Any) -> list[float]:
    out = []
    for v in values:
        try:
            f = float(v)
        except (TypeError, ValueError):
            continue
        if math.isfinite(f):
            out.append(f)
    return out


def decimals(metric: str, value: Any, ci_low: Any = math.nan, ci_high: Any = math.nan) -> int:
    """The decimals of ``metric``'s value and interval.

    Shares: 3 significant digits of the value (of the upper bound when the value is 0), at
    least 3 decimals and at most 5, so that 0.0035 is not written 0.004 beside a raw 0.000.
    Other metrics: 3 significant digits of the largest absolute number among value and
    bounds; integers without an interval: none.
    """
    numbers = _finite(value, ci_low, ci_high)
    if not numbers:
        return 0
    v = _finite(value)
    if is_share(metric):
        base = abs(v[0]) if v and v[0] else max(abs(n) for n in numbers)
        if base == 0:
            return 3
        return int(min(5, max(3, SIGNIFICANT - 1 - math.floor(math.log10(base)))))
    if v and v[0].is_integer() and not _finite(ci_low, ci_high) and abs(v[0]) < 1e9:
        return 0
    largest = max(abs(n) for n in numbers)
    if largest == 0:
        return 0
    return int(min(MAX_DECIMALS, max(0, SIGNIFICANT - 1 - math.floor(math.log10(largest)))))


def number(value: Any, places: int) -> str:
    """``value`` in fixed point with ``places`` decimals; NaN or None as an en dash; a value too
    small for ``places`` keeps 3 significant digits (never 0.00000000 for 1e-12)."""
    f = _finite(value)
    if not f:
        return "–"
    x = f[0]
    if x != 0 and abs(x) < 10**-MAX_DECIMALS:
        return f"{x:.2e}"
    text = f"{x:.{places}f}"
    return "0" + text[2:] if text.startswith("-0") and float(text) == 0 else text


def metric_text(
    metric: str, value: Any, ci_low: Any = math.nan, ci_high: Any = math.nan
) -> tuple[str, str]:
    """(value, interval) of one metric as text, with the same decimals; interval "" when
    there is none. ``("0.0595", "0.0550 – 0.0643")``."""
    places = decimals(metric, value, ci_low, ci_high)
    interval = ""
    if _finite(ci_low) and _finite(ci_high):
        interval = f"{number(ci_low, places)} – {number(ci_high, places)}"
    return number(value, places), interval


def cite(m: Any) -> str:
    """A metric as findings and verdicts cite it: ``copy_rate = 0.0035 (95% CI 0.0012 –
    0.0089)``; ``m`` has name, value, ci_low, ci_high."""
    value, interval = metric_text(m.name, m.value, m.ci_low, m.ci_high)
    return f"{m.name} = {value}" + (f" (95% CI {interval})" if interval else "")


def value_text(m: Any) -> str:
    """A metric's value alone, in its one format."""
    return metric_text(m.name, m.value, m.ci_low, m.ci_high)[0]
