"""Shared fixtures: real MNIST from GANALYZE_DATA, a private cache, tiny training runs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ganalyze.data import MNIST_FILES, resolve_data_dir


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
