"""Reference data: MNIST train and test with their classifier outputs and neighbour distances.

Each derived array is computed on first use and cached in ``$GANALYZE_CACHE/reference/<key>/``
as a ``.npy`` file, where ``key`` hashes the MNIST files' contents, the classifier weights and
the cache layout version, never a folder name alone: a change to either rebuilds the cache.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from functools import cached_property
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from ganalyze._io import atomic_path
from ganalyze.classifier.model import WEIGHTS_PATH, file_sha256, load_classifier
from ganalyze.data import MNISTSplit, cache_dir, load_mnist
from ganalyze.neighbors import ExactIndex, Neighbors, knn
from ganalyze.ood import K_OOD

logger = logging.getLogger(__name__)

CACHE_VERSION = "2"


@torch.inference_mode()
def classify(
    images: torch.Tensor, model=None, batch_size: int = 256, progress: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Class probabilities (n, 10) and mnist_cnn features (n, 128, L2-normalised) of canonical
    images, with the bundled classifier unless ``model`` is given."""
    model = model if model is not None else load_classifier()
    probs, feats = [], []
    steps = range(0, len(images), batch_size)
    for i in tqdm(steps, desc="classifier features", disable=not progress, leave=False):
        # channels_last: oneDNN's fast convolution layout on CPUs (about 1.7x here)
        x = images[i : i + batch_size].to(torch.float32, memory_format=torch.channels_last)
        emb = model.embed(x)
        probs.append(torch.softmax(model.head(emb), 1).numpy())
        feats.append(torch.nn.functional.normalize(emb, dim=1, eps=1e-12).numpy())
    return np.concatenate(probs), np.concatenate(feats)


class ReferenceData:
    """MNIST train (the memorization reference) and test (the held-out baseline), with derived
    arrays cached by content hash."""

    def __init__(self, data_dir: str | Path | None = None, progress: bool = True) -> None:
        self._set_splits(load_mnist(True, data_dir), load_mnist(False, data_dir), progress)

    @classmethod
    def from_arrays(
        cls, train_images, train_labels, test_images, test_labels, *, progress: bool = False
    ) -> ReferenceData:
        """Reference data from given uint8 images (n, 28, 28) and digit labels instead of the
        MNIST files (see :meth:`MNISTSplit.from_arrays`); derived arrays are cached by content
        like MNIST's. Pass it to :func:`ganalyze.audit` or :class:`Context` as ``reference``."""
        ref = cls.__new__(cls)
        ref._set_splits(MNISTSplit.from_arrays(train_images, train_labels, train=True),
                        MNISTSplit.from_arrays(test_images, test_labels, train=False),
                        progress)  # fmt: skip
        return ref

    def _set_splits(self, train: MNISTSplit, test: MNISTSplit, progress: bool) -> None:
        self.train, self.test, self.progress = train, test, progress
        digest = hashlib.blake2b(digest_size=16)
        for split in (self.train, self.test):
            digest.update(split.images.numpy().tobytes())
            digest.update(split.labels.numpy().tobytes())
        digest.update(file_sha256(WEIGHTS_PATH).encode())
        digest.update(CACHE_VERSION.encode())
        self.key = digest.hexdigest()
        self.folder = cache_dir() / "reference" / self.key

    @cached_property
    def train_images(self) -> torch.Tensor:
        return self.train.to_unit()

    @cached_property
    def test_images(self) -> torch.Tensor:
        return self.test.to_unit()

    @cached_property
    def train_shares(self) -> np.ndarray:
        """The share of each digit in MNIST train."""
        return np.bincount(self.train.labels.numpy(), minlength=10) / len(self.train)

    def cached(self, name: str, compute: Callable[[], np.ndarray]) -> np.ndarray:
        """The array ``name`` from the cache, computed and stored on first use."""
        path = self.folder / f"{name}.npy"
        if path.is_file():
            return np.load(path, allow_pickle=False)
        logger.info("computing reference array %s (cached in %s)", name, self.folder)
        value = np.ascontiguousarray(compute())
        try:
            with atomic_path(path) as tmp, open(tmp, "wb") as fh:
                np.save(fh, value, allow_pickle=False)
        except OSError as exc:
            logger.warning("could not cache %s in %s: %s", name, self.folder, exc)
        return value

    def _classified(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        images = self.train_images if split == "train" else self.test_images

        def compute() -> np.ndarray:
            probs, feats = classify(images, progress=self.progress)
            return np.concatenate([probs, feats], axis=1)

        both = self.cached(f"{split}_classifier", compute)
        return both[:, :10], both[:, 10:]

    def probs(self, split: str) -> np.ndarray:
        """Classifier probabilities (n, 10) of MNIST ``split`` ('train' or 'test')."""
        return self._classified(split)[0]

    def features(self, split: str) -> np.ndarray:
        """mnist_cnn features (n, 128) of MNIST ``split``."""
        return self._classified(split)[1]

    def space(self, split: str, space: str) -> np.ndarray:
        """MNIST ``split`` in a feature space: 'pixel' (n, 784) in [0, 1] or 'mnist_cnn'."""
        if space == "pixel":
            images = self.train_images if split == "train" else self.test_images
            return images.reshape(len(images), -1).numpy()
        return self.features(split)

    def _neighbours(self, split: str, space: str, k: int, base_split: str = "train") -> Neighbors:
        def compute() -> np.ndarray:
            found = knn(queries=self.space(split, space), base=self.space(base_split, space), k=k,
                        exclude_self=split == base_split)  # fmt: skip
            return np.concatenate([found.distances.astype(np.float64), found.indices], axis=1)

        both = self.cached(f"{split}_to_{base_split}_{space}_k{k}", compute)
        return Neighbors(both[:, :k].astype(np.float32), both[:, k:].astype(np.int64))

    def train_index(self, space: str) -> ExactIndex:
        """The exact neighbour index over MNIST train in ``space``; the fitted pixel bound
        (projection, coordinates, pilot centroids) comes from the cache after the first use."""
        base = self.space("train", space)
        if not ExactIndex.uses_bound(*base.shape):
            return ExactIndex(base)
        names = {k: f"train_{space}_bound_{k}" for k in ExactIndex.STATE}
        if all((self.folder / f"{name}.npy").is_file() for name in names.values()):
            try:
                state = {k: np.load(self.folder / f"{n}.npy", allow_pickle=False)
                         for k, n in names.items()}  # fmt: skip
                return ExactIndex(base, state=state)
            except (OSError, ValueError) as exc:
                logger.warning("rebuilding the cached %s index: %s", space, exc)
        index = ExactIndex(base)
        for k, value in index.bound_state().items():
            path = self.folder / f"{names[k]}.npy"
            path.unlink(missing_ok=True)
            self.cached(names[k], lambda v=value: v)
        return index

    def moments(self, split: str, space: str) -> tuple[np.ndarray, np.ndarray]:
        """Mean and unbiased covariance of MNIST ``split`` in ``space``
        (:func:`ganalyze.metrics.moments`), cached."""
        from ganalyze.metrics import moments

        def compute() -> np.ndarray:
            mean, cov = moments(self.space(split, space))
            return np.concatenate([mean[None], cov])

        both = self.cached(f"moments_{split}_{space}", compute)
        return both[0], both[1:]

    def kid_real_within(self, split: str, space: str, rows: np.ndarray, seed: int) -> np.ndarray:
        """KID's within-set kernel sums of MNIST ``split`` subsets (``rows``, from
        :func:`ganalyze.metrics.kid_subsets` with ``seed``), cached."""
        from ganalyze.metrics import kid_real_within

        name = f"kid_within_{split}_{space}_m{rows.shape[1]}_n{rows.shape[0]}_s{seed}"
        return self.cached(name, lambda: kid_real_within(self.space(split, space), rows))

    def member_neighbors(self, which: str, space: str, members: np.ndarray) -> Neighbors:
        """The nearest member of each MNIST-test image (``which`` = "test") or of each member,
        itself excluded ("train"), in ``space``; indices are MNIST-train indices. Kept in memory
        per member set, so that audits of one run's checkpoints share them."""
        digest = hashlib.blake2b(np.ascontiguousarray(members, np.int64).tobytes(),
                                 digest_size=16).hexdigest()  # fmt: skip
        memo = self.__dict__.setdefault("_member_neighbors", {})
        key = (which, space, digest)
        if key not in memo:
            while len(memo) >= 8:  # a few member sets at a time
                memo.pop(next(iter(memo)))
            base = self.space("train", space)[members]
            queries = self.space("test", space) if which == "test" else base
            found = knn(queries=queries, base=base, k=1, exclude_self=which == "train")
            memo[key] = Neighbors(found.distances, members[found.indices])
        return memo[key]

    def test_map(self, space: str) -> np.ndarray:
        """The fixed MNIST map: the 2-D UMAP layout (n_test, 2) of MNIST test in ``space``
        (:func:`ganalyze.embedding.umap_layout`, seed :data:`~ganalyze.embedding.MAP_SEED`),
        fitted once and cached; every audit places its samples on it."""
        from ganalyze import embedding as em

        name = (f"umap_test_{space}_k{em.N_NEIGHBORS}_e{em.N_EPOCHS}_s{em.MAP_SEED}"
                f"_v{em.MAP_VERSION}")  # fmt: skip
        return self.cached(name, lambda: em.umap_layout(self.space("test", space),
                                                        seed=em.MAP_SEED))  # fmt: skip

    def test_to_train(self, space: str, k: int = K_OOD) -> Neighbors:
        """The k nearest MNIST-train images of every MNIST-test image in ``space``."""
        return self._neighbours("test", space, k)

    def test_to_test(self, space: str, k: int = K_OOD) -> Neighbors:
        """The k nearest other MNIST-test images of every MNIST-test image in ``space``."""
        return self._neighbours("test", space, k, base_split="test")

    def train_to_train(self, space: str, k: int = K_OOD) -> Neighbors:
        """The k nearest other MNIST-train images of every MNIST-train image in ``space`` (a
        point is not its own neighbour); about a minute in pixel space, then cached."""
        return self._neighbours("train", space, k)
