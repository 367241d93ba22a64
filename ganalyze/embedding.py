"""2-D UMAP embeddings from a precomputed exact k-NN graph, without numba.

umap-learn compiles its numba kernels in every new process (about 13 s here before its first
fit, its parallel kernels cannot be cached), and its layout optimisation runs one edge at a
time. This module follows umap-learn 0.5's algorithm step for step (McInnes, Healy and Melville
2018; the reference is ``umap.umap_.fuzzy_simplicial_set``, ``simplicial_set_embedding`` and
``umap.layouts.optimize_layout_euclidean``), with the same defaults (n_neighbors from the
graph, min_dist 0.1, spread 1, 5 negative samples per positive one, learning rate 1 decaying
linearly, gradients clipped to 4) but written as array operations: each epoch applies all its
sampled edges at once (as GPU implementations do) instead of one by one. Results are
deterministic for a seed. ``benchmarks/umap_speed.py`` compares speed and trustworthiness
with stock umap-learn.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from functools import lru_cache, partial

import numpy as np
import scipy.sparse as sp
import torch

SMOOTH_K_TOLERANCE = 1e-5
MIN_K_DIST_SCALE = 1e-3
N_NEIGHBORS, N_EPOCHS = 15, 200  # the layouts ganalyze draws: umap-learn's defaults (n > 10,000)
MAP_SEED = 0  # the fixed MNIST map: one seed for every audit
MAP_VERSION = "1"  # part of the cached map's name: a change of the algorithm refits it


@contextmanager
def _one_thread():
    """torch on one thread: the epochs' operations are on arrays of some 10^5 elements, too
    small to gain from a second thread and up to 20x slower with one when the other core is
    busy (its threads wait for each other at every operation)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def side_by_side(jobs: Mapping[str, Callable[[], np.ndarray]]) -> dict[str, np.ndarray]:
    """Run independent layout optimisations (from :func:`place_later` and
    :func:`umap_layout_later`) at the same time, one thread per core: each runs its epochs on
    one torch thread (:func:`_one_thread`), so each gives what it gives alone, to the bit."""
    workers = min(len(jobs), os.cpu_count() or 1)
    if workers <= 1:
        return {name: job() for name, job in jobs.items()}
    with _one_thread(), ThreadPoolExecutor(workers, thread_name_prefix="umap") as pool:
        futures = {name: pool.submit(job) for name, job in jobs.items()}
        return {name: future.result() for name, future in futures.items()}


@lru_cache(maxsize=8)
def find_ab_params(spread: float = 1.0, min_dist: float = 0.1) -> tuple[float, float]:
    """a, b of the low-dimensional similarity 1 / (1 + a d^(2b)), fitted as umap-learn does."""
    from scipy.optimize import curve_fit

    x = np.linspace(0, spread * 3, 300)
    y = np.where(x < min_dist, 1.0, np.exp(-(x - min_dist) / spread))
    (a, b), _ = curve_fit(lambda x, a, b: 1.0 / (1.0 + a * x ** (2 * b)), x, y)
    return float(a), float(b)


def memberships(knn_dists: np.ndarray, local_connectivity: int = 1) -> np.ndarray:
    """Each point's fuzzy membership to its k neighbours, exp(-(d - rho) / sigma), as
    umap-learn's ``smooth_knn_dist`` and ``compute_membership_strengths`` give them: rho the
    nearest non-zero distance (``local_connectivity`` 1) or 0 (0, for new points placed on a
    fitted map), sigma found by binary search so that the memberships of columns 1 to k - 1
    sum to log2(k) (umap-learn skips the first column, the point itself in a fit)."""
    d = np.asarray(knn_dists, np.float64)
    n, k = d.shape
    if local_connectivity:
        rho = np.min(np.where(d > 0, d, np.inf), axis=1)
        rho[~np.isfinite(rho)] = 0.0
    else:
        rho = np.zeros(n)
    target = np.log2(k)
    lo, hi, mid = np.zeros(n), np.full(n, np.inf), np.ones(n)
    gap = np.maximum(d[:, 1:] - rho[:, None], 0.0)
    for _ in range(64):  # vectorised binary search for each point's sigma
        psum = np.exp(-gap / mid[:, None]).sum(1)
        done = np.abs(psum - target) < SMOOTH_K_TOLERANCE
        high = psum > target
        hi = np.where(high & ~done, mid, hi)
        lo = np.where(~high & ~done, mid, lo)
        mid = np.where(done, mid, np.where(np.isinf(hi), mid * 2, (lo + hi) / 2))
    mean_all = d.mean()
    floor = np.where(rho > 0, MIN_K_DIST_SCALE * d.mean(1), MIN_K_DIST_SCALE * mean_all)
    sigma = np.maximum(mid, floor)
    vals = np.exp(-np.maximum(d - rho[:, None], 0.0) / sigma[:, None])
    vals[(d - rho[:, None] <= 0) | (sigma[:, None] == 0)] = 1.0
    return vals


def fuzzy_graph(*, knn_indices: np.ndarray, knn_dists: np.ndarray) -> sp.coo_matrix:
    """The symmetrised fuzzy simplicial set of a k-NN graph whose first column is each point
    itself (local connectivity 1, set_op_mix_ratio 1)."""
    n, k = knn_indices.shape
    vals = memberships(knn_dists, local_connectivity=1)
    vals[knn_indices == np.arange(n)[:, None]] = 0.0
    rows = np.repeat(np.arange(n), k)
    p = sp.coo_matrix((vals.ravel(), (rows, knn_indices.ravel())), shape=(n, n)).tocsr()
    p.eliminate_zeros()
    pt = p.T.tocsr()
    return (p + pt - p.multiply(pt)).tocoo()


def _spectral_init(graph: sp.coo_matrix, seed: int) -> np.ndarray | None:
    """The two leading non-trivial eigenvectors of D^-1/2 A D^-1/2 (umap-learn's spectral
    layout), or None when the graph is disconnected or the solver does not converge."""
    from scipy.sparse.csgraph import connected_components
    from scipy.sparse.linalg import ArpackError, eigsh

    if connected_components(graph, directed=False)[0] > 1:
        return None
    deg = np.asarray(graph.sum(1)).ravel()
    inv = sp.diags(1.0 / np.sqrt(deg))
    norm = (inv @ graph.tocsr() @ inv).astype(np.float64)
    v0 = np.random.default_rng(seed).random(graph.shape[0]) + 0.5
    try:
        _, vecs = eigsh(norm, k=3, which="LA", tol=1e-4, v0=v0, maxiter=graph.shape[0] * 5)
    except ArpackError:
        return None
    return vecs[:, :2][:, ::-1]


def umap_embedding(
    *,
    knn_indices: np.ndarray,
    knn_dists: np.ndarray,
    n_epochs: int = 200,
    seed: int = 0,
    min_dist: float = 0.1,
    spread: float = 1.0,
    negative_sample_rate: int = 5,
    fallback_init: np.ndarray | None = None,
) -> np.ndarray:
    """A 2-D UMAP layout of the points of a k-NN graph.

    Parameters
    ----------
    knn_indices, knn_dists
        (n, k) exact neighbours of every point among the same points, itself first.
    n_epochs, seed, min_dist, spread, negative_sample_rate
        As umap-learn's; deterministic for a seed.
    fallback_init
        (n, 2) start when the graph is disconnected (default: seeded random).

    Returns
    -------
    np.ndarray
        (n, 2) float32 coordinates.
    """
    graph = fuzzy_graph(knn_indices=knn_indices, knn_dists=knn_dists)
    graph.data[graph.data < graph.data.max() / n_epochs] = 0.0
    graph.eliminate_zeros()
    n = graph.shape[0]
    rng = np.random.default_rng(seed)
    init = _spectral_init(graph, seed)
    if init is None:
        init = fallback_init if fallback_init is not None else rng.normal(size=(n, 2))
    init = np.asarray(init, np.float64)
    init = 10.0 * (init - init.min(0)) / np.maximum(np.ptp(init, 0), 1e-12)
    init += rng.normal(scale=1e-4, size=init.shape)
    a, b = find_ab_params(spread, min_dist)
    w = graph.data
    eps = n_epochs / (n_epochs * w / w.max())  # epochs per sample
    # the two coordinates as separate vectors: every step below is then elementwise on
    # contiguous memory (an (m, 2) sum over rows or a power costs several times more)
    yx = torch.from_numpy(init[:, 0].astype(np.float32))
    yy = torch.from_numpy(init[:, 1].astype(np.float32))
    head, tail = torch.from_numpy(graph.row.astype(np.int64)), torch.from_numpy(graph.col)
    tail = tail.to(torch.int64)
    eps_t = torch.from_numpy(eps)
    gen = torch.Generator().manual_seed(seed)
    # one pool of random vertices, read at a random offset each epoch (drawing them afresh
    # every epoch costs more than the rest of the negative step)
    pool = torch.randint(0, n, (max(1 << 20, 2 * negative_sample_rate * len(w)),), generator=gen)
    with _one_thread():
        _fit_epochs(yx, yy, head, tail, eps_t, n_epochs, a, b, negative_sample_rate, pool, gen)
    return torch.stack([yx, yy], 1).numpy()


def _fit_epochs(yx, yy, head, tail, eps_t, n_epochs, a, b, negative_sample_rate, pool, gen,
                fixed: int = 0, alpha0: float = 1.0):  # fmt: skip
    """:func:`umap_embedding`'s SGD epochs, in place on the coordinates ``yx``, ``yy``; the
    first ``fixed`` points do not move (put back after every step)."""
    next_sample = eps_t.clone()
    eps_neg = eps_t / negative_sample_rate
    next_neg = eps_neg.clone()
    keep_x, keep_y = yx[:fixed].clone(), yy[:fixed].clone()
    for epoch in range(n_epochs):
        alpha = alpha0 * (1.0 - epoch / n_epochs)
        due = torch.nonzero(next_sample <= epoch).flatten()
        h, t = head.index_select(0, due), tail.index_select(0, due)
        # attraction along the sampled edges: -2ab d^(2b-2) / (1 + a d^2b) per coordinate
        dx, dy, d2 = _differences(yx, yy, h, t)
        pb = _pow(d2, b)
        coeff = (pb * a).add_(1).mul_(d2).reciprocal_().mul_(pb).mul_(-2 * a * b * alpha)
        coeff.nan_to_num_(0.0)  # coincident points: no force
        gx, gy = _clipped(dx, coeff, alpha), _clipped(dy, coeff, alpha)
        both = torch.cat([h, t])
        yx.scatter_add_(0, both, torch.cat([gx, -gx]))
        yy.scatter_add_(0, both, torch.cat([gy, -gy]))
        if fixed:
            yx[:fixed], yy[:fixed] = keep_x, keep_y
        next_sample.index_add_(0, due, eps_t.index_select(0, due))
        lag = (epoch - next_neg.index_select(0, due)) / eps_neg.index_select(0, due)
        n_neg = lag.floor_().clamp_(min=0).to(torch.int64)
        next_neg.index_add_(0, due, n_neg * eps_neg.index_select(0, due))
        # repulsion from random vertices: 2b / ((0.001 + d^2)(1 + a d^2b)), heads only
        src = torch.repeat_interleave(h, n_neg)
        start = int(torch.randint(0, len(pool) - len(src) + 1, (1,), generator=gen))
        dx, dy, d2 = _differences(yx, yy, src, pool[start : start + len(src)])
        coeff = _pow(d2, b).mul_(a).add_(1).mul_(d2 + 0.001).reciprocal_().mul_(2 * b * alpha)
        coeff.masked_fill_(d2 <= 0, 0.0)
        yx.scatter_add_(0, src, _clipped(dx, coeff, alpha))
        yy.scatter_add_(0, src, _clipped(dy, coeff, alpha))
        if fixed:
            yx[:fixed], yy[:fixed] = keep_x, keep_y


def umap_transform(
    *,
    knn_indices: np.ndarray,
    knn_dists: np.ndarray,
    reference_knn: tuple[np.ndarray, np.ndarray],
    reference_embedding: np.ndarray,
    n_epochs: int = N_EPOCHS,
    seed: int = 0,
    min_dist: float = 0.1,
    spread: float = 1.0,
    negative_sample_rate: int = 5,
) -> np.ndarray:
    """New points placed on a fitted 2-D layout that does not move.

    Parameters
    ----------
    knn_indices, knn_dists
        (n, k + 1) each new point's nearest points among the m reference points and the n new
        ones, itself first; indices 0 to m - 1 are reference points, m + i is new point i.
    reference_knn
        (indices, distances), (n, k): each new point's nearest reference points.
    reference_embedding
        (m, 2) the fitted layout; it does not move.
    n_epochs, seed, min_dist, spread, negative_sample_rate
        As :func:`umap_embedding`.

    Returns
    -------
    np.ndarray
        (n, 2) float32 coordinates of the new points.

    Notes
    -----
    The start is umap-learn 0.5's ``UMAP.transform``: memberships to the nearest reference
    points with local connectivity 0, each new point at their membership-weighted mean (at a
    reference point's position when it is at distance 0, ``init_graph_transform``). The
    optimisation is the fit's (:func:`umap_embedding`: fuzzy union of the new points' k-NN
    memberships, learning rate 1, negative samples from every point) over the edges of the new
    points, to reference points and to each other, with the reference points held fixed.
    umap-learn's transform keeps only the edges to reference points (and a learning rate of
    1/4): new points unlike any reference point (the blurry samples of an early generator)
    then land among the digits they resemble least badly, where their own neighbourhood is
    lost (trustworthiness 0.926 against 0.997 for a joint fit, ``benchmarks/umap_speed.py``);
    with their edges to each other they keep it.
    """
    r_idx, r_dist = (np.asarray(a) for a in reference_knn)
    ref = np.asarray(reference_embedding, np.float32)
    m, (n, k) = len(ref), np.shape(knn_indices)
    vals = memberships(r_dist, local_connectivity=0)
    init = np.einsum("nk,nkc->nc", vals, ref[r_idx].astype(np.float64)) / vals.sum(1)[:, None]
    ones = vals == 1.0
    if ones.any():  # a copy of a reference point sits on it (umap-learn: the lowest index)
        rows = np.flatnonzero(ones.any(1))
        first = np.where(ones[rows], r_idx[rows], np.iinfo(np.int64).max).min(1)
        init[rows] = ref[first]
    idx = np.asarray(knn_indices, np.int64)
    w = memberships(knn_dists, local_connectivity=1)
    w[idx == m + np.arange(n)[:, None]] = 0.0
    p = sp.coo_matrix((w.ravel(), (np.repeat(m + np.arange(n), k), idx.ravel())),
                      shape=(m + n, m + n)).tocsr()  # fmt: skip
    p.eliminate_zeros()
    pt = p.T.tocsr()
    graph = (p + pt - p.multiply(pt)).tocoo()
    graph.data[graph.data < graph.data.max() / n_epochs] = 0.0
    graph.eliminate_zeros()
    a, b = find_ab_params(spread, min_dist)
    y = np.concatenate([ref, init.astype(np.float32)])
    yx, yy = torch.from_numpy(y[:, 0].copy()), torch.from_numpy(y[:, 1].copy())
    head = torch.from_numpy(graph.row.astype(np.int64))
    tail = torch.from_numpy(graph.col.astype(np.int64))
    eps_t = torch.from_numpy(graph.data.max() / graph.data)  # epochs per sample
    gen = torch.Generator().manual_seed(seed)
    pool = torch.randint(0, m + n, (max(1 << 20, 2 * negative_sample_rate * len(eps_t)),),
                         generator=gen)  # fmt: skip
    with _one_thread():
        _fit_epochs(yx, yy, head, tail, eps_t, n_epochs, a, b, negative_sample_rate, pool, gen,
                    fixed=m)  # fmt: skip
    return torch.stack([yx[m:], yy[m:]], 1).numpy()


def umap_layout(points: np.ndarray, *, seed: int, n_neighbors: int = N_NEIGHBORS,
                n_epochs: int = N_EPOCHS) -> np.ndarray:  # fmt: skip
    """2-D UMAP of ``points`` (rows) from their ``n_neighbors``-NN graph (FAISS flat, float32):
    :func:`ganalyze.neighbors.graph_knn` then :func:`umap_embedding`."""
    return umap_layout_later(points, seed=seed, n_neighbors=n_neighbors, n_epochs=n_epochs)()


def umap_layout_later(points: np.ndarray, *, seed: int, n_neighbors: int = N_NEIGHBORS,
                      n_epochs: int = N_EPOCHS) -> Callable[[], np.ndarray]:  # fmt: skip
    """:func:`umap_layout` in two steps: the neighbour graph now (on every core), the layout
    when the returned function is called (see :func:`side_by_side`)."""
    x = np.ascontiguousarray(points, np.float32).reshape(len(points), -1)
    found = graph_knn_of(x, n_neighbors)
    return partial(umap_embedding, knn_indices=found.indices, knn_dists=found.distances,
                   n_epochs=n_epochs, seed=seed)  # fmt: skip


def place(
    points: np.ndarray,
    *,
    reference: np.ndarray,
    reference_embedding: np.ndarray,
    seed: int,
    n_neighbors: int = N_NEIGHBORS,
    n_epochs: int = N_EPOCHS,
) -> np.ndarray:
    """``points`` placed on the fitted layout ``reference_embedding`` of ``reference`` (same
    space) by :func:`umap_transform`: their ``n_neighbors`` nearest reference points and their
    nearest among reference and new points (FAISS flat, float32). (n, 2) float32."""
    return place_later(points, reference=reference, reference_embedding=reference_embedding,
                       seed=seed, n_neighbors=n_neighbors, n_epochs=n_epochs)()  # fmt: skip


def place_later(
    points: np.ndarray,
    *,
    reference: np.ndarray,
    reference_embedding: np.ndarray,
    seed: int,
    n_neighbors: int = N_NEIGHBORS,
    n_epochs: int = N_EPOCHS,
) -> Callable[[], np.ndarray]:
    """:func:`place` in two steps: the neighbour searches now (on every core), the placement
    when the returned function is called (see :func:`side_by_side`)."""
    import faiss

    x = np.ascontiguousarray(points, np.float32).reshape(len(points), -1)
    base = np.ascontiguousarray(reference, np.float32).reshape(len(reference), -1)
    m, k = len(base), n_neighbors
    index = faiss.IndexFlatL2(base.shape[1])
    index.add(base)
    d2_ref, i_ref = index.search(x, k)
    own = graph_knn_of(x, min(k + 1, len(x)))  # among the new points, each itself first
    # the k + 1 nearest among all points: itself, then the nearest of both lists
    d2 = np.concatenate([own.distances.astype(np.float64) ** 2, d2_ref], 1)
    idx = np.concatenate([own.indices + m, i_ref], 1)
    d2[:, 0] = -1.0  # itself first
    order = np.argsort(d2, axis=1, kind="stable")[:, : k + 1]
    idx = np.take_along_axis(idx, order, 1)
    dist = np.sqrt(np.maximum(np.take_along_axis(d2, order, 1), 0))
    return partial(umap_transform, knn_indices=idx, knn_dists=dist,
                   reference_knn=(i_ref, np.sqrt(np.maximum(d2_ref, 0))),
                   reference_embedding=reference_embedding, n_epochs=n_epochs,
                   seed=seed)  # fmt: skip


def graph_knn_of(points: np.ndarray, k: int):
    """:func:`ganalyze.neighbors.graph_knn` (imported here: the neighbours package imports
    FAISS)."""
    from ganalyze.neighbors import graph_knn

    return graph_knn(points, k)


def _differences(yx, yy, i, j):
    """Coordinate differences y_i - y_j and squared distances."""
    dx = yx.index_select(0, i) - yx.index_select(0, j)
    dy = yy.index_select(0, i) - yy.index_select(0, j)
    return dx, dy, dx * dx + dy * dy


def _pow(d2: torch.Tensor, b: float) -> torch.Tensor:
    """d2 ** b for d2 >= 0 (exp of a log: twice as fast as torch.pow here; 0 stays 0)."""
    return torch.log(d2).mul_(b).exp_()


def _clipped(d: torch.Tensor, coeff: torch.Tensor, alpha: float) -> torch.Tensor:
    """umap-learn's step: the gradient clipped to [-4, 4], times the learning rate."""
    return (coeff * d).clamp_(-4 * alpha, 4 * alpha)


def trustworthiness_of(
    x: np.ndarray, emb: np.ndarray, queries: np.ndarray, *, k: int = N_NEIGHBORS
) -> float:
    """Trustworthiness (Venna and Kaski 2001) of the layout ``emb`` of points ``x``, over the
    neighbourhoods of rows ``queries`` only (every point may be their neighbour):
    1 - 2 / (q k (2n - 3k - 1)) sum over the queries i and their k nearest points j in the
    layout that are not among their k nearest in ``x`` of (rank of j from i in ``x`` - k).
    With every row as a query it is ``sklearn.manifold.trustworthiness``; with the placed
    points as queries it measures how faithful their placement is."""
    x = np.asarray(x, np.float64).reshape(len(x), -1)
    e = np.asarray(emb, np.float64)
    n, rows = len(x), np.asarray(queries, np.int64)
    x_sq, e_sq = (x * x).sum(1), (e * e).sum(1)
    total = 0.0
    for part in np.array_split(rows, max(1, len(rows) // 256)):
        d_e = e_sq[part, None] + e_sq[None, :] - 2 * e[part] @ e.T
        d_e[np.arange(len(part)), part] = np.inf
        near = np.argpartition(d_e, k, axis=1)[:, :k]  # the k nearest in the layout
        d_x = x_sq[part, None] + x_sq[None, :] - 2 * x[part] @ x.T
        d_x[np.arange(len(part)), part] = np.inf
        picked = np.take_along_axis(d_x, near, 1)
        rank = (d_x[:, None, :] < picked[:, :, None]).sum(2) + 1  # 1: the nearest other point
        total += np.maximum(rank - k, 0).sum()
    return float(1.0 - total * 2.0 / (len(rows) * k * (2.0 * n - 3.0 * k - 1.0)))
