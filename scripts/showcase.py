"""Regenerate the committed showcase under reports/: the audit of the shipped reference GAN and
the comparison of its trajectory.

    GANALYZE_DATA=../shared/data python scripts/showcase.py

writes ``reports/reference-gan/`` (``ganalyze report pretrained:reference-gan``) and
``reports/reference-gan-trajectory/`` (``ganalyze compare 'pretrained:reference-gan@*'``), both
with n = 10,000 and seed 0, then trims what would bloat the repository: the vector PDFs and
the per-sample tables (rerun the commands above to get them). ``index.html``, the PNG figures
and every metric table stay.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KEEP_TABLE_BYTES = 100_000


def trim(folder: Path) -> None:
    """Drop PDFs and per-sample tables above KEEP_TABLE_BYTES, everywhere under ``folder``."""
    for path in folder.rglob("*"):
        if path.suffix == ".pdf" or (
            path.parent.name == "tables" and path.stat().st_size > KEEP_TABLE_BYTES
        ):
            path.unlink()
    for tables in sorted(folder.rglob("tables"), reverse=True):
        if tables.is_dir() and not any(tables.iterdir()):
            tables.rmdir()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-samples", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--name", default="reference-gan")
    ap.add_argument("--out", type=Path, default=ROOT / "reports")
    args = ap.parse_args()

    import ganalyze

    single = args.out / args.name
    trajectory = args.out / f"{args.name}-trajectory"
    for folder in (single, trajectory):
        if folder.exists():
            shutil.rmtree(folder)
    report = ganalyze.audit(f"pretrained:{args.name}", n_samples=args.n_samples, seed=args.seed)
    report.save(single)
    trim(single)
    print(f"wrote {single}", file=sys.stderr)
    ganalyze.compare([f"pretrained:{args.name}@*"], out=trajectory, n_samples=args.n_samples,
                     seed=args.seed)  # fmt: skip
    trim(trajectory)
    size = sum(p.stat().st_size for p in args.out.rglob("*") if p.is_file()) / 1e6
    print(f"wrote {trajectory}; reports/ holds {size:.1f} MB", file=sys.stderr)


if __name__ == "__main__":
    main()
