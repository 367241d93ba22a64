"""The shared context of one audit: everything analyses need, computed once, lazily.

Analyses read samples, classifier outputs, reference data and neighbour results from here, so
that, for instance, the pixel-space neighbour search that the modes analysis needs is the one
the memorization analysis reuses. What has been computed so far is in ``Context.cache`` (a
:class:`ContextCache`), never in hidden attributes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ganalyze import ood
from ganalyze.errors import InputError
from ganalyze.generators import Discriminator, Generator
from ganalyze.neighbors import ApproximateIndex, ExactIndex, Neighbors, knn
from ganalyze.ood import K_OOD, SPACES
from ganalyze.reference import ReferenceData, classify
from ganalyze.stats import MORE_MEMBERS, require

logger = logging.getLogger(__name__)

DEFAULT_N_SAMPLES = 10_000


@dataclass
class Samples:
    """The audited samples: canonical images, the latents that made them (None if unknown)
    and, for a conditional generator, their conditioning labels ``y`` (n,) int64 (else None).

    A conditional generator's latents are flat codes, z followed by the one-hot label (see
    :mod:`ganalyze.generators.labels`); ``y`` is that label.
    """

    images: torch.Tensor
    z: torch.Tensor | None
    y: torch.Tensor | None = None


@dataclass
class ContextCache:
    """What a :class:`Context` has computed: None (or empty) until first asked for, then kept
    for every later analysis. Read it through the Context's properties."""

    reference: ReferenceData | None = None
    samples: Samples | None = None
    classified: tuple[np.ndarray, np.ndarray] | None = None  # samples' probs (n, 10), features
    train_neighbors: dict[str, Neighbors] = field(default_factory=dict)  # by space, k >= K_OOD
    train_index: dict[str, ExactIndex] = field(default_factory=dict)  # by space
    ood_thresholds: dict[str, float] | None = None
    ood_masks: dict[str, np.ndarray] | None = None
    sample_labels: np.ndarray | None = None
    test_labels: np.ndarray | None = None
    discriminator_ready: bool = False  # bound and its output kind decided
    members: tuple[np.ndarray | None, str] | None = None
    member_neighbors: dict[tuple[str, str], Neighbors] = field(default_factory=dict)


class Context:
    """The shared, lazily computed inputs of every analysis of one audit.

    What an analysis may read:

    - ``generator`` (:class:`~ganalyze.generators.Generator`, settled: output range and native
      shape known) and ``discriminator`` (:class:`~ganalyze.generators.Discriminator` bound to
      G's native form with its output kind decided, or None);
    - ``samples`` (:class:`Samples`): ``images`` (n, 1, 28, 28) float32 in [0, 1] (also
      ``context.images``) and the latents ``z`` (n, latent_dim), None for a samples file;
      ``n_samples``, ``seed``, ``prior_std``;
    - classifier outputs of the samples: ``probs`` (n, 10) and ``features`` (n, 128, the
      L2-normalised mnist_cnn embedding); ``space(name)`` gives the samples in 'pixel' (n, 784)
      or 'mnist_cnn' space;
    - neighbours per feature space: ``neighbors_in_train(space, k)`` (the samples' k nearest
      MNIST-train images), ``train_index(space)``, ``member_neighbors(which, space)``;
    - labels by the one out-of-distribution rule (:mod:`ganalyze.ood`): ``ood_thresholds``,
      ``ood_masks`` (the samples' ood / low_confidence / unrecognizable), ``sample_labels``,
      ``test_labels`` and ``labels_of(images)`` (10: unrecognizable);
    - ``reference`` (:class:`~ganalyze.reference.ReferenceData`: MNIST train and test and their
      cached derived arrays) and ``members`` (the member set and where it comes from);
    - ``available()``: which needs this context meets.

    Everything computed is kept in ``cache`` (:class:`ContextCache`).
    """

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
        self.cache = ContextCache()

    @property
    def reference(self) -> ReferenceData:
        """MNIST train and test (or the reference data given) with their derived arrays."""
        c = self.cache
        if c.reference is None:
            c.reference = self._reference or ReferenceData(self.data_dir, progress=self.progress)
        return c.reference

    @property
    def samples(self) -> Samples:
        """The audited samples and their latents, drawn once with ``seed``."""
        c = self.cache
        if c.samples is None:
            logger.info("sampling %d images (seed %d)", self.n_samples, self.seed)
            z, images = self.generator.sample(self.n_samples, self.seed, progress=self.progress)
            y = self.generator.split(z)[1] if z is not None else None
            c.samples = Samples(images=images, z=z, y=y)
        return c.samples

    @property
    def images(self) -> torch.Tensor:
        """The samples, (n, 1, 28, 28) float32 in [0, 1]."""
        return self.samples.images

    @property
    def latents(self) -> torch.Tensor | None:
        """The samples' latents (n, latent_dim); None for a samples file. A conditional
        generator's are codes (n, latent_dim + num_classes): z, then the one-hot label."""
        return self.samples.z

    @property
    def conditioning(self) -> torch.Tensor | None:
        """The samples' conditioning labels (n,) int64 of a conditional generator, else None."""
        return self.samples.y

    def _classified(self) -> tuple[np.ndarray, np.ndarray]:
        c = self.cache
        if c.classified is None:
            c.classified = classify(self.images, progress=self.progress)
        return c.classified

    @property
    def probs(self) -> np.ndarray:
        """Classifier probabilities (n, 10) of the samples."""
        return self._classified()[0]

    @property
    def features(self) -> np.ndarray:
        """mnist_cnn features (n, 128) of the samples."""
        return self._classified()[1]

    def space(self, space: str) -> np.ndarray:
        """The samples in 'pixel' (n, 784) or 'mnist_cnn' (n, 128) space."""
        if space == "pixel":
            return self.images.reshape(len(self.images), -1).numpy()
        return self.features

    def neighbors_in_train(self, space: str, k: int = K_OOD) -> Neighbors:
        """The k nearest MNIST-train images of every sample (computed once per space)."""
        cache = self.cache.train_neighbors
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
        cache = self.cache.train_index
        if space not in cache:
            cache[space] = self.reference.train_index(space)
        return cache[space]

    @property
    def ood_thresholds(self) -> dict[str, float]:
        """The out-of-distribution thresholds per space (:func:`ganalyze.ood.ood_thresholds`
        over MNIST test)."""
        c = self.cache
        if c.ood_thresholds is None:
            baseline = {s: self.reference.test_to_train(s).kth for s in SPACES}
            c.ood_thresholds = ood.ood_thresholds(baseline_kth=baseline)
        return c.ood_thresholds

    @property
    def ood_masks(self) -> dict[str, np.ndarray]:
        """The samples' masks ``ood``, ``low_confidence`` and ``unrecognizable`` and their
        distances ``kth_pixel``, ``kth_mnist_cnn`` to the K_OOD-th MNIST-train image."""
        c = self.cache
        if c.ood_masks is None:
            kth = {s: self.neighbors_in_train(s, K_OOD).kth for s in SPACES}
            masks = ood.unrecognizable(kth=kth, thresholds=self.ood_thresholds, probs=self.probs)
            c.ood_masks = {**masks, **{f"kth_{s}": d for s, d in kth.items()}}
        return c.ood_masks

    def _labels(self, probs: np.ndarray, kth: dict[str, np.ndarray]) -> np.ndarray:
        """Top digit, or 10 where unrecognizable (the rule of :mod:`ganalyze.ood`)."""
        return ood.digit_labels(probs=probs, kth=kth, thresholds=self.ood_thresholds)

    def labels_and_features(self, images: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """Digit labels of canonical images (10: unrecognizable, out of distribution or low
        confidence) and their mnist_cnn features."""
        flat = images.reshape(len(images), -1).numpy()
        # identical frames (a generator that stands still) are classified and searched once
        flat, inverse = np.unique(flat, axis=0, return_inverse=True)
        probs, feats = classify(torch.from_numpy(flat).reshape(-1, 1, 28, 28))
        spaces = {"mnist_cnn": feats, "pixel": flat}
        out = ood.unrecognizable_cheapest_first(  # the rule of ganalyze.ood
            probs=probs, thresholds=self.ood_thresholds,
            beyond=lambda space, rows, threshold: self.train_index(space).kth_exceeds(
                spaces[space][rows], K_OOD, threshold),
        )  # fmt: skip
        labels = np.where(out, ood.UNRECOGNIZABLE, probs.argmax(1))
        inverse = inverse.ravel()
        return labels[inverse], feats[inverse]

    def labels_of(self, images: torch.Tensor) -> np.ndarray:
        """Digit labels of canonical images, 10 for an unrecognizable one."""
        return self.labels_and_features(images)[0]

    @property
    def sample_labels(self) -> np.ndarray:
        """The samples' digits, 10 for unrecognizable (from the shared neighbours)."""
        c = self.cache
        if c.sample_labels is None:
            kth = {s: self.neighbors_in_train(s, K_OOD).kth for s in SPACES}
            c.sample_labels = self._labels(self.probs, kth)
        return c.sample_labels

    @property
    def test_labels(self) -> np.ndarray:
        """MNIST test's digits by the same rule, 10 for unrecognizable."""
        c = self.cache
        if c.test_labels is None:
            ref = self.reference
            kth = {s: ref.test_to_train(s).kth for s in SPACES}
            c.test_labels = self._labels(ref.probs("test"), kth)
        return c.test_labels

    @property
    def prior_std(self) -> float:
        """Per-coordinate standard deviation of the latent prior."""
        return 1.0 / 3**0.5 if self.generator.prior == "uniform" else 1.0

    @property
    def discriminator(self) -> Discriminator | None:
        """G's discriminator, bound to G's native form, its output kind decided (on MNIST
        test digits unless given); None when there is none."""
        d = self.generator.bound_discriminator()
        if d is not None and not self.cache.discriminator_ready:
            ref = self.reference
            d.decide_output(ref.test_images, ref.test.labels if d.conditional else None)
            self.cache.discriminator_ready = True
        return d

    def available(self) -> dict[str, str | None]:
        """For each need, None when this context provides it, else the reason why not."""
        gen = self.generator
        alone = gen.kind == "discriminator"
        no_gen = (f"{gen.spec} is a file of samples, with no generator to call" if not alone
                  else "no generator was given: only the discriminator is audited")  # fmt: skip
        unconditional = ("the generator is not conditional (pass --num-classes K for a "
                         "generator G(z, y))")  # fmt: skip
        return {
            "samples": "no generator or samples were given: only the discriminator is audited"
            if alone
            else None,
            "generator": None if gen.has_generator else no_gen,
            "latents": None if gen.has_generator else no_gen,
            "labels": None if gen.conditional else (unconditional if gen.has_generator else no_gen),
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

    @property
    def members(self) -> tuple[np.ndarray | None, str]:
        """The member set (MNIST-train indices the generator was trained on; None: all of
        MNIST train) and a sentence saying where it comes from.

        Repeated indices count once (the set is what matters; the sentence says how many were
        dropped); an index outside [0, 60000) is an error.
        """
        if self.cache.members is None:
            self.cache.members = self._member_set()
        return self.cache.members

    def _member_set(self) -> tuple[np.ndarray | None, str]:
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
        cache = self.cache.member_neighbors
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
        elif which == "fake":
            found = knn(queries=self.space(space), base=ref.space("train", space)[idx], k=1)
            result = Neighbors(found.distances, idx[found.indices])
        else:  # of real digits only: shared by every audit with this member set (compare)
            result = ref.member_neighbors(which, space, idx)
        cache[key] = result
        return result
