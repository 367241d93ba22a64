"""Exact k-nearest-neighbour search in Euclidean distance, shared by every analysis.

``knn(queries=, base=, k=)`` returns, for each query, the k base points nearest to it, with
their Euclidean distances, sorted by (distance, base index): ties go to the lowest index. The
result equals a float64 brute force (``tests/test_neighbors.py``).

How it stays exact (:class:`ExactIndex`): FAISS's flat index (float32, BLAS) finds the best
``k + margin`` candidates; those are re-measured exactly in float64. A query whose
``k + margin``-th candidate is not clear of its k-th exact distance by more than the float32
error bound (a near tie) gets a FAISS range search for every point that could still beat it,
and those are measured exactly too.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch

from ganalyze.errors import InputError

logger = logging.getLogger(__name__)

_BLOCK_BYTES = 256 * 2**20  # a query block's (queries x base) float32 matrix stays below this
_EXACT_BYTES = 128 * 2**20  # float64 gathers for exact distances stay below this


@dataclass(frozen=True)
class Neighbors:
    """k nearest base points per query: ``distances`` (n, k) float32, ``indices`` (n, k) int64."""

    distances: np.ndarray
    indices: np.ndarray

    @property
    def kth(self) -> np.ndarray:
        """Distance to the k-th neighbour of each query."""
        return self.distances[:, -1]


def _as_matrix(name: str, x: np.ndarray | torch.Tensor) -> torch.Tensor:
    t = x if torch.is_tensor(x) else torch.as_tensor(np.asarray(x))
    if t.ndim > 2:
        t = t.reshape(t.shape[0], -1)
    if t.ndim != 2 or t.shape[0] == 0:
        raise InputError(f"{name} must be a non-empty (n, d) array; got shape {tuple(t.shape)}.")
    if not torch.isfinite(t).all():
        raise InputError(f"{name} contains {int((~torch.isfinite(t)).sum())} NaN or Inf values.")
    return t.detach().cpu().to(torch.float32).contiguous()


def knn(
    *,
    queries: np.ndarray | torch.Tensor,
    base: np.ndarray | torch.Tensor | ExactIndex | ApproximateIndex,
    k: int,
    exclude_self: bool = False,
) -> Neighbors:
    """Exact k nearest neighbours of ``queries`` among ``base`` (Euclidean).

    Parameters
    ----------
    queries, base
        (n, d) and (m, d) arrays (images are flattened), or an index built on the base
        (:class:`ExactIndex`; :class:`ApproximateIndex` trades exactness for speed).
    k
        Number of neighbours, 1 <= k <= m (m - 1 with ``exclude_self``).
    exclude_self
        ``queries`` is ``base``: the i-th query does not count base point i (the usual
        train-to-train convention: a point is not its own neighbour).

    Returns
    -------
    Neighbors
        ``distances`` (n, k) float32 and ``indices`` (n, k) int64, sorted by distance, ties by
        lower index; equal to a float64 brute force.
    """
    index = base if isinstance(base, ExactIndex | ApproximateIndex) else ExactIndex(base)
    return index.search(queries, k, exclude_self=exclude_self)


def _exact_d2(q: torch.Tensor, b: torch.Tensor, cand: torch.Tensor) -> torch.Tensor:
    """float64 squared distances of each query row to its candidate base rows (r, c)."""
    out = torch.empty(cand.shape, dtype=torch.float64)
    step = max(1, _EXACT_BYTES // max(1, 8 * cand.shape[1] * b.shape[1]))
    for s in range(0, len(q), step):
        diff = b[cand[s : s + step]].double() - q[s : s + step].double().unsqueeze(1)
        out[s : s + step] = (diff * diff).sum(-1)
    return out


def _sort_ties(d2: torch.Tensor, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Sort rows by (distance, index); duplicates of an index (same distance) sort together."""
    order = torch.argsort(idx, dim=1, stable=True)
    d2, idx = torch.gather(d2, 1, order), torch.gather(idx, 1, order)
    order = torch.argsort(d2, dim=1, stable=True)
    return torch.gather(d2, 1, order), torch.gather(idx, 1, order)


class ExactIndex:
    """An exact Euclidean k-NN index over a fixed base set (see the module docstring).

    Parameters
    ----------
    base
        (m, d) points; their squared norms are computed once and reused by every search.
    """

    def __init__(self, base: np.ndarray | torch.Tensor) -> None:
        import faiss

        self.base = _as_matrix("base", base)
        self.base_sq = torch.linalg.vector_norm(self.base, dim=1, dtype=torch.float64) ** 2
        self.flat = faiss.IndexFlatL2(self.base.shape[1])
        self.flat.add(self.base.numpy())

    def search(self, queries, k: int, exclude_self: bool = False) -> Neighbors:
        """Exact k nearest base points of each query (see :func:`knn`)."""
        q = _as_matrix("queries", queries)
        m = self.base.shape[0]
        if q.shape[1] != self.base.shape[1]:
            raise InputError(f"queries have {q.shape[1]} dimensions and the base "
                             f"{self.base.shape[1]}; both must match.")  # fmt: skip
        limit = m - int(exclude_self)
        if not 1 <= k <= limit:
            raise InputError(f"k must be between 1 and {limit}; got {k}.")
        if exclude_self and q.shape[0] != m:
            raise InputError("exclude_self needs queries and base to be the same set.")
        out_d = np.empty((q.shape[0], k), dtype=np.float32)
        out_i = np.empty((q.shape[0], k), dtype=np.int64)
        block = max(1, min(q.shape[0], _BLOCK_BYTES // (4 * m)))
        for start in range(0, q.shape[0], block):
            rows = torch.arange(start, min(start + block, q.shape[0]))
            self_idx = rows if exclude_self else None
            d2, idx = self._brute(q[rows], k, self_idx)
            out_d[rows.numpy()] = d2.sqrt().float().numpy()
            out_i[rows.numpy()] = idx.numpy()
        return Neighbors(out_d, out_i)

    def _finish(self, qb, cand, k, self_idx) -> tuple[torch.Tensor, torch.Tensor]:
        exact = _exact_d2(qb, self.base, cand)
        if self_idx is not None:
            exact[cand == self_idx.unsqueeze(1)] = float("inf")
        return _sort_ties(exact, cand)

    def _brute(self, qb, k, self_idx, margin: int = 3):
        """FAISS's flat (float32, BLAS) search for the best k + margin candidates, an exact
        float64 re-check of them, and a range search around rows with a near tie."""
        m = self.base.shape[0]
        c = min(k + margin + int(self_idx is not None), m)
        q_np = qb.numpy()
        cand_d2, cand = self.flat.search(q_np, c)
        cand_d2, cand = torch.from_numpy(cand_d2), torch.from_numpy(cand)
        d, i = self._finish(qb, cand, k, self_idx)
        q_sq = torch.linalg.vector_norm(qb, dim=1, dtype=torch.float64) ** 2
        tol = 4e-6 * qb.shape[1] ** 0.5 * (q_sq + self.base_sq.max() + 1.0)
        unsafe = (cand_d2[:, -1].double() - tol <= d[:, k - 1]) & (c < m)
        for r in torch.nonzero(unsafe).flatten().tolist():
            # every point whose float32 distance, less its error, could beat the k-th exact one
            radius = float(d[r, k - 1] + tol[r])
            _, _, found = self.flat.range_search(q_np[r : r + 1], radius)
            near = torch.from_numpy(found.astype(np.int64)).unsqueeze(0)
            s = None if self_idx is None else self_idx[r : r + 1]
            dr, ir = self._finish(qb[r : r + 1], near, k, s)
            d[r, :k], i[r, :k] = dr[0, :k], ir[0, :k]
        return d[:, :k], i[:, :k]


def brute_force_knn(*, queries: np.ndarray, base: np.ndarray, k: int) -> Neighbors:
    """Reference float64 brute force (for tests and benchmarks), ties to the lower index."""
    q = np.asarray(queries, dtype=np.float64).reshape(len(queries), -1)
    b = np.asarray(base, dtype=np.float64).reshape(len(base), -1)
    out_d = np.empty((len(q), k), dtype=np.float64)
    out_i = np.empty((len(q), k), dtype=np.int64)
    for s in range(0, len(q), 16):
        d2 = ((q[s : s + 16, None, :] - b[None, :, :]) ** 2).sum(-1)
        order = np.lexsort((np.broadcast_to(np.arange(len(b)), d2.shape), d2), axis=1)[:, :k]
        out_i[s : s + 16] = order
        out_d[s : s + 16] = np.sqrt(np.take_along_axis(d2, order, 1))
    return Neighbors(out_d.astype(np.float32), out_i)


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
        self.base = _as_matrix("base", base)
        b = self.base.numpy()
        m, d = b.shape
        if kind == "ivf":
            nlist = max(1, min(m // 39, int(4 * m**0.5)))
            index = faiss.IndexIVFFlat(faiss.IndexFlatL2(d), d, nlist)
            index.cp.seed = seed
            index.train(b)
            index.nprobe = max(1, nlist // 16)
        else:
            index = faiss.IndexHNSWFlat(d, 32)
            index.hnsw.efSearch = 128
        index.add(b)
        self.index, self.kind = index, kind

    def search(self, queries, k: int, exclude_self: bool = False) -> Neighbors:
        """Approximate k nearest neighbours (float32 distances, as FAISS returns them)."""
        q = _as_matrix("queries", queries).numpy()
        extra = int(exclude_self)
        d2, idx = self.index.search(q, k + extra)
        if exclude_self:
            keep = idx != np.arange(len(q))[:, None]
            keep[keep.sum(1) > k, -1] = False  # self not found: drop the last instead
            d2, idx = d2[keep].reshape(len(q), k), idx[keep].reshape(len(q), k)
        return Neighbors(np.sqrt(np.maximum(d2, 0)).astype(np.float32), idx.astype(np.int64))

    def recall(self, queries, k: int = 1, n: int = 500, seed: int = 0) -> float:
        """Share of the exact k nearest neighbours found, on ``n`` seeded queries."""
        q = _as_matrix("queries", queries)
        rows = np.random.default_rng(seed).permutation(len(q))[:n]
        exact = ExactIndex(self.base).search(q[rows], k).indices
        found = self.search(q[rows], k).indices
        return float(np.mean([len(set(a) & set(b)) / k for a, b in zip(exact, found, strict=True)]))
