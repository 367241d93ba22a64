"""Samples only: a .npy / .npz array of images, or a folder of PNG files.

Values are mapped to [0, 1] by their type:

- uint8: 0-255;
- uint16: 0-65535 (divided by 65535) when a value among the first 1,000 images exceeds 255,
  else like the other integers (a uint16 copy of 0-255 images stays 0-255);
- other integers and floats: ``--output-range`` if given, else the range rule of
  :func:`~ganalyze.generators.base.detect_range` on the first 1,000 images;
- bool, complex, string, object and structured arrays are refused; big-endian arrays are
  converted to native order first;
- PNG: 8-bit 0-255, 16-bit 0-65535; colour, palette and alpha images are converted to gray.

Nothing is read before its declared size is checked: the header of a .npy (or of the .npz
member) must match the bytes that hold it, and what is allocated must fit in memory. A .npy is
memory-mapped and a .npz member is streamed, so ``sample(n, seed)`` converts only the n rows of
its seeded subset (the same rows as for an array held in memory). NaN or Inf is an error in the
rows that are sampled.
"""

from __future__ import annotations

import math
import warnings
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ganalyze._guard import check_allocation, regular_file
from ganalyze.errors import GanalyzeError, InputError, LoaderError
from ganalyze.generators.base import Generator, detect_range, to_unit_range
from ganalyze.generators.images import ACCEPTED_SIZES, check_shape, decide_form

_DETECT_ROWS = 1000
_CHUNK_BYTES = 8 << 20
_MAX_PNG_SIDE = 1024
_MAX_PNG_BYTES = 64 << 20
_DEFLATE_MAX_RATIO = 1100  # deflate cannot inflate more than 1032:1
_SAVE_HINT = "Save the images with numpy.save or numpy.savez(path, images=array)."
_PNG_16BIT = ("I;16", "I;16B", "I;16L", "I;16N", "I")
try:
    from lzma import LZMAError
except ImportError:  # pragma: no cover - Python built without lzma
    LZMAError = OSError
_ZIP_ERRORS = (zipfile.BadZipFile, zlib.error, LZMAError, EOFError, OSError, RuntimeError)


@contextmanager
def _zip_errors(what: str) -> Iterator[None]:
    """A member that cannot be inflated (bad CRC, corrupt stream, encrypted) is a clean error."""
    try:
        yield
    except _ZIP_ERRORS as exc:
        raise LoaderError(f"{what} is corrupt or unreadable ({exc}). {_SAVE_HINT}") from None


@dataclass(frozen=True)
class _Header:
    """What a .npy header declares; ``offset`` is where the data starts."""

    shape: tuple[int, ...]
    fortran: bool
    dtype: np.dtype
    offset: int

    @property
    def rows(self) -> int:
        return self.shape[0]

    @property
    def row_bytes(self) -> int:
        return math.prod(self.shape[1:]) * self.dtype.itemsize

    @property
    def nbytes(self) -> int:
        return self.rows * self.row_bytes


def _read_header(fh, what: str) -> _Header:
    fmt = np.lib.format
    try:
        version = fmt.read_magic(fh)
        if version == (1, 0):
            shape, fortran, dtype = fmt.read_array_header_1_0(fh)
        elif version == (2, 0):
            shape, fortran, dtype = fmt.read_array_header_2_0(fh)
        else:
            raise ValueError(f"NumPy format version {version} is not supported")
        offset = fh.tell()
    except (ValueError, SyntaxError, TypeError, EOFError, OverflowError) as exc:
        raise LoaderError(
            f"{what} is not a NumPy array ({str(exc).splitlines()[0]}); expected a numeric "
            f"array of shape {ACCEPTED_SIZES}. {_SAVE_HINT}"
        ) from None
    return _Header(tuple(shape), bool(fortran), dtype, offset)


def _check_header(h: _Header, what: str) -> None:
    """Refuse what ganalyze cannot read as images, before a byte of data is read."""
    if h.dtype.hasobject:
        raise LoaderError(
            f"{what} holds Python objects, which ganalyze does not unpickle; save the images "
            "as a numeric array (uint8 or float)."
        )
    if h.dtype.kind not in "uif" or h.dtype.fields is not None or h.dtype.subdtype is not None:
        raise InputError(
            f"{what} holds {h.dtype} values; expected uint8 0-255, uint16, other integers or "
            "floats. Convert the images, e.g. array.astype(numpy.float32)."
        )
    if any(s < 0 or s >= 2**62 for s in h.shape) or math.prod(h.shape) >= 2**62:
        raise LoaderError(f"{what} declares the impossible shape {h.shape}. {_SAVE_HINT}")
    check_shape(h.shape, "auto", f"The images in {what}")
    if h.rows == 0:
        raise InputError(f"{what} holds no images (shape {h.shape}); expected at least one image.")


def _check_data_size(h: _Header, available: int, what: str) -> None:
    if available < h.nbytes:
        raise LoaderError(
            f"{what} declares shape {h.shape} of {h.dtype} ({h.nbytes:,} bytes) but holds "
            f"{max(available, 0):,} bytes of data: it is truncated or its header is wrong. "
            f"{_SAVE_HINT}"
        )


class _NpyFile:
    """A .npy read through a memory map: only the rows asked for are read."""

    def __init__(self, path: Path) -> None:
        self.path = regular_file(path, "The samples file")
        with open(self.path, "rb") as fh:
            self.header = _read_header(fh, str(path))
        _check_header(self.header, str(path))
        self._check_size()

    def _check_size(self) -> None:
        size = regular_file(self.path, "The samples file").stat().st_size
        _check_data_size(self.header, size - self.header.offset, str(self.path))

    def rows(self, idx: np.ndarray, verify: bool = True) -> np.ndarray:
        self._check_size()
        h = self.header
        mm = np.memmap(self.path, h.dtype, "r", h.offset, h.shape, order="F" if h.fortran else "C")
        return np.array(mm[idx])


class _NpzMember:
    """The images member of a .npz, streamed: rows are kept as they pass, nothing else."""

    def __init__(self, path: Path) -> None:
        self.path = regular_file(path, "The samples file")
        with self._zip() as zf:
            self.info = self._pick(zf)
            self.what = f"{path} (member {self.info.filename})"
            self._check_ratio()
            with _zip_errors(self.what), self._member(zf) as fh:
                self.header = _read_header(fh, self.what)
        _check_header(self.header, self.what)
        _check_data_size(self.header, self.info.file_size - self.header.offset, self.what)

    def _zip(self) -> zipfile.ZipFile:
        try:
            return zipfile.ZipFile(self.path)
        except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
            empty = self.path.stat().st_size == 0
            raise LoaderError(
                f"{self.path} is {'empty' if empty else f'not a readable .npz archive ({exc})'}"
                f"; expected a file written by numpy.savez or numpy.savez_compressed. "
                f"{_SAVE_HINT}"
            ) from None

    def _pick(self, zf: zipfile.ZipFile) -> zipfile.ZipInfo:
        infos = {
            i.filename.removesuffix(".npy"): i for i in zf.infolist() if not i.is_dir()
        }  # np.load's rule: a repeated name means its last copy
        keys = list(infos)
        if not keys:
            raise LoaderError(
                f"{self.path} is an archive that holds no arrays; expected an array of "
                f"images. {_SAVE_HINT}"
            )
        if "images" in infos:
            return infos["images"]
        if len(keys) == 1:
            return infos[keys[0]]
        raise LoaderError(
            f"{self.path} holds the arrays {keys}; expected one named 'images' or a single "
            "array. Rename the images array to 'images'."
        )

    def _check_ratio(self) -> None:
        i = self.info
        forged = (i.compress_type == zipfile.ZIP_STORED and i.file_size != i.compress_size) or (
            i.compress_type == zipfile.ZIP_DEFLATED
            and i.file_size > _DEFLATE_MAX_RATIO * i.compress_size + 1024
        )
        if forged:
            raise LoaderError(
                f"{self.what} declares {i.file_size:,} bytes from {i.compress_size:,} "
                f"compressed bytes, which its compression cannot produce: the archive is "
                f"corrupt or forged. {_SAVE_HINT}"
            )

    def _member(self, zf: zipfile.ZipFile):
        try:
            return zf.open(self.info)
        except (*_ZIP_ERRORS, NotImplementedError) as exc:
            raise LoaderError(f"Could not read {self.what}: {exc}. {_SAVE_HINT}") from None

    def rows(self, idx: np.ndarray, verify: bool = True) -> np.ndarray:
        h = self.header
        with self._zip() as zf, _zip_errors(self.what), self._member(zf) as fh:
            fh.read(h.offset)
            if h.fortran:  # column-major: rows are not contiguous, read the whole array
                check_allocation(h.nbytes, f"Reading {self.what}", "Save it in C order.")
                data = np.frombuffer(self._read(fh, h.nbytes), h.dtype)
                return np.array(data.reshape(h.shape, order="F")[idx])
            out = _stream_rows(fh, h, idx, self._read)
            while verify and fh.read(_CHUNK_BYTES):  # to the end: zipfile checks the CRC
                pass
            return out

    def _read(self, fh, nbytes: int) -> bytes:
        data = fh.read(nbytes)
        if len(data) < nbytes:
            raise LoaderError(
                f"{self.what} ends before the shape {self.header.shape} of "
                f"{self.header.dtype} its header declares: it is truncated. {_SAVE_HINT}"
            )
        return data


def _stream_rows(fh, h: _Header, idx: np.ndarray, read) -> np.ndarray:
    """The rows ``idx`` (sorted) of a C-order array read in chunks from ``fh``."""
    out = np.empty((len(idx), h.row_bytes), np.uint8)
    per = max(1, _CHUNK_BYTES // h.row_bytes)
    done = 0
    for start in range(0, int(idx[-1]) + 1 if len(idx) else 0, per):
        count = min(per, h.rows - start)
        chunk = np.frombuffer(read(fh, count * h.row_bytes), np.uint8).reshape(count, -1)
        end = int(np.searchsorted(idx, start + count))
        out[done:end] = chunk[idx[done:end] - start]
        done = end
    return out.view(h.dtype).reshape(len(idx), *h.shape[1:])


def _row_need(h: _Header) -> int:
    """Bytes one row costs while converted: raw, float32 and a float32 temporary."""
    return h.row_bytes + 8 * (h.row_bytes // h.dtype.itemsize)


class SamplesFile(Generator):
    """A .npy or .npz of samples, read lazily.

    ``sample(n, seed)`` reads and converts only the rows of the seeded subset (the rule of
    :meth:`Generator.sample`, so the same rows); ``images`` (all of them) is read on first use.
    """

    def __init__(
        self, source: _NpyFile | _NpzMember, output_range: str | None, resize: str = "auto"
    ) -> None:
        self._source, self._all = source, None
        self._what = f"The images in {source.path}"
        shape = source.header.shape
        check_shape(shape, resize, self._what)
        rng, range_source, self._scale16 = self._decide_range(output_range)
        super().__init__(
            "samples",
            str(source.path),
            output_range=rng,
            range_source=range_source,
            native_shape=tuple(shape[1:]),
            resize=resize,
        )
        first = np.arange(min(_DETECT_ROWS, self.n_images))
        self.image_form = decide_form(shape, resize, lambda: self._unit(first, False), self._what)

    def _decide_range(self, output_range: str | None) -> tuple[str, str, bool]:
        dtype = self._source.header.dtype
        if dtype == np.uint8:
            return "0,255", "uint8", False
        if output_range:
            return output_range, "option", False
        first = self._source.rows(np.arange(min(_DETECT_ROWS, self.n_images)), verify=False)
        if dtype.kind == "u" and dtype.itemsize == 2 and int(first.max()) > 255:
            return "0,1", "uint16 0-65535, divided by 65535", True
        return detect_range(torch.from_numpy(first.astype(np.float32))), "auto", False

    @property
    def n_images(self) -> int:
        return self._source.header.rows

    @property  # type: ignore[override]
    def images(self) -> torch.Tensor:
        if self._all is None:
            self._all = self._convert(np.arange(self.n_images))
        return self._all

    @images.setter
    def images(self, value: torch.Tensor | None) -> None:
        self._all = value

    def __repr__(self) -> str:
        h = self._source.header
        return f"SamplesFile({self.spec!r}, shape={h.shape}, dtype={h.dtype})"

    def _convert(self, idx: np.ndarray) -> torch.Tensor:
        check_allocation(
            len(idx) * _row_need(self._source.header),
            f"Reading {len(idx):,} images of {self.spec}",
            "Pass a smaller --n-samples: a seeded subset is read without loading the whole file.",
        )
        return self.image_form.to_canonical(self._unit(idx), self._what)

    def _unit(self, idx: np.ndarray, verify: bool = True) -> torch.Tensor:
        """Rows ``idx`` in [0, 1], in their native shape."""
        rows = self._source.rows(idx, verify=verify)
        if rows.dtype == np.uint8:
            x = torch.from_numpy(rows)
        else:
            x = torch.from_numpy(rows.astype(np.float32))  # also native byte order
            if self._scale16:
                x /= 65535
        return to_unit_range(x, self.output_range, self._what)

    def sample(
        self, n: int, seed: int = 0, progress: bool = False
    ) -> tuple[torch.Tensor | None, torch.Tensor]:
        gen = torch.Generator().manual_seed(int(seed))
        total = self.n_images
        if n > total:
            raise InputError(
                f"--n-samples {n} asks for more than the {total} images in "
                f"{self.spec}; use at most {total}."
            )
        if n == total:
            return None, self.images
        check_allocation(
            total * 8, f"Choosing {n:,} of the {total:,} images in {self.spec}", _SAVE_HINT
        )
        idx = torch.randperm(total, generator=gen)[:n].sort().values
        if self._all is not None:
            return None, self._all[idx]
        return None, self._convert(idx.numpy())


def _read_png(f: Path) -> np.ndarray:
    """One PNG as uint8 (8-bit, colour converted to gray) or float32 in [0, 1] (16-bit)."""
    from PIL import Image

    regular_file(f, "The PNG file")
    if f.stat().st_size > _MAX_PNG_BYTES:
        raise InputError(
            f"{f} is {f.stat().st_size:,} bytes; a 28x28 digit PNG takes a few kB "
            f"(at most {_MAX_PNG_BYTES >> 20} MB are read). Remove it from the folder."
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(f, formats=["PNG"]) as im:
                w, h = im.size
                if w > _MAX_PNG_SIDE or h > _MAX_PNG_SIDE:
                    raise InputError(
                        f"{f} declares {w}x{h} pixels; expected 28x28 digit images (at most "
                        f"{_MAX_PNG_SIDE}x{_MAX_PNG_SIDE} are decoded). Remove it or resize it."
                    )
                if im.mode in _PNG_16BIT:
                    arr = np.clip(np.asarray(im, dtype=np.float32) / 65535, 0, 1)
                else:
                    arr = np.asarray(im.convert("L"))
    except GanalyzeError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise InputError(
            f"{f} is a decompression bomb ({exc}); expected a 28x28 digit image. Remove it."
        ) from None
    except Exception as exc:  # any decoder failure on a stranger's file is a clean error
        raise LoaderError(
            f"{f} is not a readable PNG image ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else 'no detail'}); expected a 28x28 "
            "grayscale PNG. Remove the file or save it again."
        ) from None
    return arr


def _one_size(arrays: list[np.ndarray], files: list[Path]) -> None:
    """Every image of a folder has the size most of them have, else an InputError naming the
    first that does not."""
    sizes = [a.shape for a in arrays]
    common = max(set(sizes), key=sizes.count)
    for f, size in zip(files, sizes, strict=True):
        if size != common:
            raise InputError(
                f"{f} is {size[1]}x{size[0]} pixels; expected {common[1]}x{common[0]} like the "
                f"other images in the folder (one size per folder). Remove it or resize it."
            )


def _from_pngs(folder: Path, resize: str = "auto") -> Generator:
    try:
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() == ".png")
    except OSError as exc:
        raise LoaderError(f"Could not list the folder {folder}: {exc.strerror}.") from None
    if not files:
        raise LoaderError(
            f"The folder {folder} holds no .png files; expected 28x28 grayscale digit images."
        )
    first = _read_png(files[0])  # its size bounds the others' (one size per folder)
    check_allocation(len(files) * first.size * 9,
                     f"Reading the {len(files):,} PNG files in {folder}", "")  # fmt: skip
    arrays = [first] + [_read_png(f) for f in files[1:]]
    _one_size(arrays, files)
    if any(a.dtype == np.float32 for a in arrays):  # 16-bit files: everything in [0, 1]
        arr = np.stack([a if a.dtype == np.float32 else a.astype(np.float32) / 255 for a in arrays])
        rng, source = "0,1", "PNG, 16-bit 0-65535 divided by 65535"
    else:
        arr, rng, source = np.stack(arrays), "0,255", "uint8"
    what = f"The images in {folder}"
    unit = to_unit_range(torch.from_numpy(arr), rng, what)
    form = decide_form(tuple(arr.shape), resize, lambda: unit[:_DETECT_ROWS], what)
    return Generator(
        "samples",
        str(folder),
        images=form.to_canonical(unit, what),
        output_range=rng,
        range_source=source,
        native_shape=tuple(arr.shape[1:]),
        resize=resize,
        image_form=form,
    )


def from_samples(path: Path, output_range: str | None, resize: str = "auto") -> Generator:
    """A folder of PNG files, or a .npy / .npz of images, as a samples-only Generator.

    See the module docstring for how values are mapped to [0, 1]; images of another size than
    28x28 are converted by ``resize`` (:mod:`ganalyze.generators.images`).
    """
    path = Path(path)
    if path.is_dir():
        return _from_pngs(path, resize)
    path = regular_file(path, "The samples file")
    with open(path, "rb") as fh:
        magic = fh.read(6)
    if not magic:
        raise LoaderError(f"{path} is empty; expected an array of images. {_SAVE_HINT}")
    if magic.startswith(b"PK") or (path.suffix.lower() == ".npz" and magic != b"\x93NUMPY"):
        return SamplesFile(_NpzMember(path), output_range, resize)
    return SamplesFile(_NpyFile(path), output_range, resize)
