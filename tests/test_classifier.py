"""The bundled classifier and its out-of-distribution rule, on real MNIST."""

from __future__ import annotations

import numpy as np
import torch

from ganalyze.analyses.modes import ood_thresholds, unrecognizable
from ganalyze.classifier import WEIGHTS_PATH, load_classifier
from ganalyze.neighbors import knn
from ganalyze.reference import K_OOD, classify


def test_shipped_weights_are_small_and_load_without_download() -> None:
    assert WEIGHTS_PATH.stat().st_size <= 1_000_000
    model = load_classifier()
    assert not model.training
    probs, feats = classify(torch.rand(4, 1, 28, 28), model)
    assert probs.shape == (4, 10) and feats.shape == (4, 128)
    np.testing.assert_allclose(probs.sum(1), 1, rtol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(feats, axis=1), 1, rtol=1e-5)


def test_accuracy_on_mnist_test_is_at_least_99_percent(reference) -> None:
    acc = (reference.probs("test").argmax(1) == reference.test.labels.numpy()).mean()
    assert acc >= 0.99


def _ood_share(reference, images, baseline_idx) -> float:
    thresholds = ood_thresholds(
        baseline_kth={
            s: reference.test_to_train(s).kth[baseline_idx] for s in ("pixel", "mnist_cnn")
        }
    )
    probs, feats = classify(images)
    kth = {
        "pixel": knn(
            queries=images.reshape(len(images), -1), base=reference.space("train", "pixel"), k=K_OOD
        ).kth,
        "mnist_cnn": knn(queries=feats, base=reference.features("train"), k=K_OOD).kth,
    }
    return unrecognizable(kth=kth, thresholds=thresholds, probs=probs)["unrecognizable"].mean()


def test_rule_flags_noise_and_spares_real_digits(reference, test_split) -> None:
    a, b = test_split
    noise = torch.rand(400, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    assert _ood_share(reference, noise, a) >= 0.99
    assert _ood_share(reference, reference.test_images[b[:1000]], a) <= 0.02


def test_unnormalised_features_would_not_separate_noise(reference) -> None:
    """Why mnist_cnn is L2-normalised: raw embeddings of noise sit among the digits."""
    model = load_classifier()
    noise = torch.rand(200, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        raw_noise = model.embed(noise).numpy()
        raw_test = model.embed(reference.test_images[:2000]).numpy()
    norm_noise = raw_noise / np.linalg.norm(raw_noise, axis=1, keepdims=True)
    norm_test = raw_test / np.linalg.norm(raw_test, axis=1, keepdims=True)
    d_raw = knn(queries=raw_noise, base=raw_test, k=1).kth.mean() / np.median(
        knn(queries=raw_test[:500], base=raw_test, k=2).kth
    )
    d_norm = knn(queries=norm_noise, base=norm_test, k=1).kth.mean() / np.median(
        knn(queries=norm_test[:500], base=norm_test, k=2).kth
    )
    assert d_norm > d_raw


def test_classifier_training_runs_and_learns(mnist_dir, tmp_path) -> None:
    from ganalyze.classifier.train import train_classifier

    record = train_classifier(
        tmp_path / "cnn.pt", epochs=1, data_dir=mnist_dir, quiet=True, limit=3000
    )
    assert record["test_accuracy"] > 0.5  # chance is 0.1; the shipped run reaches 0.994
    from ganalyze.data import load_mnist

    test = load_mnist(False, mnist_dir)
    x, y = test.to_unit()[:1000], test.labels.numpy()[:1000]
    probs, _ = classify(x, model=load_classifier(tmp_path / "cnn.pt"))
    assert (probs.argmax(1) == y).mean() > 0.5  # the file holds the trained weights
    assert not np.allclose(probs, classify(x)[0], atol=1e-3)  # not the bundled ones
