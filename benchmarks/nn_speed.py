"""Exact nearest neighbours: faiss.IndexFlatL2, a blocked torch matmul and ganalyze, in one run.

Pixel space, 10,000 MNIST-test queries against the 60,000 MNIST-train images, k = 1. Each
result is compared with a float64 brute force on a subset of queries (identical means the same
indices, ties to the lowest index); IndexFlatL2's own agreement is reported separately.

    GANALYZE_DATA=../shared/data python benchmarks/nn_speed.py [--n 10000] [--check 500]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch


def torch_matmul_1nn(q: np.ndarray, b: np.ndarray, block: int = 1024) -> np.ndarray:
    qt, bt = torch.from_numpy(q), torch.from_numpy(b)
    b_sq = (bt * bt).sum(1)
    out = np.empty(len(q), dtype=np.int64)
    for s in range(0, len(q), block):
        d2 = b_sq.unsqueeze(0) - 2 * qt[s : s + block] @ bt.t()
        out[s : s + block] = d2.argmin(1).numpy()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--check", type=int, default=500)
    args = parser.parse_args()

    import faiss

    from ganalyze.neighbors import brute_force_knn, knn
    from ganalyze.reference import ReferenceData

    ref = ReferenceData(progress=False)
    base, queries = ref.space("train", "pixel"), ref.space("test", "pixel")[: args.n]
    timings, found = {}, {}
    start = time.perf_counter()
    index = faiss.IndexFlatL2(base.shape[1])
    index.add(base)
    found["faiss.IndexFlatL2"] = index.search(queries, 1)[1][:, 0]
    timings["faiss.IndexFlatL2"] = time.perf_counter() - start
    start = time.perf_counter()
    found["torch matmul"] = torch_matmul_1nn(queries, base)
    timings["torch matmul"] = time.perf_counter() - start
    start = time.perf_counter()
    found["ganalyze (exact)"] = knn(queries=queries, base=base, k=1).indices[:, 0]
    timings["ganalyze (exact)"] = time.perf_counter() - start
    truth = brute_force_knn(queries=queries[: args.check], base=base, k=1).indices[:, 0]
    print(
        f"exact 1-NN, {args.n} x {len(base)} in {base.shape[1]} dims, "
        f"{torch.get_num_threads()} threads; agreement with float64 brute force on the first "
        f"{args.check} queries"
    )
    for name, t in timings.items():
        agree = float((found[name][: args.check] == truth).mean())
        print(
            f"  {name:18s} {t:6.2f} s  {timings['faiss.IndexFlatL2'] / t:5.2f}x vs "
            f"IndexFlatL2   agreement {agree:.2%}"
        )


if __name__ == "__main__":
    main()
