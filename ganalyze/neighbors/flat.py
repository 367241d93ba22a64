"""The flat search: FAISS's flat index, its candidates re-checked exactly.

FAISS's flat index (float32, BLAS) finds the best ``k + margin`` candidates, those are
re-measured exactly in float64, and a query whose ``k + margin``-th candidate is not clear of
its k-th exact distance by more than the float32 error bound (a near tie: near-duplicate
samples, as a collapsed generator makes) has every point that could still beat it measured.
Low-dimensional bases use it directly; the bounded search (:mod:`ganalyze.neighbors.exact`)
falls back to it for queries where its bound is loose.
"""

from __future__ import annotations

import threading

import numpy as np
import torch

from ganalyze.neighbors.measure import nearest_of_pairs, sorted_exact
from ganalyze.neighbors.scan import within

_build_lock = threading.Lock()  # one build of a lazily built index, whichever search asks first


class FlatSearch:
    """Exact k-NN over a fixed float32 (m, d) ``base`` by FAISS's flat index and a float64
    re-check; the index is built on first use, once, and then only read."""

    def __init__(self, base: torch.Tensor) -> None:
        self.base = base
        self._index = None
        self._base_sq_max = None

    @property
    def built(self) -> bool:
        """Whether FAISS's flat index has been built (a later use costs no build)."""
        return self._index is not None

    @property
    def index(self):
        """FAISS's flat index over the base, built on first use."""
        if self._index is None:
            import faiss

            with _build_lock:
                if self._index is None:
                    index = faiss.IndexFlatL2(self.base.shape[1])
                    index.add(self.base.numpy())
                    self._index = index
        return self._index

    def _sq_max(self) -> float:
        """The base's largest squared norm, with margin for its float32 rounding."""
        if self._base_sq_max is None:
            b = self.base.numpy()
            self._base_sq_max = float(np.einsum("ij,ij->i", b, b).max()) * (1 + 1e-5)
        return self._base_sq_max

    def search_rechecked(self, qb, k, self_idx, margin: int = 12):
        """FAISS's flat (float32, BLAS) search for the best k + margin candidates, an exact
        float64 re-check of them, and for rows with a near tie every point that could still
        beat their k-th: float64 squared distances and indices, (n, k), ties to the lower
        index; ``self_idx`` gives each query's own base point, which does not count."""
        m = self.base.shape[0]
        c = min(k + margin + int(self_idx is not None), m)
        cand_d2, cand = self.index.search(qb.numpy(), c)
        cand_d2, cand = torch.from_numpy(cand_d2), torch.from_numpy(cand)
        d, i = sorted_exact(qb, self.base, cand, self_idx)
        q_sq = torch.linalg.vector_norm(qb, dim=1, dtype=torch.float64) ** 2
        tol = 4e-6 * qb.shape[1] ** 0.5 * (q_sq + self._sq_max() + 1.0)
        unsafe = torch.nonzero((cand_d2[:, -1].double() - tol <= d[:, k - 1]) & (c < m)).flatten()
        if len(unsafe):
            self._settle_near_ties(qb, q_sq, tol, unsafe, d, i, k, self_idx)
        return d[:, :k], i[:, :k]

    def _settle_near_ties(self, qb, q_sq, tol, unsafe, d, i, k, self_idx) -> None:
        """Near ties (near-duplicate queries or base points): every point whose float32
        distance, less twice its error, could beat the k-th exact one, measured, in batches;
        writes the rows of ``unsafe`` in ``d`` and ``i``."""
        q_np, b = qb.numpy(), self.base.numpy()
        b_sq = torch.from_numpy(np.einsum("ij,ij->i", b, b).astype(np.float32))
        for batch in torch.split(unsafe, 256):
            limit = d[batch, k - 1] + 2 * tol[batch]
            inside = within(q_np[batch.numpy()], q_sq[batch], b, b_sq, limit)
            r, x = (torch.from_numpy(a) for a in np.nonzero(inside))
            d[batch, :k], i[batch, :k] = nearest_of_pairs(qb, self.base, batch[r], x, k,
                                                          self_idx, batch)  # fmt: skip
