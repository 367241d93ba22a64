"""Distances measured exactly, and the float32 error bounds that say which ones to measure.

A squared distance of float32 points is exact enough in float64 (the differences are exact, the
sum rounds once per term far below float32's resolution); float32 differences are half the
memory traffic, and their error bound (:func:`sum_eps`) tells which pairs could still be among
a query's k nearest and so need float64.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

_EXACT_BYTES = 64 * 2**20  # float64 gathers for exact distances stay below this (in all threads)
F32_EPS = float(torch.finfo(torch.float32).eps)


def tol_f32(dims: int, scale) -> float:
    """Error bound of a float32 dot product of ``dims`` terms whose size is ``scale``,
    with the roundings around it."""
    return 4 * (dims + 4) * F32_EPS * scale


def sum_eps(dims: int) -> float:
    """Relative error bound of a float32 squared distance over ``dims`` coordinates, summed in
    any order (all terms positive), with margin: (dims + 2) u, times four."""
    return 2 * (dims + 4) * F32_EPS


def pair_sq_distances(q: torch.Tensor, b: torch.Tensor, row: torch.Tensor, col: torch.Tensor):
    """float64 squared distances between query rows ``row`` and base rows ``col`` (pairs)."""
    out = gathered_sq(q.numpy(), b.numpy(), row.numpy(), col.numpy(), np.float64)
    return torch.from_numpy(out)


def gathered_sq(q: np.ndarray, b: np.ndarray, row: np.ndarray, col: np.ndarray, dtype):
    """|b[col] - q[row]|^2 per pair, the differences taken in ``dtype`` (float64: exact for
    float32 inputs), summed into float64; numpy's gathers (3x torch's), on two threads."""
    out = np.empty(len(row), dtype=np.float64)

    def chunk(s: int, e: int) -> None:
        diff = np.take(b, col[s:e], axis=0).astype(dtype, copy=False)
        diff -= np.take(q, row[s:e], axis=0)
        out[s:e] = np.einsum("ij,ij->i", diff, diff)

    size = np.dtype(dtype).itemsize
    in_threads(chunk, len(row), max(1, _EXACT_BYTES // (size * b.shape[1])))
    return out


def in_threads(chunk, n: int, step: int) -> None:
    """``chunk(start, end)`` over [0, n) on torch's thread count, at most ``step`` items in
    flight in all (numpy's gathers and arithmetic release the GIL; each piece writes its own
    rows)."""
    workers = torch.get_num_threads()
    if n < 4096 or workers < 2:
        for s in range(0, n, step):
            chunk(s, min(s + step, n))
        return
    step = max(1, min(step // workers, -(-n // workers)))  # the memory bound is for all threads
    pieces = [(s, min(s + step, n)) for s in range(0, n, step)]
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(lambda p: chunk(*p), pieces))


def measured(qb, base, cand, self_idx, dtype, rows=None) -> np.ndarray:
    """Squared distances of queries ``qb`` to candidate points of ``base``, the differences in
    ``dtype`` (:func:`gathered_sq`), a query's own point (``self_idx``) at inf. ``cand`` is
    (r, c), each row's candidates, or, with ``rows``, one base index per pair."""
    cand = cand.numpy() if torch.is_tensor(cand) else cand
    if rows is None:
        rows = np.repeat(np.arange(cand.shape[0]), cand.shape[1])
    d2 = gathered_sq(qb.numpy(), base.numpy(), rows, cand.reshape(-1), dtype)
    if self_idx is not None:
        d2[cand.reshape(-1) == self_idx.numpy()[rows]] = np.inf
    return d2.reshape(cand.shape)


def sorted_exact(qb, base, cand, self_idx) -> tuple[torch.Tensor, torch.Tensor]:
    """Each row's candidates ``cand`` (r, c) measured in float64 and sorted by (distance,
    index)."""
    exact = measured(qb, base, cand, self_idx, np.float64)
    return sort_ties(torch.from_numpy(exact), cand)


def sort_ties(d2: torch.Tensor, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Sort rows by (distance, index); duplicates of an index (same distance) sort together."""
    order = torch.argsort(idx, dim=1, stable=True)
    d2, idx = torch.gather(d2, 1, order), torch.gather(idx, 1, order)
    order = torch.argsort(d2, dim=1, stable=True)
    return torch.gather(d2, 1, order), torch.gather(idx, 1, order)


def nearest_of_pairs(qb, base, row, col, k, self_idx, rows):
    """The k nearest of each of ``rows`` among its candidate pairs (float64, ties to the
    lower index); every row has at least k candidates.

    float32 distances first (half the memory traffic): a pair whose float32 distance, less
    its error, exceeds its row's k-th largest float32 distance plus error cannot be among
    the k; the rest (about k a row) are measured in float64."""
    n, row, col, rows = qb.shape[0], row.numpy(), col.numpy(), rows.numpy()
    d2 = measured(qb, base, col, self_idx, np.float32, rows=row)
    eps = sum_eps(qb.shape[1])
    bound = np.full(n, np.inf)
    bound[rows] = d2[first_k(row, np.lexsort((d2, row)), n, rows, k)[:, -1]] * (1 + eps)
    keep = np.flatnonzero(d2 * (1 - eps) <= bound[row])
    row, col = row[keep], col[keep]
    d2 = measured(qb, base, col, self_idx, np.float64, rows=row)
    pick = first_k(row, np.lexsort((col, d2, row)), n, rows, k)
    return torch.from_numpy(d2[pick]), torch.from_numpy(col[pick])


def first_k(row: np.ndarray, order: np.ndarray, n: int, rows: np.ndarray, k: int) -> np.ndarray:
    """(len(rows), k) positions of the first k pairs of each of ``rows`` in ``order``, an
    ordering of the pairs by their query ``row`` first (every row has at least k pairs)."""
    counts = np.bincount(row, minlength=n)
    starts = np.cumsum(counts) - counts
    return order[starts[rows][:, None] + np.arange(k)]
