"""Exact k-nearest-neighbour search in Euclidean distance: the index and one search's steps.

:class:`ExactIndex` returns, for each query, the k base points nearest to it, with their
Euclidean distances, sorted by (distance, base index): ties go to the lowest index. The result
equals a float64 brute force (``tests/test_neighbors.py``).

How it stays exact and fast, for high-dimensional bases such as pixels:

1. A lower bound on every distance (:mod:`ganalyze.neighbors.bound`). With P the top-p
   principal directions of the base (p = 127) and R the rest of the space, for any q and x

       |q - x|^2 = |P(q - x)|^2 + |R(q - x)|^2 >= |Pq - Px|^2 + (|Rq| - |Rx|)^2,

   a squared distance between (p + 1)-dim "bound coordinates" (Pq, |Rq|) and (Px, |Rx|).
   The same with the top s = 63 directions (the norm of the other 64 joins the residual) is
   the looser "scan bound", half the arithmetic again.
2. An upper bound per query: a pilot (a FAISS IVF index over the scan coordinates, close but
   not exact) proposes k + 7 base points; the k-th smallest of their float32 distances, raised
   by its error bound, is the radius.
3. One scan over the whole base (BLAS products in cache-sized tiles, sifted as they come on
   two threads: :mod:`ganalyze.neighbors.scan`) finds every point whose scan bound is within
   the radius (about 40 per query on MNIST, out of 60,000; the radius per query is folded into
   the vectors), their full bounds keep about 8, and those are measured: in float32 first,
   then in float64 the ones whose float32 distance, within its error bound, could still be
   among the k nearest (:mod:`ganalyze.neighbors.measure`).
   The k nearest of them, ties to the lower index, are the answer: any point that could be
   among the true k nearest has both bounds (less their float32 error) below the radius.

A query whose radius takes in a large part of the base (estimated on a seeded sample of it:
noise far from every base point) has its full bound against the whole base instead, and falls
back to the flat search when that still admits too many; the rest of a search takes the flat
search once a quarter of a block needs it (queries unlike the base, such as blurry samples of an
early generator, where the bound is loose). Many such rows (1,024 or more) first get a bound of
their own: the same inequality with the principal directions of these queries, which hug them
(blurry images lie close to a low-dimensional subspace; :func:`~ganalyze.neighbors.bound.
query_fitted_knn`), and only the rows it cannot certify take the flat search. The flat search
(:mod:`ganalyze.neighbors.flat`) is FAISS's flat index with every candidate, and every near
tie, re-checked in float64.
Low-dimensional bases (features) use the flat search directly.

A search keeps its state (whether pruning still pays) in its own :class:`ExactSearch`; the
index is only read, so searches may run concurrently on one index.
"""

from __future__ import annotations

import threading

import numpy as np
import torch

from ganalyze.errors import InputError
from ganalyze.neighbors.bound import LowerBound, query_fitted_knn
from ganalyze.neighbors.flat import FlatSearch
from ganalyze.neighbors.measure import measured, nearest_of_pairs, sum_eps, tol_f32
from ganalyze.neighbors.result import Neighbors, as_matrix

_QUERY_BLOCK = 16_384  # queries per search block (the pilot's FAISS call pays a per-call overhead)
_PILOT_EXTRA = 7  # pilot candidates beyond the k needed for the upper bound
_PILOT_PROBE = 4  # IVF lists the pilot visits
_GUARD = 2048  # estimated scan candidates above which a row takes the flat search
_RANGE_BLOCK = 4096  # queries per scan (its pairs, ~40 a query on MNIST, are kept)
_MAX_CANDIDATES = 256  # per query; beyond this the flat search is cheaper (~1 ms a row) ...
_FEW_BULKY = 32  # ... unless only this many rows need it (building the flat index takes ~0.2 s)
_MAX_EXACT = 8192  # candidates of a row measured exactly, whatever the number of rows
_OPEN_SHARE = 0.25  # above this share of rows needing the whole-base bound, prune no more
_QUERY_FIT_MIN = 1024  # rows unlike the base from which a bound fitted on them pays
_DECIDED_MARGIN = 1e-6  # relative: beyond float32's rounding of a distance (6e-8)
_FLAT_PILOT_LISTS = 256  # IVF lists of a flat index's pilot (kth_exceeds)


class ExactIndex:
    """An exact Euclidean k-NN index over a fixed base set (see the module docstring).

    Parameters
    ----------
    base
        (m, d) points; their squared norms (and the lower bound's projection) are computed once
        and reused by every search.
    bound
        Use the lower-bound pruning: by default when d >= 256 and m >= 4,096, where it pays.
    state
        A fitted bound for this base, from :meth:`bound_state`: no fit.
    """

    STATE = LowerBound.STATE

    def __init__(
        self,
        base: np.ndarray | torch.Tensor,
        bound: bool | None = None,
        state: dict[str, np.ndarray] | None = None,
    ) -> None:
        self.base = as_matrix("base", base)
        m, d = self.base.shape
        self.bound = self.uses_bound(m, d) if bound is None else bool(bound)
        self.flat = FlatSearch(self.base)
        self.lower_bound = LowerBound(self.base, _PILOT_PROBE, state) if self.bound else None
        self._flat_pilot = None
        self._lock = threading.Lock()

    @staticmethod
    def uses_bound(m: int, d: int) -> bool:
        """Whether the lower-bound pruning pays by default: d >= 256 and m >= 4,096."""
        return d >= 256 and m >= 4096

    def bound_state(self) -> dict[str, np.ndarray]:
        """The fitted bound as plain arrays (see :attr:`STATE`), to store and pass back as
        ``state=`` for the same base: the reference cache keeps MNIST train's."""
        if self.lower_bound is None:
            raise ValueError("this index has no fitted bound (bound=False)")
        return self.lower_bound.state()

    def search(self, queries, k: int, exclude_self: bool = False) -> Neighbors:
        """Exact k nearest base points of each query (see :func:`ganalyze.neighbors.knn`)."""
        return ExactSearch(self, k, exclude_self).run(queries)

    def kth_exceeds(self, queries, k: int, threshold: float) -> np.ndarray:
        """Whether each query's distance to its k-th nearest base point exceeds ``threshold``:
        ``search(queries, k).kth > threshold``, the same answer, without a search for the
        queries well within it.

        A pilot (the bound's IVF index, or for a flat index an IVF index over the base) names
        k + 7 base points per query; the k-th smallest of their float64 distances is at least
        the true k-th distance. Where it is below the threshold (by more than float32's
        rounding of a distance) the answer is no; the other queries are searched. For
        queries like the base (the frames of a well-trained generator) that is most of them.
        """
        q = ExactSearch(self, k)._checked(queries)
        upper = self._kth_upper(q, k)
        out = np.zeros(len(q), dtype=bool)
        rows = np.flatnonzero(~(upper <= threshold * (1 - _DECIDED_MARGIN)))
        if len(rows):
            out[rows] = self.search(q[torch.from_numpy(rows)], k).kth > threshold
        return out

    def _kth_upper(self, q: torch.Tensor, k: int) -> np.ndarray:
        """An upper bound of each query's exact k-th distance (inf where the pilot named too
        few base points): the k-th of its pilot candidates' float64 distances."""
        m = self.base.shape[0]
        kk = min(k + _PILOT_EXTRA, m)
        if self.lower_bound is not None:
            _, scan, _ = self.lower_bound.embed(q)
            _, cand = self.lower_bound.pilot.search(scan.numpy(), kk)
        else:
            _, cand = self._pilot().search(q.numpy(), kk)
        missing = cand < 0
        d2 = measured(q, self.base, np.where(missing, 0, cand), None, np.float64)
        d2[missing] = np.inf
        return np.sqrt(np.partition(d2, k - 1, axis=1)[:, k - 1])

    def _pilot(self):
        """An IVF index over the base (FAISS, seeded k-means on a subset), built at first use:
        close neighbours, not exact ones, for :meth:`kth_exceeds` on a flat index."""
        import faiss

        with self._lock:
            if self._flat_pilot is None:
                base = np.ascontiguousarray(self.base.numpy(), np.float32)
                m, d = base.shape
                nlist = max(1, min(_FLAT_PILOT_LISTS, m // 64))
                pilot = faiss.IndexIVFFlat(faiss.IndexFlatL2(d), d, nlist)
                pilot.cp.seed = 0
                rows = np.random.default_rng(0).permutation(m)[: 64 * nlist]
                pilot.train(base[np.sort(rows)])
                pilot.add(base)
                pilot.nprobe = min(_PILOT_PROBE, nlist)
                self._flat_pilot = pilot
            return self._flat_pilot


class ExactSearch:
    """One search of an :class:`ExactIndex` for the k nearest base points, and its state:
    ``pruning``, whether the lower bound still pays, which a block of queries unlike the base
    turns off for the blocks still to come."""

    def __init__(self, index: ExactIndex, k: int, exclude_self: bool = False) -> None:
        self.index, self.k, self.exclude_self = index, k, exclude_self
        self.pruning = index.bound

    def run(self, queries) -> Neighbors:
        """The k nearest base points of each of ``queries``, in blocks."""
        q = self._checked(queries)
        n, k = q.shape[0], self.k
        out_d = np.empty((n, k), dtype=np.float32)
        out_i = np.empty((n, k), dtype=np.int64)
        block = min(n, _QUERY_BLOCK)
        self.pruning = self.index.bound
        for start in range(0, n, block):
            rows = torch.arange(start, min(start + block, n))
            self_idx = rows if self.exclude_self else None
            if self.pruning:
                d2, idx = self._bounded(q[rows], self_idx)
            else:
                d2, idx = self._unlike_base(q[rows], self_idx)
            out_d[rows.numpy()] = d2.sqrt().float().numpy()
            out_i[rows.numpy()] = idx.numpy()
        return Neighbors(out_d, out_i)

    def _checked(self, queries) -> torch.Tensor:
        q = as_matrix("queries", queries)
        m, d = self.index.base.shape
        if q.shape[1] != d:
            raise InputError(f"queries have {q.shape[1]} dimensions and the base "
                             f"{d}; both must match.")  # fmt: skip
        limit = m - int(self.exclude_self)
        if not 1 <= self.k <= limit:
            raise InputError(f"k must be between 1 and {limit}; got {self.k}.")
        if self.exclude_self and q.shape[0] != m:
            raise InputError("exclude_self needs queries and base to be the same set.")
        return q

    def _bounded(self, qb, self_idx):
        """Lower-bound pruning (module docstring, steps 1-3), exact float64 on the survivors:
        float64 squared distances and indices, (n, k)."""
        lb, m = self.index.lower_bound, self.index.base.shape[0]
        emb, scan, c2 = lb.embed(qb)
        radius, missing = self._radius(qb, emb, scan, c2, self_idx)
        # rows whose radius takes in a large part of the base (noise, blurry samples) go to the
        # flat search: a seeded sample of the base estimates each row's count
        guarded = missing | (lb.sample_counts(scan, radius) > _GUARD * len(lb.sample) / m)
        heavy = missing.clone()
        if guarded.float().mean() > _OPEN_SHARE:
            # queries unlike the base: the bound is loose, and the flat search is cheaper for
            # these rows and the blocks still to come
            self.pruning = False
            heavy[:] = True
        row, col = self._candidates(emb, scan, c2, radius, guarded, heavy)
        row, col = self._without_bulky(row, col, heavy)
        return self._measured(qb, row, col, heavy, self_idx)

    def _radius(self, qb, emb, scan, c2, self_idx) -> tuple[torch.Tensor, torch.Tensor]:
        """Step 2, the upper bound: the k-th of the pilot's candidates (an IVF search of the
        scan coordinates: close, not exact), by float32 distances raised by their error bound;
        and the rows whose probed lists held too few points (flat-search rows)."""
        lb, base = self.index.lower_bound, self.index.base
        m = base.shape[0]
        kk = min(self.k + int(self_idx is not None), m)
        _, first = lb.pilot.search(scan.numpy(), min(kk + _PILOT_EXTRA, m))
        first = torch.from_numpy(first)
        missing = (first < 0).any(1)
        first[missing] = 0  # (any base point: the row's radius is not used)
        d_first = measured(qb, base, first, self_idx, np.float32) * (1 + sum_eps(qb.shape[1]))
        d_first = torch.from_numpy(d_first)
        # float32 error of a bound: the (p + 1)-term products and the roundings around them
        tol = tol_f32(emb.shape[1], c2 + lb.base_c2_max) + 1e-6
        return torch.kthvalue(d_first, self.k, dim=1).values + tol, missing

    def _candidates(self, emb, scan, c2, radius, guarded, heavy):
        """Step 3: every base point whose scan bound is within the radius, then whose full
        bound is, as (row, base) pairs; guarded rows take the full bound against the whole
        base, and those with too many candidates become ``heavy`` (flat-search rows)."""
        lb = self.index.lower_bound
        rows, cols = [], []
        light = torch.nonzero(~heavy & ~guarded).flatten()
        for part in torch.split(light, _RANGE_BLOCK) if len(light) else ():
            # in parts: the scan's pairs (about 40 a row on MNIST) stay a few MB
            r, x = lb.scan_within(scan[part], c2[part], radius[part])
            r = part[r]
            keep = lb.full_bound(emb, r, x) <= radius[r]
            rows.append(r[keep])
            cols.append(x[keep])
        for batch in torch.split(torch.nonzero(~heavy & guarded).flatten(), 256):
            inside = lb.full_bound_within(emb[batch], radius[batch])
            over = np.count_nonzero(inside, axis=1) > _MAX_EXACT
            inside[over] = False
            heavy[batch[torch.from_numpy(over)]] = True
            r, x = (torch.from_numpy(a) for a in np.nonzero(inside))
            rows.append(batch[r])
            cols.append(x)
        row = torch.cat(rows) if rows else torch.empty(0, dtype=torch.int64)
        col = torch.cat(cols) if cols else torch.empty(0, dtype=torch.int64)
        return row, col

    def _without_bulky(self, row, col, heavy):
        """Many rows with many candidates: the flat search is cheaper for them (marked
        ``heavy``, their pairs dropped); a few are cheaper measured exactly than building the
        flat index."""
        per_row = torch.bincount(row, minlength=len(heavy))
        bulky = torch.nonzero(per_row > _MAX_CANDIDATES).flatten()
        if len(bulky) > _FEW_BULKY or (len(bulky) and self.index.flat.built):
            heavy[bulky] = True
            keep = ~heavy[row]
            row, col = row[keep], col[keep]
        return row, col

    def _measured(self, qb, row, col, heavy, self_idx):
        """The k nearest of each row: among its candidate pairs, or by the flat search for the
        ``heavy`` rows."""
        n, k = qb.shape[0], self.k
        out_d = torch.empty(n, k, dtype=torch.float64)
        out_i = torch.empty(n, k, dtype=torch.int64)
        light = torch.nonzero(~heavy).flatten()
        out_d[light], out_i[light] = nearest_of_pairs(qb, self.index.base, row, col, k,
                                                      self_idx, light)  # fmt: skip
        heavy = torch.nonzero(heavy).flatten()
        if len(heavy):
            s = None if self_idx is None else self_idx[heavy]
            out_d[heavy], out_i[heavy] = self._unlike_base(qb[heavy], s)
        return out_d, out_i

    def _unlike_base(self, qb, self_idx):
        """Rows the stored bound cannot prune (queries unlike the base): when there are many,
        in a high dimension, a bound fitted on these queries (:func:`query_fitted_knn`), else
        and for the rows it cannot certify the flat search."""
        flat = self.index.flat
        if len(qb) < _QUERY_FIT_MIN or qb.shape[1] < 256:
            return flat.search_rechecked(qb, self.k, self_idx)
        d2, idx, certified = query_fitted_knn(qb, self.index.base, self.k, self_idx)
        rest = torch.nonzero(~certified).flatten()
        if len(rest):
            s = None if self_idx is None else self_idx[rest]
            d2[rest], idx[rest] = flat.search_rechecked(qb[rest], self.k, s)
        return d2, idx
