"""The float64 brute force that the neighbour searches are checked against (tests, benchmarks)."""

from __future__ import annotations

import numpy as np

from ganalyze.neighbors import Neighbors


def brute_force_knn(*, queries: np.ndarray, base: np.ndarray, k: int) -> Neighbors:
    """Every distance in float64, the k smallest of each query, ties to the lower index."""
    q = np.asarray(queries, dtype=np.float64).reshape(len(queries), -1)
    b = np.asarray(base, dtype=np.float64).reshape(len(base), -1)
    out_d = np.empty((len(q), k), dtype=np.float64)
    out_i = np.empty((len(q), k), dtype=np.int64)
    step = max(1, (32 << 20) // (16 * 8 * max(1, b.shape[1])))  # base rows: temporaries ~64 MB
    for s in range(0, len(q), 16):
        block = q[s : s + 16, None, :]
        d2 = np.concatenate([((block - b[None, j : j + step, :]) ** 2).sum(-1)
                             for j in range(0, len(b), step)], axis=1)  # fmt: skip
        order = np.lexsort((np.broadcast_to(np.arange(len(b)), d2.shape), d2), axis=1)[:, :k]
        out_i[s : s + 16] = order
        out_d[s : s + 16] = np.sqrt(np.take_along_axis(d2, order, 1))
    return Neighbors(out_d.astype(np.float32), out_i)
