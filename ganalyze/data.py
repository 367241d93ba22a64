"""MNIST: where it lives, how it is read, and the clear message when it is missing.

The data root is, in order: an explicit argument (the CLI's ``--data-dir``), the ``GANALYZE_DATA``
environment variable, else ``~/.cache/ganalyze/data``. It is read with torchvision's MNIST class
in its standard raw layout (``<root>/MNIST/raw/*-ubyte``) and never written to, except by a
download when the files are missing.
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ganalyze._io import atomic_path
from ganalyze.errors import DataError, InputError

logger = logging.getLogger(__name__)

MNIST_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
DEFAULT_DATA_DIR = Path("~/.cache/ganalyze/data")


def resolve_data_dir(data_dir: str | os.PathLike[str] | None = None) -> Path:
    """The MNIST root as an absolute path: ``data_dir``, else $GANALYZE_DATA, else the default."""
    if data_dir is None or str(data_dir) == "":
        data_dir = os.environ.get("GANALYZE_DATA") or DEFAULT_DATA_DIR
    return Path(data_dir).expanduser().resolve()


def _missing_files(root: Path) -> list[str]:
    raw = root / "MNIST" / "raw"
    return [name for name in MNIST_FILES if not (raw / name).is_file()]


def ensure_mnist(data_dir: str | os.PathLike[str] | None = None, download: bool = True) -> Path:
    """Return the MNIST root, downloading the files there only when they are missing.

    Raises
    ------
    DataError
        When the files are missing and cannot be downloaded; the message names the folder and
        the four files expected.
    """
    root = resolve_data_dir(data_dir)
    missing = _missing_files(root)
    if not missing:
        return root
    reason = "download disabled"
    if download:
        logger.info("MNIST not found in %s; downloading it there", root)
        try:
            _download(root)
        except Exception as exc:  # network, permissions, disk: all end in the same advice
            reason = f"download failed: {type(exc).__name__}: {exc}"
        missing = _missing_files(root)
        if not missing:
            return root
    raise DataError(
        f"MNIST not found in {root / 'MNIST' / 'raw'} ({reason}). Expected the four files "
        f"{', '.join(MNIST_FILES)} (uncompressed, torchvision's raw layout); missing: "
        f"{', '.join(missing)}. Put them there, or point ganalyze at a copy with --data-dir DIR "
        "or the GANALYZE_DATA environment variable (DIR holds MNIST/raw/)."
    )


def _download(root: Path) -> None:
    from torchvision.datasets import MNIST

    for train in (True, False):
        MNIST(str(root), train=train, download=True)


@dataclass(frozen=True)
class MNISTSplit:
    """One MNIST split: uint8 images (n, 28, 28) and int64 labels (n,)."""

    images: torch.Tensor
    labels: torch.Tensor
    train: bool

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @classmethod
    def from_arrays(cls, images, labels, train: bool) -> MNISTSplit:
        """A split of given images (uint8 (n, 28, 28) or (n, 1, 28, 28)) and digit labels
        (n integers in 0-9): MNIST's stand-in for tests and other reference sets."""
        which = "train" if train else "test"
        x, y = np.asarray(images), np.asarray(labels)
        if x.dtype != np.uint8 or x.ndim not in (3, 4) or x.shape[-2:] != (28, 28) or (
                x.ndim == 4 and x.shape[1] != 1) or len(x) == 0:  # fmt: skip
            raise InputError(f"Reference {which} images must be a non-empty uint8 array of shape "
                             f"(n, 28, 28) or (n, 1, 28, 28); got {x.dtype} {x.shape}. Scale "
                             "[0, 1] images by 255 and round them to uint8.")  # fmt: skip
        if y.shape != (len(x),) or y.dtype.kind not in "iu" or y.min() < 0 or y.max() > 9:
            raise InputError(f"Reference {which} labels must be {len(x)} integers in 0-9 (one "
                             f"per image); got {y.dtype} {y.shape}.")  # fmt: skip
        images_t = torch.from_numpy(np.ascontiguousarray(x.reshape(len(x), 28, 28)))
        return cls(images_t, torch.from_numpy(y.astype(np.int64)), train)

    def to_unit(self) -> torch.Tensor:
        """float32 (n, 1, 28, 28) in [0, 1]: ganalyze's canonical image form."""
        return self.images.unsqueeze(1).to(torch.float32).div_(255.0)

    def to_tanh_range(self) -> torch.Tensor:
        """float32 (n, 784) in [-1, 1], as ToTensor() then Normalize((0.5,), (0.5,)) computes it."""
        x = self.images.reshape(len(self), -1).to(torch.float32).div_(255.0)
        return x.sub_(0.5).div_(0.5)


def cache_dir() -> Path:
    """ganalyze's cache folder: $GANALYZE_CACHE, else ~/.cache/ganalyze."""
    return Path(os.environ.get("GANALYZE_CACHE") or "~/.cache/ganalyze").expanduser().resolve()


def _content_hash(paths: list[Path]) -> str:
    digest = hashlib.blake2b(digest_size=16)
    for path in paths:
        with open(path, "rb") as fh:
            while chunk := fh.read(1 << 22):
                digest.update(chunk)
    return digest.hexdigest()


def load_mnist(
    train: bool, data_dir: str | os.PathLike[str] | None = None, download: bool = True
) -> MNISTSplit:
    """Read one MNIST split into memory (no per-item transform).

    The first read goes through torchvision's MNIST class; the decoded arrays are then cached in
    :func:`cache_dir` under the content hash of the raw files, so a changed file is read afresh
    and later reads skip torchvision's import.
    """
    root = ensure_mnist(data_dir, download=download)
    prefix = "train" if train else "t10k"
    raw = [
        root / "MNIST" / "raw" / f"{prefix}-{kind}-idx{d}-ubyte"
        for kind, d in (("images", 3), ("labels", 1))
    ]
    cached = cache_dir() / "mnist" / f"{prefix}-{_content_hash(raw)}.npz"
    if cached.is_file():
        with np.load(cached, allow_pickle=False) as npz:
            return MNISTSplit(
                torch.from_numpy(npz["images"]), torch.from_numpy(npz["labels"]), train
            )
    split = _read_with_torchvision(root, train)
    try:
        with atomic_path(cached) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, images=split.images.numpy(), labels=split.labels.numpy())
    except OSError as exc:
        logger.debug("MNIST cache not written to %s: %s", cached, exc)
    return split


def _read_with_torchvision(root: Path, train: bool) -> MNISTSplit:
    from torchvision.datasets import MNIST

    try:
        ds = MNIST(str(root), train=train, download=False)
    except Exception as exc:
        raise DataError(
            f"Could not read MNIST from {root / 'MNIST' / 'raw'}: {type(exc).__name__}: {exc}. "
            f"Expected the four uncompressed files {', '.join(MNIST_FILES)}; replace damaged "
            "files with fresh copies."
        ) from exc
    return MNISTSplit(images=ds.data.clone(), labels=ds.targets.clone(), train=train)
