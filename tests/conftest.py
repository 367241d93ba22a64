"""Shared fixtures: real MNIST from GANALYZE_DATA, a synthetic stand-in for it, a private cache,
tiny training runs.

A test that uses real MNIST (the ``mnist_dir`` fixture, directly or through ``reference``,
``test_split`` or ``tiny_checkpoint``) is marked ``mnist`` at collection, so a contributor
without the data runs the rest with ``pytest -m "not mnist"``. Without the data those tests are
skipped, or fail when GANALYZE_REQUIRE_DATA=1 (CI).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from ganalyze.data import MNIST_FILES, resolve_data_dir

pytest_plugins = ["memory_plugin"]  # peak memory per test (GANALYZE_MEMORY_REPORT=1)
MNIST_FIXTURES = {"mnist_dir"}  # every fixture that reads real MNIST depends on this one


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that reads real MNIST ``mnist`` (select with -m mnist / "not mnist")."""
    for item in items:
        if MNIST_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.mnist)


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Keep every test's cache writes out of the user's ~/.cache."""
    os.environ["GANALYZE_CACHE"] = str(tmp_path_factory.mktemp("ganalyze-cache"))


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    """The MNIST root ganalyze would use (CI sets GANALYZE_DATA=../shared/data).

    Without a copy these tests are skipped, unless GANALYZE_REQUIRE_DATA=1 (CI sets it), which
    turns a missing copy into a failure so that no run passes by skipping them.
    """
    root = resolve_data_dir()
    missing = [f for f in MNIST_FILES if not (root / "MNIST" / "raw" / f).is_file()]
    if missing:
        message = (
            f"MNIST not found in {root}/MNIST/raw (missing {missing}); set "
            "GANALYZE_DATA to a folder holding MNIST/raw/"
        )
        if os.environ.get("GANALYZE_REQUIRE_DATA") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return root


@pytest.fixture(scope="session")
def reference(mnist_dir):
    """MNIST train/test with classifier outputs and neighbours (built once per session)."""
    from ganalyze.reference import ReferenceData

    return ReferenceData(mnist_dir, progress=False)


@pytest.fixture(scope="session")
def test_split(reference):
    """A seeded split of MNIST test: half A is the baseline, half B plays the samples."""
    import numpy as np

    perm = np.random.default_rng(12345).permutation(len(reference.test))
    return perm[:5000], perm[5000:]


@pytest.fixture(scope="session")
def tiny_checkpoint(mnist_dir, tmp_path_factory) -> Path:
    """A `ganalyze train --limit 2048 --epochs 2` checkpoint (with its run folder)."""
    from reference_gan.train import TrainConfig, train

    out = tmp_path_factory.mktemp("tiny_run")
    cfg = TrainConfig(
        epochs=2,
        limit=2048,
        data_dir=str(mnist_dir),
        out=str(out),
        quiet=True,
        device="cpu",
        sample_every=1,
    )
    return train(cfg)


# Seven-segment strokes (x0, y0, x1, y1) in a 28 x 28 box: a top, b top right, c bottom right,
# d bottom, e bottom left, f top left, g middle.
_SEGMENTS = {
    "a": (9, 5, 19, 5),
    "b": (19, 5, 19, 14),
    "c": (19, 14, 19, 23),
    "d": (9, 23, 19, 23),
    "e": (9, 14, 9, 23),
    "f": (9, 5, 9, 14),
    "g": (9, 14, 19, 14),
}
_DIGITS = ("abcdef", "bc", "abged", "abgcd", "fgbc", "afgcd", "afgedc", "abc", "abcdefg", "abcdfg")


def synthetic_digits(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` digit-like uint8 images (n, 28, 28) with labels 0-9 in turn: seven-segment strokes
    of random width, shifted, scaled and sheared a little, then blurred (no MNIST needed)."""
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 10
    yy, xx = np.mgrid[0:28, 0:28].astype(np.float64)
    images = np.zeros((n, 28, 28))
    for i, digit in enumerate(labels):
        scale, shear = rng.uniform(0.85, 1.1, 2), rng.uniform(-0.25, 0.25)
        shift, width = rng.uniform(-2, 2, 2), rng.uniform(1.0, 2.2)
        for seg in _DIGITS[digit]:
            # a random affine map about the centre: scale, horizontal shear, shift
            (x0, y0), (x1, y1) = [
                (14 + (x - 14) * scale[0] + shear * (y - 14) + shift[0],
                 14 + (y - 14) * scale[1] + shift[1])
                for x, y in np.reshape(_SEGMENTS[seg], (2, 2))
            ]  # fmt: skip
            dx, dy = x1 - x0, y1 - y0
            t = np.clip(((xx - x0) * dx + (yy - y0) * dy) / (dx * dx + dy * dy), 0, 1)
            dist = np.hypot(xx - x0 - t * dx, yy - y0 - t * dy)
            images[i] = np.maximum(images[i], np.clip(width + 0.5 - dist, 0, 1))
        images[i] = gaussian_filter(images[i], rng.uniform(0.4, 0.9))
    images /= images.max(axis=(1, 2), keepdims=True)
    return np.round(images * 255).astype(np.uint8), labels.astype(np.int64)


@pytest.fixture(scope="session")
def synthetic_reference():
    """A small reference (600 train, 300 test digit-like images) built by code, in place of
    MNIST: the core suite's reference, which reads no file of GANALYZE_DATA."""
    from ganalyze.reference import ReferenceData

    train_images, train_labels = synthetic_digits(600, seed=1)
    test_images, test_labels = synthetic_digits(300, seed=2)
    return ReferenceData.from_arrays(train_images, train_labels, test_images, test_labels)
