"""Report speed: `ganalyze report` end to end, and its dominant step against faiss, in one run.

1. Trains a tiny checkpoint if none is given (3 epochs on 2,048 digits: noise-like samples, the
   worst case for the neighbour search), warms the reference cache, then times
   `ganalyze report CKPT --n-samples 10000` (every analysis) in a fresh process.
2. Times the pixel-space 5-NN search of 10,000 generated digits against the 60,000 MNIST
   training images: ganalyze's exact search against faiss.IndexFlatL2, and checks that both
   return the same neighbours.

    GANALYZE_DATA=../shared/data python benchmarks/report_speed.py [--ckpt CKPT]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ckpt", default=None)
    parser.add_argument("--n", type=int, default=10_000)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp())
    ckpt = args.ckpt
    if ckpt is None:
        from reference_gan.train import TrainConfig, train

        ckpt = str(train(TrainConfig(epochs=3, limit=2048, out=str(tmp / "run"), quiet=True)))
    cli = [sys.executable, "-m", "ganalyze.cli", "report", ckpt, "--quiet"]
    subprocess.run([*cli, "-o", str(tmp / "warm"), "--n-samples", "100"], check=True)
    start = time.perf_counter()
    subprocess.run(
        [*cli, "-o", str(tmp / "rep"), "--n-samples", str(args.n)],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    total = time.perf_counter() - start
    print(f"ganalyze report, n={args.n}, every analysis, cache warm, fresh process: {total:.1f} s")

    import faiss
    import torch

    from ganalyze.generators import load_generator
    from ganalyze.neighbors import knn
    from ganalyze.reference import ReferenceData

    ref = ReferenceData(progress=False)
    base = ref.space("train", "pixel")
    _, images = load_generator(ckpt).sample(args.n, seed=0)
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
        f"pixel 5-NN of {args.n} vs 60000 ({torch.get_num_threads()} threads): ganalyze "
        f"{t_ours:.1f} s, faiss.IndexFlatL2 {t_faiss:.1f} s, ratio {t_faiss / t_ours:.2f}x; "
        f"same neighbours for {same:.2%} of entries; max |distance diff| "
        f"{np.abs(np.sqrt(np.maximum(d2, 0)) - ours.distances).max():.2e}"
    )


if __name__ == "__main__":
    main()
