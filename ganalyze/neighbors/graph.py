"""Neighbour graphs (UMAP's): FAISS's flat float32 search in one call, each point first.

Graphs need no float64 tie-breaking: every implementation builds them in float32 or
approximately.
"""

from __future__ import annotations

import numpy as np
import torch

from ganalyze.errors import InputError
from ganalyze.neighbors.result import Neighbors, as_matrix


def graph_knn(points: np.ndarray | torch.Tensor, k: int) -> Neighbors:
    """The k nearest of ``points`` to each of them, the point itself first (distance 0):
    FAISS's flat float32 search, in one call.

    For neighbour graphs (UMAP's), which every implementation builds in float32 or
    approximately: near ties may come in either order, which the exact :func:`knn` (for
    distances that analyses report) settles at several times the cost on points unlike each
    other's neighbourhoods, such as blurry samples.
    """
    import faiss

    x = as_matrix("points", points).numpy()
    n = len(x)
    if not 1 <= k <= n:
        raise InputError(f"k must be between 1 and {n}; got {k}.")
    index = faiss.IndexFlatL2(x.shape[1])
    index.add(x)
    d2, idx = index.search(x, k)
    own = idx == np.arange(n)[:, None]
    # each point first: where it is not in its own list (duplicates), it takes the last place
    own[~own.any(1), -1] = True
    rank = np.where(own, -1, np.arange(k))  # the point itself sorts first, the rest keep order
    order = np.argsort(rank, axis=1, kind="stable")
    idx = np.take_along_axis(idx, order, 1)
    dist = np.sqrt(np.maximum(np.take_along_axis(d2, order, 1), 0))
    idx[:, 0], dist[:, 0] = np.arange(n), 0.0
    return Neighbors(dist.astype(np.float32), idx.astype(np.int64))
