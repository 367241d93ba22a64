"""Exact k-nearest-neighbour search in Euclidean distance, shared by every analysis.

``knn(queries=, base=, k=)`` returns, for each query, the k base points nearest to it, with
their Euclidean distances, sorted by (distance, base index): ties go to the lowest index.

How it stays exact and fast: distances are first computed in float32 with the norm trick
(||q||^2 + ||b||^2 - 2 q.b, one BLAS GEMM per block of queries), which keeps the best
``k + margin`` candidates; those are re-measured exactly in float64. A query whose
``k + margin``-th candidate is not clear of its k-th exact distance by more than the float32
error bound (a near tie) is searched again exhaustively in float64. The result equals a float64
brute force (``tests/test_neighbors.py``).

``approximate_index`` wraps a FAISS index for reference sets far larger than MNIST.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch

from ganalyze.errors import InputError

logger = logging.getLogger(__name__)

_BLOCK_BYTES = 256 * 2**20  # distance block size: queries x base float32 at most this


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
    t = torch.as_tensor(np.asarray(x) if not torch.is_tensor(x) else x)
    if t.ndim != 2:
        t = t.reshape(t.shape[0], -1) if t.ndim > 2 else t
    if t.ndim != 2 or t.shape[0] == 0:
        raise InputError(f"{name} must be a non-empty (n, d) array; got shape {tuple(t.shape)}.")
    if not torch.isfinite(t).all():
        raise InputError(f"{name} contains {int((~torch.isfinite(t)).sum())} NaN or Inf values.")
    return t.detach().cpu().to(torch.float32).contiguous()


def knn(
    *,
    queries: np.ndarray | torch.Tensor,
    base: np.ndarray | torch.Tensor,
    k: int,
    exclude_self: bool = False,
    margin: int = 8,
) -> Neighbors:
    """Exact k nearest neighbours of ``queries`` among ``base`` (Euclidean).

    Parameters
    ----------
    queries, base
        (n, d) and (m, d) arrays (images are flattened); float32 is used for the search and
        float64 for the final distances.
    k
        Number of neighbours, 1 <= k <= m (m - 1 with ``exclude_self``).
    exclude_self
        ``queries`` is ``base``: the i-th query does not count base point i (the usual
        train-to-train convention: a point is not its own neighbour).
    margin
        Extra candidates re-measured exactly per query.

    Returns
    -------
    Neighbors
        ``distances`` (n, k) float32 and ``indices`` (n, k) int64, sorted by distance, ties by
        lower index.
    """
    q, b = _as_matrix("queries", queries), _as_matrix("base", base)
    if q.shape[1] != b.shape[1]:
        raise InputError(
            f"queries have {q.shape[1]} dimensions and base {b.shape[1]}; both must match."
        )
    limit = b.shape[0] - int(exclude_self)
    if not 1 <= k <= limit:
        raise InputError(f"k must be between 1 and {limit}; got {k}.")
    if exclude_self and q.shape[0] != b.shape[0]:
        raise InputError("exclude_self needs queries and base to be the same set.")
    c = min(k + margin + int(exclude_self), b.shape[0])
    b_sq = (b.double() ** 2).sum(1)
    b_sq32 = b_sq.float()
    tol = 4e-6 * b.shape[1] ** 0.5  # relative float32 error of the norm trick, generous
    b_sq_max = b_sq.max().item()
    block = max(1, min(q.shape[0], _BLOCK_BYTES // (4 * b.shape[0])))
    out_d = np.empty((q.shape[0], k), dtype=np.float32)
    out_i = np.empty((q.shape[0], k), dtype=np.int64)
    for start in range(0, q.shape[0], block):
        qb = q[start : start + block]
        d2 = torch.addmm(b_sq32.unsqueeze(0), qb, b.t(), alpha=-2.0)
        q_sq = (qb.double() ** 2).sum(1, keepdim=True)
        d2 += q_sq.float()
        rows = torch.arange(start, start + qb.shape[0])
        if exclude_self:
            d2[torch.arange(qb.shape[0]), rows] = float("inf")
        cand_d2, cand = torch.topk(d2, c, dim=1, largest=False, sorted=True)
        exact = ((qb.double().unsqueeze(1) - b[cand].double()) ** 2).sum(-1)
        if exclude_self:
            exact[cand == rows.unsqueeze(1)] = float("inf")
        d, i = _sort_ties(exact, cand)
        # Unsafe: some point outside the candidates might be nearer than the k-th exact one.
        bound = tol * (q_sq[:, 0] + b_sq_max + 1.0)
        unsafe = (cand_d2[:, -1].double() - bound <= d[:, k - 1]) & (c < b.shape[0])
        for r in torch.nonzero(unsafe).flatten().tolist():
            d[r, :k], i[r, :k] = _brute_row(qb[r], b, k, int(rows[r]) if exclude_self else -1)
        out_d[start : start + qb.shape[0]] = d[:, :k].sqrt().float().numpy()
        out_i[start : start + qb.shape[0]] = i[:, :k].numpy()
        if unsafe.any():
            logger.debug("knn: %d near ties re-searched exhaustively", int(unsafe.sum()))
    return Neighbors(out_d, out_i)


def _sort_ties(d2: torch.Tensor, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Sort rows by (distance, index)."""
    order = torch.argsort(idx, dim=1, stable=True)
    d2, idx = torch.gather(d2, 1, order), torch.gather(idx, 1, order)
    order = torch.argsort(d2, dim=1, stable=True)
    return torch.gather(d2, 1, order), torch.gather(idx, 1, order)


def _brute_row(q: torch.Tensor, b: torch.Tensor, k: int, self_index: int):
    d2 = ((b.double() - q.double()) ** 2).sum(1)
    if self_index >= 0:
        d2[self_index] = float("inf")
    d, i = _sort_ties(d2.unsqueeze(0), torch.arange(b.shape[0]).unsqueeze(0))
    return d[0, :k], i[0, :k]


def brute_force_knn(*, queries: np.ndarray, base: np.ndarray, k: int) -> Neighbors:
    """Reference float64 brute force (for tests and benchmarks), ties to the lower index."""
    q = np.asarray(queries, dtype=np.float64).reshape(len(queries), -1)
    b = np.asarray(base, dtype=np.float64).reshape(len(base), -1)
    out_d = np.empty((len(q), k), dtype=np.float64)
    out_i = np.empty((len(q), k), dtype=np.int64)
    for s in range(0, len(q), 256):
        d2 = ((q[s : s + 256, None, :] - b[None, :, :]) ** 2).sum(-1)
        order = np.lexsort((np.broadcast_to(np.arange(len(b)), d2.shape), d2), axis=1)[:, :k]
        out_i[s : s + 256] = order
        out_d[s : s + 256] = np.sqrt(np.take_along_axis(d2, order, 1))
    return Neighbors(out_d.astype(np.float32), out_i)
