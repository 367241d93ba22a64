"""The report's first lines: one verdict per question a reader asks, with its numbers.

Each verdict reads the report's metrics and flags (never recomputes anything), so that a report
read back with :meth:`Report.load` gives the same verdicts. The questions:

- Does it copy its training digits? (memorization)
- Which digits does it miss or over-produce? (modes)
- Does D memorize? (dscores, training)
- Is it close to real digits? (distribution and modes: FD next to precision and the
  unrecognizable rate, so that FD alone is never the message)
- Are latent walks smooth? (interpolation, latent_map)

A verdict's ``status`` is one of ``ok`` (the good answer), ``warn`` (partly), ``bad`` (a rule
fired), ``na`` (not meaningful on these samples, or not measured).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ganalyze.ood import MEANINGFUL_MAX_UNRECOGNIZABLE
from ganalyze.report.numbers import cite, decimals, metric_text, number

REALISM_PRECISION = 0.5  # below: many samples lie outside the real digits' manifold
REALISM_UNRECOGNIZABLE = 0.10  # above: the modes analysis flags it too


@dataclass(frozen=True)
class Verdict:
    """One question of the report answered: ``answer`` in a word or three, ``status``
    (ok, warn, bad, na), ``text`` with the numbers behind it, ``sections`` the analyses that
    hold them (the report's anchors)."""

    key: str
    question: str
    answer: str
    status: str
    text: str
    sections: tuple[str, ...]


def _metric(report, analysis: str, name: str, space: str = "") -> Any:
    for r in report.results:
        if r.name == analysis:
            for m in r.metrics:
                if m.name == name and (m.feature_space or "") == space:
                    return m
    return None


def _finite(m: Any) -> bool:
    return m is not None and isinstance(m.value, int | float) and math.isfinite(m.value)


def _ran(report, name: str) -> bool:
    return any(r.name == name for r in report.results)


def _flags(report, *analyses: str) -> list[Any]:
    return [f for a, f in report.flags if a in analyses]


def _not_run(report, *analyses: str) -> str:
    skipped = dict(report.skipped)
    reasons = [f"{a} skipped: {skipped[a]}" for a in analyses if a in skipped]
    return "; ".join(reasons) or f"{' and '.join(analyses)} not run."


def unrecognizable_rate(report) -> float:
    """The modes analysis's unrecognizable_rate, or NaN when modes did not run."""
    m = _metric(report, "modes", "unrecognizable_rate")
    return m.value if _finite(m) else math.nan


def degenerate(report) -> bool:
    """More than half the samples are unrecognizable: label-based metrics mean nothing."""
    rate = unrecognizable_rate(report)
    return math.isfinite(rate) and rate > MEANINGFUL_MAX_UNRECOGNIZABLE


def _not_digits(report) -> str:
    m = _metric(report, "modes", "unrecognizable_rate")
    return (f"{cite(m)}: more than {MEANINGFUL_MAX_UNRECOGNIZABLE:.0%} of the samples are no "
            "recognizable digit")  # fmt: skip


def copies(report) -> Verdict:
    q, sections = "Does it copy its training digits?", ("memorization",)
    if not _ran(report, "memorization"):
        return Verdict("copies", q, "Not measured", "na", _not_run(report, "memorization"),
                       sections)  # fmt: skip
    adjusted = [_metric(report, "memorization", "copy_rate_adjusted", s)
                for s in ("pixel", "mnist_cnn")]  # fmt: skip
    ct = _metric(report, "memorization", "ct_statistic", "mnist_cnn")
    numbers = [f"{cite(m)} ({m.feature_space})" for m in adjusted if _finite(m)]
    if _finite(ct):
        numbers.append(cite(ct))
    text = "; ".join(numbers) or "no copy rate computed"
    held_out = _held_out_rate(report)
    if _flags(report, "memorization"):
        return Verdict("copies", q, "Yes", "bad", f"{text}, against {held_out:g} for new digits "
                       "(MNIST test).", sections)  # fmt: skip
    if degenerate(report):
        return Verdict("copies", q, "Not meaningful", "na", f"{_not_digits(report)}: copying "
                       f"is moot when the samples are no digits ({text}).", sections)  # fmt: skip
    text = f"{text}, against {held_out:g} for new digits (MNIST test)."
    return Verdict("copies", q, "No", "ok", f"{text} {_raw_versus_adjusted(report, held_out)}"
                   .strip(), sections)  # fmt: skip


def _held_out_rate(report) -> float:
    from ganalyze.analyses.memorization import COPY_PERCENTILE

    params = (report.meta.get("params") or {}).get("memorization") or {}
    return float(params.get("copy_percentile", COPY_PERCENTILE)) / 100


def _raw_versus_adjusted(report, held_out: float) -> str:
    """A sentence when the raw and the digit-adjusted copy rates fall on different sides of the
    held-out rate (the memorization section explains why they can)."""
    raw = _metric(report, "memorization", "copy_rate", "pixel")
    adj = _metric(report, "memorization", "copy_rate_adjusted", "pixel")
    if not (_finite(raw) and _finite(adj)) or (raw.value > held_out) == (adj.value > held_out):
        return ""
    return (
        f"The raw {cite(raw)} is on the other side of {held_out:g}: it uses one threshold "
        "for every digit, while thin digits such as 1s sit closer to their training "
        "neighbours than round ones; the adjusted rate gives each digit its own threshold."
    )


def digits(report) -> Verdict:
    q, sections = "Which digits does it miss or over-produce?", ("modes",)
    if not _ran(report, "modes"):
        return Verdict("digits", q, "Not measured", "na", _not_run(report, "modes"), sections)
    if degenerate(report):
        return Verdict("digits", q, "Not digits", "bad", f"{_not_digits(report)}: it misses "
                       "every digit.", sections)  # fmt: skip
    from ganalyze.analyses.modes import COVERAGE_FRACTION, OVER_FACTOR

    missed, over = [], []
    for c in range(10):
        m = _metric(report, "modes", f"share_{c}")
        if m is None or m.target is None:
            continue
        target = number(m.target, decimals(m.name, m.value, m.ci_low, m.ci_high))
        if m.value < COVERAGE_FRACTION * m.target:
            missed.append((c, f"{c} ({m.name} = {metric_text(m.name, m.value)[0]}, training "
                              f"{target})"))  # fmt: skip
        elif m.ci_low > OVER_FACTOR * m.target:
            over.append((c, f"{c} ({cite(m)}, training {target}: "
                            f"{m.value / m.target:.1f}x)"))  # fmt: skip
    covered = _metric(report, "modes", "modes_covered")
    kl = _metric(report, "modes", "kl_to_train")
    tail = "; ".join(([f"{cite(covered)} of 10"] if _finite(covered) else [])
                     + ([cite(kl)] if _finite(kl) else []))  # fmt: skip
    if not missed and not over:
        return Verdict("digits", q, "None", "ok", "Every digit is made in proportion to its "
                       f"training share{': ' + tail if tail else ''}.", sections)  # fmt: skip
    parts, answer = [], []
    if missed:
        parts.append("misses " + ", ".join(t for _, t in missed))
        answer.append("misses " + ", ".join(str(c) for c, _ in missed))
    if over:
        parts.append("over-produces " + ", ".join(t for _, t in over))
        answer.append("over-produces " + ", ".join(str(c) for c, _ in over))
    text = f"It {'; it '.join(parts)}." + (f" {tail}." if tail else "")
    return Verdict("digits", q, "; ".join(answer).capitalize(), "bad" if missed else "warn",
                   text, sections)  # fmt: skip


def d_memorizes(report) -> Verdict:
    q, sections = "Does D memorize?", ("dscores", "training")
    auc = _metric(report, "dscores", "d_membership_auc")
    gap = _metric(report, "training", "d_train_test_gap_final")
    if not _finite(auc) and not _finite(gap):
        why = _not_run(report, "dscores", "training") if not (
            _ran(report, "dscores") or _ran(report, "training")) else (
            "d_membership_auc not computed (see the dscores section)")  # fmt: skip
        return Verdict("d_memorizes", q, "Not measured", "na", why, sections)
    numbers = []
    if _finite(auc):
        numbers.append(f"{cite(auc)} (0.5: D cannot tell members from new digits)")
        train = _metric(report, "dscores", "d_train_mean")
        test = _metric(report, "dscores", "d_test_mean")
        if _finite(train) and _finite(test):
            numbers[-1] += (f"; mean score {metric_text(train.name, train.value)[0]} on members, "
                            f"{metric_text(test.name, test.value)[0]} on test digits")  # fmt: skip
    if _finite(gap):
        numbers.append(f"after training {cite(gap)}")
    text = "; ".join(numbers) + "."
    flags = _flags(report, "dscores", "training")
    if flags:
        return Verdict("d_memorizes", q, "Yes", "bad", text, sections)
    return Verdict("d_memorizes", q, "No", "ok", text, sections)


def realism(report) -> Verdict:
    q, sections = "Is it close to real digits?", ("distribution", "modes")
    unrec = _metric(report, "modes", "unrecognizable_rate")
    fd = _metric(report, "distribution", "fd", "mnist_cnn")
    precision = _metric(report, "distribution", "precision", "mnist_cnn")
    recall = _metric(report, "distribution", "recall", "mnist_cnn")
    shown = [m for m in (unrec, precision, recall, fd) if _finite(m)]
    if not shown:
        return Verdict("realism", q, "Not measured", "na",
                       _not_run(report, "distribution", "modes"), sections)  # fmt: skip
    text = "; ".join(cite(m) for m in shown) + "."
    if fd is not None:
        text += (" Read FD with the other two: FD alone can rank a generator whose samples are "
                 "often not digits above one whose samples nearly all are.")  # fmt: skip
    if degenerate(report):
        return Verdict("realism", q, "No: mostly not digits", "bad", text, sections)
    poor = []
    if _finite(unrec) and unrec.value > REALISM_UNRECOGNIZABLE:
        poor.append(f"unrecognizable_rate above {REALISM_UNRECOGNIZABLE:g}")
    if _finite(precision) and precision.value < REALISM_PRECISION:
        poor.append(f"precision below {REALISM_PRECISION:g}")
    if poor:
        return Verdict("realism", q, "Partly", "warn", f"{text} ({' and '.join(poor)})",
                       sections)  # fmt: skip
    return Verdict("realism", q, "Yes", "ok", text, sections)


def smooth(report) -> Verdict:
    q, sections = "Are latent walks smooth?", ("interpolation", "latent_map")
    if not (_ran(report, "interpolation") or _ran(report, "latent_map")):
        return Verdict("smooth", q, "Not measured", "na",
                       _not_run(report, "interpolation", "latent_map"), sections)  # fmt: skip
    names = [("interpolation", "excess_label_changes", ""),
             ("interpolation", "excess_label_changes_baseline", ""),
             ("interpolation", "off_manifold_rate", ""),
             ("interpolation", "off_manifold_rate_baseline", ""),
             ("interpolation", "jump_ratio", "pixel"),
             ("latent_map", "latent_label_stability", "")]  # fmt: skip
    found = [m for m in (_metric(report, *n) for n in names) if m is not None]
    text = "; ".join(cite(m) for m in found if _finite(m))
    blank = [m.name for m in found if not _finite(m)]
    if degenerate(report) or blank:
        why = _not_digits(report) if degenerate(report) else "see the notes of its sections"
        missing = f"{', '.join(blank)} reported as NaN ({why})" if blank else why
        return Verdict("smooth", q, "Not meaningful", "na", "The digit labels along the walks "
                       f"mean nothing here: {missing}." + (f" {text}." if text else ""),
                       sections)  # fmt: skip
    if _flags(report, "interpolation"):
        return Verdict("smooth", q, "No", "bad", f"{text}. Walks change digits or leave the "
                       "digits more often than blends of real digits do.", sections)  # fmt: skip
    return Verdict("smooth", q, "Yes", "ok", f"{text}.", sections)


QUESTIONS = (copies, digits, d_memorizes, realism, smooth)


def verdicts(report) -> list[Verdict]:
    """The report's verdicts, one per question, in the order of :data:`QUESTIONS`."""
    return [question(report) for question in QUESTIONS]
