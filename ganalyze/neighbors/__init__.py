"""Exact k-nearest-neighbour search in Euclidean distance, shared by every analysis.

``knn(queries=, base=, k=)`` returns, for each query, the k base points nearest to it, with
their Euclidean distances, sorted by (distance, base index): ties go to the lowest index. The
result equals a float64 brute force (``tests/test_neighbors.py``).

The package, by responsibility:

- :mod:`~ganalyze.neighbors.exact`: :class:`ExactIndex` and one search's steps (pilot, radius,
  float32 then float64 measurements, flat fallback), with why nothing is missed;
- :mod:`~ganalyze.neighbors.bound`: the lower bound fitted on the base, and its stored state;
- :mod:`~ganalyze.neighbors.scan`: the tiled scan (BLAS tiles sifted on threads) and
  :func:`pairs_within`;
- :mod:`~ganalyze.neighbors.measure`: exact distances of candidate pairs, float32 error bounds;
- :mod:`~ganalyze.neighbors.flat`: FAISS's flat search re-checked in float64;
- :mod:`~ganalyze.neighbors.approximate`: :class:`ApproximateIndex` (IVF, HNSW) and its recall;
- :mod:`~ganalyze.neighbors.graph`: :func:`graph_knn` for neighbour graphs (UMAP's).
"""

from __future__ import annotations

import numpy as np
import torch

from ganalyze.neighbors.approximate import ApproximateIndex
from ganalyze.neighbors.exact import ExactIndex
from ganalyze.neighbors.graph import graph_knn
from ganalyze.neighbors.measure import pair_sq_distances
from ganalyze.neighbors.result import Neighbors
from ganalyze.neighbors.scan import pairs_within, pairs_within_both

__all__ = [
    "ApproximateIndex",
    "ExactIndex",
    "Neighbors",
    "graph_knn",
    "knn",
    "pair_sq_distances",
    "pairs_within",
    "pairs_within_both",
]


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
