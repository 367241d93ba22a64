"""Report speed: `ganalyze report` end to end for a well-trained and a blurry generator, with
the time of each analysis; and the report's pixel-space neighbour search against faiss.

1. For each checkpoint (a well-trained one, ``--trained``, default the 300-epoch checkpoint of
   `ganalyze train --seed 0` in runs/pretrained-seed0; and a blurry one, ``--blurry``, default
   a 3-epoch run on all of MNIST train made on the spot), warms the reference cache, then times
   `ganalyze report CKPT --n-samples 10000` (every analysis) in a fresh process, imports
   included, and prints the seconds of each step from the report's meta.json (``timings_s``).
   The target: at most 30 s each on 2 idle cores.
2. With ``--nn``: the pixel-space 5-NN search of 10,000 generated digits against the 60,000
   MNIST training images, ganalyze's exact search against faiss.IndexFlatL2, and whether both
   return the same neighbours.

    GANALYZE_DATA=../shared/data python benchmarks/report_speed.py [--trained CKPT]
                                                                   [--blurry CKPT] [--nn]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

TRAINED = Path("runs/pretrained-seed0/checkpoints/epoch_0300.pt")
TARGET_S = 30.0


def timed_report(ckpt: str, out: Path, n: int) -> tuple[float, dict]:
    """Wall seconds of a fresh `ganalyze report` process, and its meta.json timings."""
    cli = [sys.executable, "-m", "ganalyze.cli", "report", ckpt, "--quiet"]
    subprocess.run([*cli, "-o", str(out.with_name(out.name + "-warm")), "--n-samples", "100"],
                   check=True)  # fmt: skip
    start = time.perf_counter()
    subprocess.run([*cli, "-o", str(out), "--n-samples", str(n)], check=True,
                   stdout=subprocess.DEVNULL)  # fmt: skip
    wall = time.perf_counter() - start
    meta = json.loads((out / "meta.json").read_text(encoding="utf-8"))
    return wall, meta.get("timings_s", {})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trained", default=str(TRAINED) if TRAINED.is_file() else None,
                        help=f"a well-trained checkpoint [default: {TRAINED}]")  # fmt: skip
    parser.add_argument("--blurry", default=None,
                        help="a blurry checkpoint [default: train 3 epochs now]")  # fmt: skip
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--nn", action="store_true", help="also the neighbour search vs faiss")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp())
    blurry = args.blurry
    if blurry is None:
        from reference_gan.train import TrainConfig, train

        blurry = str(train(TrainConfig(epochs=3, out=str(tmp / "run"), quiet=True)))
    checkpoints = {"well-trained": args.trained, "blurry (3 epochs)": blurry}
    rows = {}
    for label, ckpt in checkpoints.items():
        if ckpt is None:
            print(f"{label}: no checkpoint (pass --trained CKPT)")
            continue
        rows[label] = timed_report(ckpt, tmp / label.split()[0], args.n)
    print(
        f"ganalyze report, n = {args.n}, every analysis, cache warm, fresh process, imports "
        f"included ({os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}):"
    )
    for label, (wall, timings) in rows.items():
        verdict = "met" if wall <= TARGET_S else "missed"
        print(f"  {label:18s} {wall:6.1f} s (target {TARGET_S:.0f} s: {verdict}); inside the "
              f"audit: {timings.get('total', float('nan')):.1f} s, the rest is imports, "
              "figures and files")  # fmt: skip
        steps = {k: v for k, v in timings.items() if k != "total"}
        print("    " + ", ".join(f"{k} {v:.2f}" for k, v in steps.items()))
    if args.nn:
        nn_speed(blurry, args.n)


def nn_speed(ckpt: str, n: int) -> None:
    """The pixel 5-NN of ``n`` samples against MNIST train: ours against faiss.IndexFlatL2."""
    import faiss
    import torch

    from ganalyze.generators import load_generator
    from ganalyze.neighbors import knn
    from ganalyze.reference import ReferenceData

    ref = ReferenceData(progress=False)
    base = ref.space("train", "pixel")
    _, images = load_generator(ckpt).sample(n, seed=0)
    queries = images.reshape(len(images), -1).numpy()
    start = time.perf_counter()
    ours = knn(queries=queries, base=ref.train_index("pixel"), k=5)  # as a report: cached bound
    t_ours = time.perf_counter() - start
    start = time.perf_counter()
    index = faiss.IndexFlatL2(base.shape[1])
    index.add(base)
    d2, idx = index.search(queries, 5)
    t_faiss = time.perf_counter() - start
    same = float((idx == ours.indices).mean())
    print(
        f"pixel 5-NN of {n} vs 60000 ({torch.get_num_threads()} threads): ganalyze "
        f"{t_ours:.1f} s, faiss.IndexFlatL2 {t_faiss:.1f} s, ratio {t_faiss / t_ours:.2f}x; "
        f"same neighbours for {same:.2%} of entries; max |distance diff| "
        f"{np.abs(np.sqrt(np.maximum(d2, 0)) - ours.distances).max():.2e}"
    )


if __name__ == "__main__":
    main()
