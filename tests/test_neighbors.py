"""The exact neighbour search equals a float64 brute force, ties included."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from brute_force import brute_force_knn

from ganalyze.errors import InputError
from ganalyze.neighbors import ExactIndex, knn
from ganalyze.neighbors.exact import ExactSearch


def _assert_same(ours, ref) -> None:
    np.testing.assert_array_equal(ours.indices, ref.indices)
    np.testing.assert_allclose(ours.distances, ref.distances, rtol=1e-6, atol=1e-6)


BOUND = pytest.mark.parametrize("bound", [False, True], ids=["flat", "bounded"])


@BOUND
def test_random_data_with_copies_and_duplicate_base_rows(bound) -> None:
    rng = np.random.default_rng(0)
    base = rng.random((3000, 40)).astype(np.float32)
    base[100] = base[7]  # duplicate base rows: a tie the lower index must win
    queries = rng.random((400, 40)).astype(np.float32)
    queries[:20] = base[:20]  # exact copies: distance 0
    queries[20] = base[7]
    ours = knn(queries=queries, base=ExactIndex(base, bound=bound), k=4)
    _assert_same(ours, brute_force_knn(queries=queries, base=base, k=4))
    assert (ours.distances[:20, 0] == 0).all()
    assert ours.indices[20, :2].tolist() == [7, 100]


@BOUND
def test_integer_grid_ties(bound) -> None:
    # many exactly equal distances: every tie must go to the lower index
    rng = np.random.default_rng(1)
    base = rng.integers(0, 3, size=(500, 6)).astype(np.float32)
    queries = rng.integers(0, 3, size=(200, 6)).astype(np.float32)
    _assert_same(
        knn(queries=queries, base=ExactIndex(base, bound=bound), k=7),
        brute_force_knn(queries=queries, base=base, k=7),
    )


def test_real_mnist(reference) -> None:
    base = reference.space("train", "pixel")[:20000]
    queries = reference.space("test", "pixel")[:200]
    index = ExactIndex(base)
    assert index.bound  # pixels: the lower-bound pruning is on by default
    _assert_same(index.search(queries, 5), brute_force_knn(queries=queries, base=base, k=5))


@pytest.mark.parametrize(
    ("patch"),
    [
        {"_GUARD": 1},  # every row: the full bound against the whole base
        {"_MAX_CANDIDATES": 20, "_FEW_BULKY": 0},  # rows above 20 candidates: the flat search
        {"_MAX_CANDIDATES": 20},  # ... unless few: measured exactly
        {"_PILOT_EXTRA": 300, "_PILOT_PROBE": 1},  # the pilot finds too few: the flat search
    ],
    ids=["guarded", "fallback", "few-bulky", "pilot-short"],
)
def test_bounded_search_beyond_its_first_candidates(reference, monkeypatch, patch) -> None:
    # every path of the bounded search, on MNIST digits, a duplicate and noise rows (whose
    # bound is loose)
    import ganalyze.neighbors.exact as nb

    for name, value in patch.items():
        monkeypatch.setattr(nb, name, value)
    monkeypatch.setattr(nb, "_OPEN_SHARE", 2.0)  # keep pruning whatever the share of open rows
    base = reference.space("train", "pixel")[:8000].copy()
    base[4000] = base[17]  # a duplicate: the tie goes to index 17
    rng = np.random.default_rng(3)
    queries = np.concatenate([
        reference.space("test", "pixel")[:120], base[[17, 50]],
        rng.random((10, 784), dtype=np.float32),
    ])  # fmt: skip
    ours = knn(queries=queries, base=ExactIndex(base, bound=True), k=3)
    _assert_same(ours, brute_force_knn(queries=queries, base=base, k=3))
    assert ours.indices[120].tolist()[:2] == [17, 4000]
    noise = rng.random((600, 784), dtype=np.float32)  # unlike the base: pruning switches off
    monkeypatch.setattr(nb, "_OPEN_SHARE", 0.25)
    search = ExactSearch(ExactIndex(base, bound=True), 2)
    _assert_same(search.run(noise), brute_force_knn(queries=noise, base=base, k=2))
    assert not search.pruning
    self_nn = knn(queries=base[:300], base=ExactIndex(base[:300], bound=True), k=2,
                  exclude_self=True)  # fmt: skip
    assert not (self_nn.indices == np.arange(300)[:, None]).any()


@BOUND
def test_exclude_self_skips_the_point_itself(bound) -> None:
    rng = np.random.default_rng(2)
    x = rng.random((300, 10)).astype(np.float32)
    x[5] = x[9]
    ours = knn(queries=x, base=ExactIndex(x, bound=bound), k=2, exclude_self=True)
    assert not (ours.indices == np.arange(300)[:, None]).any()
    assert ours.indices[5, 0] == 9 and ours.indices[9, 0] == 5 and ours.distances[5, 0] == 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"k": 0}, "k must be between 1 and 50"),
        ({"k": 3, "queries": np.zeros((4, 3))}, "queries have 3 dimensions and the base 5"),
        ({"k": 3, "queries": np.full((2, 5), np.nan)}, "10 NaN or Inf"),
    ],
)
def test_bad_input_messages(kwargs, message) -> None:
    args = {"queries": np.zeros((4, 5)), "base": np.zeros((50, 5)), **kwargs}
    with pytest.raises(InputError, match=message):
        knn(**args)


@pytest.mark.parametrize("kind", ["ivf", "hnsw"])
def test_approximate_index_states_a_high_recall(kind) -> None:
    from ganalyze.neighbors import ApproximateIndex

    rng = np.random.default_rng(3)
    centres = rng.normal(size=(20, 16)) * 4
    base = (centres[rng.integers(0, 20, 6000)] + rng.normal(size=(6000, 16))).astype(np.float32)
    queries = (centres[rng.integers(0, 20, 600)] + rng.normal(size=(600, 16))).astype(np.float32)
    index = ApproximateIndex(base, kind)
    found = knn(queries=queries, base=index, k=3)
    assert found.indices.shape == (600, 3)
    recall = index.recall(queries, k=1)
    assert 0.8 <= recall <= 1.0
    exact = brute_force_knn(queries=queries, base=base, k=1).indices[:, 0]
    assert np.mean(found.indices[:, 0] == exact) >= 0.8
    own = index.search(base[:50], 2, exclude_self=True).indices
    assert not (own == np.arange(50)[:, None]).any()


def test_pairs_within_equals_a_brute_force_with_strict_radii() -> None:
    from ganalyze.neighbors import pairs_within

    rng = np.random.default_rng(5)
    base = rng.integers(0, 4, size=(300, 3)).astype(np.float32)  # many exact ties at the radii
    queries = rng.integers(0, 4, size=(200, 3)).astype(np.float32)
    radius = np.sqrt(rng.integers(1, 4, size=300)).astype(np.float64)
    i, j = pairs_within(queries=queries, base=base, radius=radius)
    d2 = ((queries[:, None, :].astype(np.float64) - base[None]) ** 2).sum(-1)
    expected = set(zip(*np.nonzero(d2 < radius[None, :] ** 2), strict=True))
    assert set(zip(i.tolist(), j.tolist(), strict=True)) == expected and len(expected) > 100


@pytest.mark.parametrize("n, m", [(200, 300), (4200, 2100)])
def test_pairs_within_both_equals_a_brute_force_each_way(n, m) -> None:
    # one pass of products for both ways (PRDC's precision side and recall side), ties at the
    # radii included; more than one block of 4,096 queries and partial tiles
    from ganalyze.neighbors import pairs_within_both

    rng = np.random.default_rng(6)
    base = rng.integers(0, 4, size=(m, 3)).astype(np.float32)
    queries = rng.integers(0, 4, size=(n, 3)).astype(np.float32)
    r_base = np.sqrt(rng.integers(1, 4, size=m)).astype(np.float64)
    r_query = np.sqrt(rng.integers(0, 3, size=n)).astype(np.float64)
    (i, j), (k, m_) = pairs_within_both(queries=queries, base=base, base_radius=r_base,
                                        query_radius=r_query)  # fmt: skip
    d2 = ((queries[:, None, :].astype(np.float64) - base[None]) ** 2).sum(-1)
    in_base_balls = set(zip(*np.nonzero(d2 < r_base[None, :] ** 2), strict=True))
    in_query_balls = set(zip(*np.nonzero(d2 < r_query[:, None] ** 2), strict=True))
    assert set(zip(i.tolist(), j.tolist(), strict=True)) == in_base_balls
    assert set(zip(k.tolist(), m_.tolist(), strict=True)) == in_query_balls
    assert len(i) == len(in_base_balls) and len(k) == len(in_query_balls) > n // 10


@pytest.mark.parametrize("n, m", [(1100, 5000), (7, 100), (600, 2048)])
def test_products_above_finds_every_product_over_the_limit(n, m) -> None:
    # tiles of 512 rows x 2,048 columns sifted in chunks of 128: partial tiles and chunks too
    from ganalyze.neighbors.scan import products_above

    rng = np.random.default_rng(9)
    a = rng.standard_normal((n, 20)).astype(np.float32)
    cols = rng.standard_normal((20, m)).astype(np.float32)
    limit = 9.0  # about 2% of the products
    i, j = products_above(a, cols, limit)
    expected = set(zip(*np.nonzero(a @ cols > limit), strict=True))
    found = list(zip(i.tolist(), j.tolist(), strict=True))
    assert len(found) == len(set(found)) and set(found) == expected and len(expected) > n * m // 200


@BOUND
def test_near_duplicate_queries_of_a_collapsed_generator(bound) -> None:
    # hundreds of queries within float32 noise of one another and of several base points:
    # every row is a near tie and must still equal the float64 brute force
    rng = np.random.default_rng(6)
    base = rng.random((5000, 300)).astype(np.float32)
    base[10:40] = base[5] + rng.normal(0, 1e-4, (30, 300)).astype(np.float32)
    queries = base[5] + rng.normal(0, 1e-4, (400, 300)).astype(np.float32)
    ours = knn(queries=queries, base=ExactIndex(base, bound=bound), k=4)
    _assert_same(ours, brute_force_knn(queries=queries, base=base, k=4))


def test_graph_knn_puts_each_point_first_and_finds_its_neighbours() -> None:
    from ganalyze.neighbors import graph_knn

    rng = np.random.default_rng(5)
    x = rng.random((800, 30)).astype(np.float32)
    x[10] = x[3]  # a duplicate: each copy still comes first in its own list
    found = graph_knn(x, 6)
    assert (found.indices[:, 0] == np.arange(800)).all() and (found.distances[:, 0] == 0).all()
    assert found.indices[3, 1] == 10 and found.indices[10, 1] == 3
    ref = brute_force_knn(queries=x, base=x, k=6)
    same = np.ones(800, dtype=bool)
    same[[3, 10]] = False  # the duplicates' own order differs from the brute force's
    np.testing.assert_array_equal(found.indices[same, 1:], ref.indices[same, 1:])
    np.testing.assert_allclose(found.distances, ref.distances, atol=1e-3)
    with pytest.raises(InputError, match="k must be between 1 and 800"):
        graph_knn(x, 801)


def test_bound_state_round_trip_and_the_reference_cache(reference) -> None:
    base = reference.space("train", "pixel")[:6000]
    queries = reference.space("test", "pixel")[:150]
    fitted = ExactIndex(base)
    state = fitted.bound_state()
    restored = ExactIndex(base, state={k: v.copy() for k, v in state.items()})
    ref = brute_force_knn(queries=queries, base=base, k=3)
    _assert_same(restored.search(queries, 3), ref)
    pilot = restored.lower_bound.pilot
    np.testing.assert_array_equal(pilot.quantizer.reconstruct_n(0, pilot.nlist), state["centroids"])
    with pytest.raises(ValueError, match="does not fit"):
        ExactIndex(base[:5000], state=state)
    # MNIST train's fitted bound is stored once and read back, the same search
    first = reference.train_index("pixel")
    stored = sorted(p.name for p in reference.folder.glob("train_pixel_bound_*.npy"))
    assert len(stored) == len(ExactIndex.STATE)
    again = reference.train_index("pixel")
    np.testing.assert_array_equal(
        again.lower_bound.base_emb.numpy(), first.lower_bound.base_emb.numpy()
    )
    probe = reference.space("test", "pixel")[:40]
    np.testing.assert_array_equal(again.search(probe, 2).indices, first.search(probe, 2).indices)


def test_a_damaged_stored_bound_is_rebuilt(reference, caplog) -> None:
    reference.train_index("pixel")  # stored
    path = reference.folder / "train_pixel_bound_base_scan.npy"
    np.save(path, np.zeros((3, 3), np.float32))  # the wrong shape: a stale or damaged store
    with caplog.at_level("WARNING"):
        index = reference.train_index("pixel")
    assert "rebuilding the cached pixel index" in caplog.text
    assert np.load(path).shape == (60000, index.lower_bound.scan_dims + 1)  # stored afresh
    probe = reference.space("test", "pixel")[:30]
    base = reference.space("train", "pixel")
    _assert_same(index.search(probe, 1), brute_force_knn(queries=probe, base=base, k=1))


def test_two_searches_at_once_on_one_index_give_the_single_threaded_answers(monkeypatch) -> None:
    # a search's state is its own: queries unlike the base (pruning switches off for the rest
    # of their search) in one thread change neither another thread's bounded search on the
    # same index nor its answers
    from concurrent.futures import ThreadPoolExecutor

    from threadpoolctl import threadpool_info

    import ganalyze.neighbors.exact as nb

    def blas_threads() -> list[int]:
        return [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]

    monkeypatch.setattr(nb, "_QUERY_BLOCK", 100)  # several blocks a search: the state matters
    rng = np.random.default_rng(7)
    mix = rng.normal(size=(16, 300))
    base = rng.normal(size=(6000, 16)) @ mix + 3 * rng.normal(size=(6000, 300))
    base = base.astype(np.float32)
    near = base[:500] + rng.normal(0, 0.01, (500, 300)).astype(np.float32)
    noise = rng.normal(0, 4, (500, 300)).astype(np.float32)  # the bound is loose for these
    index = ExactIndex(base, bound=True)

    def search(queries: np.ndarray):
        one = ExactSearch(index, 3)
        return one.run(queries), one.pruning

    blas = blas_threads()
    alone = [search(near), search(noise)]
    assert [pruning for _, pruning in alone] == [True, False]  # both paths, one each
    _assert_same(alone[0][0], brute_force_knn(queries=near, base=base, k=3))
    _assert_same(alone[1][0], brute_force_knn(queries=noise, base=base, k=3))
    with ThreadPoolExecutor(2) as pool:
        for _ in range(4):
            together = list(pool.map(search, [near, noise]))
            for (ours, pruning), (ref, ref_pruning) in zip(together, alone, strict=True):
                np.testing.assert_array_equal(ours.indices, ref.indices)
                np.testing.assert_array_equal(ours.distances, ref.distances)
                assert pruning == ref_pruning
    assert blas_threads() == blas  # the scans' one-BLAS-thread limit ends with the last scan


def test_queries_unlike_the_base_get_a_bound_of_their_own() -> None:
    """Blurry queries (a low-dimensional family, far from every sharp base point) defeat the
    stored bound; the bound fitted on the queries finds the same neighbours as brute force,
    and certifies nearly every row."""
    from ganalyze.neighbors.bound import query_fitted_knn

    rng = np.random.default_rng(3)
    base = (rng.random((6000, 784)) < 0.15).astype(np.float32)  # sharp, sparse strokes
    blobs = rng.random((12, 784)) * 0.3
    queries = (rng.random((1500, 12)) @ blobs / 3).astype(np.float32)  # blurry mixtures
    want = brute_force_knn(queries=queries, base=base, k=5)
    found = ExactIndex(base).search(queries, 5)
    np.testing.assert_array_equal(found.indices, want.indices)
    np.testing.assert_allclose(found.distances, want.distances, rtol=1e-6)
    d2, idx, certified = query_fitted_knn(torch.from_numpy(queries), torch.from_numpy(base), 5)
    assert certified.float().mean() > 0.9
    ok = certified.numpy()
    np.testing.assert_array_equal(idx.numpy()[ok], want.indices[ok])
    # a query's own point does not count (queries = base)
    own = query_fitted_knn(torch.from_numpy(base[:2000]), torch.from_numpy(base[:2000]), 3,
                           torch.arange(2000))[1]  # fmt: skip
    assert not (own.numpy() == np.arange(2000)[:, None]).any()


@BOUND
def test_kth_exceeds_answers_as_the_search_does(bound) -> None:
    # clustered base (queries near it are decided by the pilot) and far queries (searched);
    # thresholds at quantiles of the true k-th distances and exactly at some of them
    rng = np.random.default_rng(7)
    centres = rng.normal(size=(30, 300)).astype(np.float32)
    base = centres[rng.integers(0, 30, 6000)] + 0.3 * rng.normal(size=(6000, 300))
    base = base.astype(np.float32)
    near = centres[rng.integers(0, 30, 500)] + 0.3 * rng.normal(size=(500, 300))
    queries = np.concatenate([near, rng.normal(size=(100, 300)) * 2]).astype(np.float32)
    queries[:5] = base[:5]
    index = ExactIndex(base, bound=bound)
    assert index.bound == bound
    kth = index.search(queries, 5).kth
    assert (kth[500:] > kth[:500].max()).all()  # the far queries lie beyond every near one
    for threshold in [*np.quantile(kth, [0.0, 0.3, 0.5, 0.9, 1.0]), float(kth[3]),
                      float(kth[550]), float(np.nextafter(kth[42], np.float32(0)))]:  # fmt: skip
        np.testing.assert_array_equal(index.kth_exceeds(queries, 5, threshold), kth > threshold)


def test_kth_exceeds_searches_only_what_the_pilot_leaves_open(reference, monkeypatch) -> None:
    base = reference.space("train", "mnist_cnn")
    queries = reference.space("test", "mnist_cnn")[:2000]
    index = ExactIndex(base)
    kth = index.search(queries, 5).kth
    threshold = float(np.percentile(kth, 99))
    searched = []
    search = ExactIndex.search

    def counted(self, q, k, exclude_self=False):
        searched.append(len(q))
        return search(self, q, k, exclude_self)

    monkeypatch.setattr(ExactIndex, "search", counted)
    np.testing.assert_array_equal(index.kth_exceeds(queries, 5, threshold), kth > threshold)
    assert sum(searched) < 0.1 * len(queries)  # most MNIST test digits: decided by the pilot
