"""latent_label_stability on planted generators; the UMAP layout against umap-learn's."""

from __future__ import annotations

import numpy as np
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
