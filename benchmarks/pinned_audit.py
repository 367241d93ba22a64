"""Pinned audit: the metrics of one fixed audit, compared to the last bit with those committed.

Speed work must not move a number. The fixed audit is the bundled ``pretrained:reference-gan``
(epoch 300) with its discriminator, seed 0, n = 10,000, every analysis: 110 metric rows, each
with its value and interval. Its metrics.csv is committed in ``benchmarks/pinned/``; this script
runs the audit again (or reads a report folder that holds it) and lists every row whose value,
``ci_low`` or ``ci_high`` differs, or that appeared or went. It exits 1 when any does.

    GANALYZE_DATA=../shared/data python benchmarks/pinned_audit.py            # audit, compare
    GANALYZE_DATA=../shared/data python benchmarks/pinned_audit.py --report DIR  # a saved one
    GANALYZE_DATA=../shared/data python benchmarks/pinned_audit.py --write    # new pinned file

Equal to the bit holds on one kind of machine (the pinned file: 2 cores of an AMD EPYC with
AVX2, torch 2.14.1, faiss-cpu 1.x). Another instruction set or BLAS rounds float32 sums
differently; ``--rtol`` then tells rounding from a change.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

PINNED = Path(__file__).resolve().parent / "pinned" / "reference-gan-e300-seed0-n10000.csv"
PRETRAINED = Path(__file__).resolve().parents[1] / "ganalyze" / "pretrained" / "reference-gan"
SPEC, SEED, N = "pretrained:reference-gan", 0, 10_000
KEY = ["analysis", "metric", "feature_space"]
NUMBERS = ["value", "ci_low", "ci_high"]


def _same(a: float, b: float, rtol: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return a == b if rtol == 0 else math.isclose(a, b, rel_tol=rtol, abs_tol=rtol * 1e-3)


def _keyed(frame):
    frame = frame.copy()
    for col in KEY:  # a metric without a feature space: NaN in a frame, "" in a CSV
        frame[col] = frame[col].fillna("").astype(str)
    return frame.set_index(KEY)


def differences(pinned, current, rtol: float = 0.0) -> list[str]:
    """One line per row that differs between two metrics tables (missing, new or changed)."""
    old, new = _keyed(pinned), _keyed(current)
    lines = [f"  gone: {key}" for key in old.index.difference(new.index)]
    lines += [f"  new:  {key}" for key in new.index.difference(old.index)]
    for key in old.index.intersection(new.index):
        changed = [
            f"{col} {float(old.at[key, col])!r} -> {float(new.at[key, col])!r}"
            for col in NUMBERS
            if not _same(float(old.at[key, col]), float(new.at[key, col]), rtol)
        ]
        if changed:
            lines.append(f"  {key}: " + "; ".join(changed))
    return lines


def read(path: Path):
    """A metrics table as written, floats read back to the bit."""
    import pandas as pd

    frame = pd.read_csv(
        path, keep_default_na=False, na_values=[""], dtype=dict.fromkeys(NUMBERS, str)
    )
    for col in NUMBERS:  # Python's float() of the written digits: exact, whatever the parser
        frame[col] = [float("nan") if pd.isna(v) else float(v) for v in frame[col]]
    return frame


def not_the_fixed_audit(folder: Path) -> str | None:
    """What in a report folder's meta.json differs from the fixed audit, or None."""
    from ganalyze.analyses.base import registered

    meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
    manifest = json.loads((PRETRAINED / "manifest.json").read_text(encoding="utf-8"))
    wanted = {"sha256": manifest["files"]["300"]["sha256"], "seed": SEED, "n_samples": N,
              "params_changed": {}, "analyses": list(registered())}  # fmt: skip
    wrong = [f"{k} {meta.get(k)!r}, expected {v!r}" for k, v in wanted.items() if meta.get(k) != v]
    return "; ".join(wrong) or None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--report", metavar="DIR", help="compare this saved report's metrics")
    parser.add_argument("--write", action="store_true", help="write the pinned file anew")
    parser.add_argument("--rtol", type=float, default=0.0, help="relative tolerance [0: bits]")
    args = parser.parse_args()
    if args.report:
        problem = not_the_fixed_audit(Path(args.report))
        if problem:
            print(f"{args.report} is not the fixed audit: {problem}")
            return 2
        current = read(Path(args.report) / "metrics.csv")
    else:
        from ganalyze import audit

        report = audit(SPEC, n_samples=N, seed=SEED, progress=False)
        current = report.metrics
    if args.write:
        PINNED.parent.mkdir(exist_ok=True)
        current.to_csv(PINNED, index=False)
        print(f"wrote {len(current)} rows to {PINNED}")
        return 0
    pinned = read(PINNED)
    lines = differences(pinned, current, args.rtol)
    what = "equal to the bit" if args.rtol == 0 else f"within rtol {args.rtol:g}"
    if not lines:
        print(f"all {len(pinned)} pinned metric rows {what} ({SPEC}, seed {SEED}, n = {N})")
        return 0
    print(f"{len(lines)} of {len(pinned)} pinned metric rows differ (not {what}):")
    print("\n".join(lines))
    return 1


if __name__ == "__main__":
    sys.exit(main())
