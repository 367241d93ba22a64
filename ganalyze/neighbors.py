"""Exact k-nearest-neighbour search in Euclidean distance, shared by every analysis.

``knn(queries=, base=, k=)`` returns, for each query, the k base points nearest to it, with
their Euclidean distances, sorted by (distance, base index): ties go to the lowest index. The
result equals a float64 brute force (``tests/test_neighbors.py``).

How it stays exact and fast (:class:`ExactIndex`), for high-dimensional bases such as pixels:

1. A lower bound on every distance. With P the top-p principal directions of the base
   (p = 127) and R the rest of the space, for any q and x

       |q - x|^2 = |P(q - x)|^2 + |R(q - x)|^2 >= |Pq - Px|^2 + (|Rq| - |Rx|)^2,

   a squared distance between (p + 1)-dim "bound coordinates" (Pq, |Rq|) and (Px, |Rx|).
   The same with the top s = 63 directions (the norm of the other 64 joins the residual) is
   the looser "scan bound", half the arithmetic again.
2. An upper bound per query: a pilot (a FAISS IVF index over the scan coordinates, close but
   not exact) proposes k + 7 base points; the k-th smallest of their float32 distances, raised
   by its error bound, is the radius.
3. One scan over the whole base (BLAS products in cache-sized tiles, sifted as they come on
   two threads) finds every point whose scan bound is within the radius (about 40 per query on
   MNIST, out of 60,000; the radius per query is folded into the vectors), their full bounds
   keep about 8, and those are measured: in float32 first, then in float64 the ones whose
   float32 distance, within its error bound, could still be among the k nearest.
   The k nearest of them, ties to the lower index, are the answer: any point that could be
   among the true k nearest has both bounds (less their float32 error) below the radius.

A query whose radius takes in a large part of the base (estimated on a seeded sample of it:
noise far from every base point) has its full bound against the whole base instead, and falls
back to the flat search when that still admits too many; the rest of a search takes the flat
search once a quarter of a block needs it (queries unlike the base, such as blurry samples of an
early generator, where the bound is loose).
The flat search: FAISS's flat index (float32, BLAS) finds the best ``k + margin`` candidates,
those are re-measured exactly in float64, and a query whose ``k + margin``-th candidate is not
clear of its k-th exact distance by more than the float32 error bound (a near tie: near-duplicate
samples, as a collapsed generator makes) has every point that could still beat it measured.
Low-dimensional bases (features) use the flat search directly.

The fit (directions, coordinates, pilot centroids) is plain arrays: ``bound_state()`` gives them
and ``ExactIndex(base, state=...)`` takes them back; the reference cache keeps MNIST train's.
Neighbour graphs (UMAP's) need no float64 tie-breaking: :func:`graph_knn` is FAISS's flat float32
search in one call.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch

from ganalyze.errors import InputError

logger = logging.getLogger(__name__)

_QUERY_BLOCK = 16_384  # queries per search block (the pilot's FAISS call pays a per-call overhead)
_EXACT_BYTES = 64 * 2**20  # float64 gathers for exact distances stay below this (in all threads)
_BOUND_DIMS = 127  # principal directions in the lower bound (plus one residual norm)
_SCAN_DIMS = 63  # of them in the bound that scans the whole base (plus the norm of the rest)
_PILOT_EXTRA = 7  # pilot candidates beyond the k needed for the upper bound
_PILOT_PROBE = 4  # IVF lists the pilot visits
_GUARD = 2048  # estimated scan candidates above which a row takes the flat search
_RANGE_BLOCK = 4096  # queries per scan (its pairs, ~40 a query on MNIST, are kept)
_MAX_CANDIDATES = 256  # per query; beyond this the flat search is cheaper (~1 ms a row) ...
_FEW_BULKY = 32  # ... unless only this many rows need it (building the flat index takes ~0.2 s)
_MAX_EXACT = 8192  # candidates of a row measured exactly, whatever the number of rows
_OPEN_SHARE = 0.25  # above this share of rows needing the whole-base bound, prune no more
_F32_EPS = float(torch.finfo(torch.float32).eps)


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
    t = t.detach().cpu().to(torch.float32).contiguous()
    if not np.isfinite(t.numpy()).all():
        bad = np.count_nonzero(~np.isfinite(t.numpy()))
        raise InputError(f"{name} contains {bad} NaN or Inf values.")
    return t


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


def pair_sq_distances(q: torch.Tensor, b: torch.Tensor, row: torch.Tensor, col: torch.Tensor):
    """float64 squared distances between query rows ``row`` and base rows ``col`` (pairs)."""
    out = _gathered_sq(q.numpy(), b.numpy(), row.numpy(), col.numpy(), np.float64)
    return torch.from_numpy(out)


def _gathered_sq(q: np.ndarray, b: np.ndarray, row: np.ndarray, col: np.ndarray, dtype):
    """|b[col] - q[row]|^2 per pair, the differences taken in ``dtype`` (float64: exact for
    float32 inputs), summed into float64; numpy's gathers (3x torch's), on two threads."""
    out = np.empty(len(row), dtype=np.float64)

    def chunk(s: int, e: int) -> None:
        diff = np.take(b, col[s:e], axis=0).astype(dtype, copy=False)
        diff -= np.take(q, row[s:e], axis=0)
        out[s:e] = np.einsum("ij,ij->i", diff, diff)

    size = np.dtype(dtype).itemsize
    _in_threads(chunk, len(row), max(1, _EXACT_BYTES // (size * b.shape[1])))
    return out


def _in_threads(chunk, n: int, step: int) -> None:
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
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(lambda p: chunk(*p), pieces))


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
        (m, d) points; their squared norms (and the lower bound's projection) are computed once
        and reused by every search.
    bound
        Use the lower-bound pruning: by default when d >= 256 and m >= 4,096, where it pays.
    """

    STATE = ("mu", "proj", "base_emb", "base_scan", "base_c2", "centroids", "sample")

    def __init__(
        self,
        base: np.ndarray | torch.Tensor,
        bound: bool | None = None,
        state: dict[str, np.ndarray] | None = None,
    ) -> None:
        self.base = _as_matrix("base", base)
        self._base_sq_max = None
        m, d = self.base.shape
        self.bound = self.uses_bound(m, d) if bound is None else bool(bound)
        self._flat = None
        if self.bound:
            self._fit_bound(state)

    @staticmethod
    def uses_bound(m: int, d: int) -> bool:
        """Whether the lower-bound pruning pays by default: d >= 256 and m >= 4,096."""
        return d >= 256 and m >= 4096

    @property
    def flat(self):
        """FAISS's flat index over the base, built on first use."""
        if self._flat is None:
            import faiss

            self._flat = faiss.IndexFlatL2(self.base.shape[1])
            self._flat.add(self.base.numpy())
        return self._flat

    def bound_state(self) -> dict[str, np.ndarray]:
        """The fitted bound as plain arrays (see :attr:`STATE`), to store and pass back as
        ``state=`` for the same base: the reference cache keeps MNIST train's."""
        centroids = self._pilot.quantizer.reconstruct_n(0, self._pilot.nlist)
        arrays = (self._mu, self._proj, self._base_emb, self._base_scan, self._base_c2,
                  centroids, self._sample)  # fmt: skip
        return {k: np.asarray(v) for k, v in zip(self.STATE, arrays, strict=True)}

    def _fit_bound(self, state: dict[str, np.ndarray] | None = None) -> None:
        """Principal directions of (a seeded subset of) the base, in float64, and the base's
        bound and scan coordinates (or all of them from ``state``). Any orthonormal P gives a
        valid bound; a good one a tight bound."""
        import faiss

        m, d = self.base.shape
        if state is None:
            rows = torch.randperm(m, generator=torch.Generator().manual_seed(0))
            sample = self.base[rows[:5_000]]
            self._mu = sample.double().mean(0)
            centred = sample - self._mu.float()
            _, vecs = torch.linalg.eigh((centred.T @ centred).double())
            p = min(_BOUND_DIMS, d - 1)
            self._proj = vecs[:, -p:].flip(1).contiguous()  # largest variance first
            self._scan_dims = min(_SCAN_DIMS, p)
            self._base_emb, self._base_scan, self._base_c2 = self._embed(self.base)
            self._sample = rows[:1024]
        else:
            _check_state(state, m, d)
            self._mu, self._proj = (torch.from_numpy(state[k]) for k in ("mu", "proj"))
            self._base_emb, self._base_scan, self._base_c2, self._sample = (
                torch.from_numpy(state[k]) for k in ("base_emb", "base_scan", "base_c2", "sample")
            )
            self._scan_dims = self._base_scan.shape[1] - 1
        self._base_c2_max = float(self._base_c2.max())
        self._base_emb_sq = self._query_sq(self._base_emb)
        scan = self._base_scan.numpy()
        s = scan.shape[1]
        nlist = _pilot_lists(m)
        self._pilot = faiss.IndexIVFFlat(faiss.IndexFlatL2(s), s, nlist)
        if state is None:
            self._pilot.cp.seed = 0
            self._pilot.train(scan[rows[: 64 * nlist].numpy()] if m > 64 * nlist else scan)
        else:  # the stored centroids: no k-means, nothing deserialised
            self._pilot.quantizer.add(np.ascontiguousarray(state["centroids"], np.float32))
            self._pilot.is_trained = True
        self._pilot.add(scan)
        self._pilot.nprobe = min(_PILOT_PROBE, nlist)
        # the scan's base side, (e_x, |e_x|^2, 1) as columns, in the order of the pilot's lists:
        # a query's candidates then gather in few column chunks, which the scan sifts first
        _, lists = self._pilot.quantizer.search(scan, 1)
        self._scan_order = np.argsort(lists[:, 0], kind="stable")
        e_sq = np.einsum("ij,ij->i", scan, scan, dtype=np.float64)[:, None]
        cols = np.hstack([scan, e_sq, np.ones_like(e_sq)])[self._scan_order]
        self._scan_cols = np.ascontiguousarray(cols.T, dtype=np.float32)

    @staticmethod
    def _query_sq(emb: torch.Tensor) -> torch.Tensor:
        x = emb.numpy()
        return torch.from_numpy(np.einsum("ij,ij->i", x, x, dtype=np.float64).astype(np.float32))

    def _embed(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Bound coordinates (Px, |Rx|) and scan coordinates (the first s of Px and the norm of
        the rest) of the centred points as float32, and |x - mu|^2 in float64."""
        p, s = self._proj.shape[1], self._scan_dims
        emb = torch.empty(x.shape[0], p + 1, dtype=torch.float32)
        scan = torch.empty(x.shape[0], s + 1, dtype=torch.float32)
        c2 = torch.empty(x.shape[0], dtype=torch.float64)
        proj, mu = self._proj.numpy(), self._mu.numpy()
        mu_proj, mu_sq = mu @ proj, float(mu @ mu)
        buf = np.empty((min(x.shape[0], 8192), x.shape[1]), dtype=np.float64)  # reused: no
        for a in range(0, x.shape[0], 8192):  # fresh pages to fault in for every block
            xb = buf[: min(8192, x.shape[0] - a)]
            np.copyto(xb, x[a : a + 8192].numpy())
            xp = xb @ proj  # numpy's BLAS; (x - mu) P = x P - mu P
            xp -= mu_proj
            sq = np.einsum("ij,ij->i", xb, xb) - 2 * (xb @ mu) + mu_sq
            head = np.einsum("ij,ij->i", xp[:, :s], xp[:, :s])
            tail = np.einsum("ij,ij->i", xp[:, s:], xp[:, s:])
            emb[a : a + 8192, :-1] = torch.from_numpy(xp)
            emb[a : a + 8192, -1] = torch.from_numpy(np.sqrt(np.maximum(sq - head - tail, 0)))
            scan[a : a + 8192, :-1] = torch.from_numpy(xp[:, :s])
            scan[a : a + 8192, -1] = torch.from_numpy(np.sqrt(np.maximum(sq - head, 0)))
            c2[a : a + 8192] = torch.from_numpy(sq)
        return emb, scan, c2

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
        block = min(q.shape[0], _QUERY_BLOCK)
        self._pruning = self.bound
        for start in range(0, q.shape[0], block):
            rows = torch.arange(start, min(start + block, q.shape[0]))
            self_idx = rows if exclude_self else None
            search = self._bounded if self._pruning else self._brute
            d2, idx = search(q[rows], k, self_idx)
            out_d[rows.numpy()] = d2.sqrt().float().numpy()
            out_i[rows.numpy()] = idx.numpy()
        return Neighbors(out_d, out_i)

    def _finish(self, qb, cand, k, self_idx) -> tuple[torch.Tensor, torch.Tensor]:
        exact = self._measured(qb, cand, self_idx, np.float64)
        return _sort_ties(torch.from_numpy(exact), cand)

    def _measured(self, qb, cand, self_idx, dtype, rows=None) -> np.ndarray:
        """Squared distances of queries to candidate base points, the differences in ``dtype``
        (:func:`_gathered_sq`), a query's own point (``self_idx``) at inf. ``cand`` is (r, c),
        each row's candidates, or, with ``rows``, one base index per pair."""
        cand = cand.numpy() if torch.is_tensor(cand) else cand
        if rows is None:
            rows = np.repeat(np.arange(cand.shape[0]), cand.shape[1])
        d2 = _gathered_sq(qb.numpy(), self.base.numpy(), rows, cand.reshape(-1), dtype)
        if self_idx is not None:
            d2[cand.reshape(-1) == self_idx.numpy()[rows]] = np.inf
        return d2.reshape(cand.shape)

    def _bounded(self, qb, k, self_idx):
        """Lower-bound pruning (module docstring, steps 1-3), exact float64 on the survivors."""
        n, m = qb.shape[0], self.base.shape[0]
        emb, scan, c2 = self._embed(qb)
        kk = min(k + int(self_idx is not None), m)
        # step 2, the upper bound: the k-th of the pilot's candidates (an IVF search of the scan
        # coordinates: close, not exact), by float32 distances raised by their error bound
        _, first = self._pilot.search(scan.numpy(), min(kk + _PILOT_EXTRA, m))
        first = torch.from_numpy(first)
        missing = (first < 0).any(1)  # probed lists held too few points: a flat-search row
        first[missing] = 0  # (any base point: the row's radius is not used)
        d_first = self._measured(qb, first, self_idx, np.float32) * (1 + _sum_eps(qb.shape[1]))
        d_first = torch.from_numpy(d_first)
        # float32 error of a bound: the (p + 1)-term products and the roundings around them
        tol = _tol_f32(emb.shape[1], c2 + self._base_c2_max) + 1e-6
        radius = torch.kthvalue(d_first, k, dim=1).values + tol
        # rows whose radius takes in a large part of the base (noise, blurry samples) go to the
        # flat search: a seeded sample of the base estimates each row's count
        sample = self._base_scan[self._sample]
        est = np.count_nonzero(_within(scan.numpy(), self._query_sq(scan), sample.numpy(),
                                       self._query_sq(sample), radius), axis=1)  # fmt: skip
        est = torch.from_numpy(est)
        guarded = missing | (est > _GUARD * len(self._sample) / m)
        heavy = missing.clone()
        if guarded.float().mean() > _OPEN_SHARE or not self._pruning:
            # queries unlike the base: the bound is loose, and the flat search is cheaper for
            # these rows and the blocks still to come
            self._pruning = False
            heavy[:] = True
        # step 3: every base point whose scan bound is within the radius, then whose full
        # bound is, is measured exactly; guarded rows take the full bound against the whole base
        rows, cols = [], []
        light = torch.nonzero(~heavy & ~guarded).flatten()
        for part in torch.split(light, _RANGE_BLOCK) if len(light) else ():
            # in parts: the scan's pairs (about 40 a row on MNIST) stay a few MB
            r, x = self._scan_within(scan[part], c2[part], radius[part])
            r = part[r]
            keep = self._full_bound(emb, r, x) <= radius[r]
            rows.append(r[keep])
            cols.append(x[keep])
        base_emb = self._base_emb.numpy()
        for batch in torch.split(torch.nonzero(~heavy & guarded).flatten(), 256):
            # the full bound as |e_q|^2 + |e_x|^2 - 2 <e_q, e_x> in float32 (one product)
            inside = _within(emb[batch].numpy(), self._query_sq(emb[batch]), base_emb,
                             self._base_emb_sq, radius[batch])  # fmt: skip
            over = np.count_nonzero(inside, axis=1) > _MAX_EXACT
            inside[over] = False
            heavy[batch[torch.from_numpy(over)]] = True
            r, x = (torch.from_numpy(a) for a in np.nonzero(inside))
            rows.append(batch[r])
            cols.append(x)
        row = torch.cat(rows) if rows else torch.empty(0, dtype=torch.int64)
        col = torch.cat(cols) if cols else torch.empty(0, dtype=torch.int64)
        per_row = torch.bincount(row, minlength=n)
        bulky = torch.nonzero(per_row > _MAX_CANDIDATES).flatten()
        if len(bulky) > _FEW_BULKY or (len(bulky) and self._flat is not None):
            # many rows with many candidates: the flat search is cheaper for them; a few are
            # cheaper measured exactly than building the flat index
            heavy[bulky] = True
            keep = ~heavy[row]
            row, col = row[keep], col[keep]
        out_d = torch.empty(n, k, dtype=torch.float64)
        out_i = torch.empty(n, k, dtype=torch.int64)
        light = torch.nonzero(~heavy).flatten()
        out_d[light], out_i[light] = self._topk_of_pairs(qb, row, col, k, self_idx, light)
        heavy = torch.nonzero(heavy).flatten()
        if len(heavy):
            s = None if self_idx is None else self_idx[heavy]
            out_d[heavy], out_i[heavy] = self._brute(qb[heavy], k, s)
        return out_d, out_i

    def _full_bound(self, emb, row, col) -> torch.Tensor:
        """float64 of the float32 full bound |e_q - e_x|^2 (by differences) of query rows
        ``row`` and base rows ``col`` (broadcast together)."""
        row, col = torch.broadcast_tensors(row, col)
        out = _gathered_sq(emb.numpy(), self._base_emb.numpy(), row.reshape(-1).numpy(),
                           col.reshape(-1).numpy(), np.float32)  # fmt: skip
        return torch.from_numpy(out).reshape(row.shape)

    def _scan_within(self, scan, c2, radius) -> tuple[torch.Tensor, torch.Tensor]:
        """Every (row, base) pair whose scan bound is at most ``radius[row]``, the per-row radius
        folded into the vectors: the inner product (2 e_q, -1, r_q - |e_q|^2) . (e_x, |e_x|^2, 1)
        = r_q - |e_q - e_x|^2 is >= 0 (:func:`_products_above`)."""
        e = scan.double()
        e_sq = (e * e).sum(1)
        aug = torch.cat([2 * e, -torch.ones(len(e), 1, dtype=torch.float64),
                         (radius - e_sq).unsqueeze(1)], 1).float()  # fmt: skip
        # float32 error of that product, on top of the bound's own (in the radius already)
        scale = 4 * float(c2.max()) + 4 * self._base_c2_max + float(radius.max()) + 1
        tol = _tol_f32(e.shape[1] + 2, scale)
        rows, cols = _products_above(aug.numpy(), self._scan_cols, -tol)
        return torch.from_numpy(rows), torch.from_numpy(self._scan_order[cols])

    def _brute(self, qb, k, self_idx, margin: int = 12):
        """FAISS's flat (float32, BLAS) search for the best k + margin candidates, an exact
        float64 re-check of them, and for rows with a near tie every point that could still
        beat their k-th."""
        m = self.base.shape[0]
        c = min(k + margin + int(self_idx is not None), m)
        q_np = qb.numpy()
        cand_d2, cand = self.flat.search(q_np, c)
        cand_d2, cand = torch.from_numpy(cand_d2), torch.from_numpy(cand)
        d, i = self._finish(qb, cand, k, self_idx)
        q_sq = torch.linalg.vector_norm(qb, dim=1, dtype=torch.float64) ** 2
        if self._base_sq_max is None:
            b = self.base.numpy()
            self._base_sq_max = float(np.einsum("ij,ij->i", b, b).max()) * (1 + 1e-5)
        tol = 4e-6 * qb.shape[1] ** 0.5 * (q_sq + self._base_sq_max + 1.0)
        unsafe = torch.nonzero((cand_d2[:, -1].double() - tol <= d[:, k - 1]) & (c < m)).flatten()
        if len(unsafe):
            # near ties (near-duplicate queries or base points): every point whose float32
            # distance, less twice its error, could beat the k-th exact one, in batches
            b = self.base.numpy()
            b_sq = torch.from_numpy(np.einsum("ij,ij->i", b, b).astype(np.float32))
            for batch in torch.split(unsafe, 256):
                limit = d[batch, k - 1] + 2 * tol[batch]
                inside = _within(q_np[batch.numpy()], q_sq[batch], b, b_sq, limit)
                r, x = (torch.from_numpy(a) for a in np.nonzero(inside))
                s = None if self_idx is None else self_idx
                d[batch, :k], i[batch, :k] = self._topk_of_pairs(qb, batch[r], x, k, s, batch)
        return d[:, :k], i[:, :k]

    def _topk_of_pairs(self, qb, row, col, k, self_idx, rows):
        """The k nearest of each of ``rows`` among its candidate pairs (float64, ties to the
        lower index); every row has at least k candidates.

        float32 distances first (half the memory traffic): a pair whose float32 distance, less
        its error, exceeds its row's k-th largest float32 distance plus error cannot be among
        the k; the rest (about k a row) are measured in float64."""
        n, row, col, rows = qb.shape[0], row.numpy(), col.numpy(), rows.numpy()
        d2 = self._measured(qb, col, self_idx, np.float32, rows=row)
        eps = _sum_eps(qb.shape[1])
        bound = np.full(n, np.inf)
        bound[rows] = d2[_first_k(row, np.lexsort((d2, row)), n, rows, k)[:, -1]] * (1 + eps)
        keep = np.flatnonzero(d2 * (1 - eps) <= bound[row])
        row, col = row[keep], col[keep]
        d2 = self._measured(qb, col, self_idx, np.float64, rows=row)
        pick = _first_k(row, np.lexsort((col, d2, row)), n, rows, k)
        return torch.from_numpy(d2[pick]), torch.from_numpy(col[pick])


def _first_k(row: np.ndarray, order: np.ndarray, n: int, rows: np.ndarray, k: int) -> np.ndarray:
    """(len(rows), k) positions of the first k pairs of each of ``rows`` in ``order``, an
    ordering of the pairs by their query ``row`` first (every row has at least k pairs)."""
    counts = np.bincount(row, minlength=n)
    starts = np.cumsum(counts) - counts
    return order[starts[rows][:, None] + np.arange(k)]


def _products_above(a: np.ndarray, cols: np.ndarray, limit: float):
    """Every (i, j) with the float32 product a[i] . cols[:, j] > ``limit``, when few are: row
    and column indices, in no particular order.

    Tiles of 512 rows x 2,048 columns (one BLAS product each, in cache), on torch's thread count
    with one BLAS thread each; each tile's rows are sifted in chunks of 128 columns, first by
    their maximum, then element by element in the chunks that hold a hit. Twice as fast as
    FAISS's range search over the same vectors on MNIST's scan.
    """
    from concurrent.futures import ThreadPoolExecutor

    from threadpoolctl import threadpool_limits

    n, m = len(a), cols.shape[1]
    rows_per, cols_per, chunk = 512, 2048, 128

    def tile_rows(start: int) -> tuple[np.ndarray, np.ndarray]:
        block = a[start : start + rows_per]
        buf = np.empty((len(block), cols_per), dtype=np.float32)
        found_i, found_j = [], []
        for c0 in range(0, m, cols_per):
            w = min(cols_per, m - c0)
            prod = np.matmul(block, cols[:, c0 : c0 + w], out=buf[:, :w])
            whole = w - w % chunk
            if whole:
                parts = prod[:, :whole].reshape(len(block), whole // chunk, chunk)
                hit_i, hit_c = np.nonzero(parts.max(2) > limit)
                i, j = np.divmod(np.flatnonzero(parts[hit_i, hit_c] > limit), chunk)
                found_i.append(hit_i[i])
                found_j.append(hit_c[i] * chunk + j + c0)
            if whole < w:
                i, j = np.nonzero(prod[:, whole:] > limit)
                found_i.append(i)
                found_j.append(j + c0 + whole)
        return np.concatenate(found_i) + start, np.concatenate(found_j)

    starts = range(0, n, rows_per)
    workers = min(torch.get_num_threads(), len(starts))
    with threadpool_limits(1, user_api="blas"), ThreadPoolExecutor(workers) as pool:
        found = list(pool.map(tile_rows, starts))
    return (np.concatenate([f[0] for f in found]).astype(np.int64),
            np.concatenate([f[1] for f in found]).astype(np.int64))  # fmt: skip


def _pilot_lists(m: int) -> int:
    """IVF lists of the pilot over m base points: sqrt(m), at least 39 points each (FAISS's
    minimum for its k-means)."""
    return max(1, min(int(m**0.5), m // 39))


def _check_state(state: dict[str, np.ndarray], m: int, d: int) -> None:
    """Raise ValueError unless ``state`` fits an (m, d) base (a stale or damaged store)."""
    p = state["proj"].shape[-1]
    s = state["base_scan"].shape[-1]
    nlist = _pilot_lists(m)
    want = {"mu": (d,), "proj": (d, p), "base_emb": (m, p + 1), "base_scan": (m, s),
            "base_c2": (m,), "centroids": (nlist, s)}  # fmt: skip
    bad = [k for k, shape in want.items() if state[k].shape != shape]
    if bad or not 1 <= len(state["sample"]) <= m or not 1 < s <= p + 1:
        raise ValueError(f"bound state does not fit a ({m}, {d}) base: {bad or 'sample'}")


def _tol_f32(dims: int, scale) -> float:
    """Error bound of a float32 dot product of ``dims`` terms whose size is ``scale``,
    with the roundings around it."""
    return 4 * (dims + 4) * _F32_EPS * scale


def _sum_eps(dims: int) -> float:
    """Relative error bound of a float32 squared distance over ``dims`` coordinates, summed in
    any order (all terms positive), with margin: (dims + 2) u, times four."""
    return 2 * (dims + 4) * _F32_EPS


def _within(q: np.ndarray, q_sq, base: np.ndarray, base_sq, limit) -> np.ndarray:
    """(rows of q, base) bool matrix of float32 |q - b|^2 = |q|^2 + |b|^2 - 2 q.b <= limit[row],
    from one BLAS product (numpy's)."""
    d2 = torch.from_numpy(q @ base.T)
    d2.mul_(-2).add_(base_sq).add_(q_sq.float().unsqueeze(1))
    return (d2 <= limit.float().unsqueeze(1)).numpy()


def pairs_within(
    *, queries: np.ndarray, base: np.ndarray, radius: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Every pair (i, j) with |q_i - b_j| < radius_j (strict), exactly.

    "q_i lies in b_j's ball" is the inner product (2 q_i, 1, -|q_i|^2) . (b_j, r_j^2 - |b_j|^2, 1)
    = r_j^2 - |q_i - b_j|^2 > 0, so blocked BLAS products over (d + 2)-dim vectors, sifted as
    they come (:func:`_products_above`, no dense matrix), find them; pairs within the float32
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
    tol = _tol_f32(base.shape[1], scale)
    found_i, found_j = [], []
    for s in range(0, len(aug), 4096):  # in blocks: the candidate pairs are measured exactly
        i, j = _products_above(aug[s : s + 4096], cols, -tol)
        i += s
        exact = pair_sq_distances(torch.from_numpy(queries), torch.from_numpy(base),
                                  torch.from_numpy(i), torch.from_numpy(j)).numpy()  # fmt: skip
        keep = exact < r2[j]
        found_i.append(i[keep])
        found_j.append(j[keep])
    return np.concatenate(found_i), np.concatenate(found_j)


def graph_knn(points: np.ndarray | torch.Tensor, k: int) -> Neighbors:
    """The k nearest of ``points`` to each of them, the point itself first (distance 0):
    FAISS's flat float32 search, in one call.

    For neighbour graphs (UMAP's), which every implementation builds in float32 or
    approximately: near ties may come in either order, which the exact :func:`knn` (for
    distances that analyses report) settles at several times the cost on points unlike each
    other's neighbourhoods, such as blurry samples.
    """
    import faiss

    x = _as_matrix("points", points).numpy()
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
