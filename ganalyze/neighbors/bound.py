"""The lower bound on distances that lets an exact search skip most of a base, fitted once.

With P the top-p principal directions of the base and R the rest of the space, the bound
coordinates of a point x are (P(x - mu), |R(x - mu)|); the squared distance between two points'
bound coordinates is at most their true squared distance. The scan coordinates do the same with
the top s directions (the norm of the others joins the residual): a looser bound at half the
arithmetic, which the tiled scan evaluates against the whole base. The pilot, a FAISS IVF index
over the scan coordinates, proposes close candidates for each query's radius.

The fit (directions, coordinates, pilot centroids) is plain arrays: :meth:`LowerBound.state`
gives them and ``LowerBound(base, probe, state=...)`` takes them back; the reference cache keeps
MNIST train's. Nothing here changes after the fit, so searches may share it across threads.
"""

from __future__ import annotations

import numpy as np
import torch

from ganalyze.neighbors.measure import gathered_sq, tol_f32
from ganalyze.neighbors.scan import products_above, within

_BOUND_DIMS = 127  # principal directions in the lower bound (plus one residual norm)
_SCAN_DIMS = 63  # of them in the bound that scans the whole base (plus the norm of the rest)
_BLOCK = 8192  # points embedded at a time


class LowerBound:
    """The fitted bound over an (m, d) float32 ``base`` (see the module docstring): fitted on
    a seeded subset of the base, or restored from ``state``; ``probe`` IVF lists are visited
    by the pilot. Any orthonormal P gives a valid bound; a good one a tight bound."""

    STATE = ("mu", "proj", "base_emb", "base_scan", "base_c2", "centroids", "sample")

    def __init__(
        self, base: torch.Tensor, probe: int, state: dict[str, np.ndarray] | None = None
    ) -> None:
        import faiss

        m, d = base.shape
        if state is None:
            rows = self._fit(base)
        else:
            _check_state(state, m, d)
            self._restore(state)
        self.base_c2_max = float(self.base_c2.max())
        self.base_emb_sq = self.query_sq(self.base_emb)
        scan = self.base_scan.numpy()
        s = scan.shape[1]
        nlist = pilot_lists(m)
        self.pilot = faiss.IndexIVFFlat(faiss.IndexFlatL2(s), s, nlist)
        if state is None:
            self.pilot.cp.seed = 0
            self.pilot.train(scan[rows[: 64 * nlist].numpy()] if m > 64 * nlist else scan)
        else:  # the stored centroids: no k-means, nothing deserialised
            self.pilot.quantizer.add(np.ascontiguousarray(state["centroids"], np.float32))
            self.pilot.is_trained = True
        self.pilot.add(scan)
        self.pilot.nprobe = min(probe, nlist)
        self._order_scan_columns(scan)

    def _fit(self, base: torch.Tensor) -> torch.Tensor:
        """Principal directions of a seeded subset of the base, in float64, and the base's
        coordinates; returns the seeded order of the base's rows."""
        m, d = base.shape
        rows = torch.randperm(m, generator=torch.Generator().manual_seed(0))
        sample = base[rows[:5_000]]
        self.mu = sample.double().mean(0)
        centred = sample - self.mu.float()
        _, vecs = torch.linalg.eigh((centred.T @ centred).double())
        p = min(_BOUND_DIMS, d - 1)
        self.proj = vecs[:, -p:].flip(1).contiguous()  # largest variance first
        self.scan_dims = min(_SCAN_DIMS, p)
        self.base_emb, self.base_scan, self.base_c2 = self.embed(base)
        self.sample = rows[:1024]
        return rows

    def _restore(self, state: dict[str, np.ndarray]) -> None:
        self.mu, self.proj = (torch.from_numpy(state[k]) for k in ("mu", "proj"))
        self.base_emb, self.base_scan, self.base_c2, self.sample = (
            torch.from_numpy(state[k]) for k in ("base_emb", "base_scan", "base_c2", "sample")
        )
        self.scan_dims = self.base_scan.shape[1] - 1

    def _order_scan_columns(self, scan: np.ndarray) -> None:
        """The scan's base side, (e_x, |e_x|^2, 1) as columns, in the order of the pilot's
        lists: a query's candidates then gather in few column chunks, which the scan sifts
        first."""
        _, lists = self.pilot.quantizer.search(scan, 1)
        self.scan_order = np.argsort(lists[:, 0], kind="stable")
        e_sq = np.einsum("ij,ij->i", scan, scan, dtype=np.float64)[:, None]
        cols = np.hstack([scan, e_sq, np.ones_like(e_sq)])[self.scan_order]
        self.scan_cols = np.ascontiguousarray(cols.T, dtype=np.float32)

    def state(self) -> dict[str, np.ndarray]:
        """The fit as plain arrays (see :attr:`STATE`), to store and pass back as ``state=``
        for the same base."""
        centroids = self.pilot.quantizer.reconstruct_n(0, self.pilot.nlist)
        arrays = (self.mu, self.proj, self.base_emb, self.base_scan, self.base_c2,
                  centroids, self.sample)  # fmt: skip
        return {k: np.asarray(v) for k, v in zip(self.STATE, arrays, strict=True)}

    @staticmethod
    def query_sq(emb: torch.Tensor) -> torch.Tensor:
        """Squared norms of the rows of ``emb``, summed in float64, as float32."""
        x = emb.numpy()
        return torch.from_numpy(np.einsum("ij,ij->i", x, x, dtype=np.float64).astype(np.float32))

    def embed(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Bound coordinates (Px, |Rx|) and scan coordinates (the first s of Px and the norm of
        the rest) of the centred points as float32, and |x - mu|^2 in float64."""
        n, p, s = x.shape[0], self.proj.shape[1], self.scan_dims
        emb = torch.empty(n, p + 1, dtype=torch.float32)
        scan = torch.empty(n, s + 1, dtype=torch.float32)
        c2 = torch.empty(n, dtype=torch.float64)
        proj, mu = self.proj.numpy(), self.mu.numpy()
        mu_proj, mu_sq = mu @ proj, float(mu @ mu)
        buf = np.empty((min(n, _BLOCK), x.shape[1]), dtype=np.float64)  # reused: no fresh
        for a in range(0, n, _BLOCK):  # pages to fault in for every block
            xb = buf[: min(_BLOCK, n - a)]
            np.copyto(xb, x[a : a + _BLOCK].numpy())
            xp = xb @ proj  # numpy's BLAS; (x - mu) P = x P - mu P
            xp -= mu_proj
            sq = np.einsum("ij,ij->i", xb, xb) - 2 * (xb @ mu) + mu_sq
            head = np.einsum("ij,ij->i", xp[:, :s], xp[:, :s])
            tail = np.einsum("ij,ij->i", xp[:, s:], xp[:, s:])
            emb[a : a + _BLOCK, :-1] = torch.from_numpy(xp)
            emb[a : a + _BLOCK, -1] = torch.from_numpy(np.sqrt(np.maximum(sq - head - tail, 0)))
            scan[a : a + _BLOCK, :-1] = torch.from_numpy(xp[:, :s])
            scan[a : a + _BLOCK, -1] = torch.from_numpy(np.sqrt(np.maximum(sq - head, 0)))
            c2[a : a + _BLOCK] = torch.from_numpy(sq)
        return emb, scan, c2

    def sample_counts(self, scan: torch.Tensor, radius: torch.Tensor) -> torch.Tensor:
        """Per query, how many of the seeded sample of the base (:attr:`sample`) are within
        ``radius`` by the scan bound: an estimate of its scan's candidates."""
        sample = self.base_scan[self.sample]
        inside = within(scan.numpy(), self.query_sq(scan), sample.numpy(),
                        self.query_sq(sample), radius)  # fmt: skip
        return torch.from_numpy(np.count_nonzero(inside, axis=1))

    def scan_within(self, scan, c2, radius) -> tuple[torch.Tensor, torch.Tensor]:
        """Every (row, base) pair whose scan bound is at most ``radius[row]``, the per-row radius
        folded into the vectors: the inner product (2 e_q, -1, r_q - |e_q|^2) . (e_x, |e_x|^2, 1)
        = r_q - |e_q - e_x|^2 is >= 0 (:func:`products_above`)."""
        e = scan.double()
        e_sq = (e * e).sum(1)
        aug = torch.cat([2 * e, -torch.ones(len(e), 1, dtype=torch.float64),
                         (radius - e_sq).unsqueeze(1)], 1).float()  # fmt: skip
        # float32 error of that product, on top of the bound's own (in the radius already)
        scale = 4 * float(c2.max()) + 4 * self.base_c2_max + float(radius.max()) + 1
        tol = tol_f32(e.shape[1] + 2, scale)
        rows, cols = products_above(aug.numpy(), self.scan_cols, -tol)
        return torch.from_numpy(rows), torch.from_numpy(self.scan_order[cols])

    def full_bound(self, emb, row, col) -> torch.Tensor:
        """float64 of the float32 full bound |e_q - e_x|^2 (by differences) of query rows
        ``row`` and base rows ``col`` (broadcast together)."""
        row, col = torch.broadcast_tensors(row, col)
        out = gathered_sq(emb.numpy(), self.base_emb.numpy(), row.reshape(-1).numpy(),
                          col.reshape(-1).numpy(), np.float32)  # fmt: skip
        return torch.from_numpy(out).reshape(row.shape)

    def full_bound_within(self, emb: torch.Tensor, radius: torch.Tensor) -> np.ndarray:
        """(rows of emb, base) bool matrix of full bounds within ``radius``, as
        |e_q|^2 + |e_x|^2 - 2 <e_q, e_x> in float32 (one product against the whole base)."""
        return within(emb.numpy(), self.query_sq(emb), self.base_emb.numpy(), self.base_emb_sq,
                      radius)  # fmt: skip


def pilot_lists(m: int) -> int:
    """IVF lists of the pilot over m base points: sqrt(m), at least 39 points each (FAISS's
    minimum for its k-means)."""
    return max(1, min(int(m**0.5), m // 39))


def _check_state(state: dict[str, np.ndarray], m: int, d: int) -> None:
    """Raise ValueError unless ``state`` fits an (m, d) base (a stale or damaged store)."""
    p = state["proj"].shape[-1]
    s = state["base_scan"].shape[-1]
    nlist = pilot_lists(m)
    want = {"mu": (d,), "proj": (d, p), "base_emb": (m, p + 1), "base_scan": (m, s),
            "base_c2": (m,), "centroids": (nlist, s)}  # fmt: skip
    bad = [k for k, shape in want.items() if state[k].shape != shape]
    if bad or not 1 <= len(state["sample"]) <= m or not 1 < s <= p + 1:
        raise ValueError(f"bound state does not fit a ({m}, {d}) base: {bad or 'sample'}")


_QUERY_DIMS = 64  # principal directions of the queries in a query-fitted bound
_QUERY_POOL = 32  # candidates per query taken by that bound before the exact measurement


def query_fitted_knn(qb: torch.Tensor, base: torch.Tensor, k: int, self_idx=None):
    """Exact k nearest base points of queries unlike the base (the blurry samples of an early
    generator), by a lower bound fitted on the queries themselves.

    Such queries lie close to a low-dimensional subspace of their own (blurry images have
    little fine detail: the top 64 principal directions of 10,000 samples of a 3-epoch
    generator hold 99.9% of their variance), where the base's own directions bound them
    loosely (thousands of candidates per query). With P the queries' top directions and R the
    rest, |q - x|^2 >= |P(q - x)|^2 + (|Rq| - |Rx|)^2 as for the stored bound; FAISS's flat
    search over these 65-dim coordinates proposes each query's 32 lowest bounds, their exact
    distances give the k nearest among them, and a row is certified when its 32nd bound, less
    its float32 error, exceeds its k-th exact distance: every other base point is then farther.
    Returns float64 squared distances and indices (n, k) and the certified rows; the others
    are for the flat search.
    """
    import faiss
    from threadpoolctl import threadpool_limits

    from ganalyze.neighbors.measure import nearest_of_pairs

    q, b = qb.numpy(), base.numpy()
    mu = q.mean(0, dtype=np.float64)
    centred = q.astype(np.float64) - mu
    scatter = centred.T @ centred
    with threadpool_limits(1, user_api="blas"):  # LAPACK's threads only wait on a busy core
        _, vecs = np.linalg.eigh(scatter)
    proj = np.ascontiguousarray(vecs[:, ::-1][:, : min(_QUERY_DIMS, b.shape[1] - 1)])
    e_q, e_b = _fitted_coords(q, mu, proj), _fitted_coords(b, mu, proj)
    index = faiss.IndexFlatL2(e_b.shape[1])
    index.add(e_b)
    pool = min(max(_QUERY_POOL, 2 * k + 8), len(b))
    lb, cand = index.search(e_q, pool)
    n = len(q)
    rows = torch.arange(n)
    d2, idx = nearest_of_pairs(qb, base, rows.repeat_interleave(pool),
                               torch.from_numpy(cand.reshape(-1).astype(np.int64)), k, self_idx,
                               rows)  # fmt: skip
    scale = float(np.einsum("ij,ij->i", e_q, e_q).max() + np.einsum("ij,ij->i", e_b, e_b).max())
    tol = tol_f32(e_b.shape[1], scale + 1.0)
    certified = (lb[:, -1].astype(np.float64) - tol > d2[:, k - 1].numpy()) | (pool == len(b))
    return d2, idx, torch.from_numpy(certified)


def _fitted_coords(x: np.ndarray, mu: np.ndarray, proj: np.ndarray) -> np.ndarray:
    """(P(x - mu), |R(x - mu)|) as float32, computed in float64 in blocks."""
    out = np.empty((len(x), proj.shape[1] + 1), dtype=np.float32)
    mu_proj, mu_sq = mu @ proj, float(mu @ mu)
    for a in range(0, len(x), _BLOCK):
        xb = x[a : a + _BLOCK].astype(np.float64)
        xp = xb @ proj - mu_proj
        sq = np.einsum("ij,ij->i", xb, xb) - 2 * (xb @ mu) + mu_sq
        out[a : a + _BLOCK, :-1] = xp
        out[a : a + _BLOCK, -1] = np.sqrt(np.maximum(sq - np.einsum("ij,ij->i", xp, xp), 0))
    return out
