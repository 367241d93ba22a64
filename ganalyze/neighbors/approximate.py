"""Approximate k-NN (FAISS IVF-Flat or HNSW-Flat) for reference sets far larger than MNIST, with
the recall that reports state."""

from __future__ import annotations

import numpy as np
import torch

from ganalyze.errors import InputError
from ganalyze.neighbors.exact import ExactIndex
from ganalyze.neighbors.result import Neighbors, as_matrix


class ApproximateIndex:
    """A FAISS approximate index (IVF-Flat or HNSW-Flat) for reference sets far larger than
    MNIST. Results are not exact: :meth:`recall` measures the share of the exact k nearest
    neighbours it finds, and reports state it.

    Parameters
    ----------
    base
        (m, d) points.
    kind
        "ivf": IndexIVFFlat with 4 sqrt(m) lists, nprobe = lists / 16 (k-means seeded);
        "hnsw": IndexHNSWFlat with 32 links, efSearch 128.
    """

    def __init__(self, base: np.ndarray | torch.Tensor, kind: str = "ivf", seed: int = 0) -> None:
        import faiss

        if kind not in ("ivf", "hnsw"):
            raise InputError(f"Unknown approximate index {kind!r}; expected ivf or hnsw.")
        self.base = as_matrix("base", base)
        b = self.base.numpy()
        m, d = b.shape
        if kind == "ivf":
            nlist = max(1, min(m // 39, int(4 * m**0.5)))
            index = faiss.IndexIVFFlat(faiss.IndexFlatL2(d), d, nlist)
            index.cp.seed = seed % 2**31  # FAISS takes a signed 32-bit seed
            index.train(b)
            index.nprobe = max(1, nlist // 16)
        else:
            index = faiss.IndexHNSWFlat(d, 32)
            index.hnsw.efSearch = 128
        index.add(b)
        self.index, self.kind = index, kind

    def search(self, queries, k: int, exclude_self: bool = False) -> Neighbors:
        """Approximate k nearest neighbours (float32 distances, as FAISS returns them)."""
        q = as_matrix("queries", queries).numpy()
        extra = int(exclude_self)
        d2, idx = self.index.search(q, k + extra)
        if exclude_self:
            keep = idx != np.arange(len(q))[:, None]
            keep[keep.sum(1) > k, -1] = False  # self not found: drop the last instead
            d2, idx = d2[keep].reshape(len(q), k), idx[keep].reshape(len(q), k)
        return Neighbors(np.sqrt(np.maximum(d2, 0)).astype(np.float32), idx.astype(np.int64))

    def recall(self, queries, k: int = 1, n: int = 500, seed: int = 0) -> float:
        """Share of the exact k nearest neighbours found, on ``n`` seeded queries."""
        q = as_matrix("queries", queries)
        rows = np.random.default_rng(seed).permutation(len(q))[:n]
        exact = ExactIndex(self.base).search(q[rows], k).indices
        found = self.search(q[rows], k).indices
        return float(np.mean([len(set(a) & set(b)) / k for a, b in zip(exact, found, strict=True)]))
