"""Samples only: a .npy / .npz array of images, or a folder of PNG files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ganalyze.errors import InputError, LoaderError
from ganalyze.generators.base import Generator, canonical_shape, detect_range, to_unit_range


def _load_array(path: Path) -> np.ndarray:
    try:
        loaded = np.load(path, allow_pickle=False)
    except ValueError as exc:
        raise LoaderError(
            f"{path} holds Python objects, which ganalyze does not unpickle; save "
            "the images as a numeric array."
        ) from exc
    except OSError as exc:
        raise LoaderError(f"Could not read {path} as a NumPy file: {exc}") from exc
    if isinstance(loaded, np.ndarray):
        return loaded
    with loaded as npz:
        keys = list(npz.keys())
        if "images" in keys:
            return npz["images"]
        if len(keys) == 1:
            return npz[keys[0]]
    raise LoaderError(
        f"{path} holds the arrays {keys}; expected one named 'images' or a single "
        "array. Rename the images array to 'images'."
    )


def _load_pngs(folder: Path) -> np.ndarray:
    from PIL import Image

    files = sorted(folder.glob("*.png"))
    if not files:
        raise LoaderError(
            f"The folder {folder} holds no .png files; expected 28x28 grayscale digit images."
        )
    images = []
    for f in files:
        with Image.open(f) as im:
            arr = np.asarray(im.convert("L"))
        if arr.shape != (28, 28):
            raise InputError(f"{f} is {arr.shape[1]}x{arr.shape[0]} pixels; expected 28x28.")
        images.append(arr)
    return np.stack(images)


def from_samples(path: Path, output_range: str | None) -> Generator:
    arr = _load_pngs(path) if path.is_dir() else _load_array(path)
    if not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise InputError(f"{path} holds {arr.dtype} values; expected uint8 0-255 or floats.")
    x = canonical_shape(torch.from_numpy(np.ascontiguousarray(arr)), f"The images in {path}")
    if arr.dtype == np.uint8:
        rng, source = "0,255", "uint8"
    else:
        x = x.to(torch.float32)
        rng, source = (output_range, "option") if output_range else (detect_range(x), "auto")
    images = to_unit_range(x, rng, f"The images in {path}")
    gen = Generator(
        "samples",
        str(path),
        images=images,
        output_range=rng,
        range_source=source,
        native_shape=tuple(arr.shape[1:]),
    )
    return gen
