"""Write the shipped reference GAN (ganalyze/pretrained/reference-gan/) from a training run.

    OMP_NUM_THREADS=1 ganalyze train --seed 0 --save-every 10 --device cpu \
        --out runs/pretrained-seed0
    python scripts/make_pretrained.py runs/pretrained-seed0 --epochs 10,50,100,200,300

What is kept of each checkpoint: see ganalyze/pretrained/build.py.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ganalyze.pretrained.build import write

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path, help="the ganalyze train run folder")
    ap.add_argument("--epochs", default="10,50,100,200,300")
    ap.add_argument("--name", default="reference-gan")
    ap.add_argument("--trained", default="", help="where and how long it trained (free text)")
    ap.add_argument("--max-mb", type=float, default=12.0)
    args = ap.parse_args()
    write(args.run, [int(e) for e in args.epochs.split(",")],
          ROOT / "ganalyze" / "pretrained" / args.name, name=args.name, trained=args.trained,
          max_mb=args.max_mb)  # fmt: skip


if __name__ == "__main__":
    main()
