"""The shared context of one audit: everything analyses need, computed once, lazily.

Analyses read samples, classifier outputs, reference data and neighbour results from here, so
that, for instance, the pixel-space neighbour search that the modes analysis needs is the one
the memorization analysis reuses.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import torch

from ganalyze.errors import InputError
from ganalyze.generators import Discriminator, Generator
from ganalyze.neighbors import ApproximateIndex, ExactIndex, Neighbors, knn
from ganalyze.reference import K_OOD, ReferenceData, classify
from ganalyze.stats import MORE_MEMBERS, require

logger = logging.getLogger(__name__)

SPACES = ("pixel", "mnist_cnn")
DEFAULT_N_SAMPLES = 10_000


@dataclass
class Samples:
    """The audited samples: canonical images and the latents that made them (None if unknown)."""

    images: torch.Tensor
    z: torch.Tensor | None


class Context:
    """Lazily computed, shared inputs of every analysis."""

    def __init__(
        self,
        generator: Generator,
        n_samples: int | None = None,
        seed: int = 0,
        data_dir: str | Path | None = None,
        progress: bool = True,
        reference: ReferenceData | None = None,
        train_indices: np.ndarray | None = None,
        nn_index: str = "exact",
    ) -> None:
        self.generator, self.seed, self.progress = generator, int(seed), progress
        if n_samples is None:
            n_samples = DEFAULT_N_SAMPLES if generator.has_generator else generator.n_images
        self.n_samples = int(n_samples)
        self.data_dir = data_dir
        self._reference = reference
        self._train_indices = train_indices
        if nn_index not in ("exact", "ivf", "hnsw"):
            raise InputError(f"Unknown --nn-index {nn_index!r}; expected exact, ivf or hnsw.")
        self.nn_index = nn_index
        self.nn_recall: dict[str, float] = {}

    @cached_property
    def reference(self) -> ReferenceData:
        return self._reference or ReferenceData(self.data_dir, progress=self.progress)

    @cached_property
    def samples(self) -> Samples:
        logger.info("sampling %d images (seed %d)", self.n_samples, self.seed)
        z, images = self.generator.sample(self.n_samples, self.seed, progress=self.progress)
        return Samples(images=images, z=z)

    @property
    def images(self) -> torch.Tensor:
        return self.samples.images

    @cached_property
    def _classified(self) -> tuple[np.ndarray, np.ndarray]:
        return classify(self.images, progress=self.progress)

    @property
    def probs(self) -> np.ndarray:
        """Classifier probabilities (n, 10) of the samples."""
        return self._classified[0]

    @property
    def features(self) -> np.ndarray:
        """mnist_cnn features (n, 128) of the samples."""
        return self._classified[1]

    def space(self, space: str) -> np.ndarray:
        """The samples in 'pixel' (n, 784) or 'mnist_cnn' (n, 128) space."""
        if space == "pixel":
            return self.images.reshape(len(self.images), -1).numpy()
        return self.features

    def neighbors_in_train(self, space: str, k: int = K_OOD) -> Neighbors:
        """The k nearest MNIST-train images of every sample (computed once per space)."""
        cache = self.__dict__.setdefault("_knn", {})
        if space not in cache or cache[space].indices.shape[1] < k:
            logger.info(
                "nearest MNIST-train neighbours of %d samples (%s space)", len(self.images), space
            )
            if self.nn_index == "exact":
                base = self.train_index(space)
            else:
                base = ApproximateIndex(self.reference.space("train", space), self.nn_index,
                                        seed=self.seed)  # fmt: skip
                self.nn_recall[space] = base.recall(self.space(space), k=1, seed=self.seed)
                logger.info("%s index, %s space: recall@1 %.3f on 500 samples",
                            self.nn_index, space, self.nn_recall[space])  # fmt: skip
            cache[space] = knn(queries=self.space(space), base=base, k=max(k, K_OOD))
        full = cache[space]
        return Neighbors(full.distances[:, :k], full.indices[:, :k])

    def train_index(self, space: str) -> ExactIndex:
        """The exact neighbour index over MNIST train in ``space`` (built once)."""
        cache = self.__dict__.setdefault("_train_index", {})
        if space not in cache:
            cache[space] = self.reference.train_index(space)
        return cache[space]

    @cached_property
    def ood_thresholds(self) -> dict[str, float]:
        """The modes analysis's out-of-distribution thresholds, per space."""
        from ganalyze.analyses.modes import ood_thresholds

        return ood_thresholds(baseline_kth={s: self.reference.test_to_train(s).kth for s in SPACES})

    def _labels(self, probs: np.ndarray, kth: dict[str, np.ndarray]) -> np.ndarray:
        """Top digit, or 10 where unrecognizable (the modes analysis's rule)."""
        from ganalyze.analyses.modes import unrecognizable

        masks = unrecognizable(kth=kth, thresholds=self.ood_thresholds, probs=probs)
        return np.where(masks["unrecognizable"], 10, probs.argmax(1))

    def labels_and_features(self, images: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """Digit labels of canonical images (10: unrecognizable, out of distribution or low
        confidence) and their mnist_cnn features."""
        flat = images.reshape(len(images), -1).numpy()
        # identical frames (a generator that stands still) are classified and searched once
        flat, inverse = np.unique(flat, axis=0, return_inverse=True)
        probs, feats = classify(torch.from_numpy(flat).reshape(-1, 1, 28, 28))
        kth = {s: self.train_index(s).search(x, K_OOD).kth
               for s, x in (("pixel", flat), ("mnist_cnn", feats))}  # fmt: skip
        inverse = inverse.ravel()
        return self._labels(probs, kth)[inverse], feats[inverse]

    def labels_of(self, images: torch.Tensor) -> np.ndarray:
        """Digit labels of canonical images, 10 for an unrecognizable one."""
        return self.labels_and_features(images)[0]

    @cached_property
    def sample_labels(self) -> np.ndarray:
        """The samples' digits, 10 for unrecognizable (from the shared neighbours)."""
        kth = {s: self.neighbors_in_train(s, K_OOD).kth for s in SPACES}
        return self._labels(self.probs, kth)

    @cached_property
    def test_labels(self) -> np.ndarray:
        """MNIST test's digits by the same rule, 10 for unrecognizable."""
        ref = self.reference
        return self._labels(ref.probs("test"), {s: ref.test_to_train(s).kth for s in SPACES})

    @property
    def prior_std(self) -> float:
        """Per-coordinate standard deviation of the latent prior."""
        return 1.0 / 3**0.5 if self.generator.prior == "uniform" else 1.0

    @cached_property
    def discriminator(self) -> Discriminator | None:
        _ = self.samples  # G's native output form is known once it has been sampled
        d = self.generator.bound_discriminator()
        if d is not None:
            d.decide_output(self.reference.test_images)
        return d

    def available(self) -> dict[str, str | None]:
        """For each need, None when this context provides it, else the reason why not."""
        gen = self.generator
        no_gen = f"{gen.spec} is a file of samples, with no generator to call"
        return {
            "samples": None,
            "generator": None if gen.has_generator else no_gen,
            "latents": None if gen.has_generator else no_gen,
            "discriminator": None
            if gen.discriminator is not None
            else (
                "no discriminator was given (a ganalyze checkpoint carries one; else pass "
                "--discriminator FILE)"
            ),
            "history": None
            if gen.info.get("history")
            else ("no training history: only checkpoints written by `ganalyze train` carry one"),
        }

    @cached_property
    def members(self) -> tuple[np.ndarray | None, str]:
        """The member set (MNIST-train indices the generator was trained on; None: all of
        MNIST train) and a sentence saying where it comes from.

        Repeated indices count once (the set is what matters; the sentence says how many were
        dropped); an index outside [0, 60000) is an error.
        """
        n_train = len(self.reference.train)
        if self._train_indices is not None:
            raw, source = self._train_indices, "--train-indices"
        elif self.generator.info.get("train_indices") is not None:
            raw = self.generator.info["train_indices"]
            source = "the training indices recorded in the checkpoint"
        else:
            return None, f"all {n_train} MNIST training images (no member set was given)"
        idx = np.asarray(raw)
        expected = f"a non-empty 1-D list of integer MNIST-train indices in [0, {n_train})"
        if idx.ndim != 1 or len(idx) == 0 or idx.dtype.kind not in "iu":
            raise InputError(f"The member set ({source}) must be {expected}; got an array of "
                             f"shape {idx.shape} and dtype {idx.dtype}.")  # fmt: skip
        bad = idx[(idx < 0) | (idx >= n_train)]
        if len(bad):
            raise InputError(f"The member set ({source}) must be {expected}; {len(bad)} of its "
                             f"{len(idx)} indices lie outside (e.g. {', '.join(map(str, bad[:3]))})"
                             f". Give indices into MNIST train's {n_train} images.")  # fmt: skip
        unique = np.unique(idx.astype(np.int64))
        dropped = len(idx) - len(unique)
        source += f", {dropped} repeated indices counted once" if dropped else ""
        if len(unique) == n_train:
            return None, f"all {n_train} MNIST training images ({source})"
        return unique, f"{len(unique)} MNIST training images ({source})"

    def member_neighbors(self, which: str, space: str) -> Neighbors:
        """Nearest member of each sample (``which`` = "fake"), each MNIST-test image ("test") or
        each member itself, excluding itself ("train"); indices are MNIST-train indices."""
        cache = self.__dict__.setdefault("_member_nn", {})
        key = (which, space)
        if key in cache:
            return cache[key]
        idx, _ = self.members
        ref = self.reference
        if which == "train" and idx is not None:
            require(len(idx), 2, "member images", "A member's nearest other member", MORE_MEMBERS)
        if idx is None:
            full = {"fake": lambda: self.neighbors_in_train(space),
                    "test": lambda: ref.test_to_train(space),
                    "train": lambda: ref.train_to_train(space)}[which]()  # fmt: skip
            result = Neighbors(full.distances[:, :1], full.indices[:, :1])
        else:
            base = ref.space("train", space)[idx]
            queries = {"fake": lambda: self.space(space), "test": lambda: ref.space("test", space),
                       "train": lambda: base}[which]()  # fmt: skip
            found = knn(queries=queries, base=base, k=1, exclude_self=which == "train")
            result = Neighbors(found.distances, idx[found.indices])
        cache[key] = result
        return result
