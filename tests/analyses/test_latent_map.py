"""latent_label_stability on planted generators; the UMAP layout against umap-learn's."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ganalyze.analyses.latent_map import latent_label_stability
from ganalyze.context import Context
from ganalyze.generators.base import Generator


def _context(reference, fn, n=1500):
    gen = Generator(kind="planted", spec="planted", fn=fn, latent_dim=64, output_range="0,1")
    return Context(gen, n_samples=n, seed=0, reference=reference, progress=False)


def test_stability_of_a_sign_generator_and_a_random_one(reference) -> None:
    test = reference.test_images
    labels = reference.test.labels.numpy()
    one, seven = test[np.flatnonzero(labels == 1)[0]], test[np.flatnonzero(labels == 7)[0]]

    def by_sign(z):  # the digit depends only on the sign of z[0]
        return torch.where((z[:, 0] > 0)[:, None, None, None], one, seven)

    def random_digit(z):  # a different random test digit for every latent
        idx = (z.abs().sum(1) * 1e6).long() % len(test)
        return test[idx]

    ctx = _context(reference, by_sign)
    value, m = latent_label_stability(ctx, ctx.sample_labels)
    assert m == 1500 and 0.95 < value < 0.995  # about 0.98: a sign flip needs |z0| < ~0.06
    ctx = _context(reference, random_digit)
    value, _ = latent_label_stability(ctx, ctx.sample_labels)
    assert 0.05 < value < 0.16  # about 0.1: chance for ten roughly equal digits


def test_layout_keeps_neighbourhoods_like_umap(reference) -> None:
    from sklearn.manifold import trustworthiness

    from ganalyze.analyses.latent_map import embed

    x = reference.features("test")[:3000]
    ours = embed(x, seed=0)
    again = embed(x, seed=0)
    np.testing.assert_array_equal(ours, again)  # deterministic for a seed
    assert trustworthiness(x, ours, n_neighbors=15) > 0.95
    labels = reference.test.labels.numpy()[:3000]
    # digits form their own regions: most points' 10 nearest layout neighbours share the digit
    from ganalyze.neighbors import knn

    nn = knn(queries=ours, base=ours, k=10, exclude_self=True).indices
    assert (labels[nn] == labels[:, None]).mean() > 0.9


def test_placed_points_land_where_their_copies_are_and_keep_their_neighbourhoods(
    reference,
) -> None:
    """Digits placed on a fitted map of other digits (umap-learn's transform) sit among their
    own digit, copies sit on their originals, and the placed points' neighbourhoods are about
    as trustworthy as in a layout fitted to all points at once."""
    from ganalyze.embedding import place, umap_layout

    x, labels = reference.features("test")[:4000], reference.test.labels.numpy()[:4000]
    ref, new = x[:3000], x[3000:]
    fixed = umap_layout(ref, seed=0)
    placed = place(new, reference=ref, reference_embedding=fixed, seed=0)
    again = place(new, reference=ref, reference_embedding=fixed, seed=0)
    np.testing.assert_array_equal(placed, again)  # deterministic for a seed
    from ganalyze.neighbors import knn

    nearest = knn(queries=placed, base=fixed, k=10).indices
    assert (labels[:3000][nearest] == labels[3000:, None]).mean() > 0.9
    # copies of reference digits start on their originals and stay close (map width ~20)
    copies = place(ref[:200], reference=ref, reference_embedding=fixed, seed=0)
    assert np.median(np.linalg.norm(copies - fixed[:200], axis=1)) < 0.5
    # trustworthiness of the placed points' neighbourhoods among all 4,000 points
    joint = umap_layout(x, seed=0)
    both = np.concatenate([fixed, placed])
    t_joint = placed_trustworthiness(x, joint, np.arange(3000, 4000))
    t_placed = placed_trustworthiness(x, both, np.arange(3000, 4000))
    assert t_placed > t_joint - 0.02


def placed_trustworthiness(x, emb, queries, k=15) -> float:
    """sklearn's trustworthiness restricted to the neighbourhoods of ``queries`` (all points
    count as neighbours)."""
    from ganalyze.embedding import trustworthiness_of

    return trustworthiness_of(x, emb, queries, k=k)


def test_trustworthiness_of_all_points_equals_sklearn() -> None:
    from sklearn.manifold import trustworthiness

    from ganalyze.embedding import trustworthiness_of

    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 10))
    emb = x[:, :2] + rng.normal(scale=0.5, size=(300, 2))
    ours = trustworthiness_of(x, emb, np.arange(300), k=7)
    assert ours == pytest.approx(trustworthiness(x, emb, n_neighbors=7), abs=1e-12)


def _run(reference, fn, n=600):
    from ganalyze.analyses.latent_map import LatentMap

    return LatentMap().run(_context(reference, fn, n))


def test_stability_of_pure_noise_is_not_meaningful(reference) -> None:
    def noise(z):  # a fresh noise image for every latent, a function of z
        g = torch.Generator().manual_seed(int(z.abs().sum() * 1e3) % 2**31)
        return torch.rand(len(z), 1, 28, 28, generator=g)

    res = _run(reference, noise)
    metric = res.metric("latent_label_stability")
    assert np.isnan(metric.value) and np.isnan(metric.ci_low)
    assert any("latent_label_stability is not meaningful" in note for note in res.notes)


def test_a_generator_of_real_digits_keeps_its_stability(reference) -> None:
    test = reference.test_images

    def real(z):  # a real test digit chosen by the sign pattern of z's first coordinates
        idx = ((z[:, :12] > 0).long() * (2 ** torch.arange(12))).sum(1) % len(test)
        return test[idx]

    res = _run(reference, real)
    value = res.metric("latent_label_stability").value
    assert 0.3 < value < 1.0
    assert not any("not meaningful" in note for note in res.notes)
    n = res.arrays["n_fake"]
    assert res.arrays["umap_mnist_cnn"].shape == (n + len(test) + 32, 2)
    # the map part is the fixed MNIST map of the reference cache
    np.testing.assert_array_equal(res.arrays["umap_pixel"][n : n + len(test)],
                                  reference.test_map("pixel"))  # fmt: skip
