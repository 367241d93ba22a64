"""Which (query, base) pairs pass a test: the tiled scan for few hits among many pairs.

:func:`products_above` finds every float32 inner product above a limit without forming the dense
matrix: BLAS products in cache-sized tiles, sifted as they come, on threads. A distance within a
radius is such a product once the radius is folded into the vectors; :func:`pairs_within` does
that for balls, the lower bound's scan (:mod:`ganalyze.neighbors.bound`) for queries.
:func:`within` is the dense test, one BLAS product, for a few rows against a whole base.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from functools import partial

import numpy as np
import torch

from ganalyze.neighbors.measure import pair_sq_distances, tol_f32

_ROWS_PER_TILE, _COLS_PER_TILE, _CHUNK = 512, 2048, 128

_blas_lock = threading.Lock()
_blas_users = 0
_blas_limits = None


@contextmanager
def _one_blas_thread():
    """BLAS on one thread while any scan runs (its tiles run on threads of their own); the
    original limits come back when the last concurrent scan ends."""
    global _blas_users, _blas_limits
    from threadpoolctl import threadpool_limits

    with _blas_lock:
        if _blas_users == 0:
            _blas_limits = threadpool_limits(1, user_api="blas")
        _blas_users += 1
    try:
        yield
    finally:
        with _blas_lock:
            _blas_users -= 1
            if _blas_users == 0:
                _blas_limits.restore_original_limits()
                _blas_limits = None


def products_above(a: np.ndarray, cols: np.ndarray, limit: float):
    """Every (i, j) with the float32 product a[i] . cols[:, j] > ``limit``, when few are: row
    and column indices, in no particular order.

    Tiles of 512 rows x 2,048 columns (one BLAS product each, in cache), on torch's thread count
    with one BLAS thread each; each tile's rows are sifted in chunks of 128 columns, first by
    their maximum, then element by element in the chunks that hold a hit. Twice as fast as
    FAISS's range search over the same vectors on MNIST's scan.
    """
    starts = range(0, len(a), _ROWS_PER_TILE)
    workers = min(torch.get_num_threads(), len(starts))
    with _one_blas_thread(), ThreadPoolExecutor(workers) as pool:
        found = list(pool.map(lambda start: _tile_rows(a, cols, limit, start), starts))
    return (np.concatenate([f[0] for f in found]).astype(np.int64),
            np.concatenate([f[1] for f in found]).astype(np.int64))  # fmt: skip


def _tile_rows(a: np.ndarray, cols: np.ndarray, limit: float, start: int):
    """:func:`products_above` for the rows of one tile, across every column tile."""
    m = cols.shape[1]
    block = a[start : start + _ROWS_PER_TILE]
    buf = np.empty((len(block), _COLS_PER_TILE), dtype=np.float32)
    found_i, found_j = [], []
    for c0 in range(0, m, _COLS_PER_TILE):
        w = min(_COLS_PER_TILE, m - c0)
        prod = np.matmul(block, cols[:, c0 : c0 + w], out=buf[:, :w])
        _sift(prod, limit, c0, found_i, found_j)
    return np.concatenate(found_i) + start, np.concatenate(found_j)


def _sift(prod: np.ndarray, limit: float, c0: int, found_i: list, found_j: list) -> None:
    """Append the (row, c0 + column) of every entry of ``prod`` above ``limit``: chunks of
    columns by their maximum first, then element by element in the chunks that hold a hit."""
    w = prod.shape[1]
    whole = w - w % _CHUNK
    if whole:
        parts = prod[:, :whole].reshape(len(prod), whole // _CHUNK, _CHUNK)
        hit_i, hit_c = np.nonzero(parts.max(2) > limit)
        i, j = np.divmod(np.flatnonzero(parts[hit_i, hit_c] > limit), _CHUNK)
        found_i.append(hit_i[i])
        found_j.append(hit_c[i] * _CHUNK + j + c0)
    if whole < w:
        i, j = np.nonzero(prod[:, whole:] > limit)
        found_i.append(i)
        found_j.append(j + c0 + whole)


def _tile_rows_two(a, cols, col_add, row_add, limit: float, start: int):
    """For the rows of one tile: every (i, j) with a[i] . cols[:, j] + col_add[j] > limit, and
    every one with a[i] . cols[:, j] + row_add[i] > limit, from one product per tile."""
    m = cols.shape[1]
    block = a[start : start + _ROWS_PER_TILE]
    shift = row_add[start : start + _ROWS_PER_TILE, None]
    buf = np.empty((len(block), _COLS_PER_TILE), dtype=np.float32)
    other = np.empty_like(buf)
    found = ([], []), ([], [])
    for c0 in range(0, m, _COLS_PER_TILE):
        w = min(_COLS_PER_TILE, m - c0)
        prod = np.matmul(block, cols[:, c0 : c0 + w], out=buf[:, :w])
        _sift(np.add(prod, col_add[c0 : c0 + w], out=other[:, :w]), limit, c0, *found[0])
        _sift(np.add(prod, shift, out=prod), limit, c0, *found[1])
    return tuple((np.concatenate(i) + start, np.concatenate(j)) for i, j in found)


def within(q: np.ndarray, q_sq, base: np.ndarray, base_sq, limit) -> np.ndarray:
    """(rows of q, base) bool matrix of float32 |q - b|^2 = |q|^2 + |b|^2 - 2 q.b <= limit[row],
    from one BLAS product (numpy's)."""
    d2 = torch.from_numpy(q @ base.T)
    d2.mul_(-2).add_(base_sq).add_(q_sq.float().unsqueeze(1))
    return (d2 <= limit.float().unsqueeze(1)).numpy()


def pairs_within_both(
    *, queries: np.ndarray, base: np.ndarray, base_radius: np.ndarray, query_radius: np.ndarray
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """:func:`pairs_within` both ways from one pass of products: the pairs (i, j) with
    |q_i - b_j| < base_radius[j] (q_i in b_j's ball), and those with |q_i - b_j| <
    query_radius[i] (b_j in q_i's ball), strict, exactly; each as (query indices, base
    indices).

    (2 q_i, -|q_i|^2, 1) . (b_j, 1, -|b_j|^2) = -|q_i - b_j|^2: the two tests add
    base_radius[j]^2 or query_radius[i]^2 to one float32 product; pairs within its error are
    decided by float64 distances, as in :func:`pairs_within`.
    """
    queries = np.ascontiguousarray(queries, np.float32)
    base = np.ascontiguousarray(base, np.float32)
    q_sq = np.einsum("ij,ij->i", queries, queries, dtype=np.float64)
    b_sq = np.einsum("ij,ij->i", base, base, dtype=np.float64)
    rb2, rq2 = (np.asarray(r, np.float64) ** 2 for r in (base_radius, query_radius))
    ones = np.ones((len(base), 1))
    cols = np.ascontiguousarray(np.hstack([base, ones, -b_sq[:, None]]).T, dtype=np.float32)
    aug = np.hstack([2 * queries, -q_sq[:, None], np.ones((len(queries), 1))])
    aug = aug.astype(np.float32)
    scale = 2 * q_sq.max() + b_sq.max() + max(rb2.max(), rq2.max()) + 1
    tol = tol_f32(base.shape[1], scale)
    col_add, row_add = rb2.astype(np.float32), rq2.astype(np.float32)
    found = ([], []), ([], [])
    for s in range(0, len(aug), 4096):  # in blocks: the candidate pairs are measured exactly
        tile = partial(_tile_rows_two, aug[s : s + 4096], cols, col_add, row_add[s : s + 4096],
                       -tol)  # fmt: skip
        starts = range(0, len(aug[s : s + 4096]), _ROWS_PER_TILE)
        workers = min(torch.get_num_threads(), len(starts))
        with _one_blas_thread(), ThreadPoolExecutor(workers) as pool:
            tiles = list(pool.map(tile, starts))
        for way, radius2 in ((0, lambda i, j: rb2[j]), (1, lambda i, j: rq2[i])):
            i = np.concatenate([t[way][0] for t in tiles]).astype(np.int64) + s
            j = np.concatenate([t[way][1] for t in tiles]).astype(np.int64)
            exact = pair_sq_distances(torch.from_numpy(queries), torch.from_numpy(base),
                                      torch.from_numpy(i), torch.from_numpy(j)).numpy()  # fmt: skip
            keep = exact < radius2(i, j)
            found[way][0].append(i[keep])
            found[way][1].append(j[keep])
    return tuple((np.concatenate(i), np.concatenate(j)) for i, j in found)


def pairs_within(
    *, queries: np.ndarray, base: np.ndarray, radius: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Every pair (i, j) with |q_i - b_j| < radius_j (strict), exactly.

    "q_i lies in b_j's ball" is the inner product (2 q_i, 1, -|q_i|^2) . (b_j, r_j^2 - |b_j|^2, 1)
    = r_j^2 - |q_i - b_j|^2 > 0, so blocked BLAS products over (d + 2)-dim vectors, sifted as
    they come (:func:`products_above`, no dense matrix), find them; pairs within the float32
    error of a radius are decided by float64 distances. Returns the query and base indices of
    the pairs.
    """
    queries = np.ascontiguousarray(queries, np.float32)
    base = np.ascontiguousarray(base, np.float32)
    q_sq = np.einsum("ij,ij->i", queries, queries, dtype=np.float64)
    b_sq = np.einsum("ij,ij->i", base, base, dtype=np.float64)
    r2 = radius.astype(np.float64) ** 2
    cols = np.hstack([base, (r2 - b_sq)[:, None], np.ones((len(base), 1))]).T
    cols = np.ascontiguousarray(cols, dtype=np.float32)
    aug = np.hstack([2 * queries, np.ones((len(queries), 1)), -q_sq[:, None]]).astype(np.float32)
    scale = 2 * q_sq.max() + b_sq.max() + r2.max() + 1
    tol = tol_f32(base.shape[1], scale)
    found_i, found_j = [], []
    for s in range(0, len(aug), 4096):  # in blocks: the candidate pairs are measured exactly
        i, j = products_above(aug[s : s + 4096], cols, -tol)
        i += s
        exact = pair_sq_distances(torch.from_numpy(queries), torch.from_numpy(base),
                                  torch.from_numpy(i), torch.from_numpy(j)).numpy()  # fmt: skip
        keep = exact < r2[j]
        found_i.append(i[keep])
        found_j.append(j[keep])
    return np.concatenate(found_i), np.concatenate(found_j)
