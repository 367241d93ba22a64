"""Samples files and folders: hostile and broken inputs get clean errors, odd ones load correctly.

Every file is made by code here; nothing binary is committed.
"""

from __future__ import annotations

import io
import os
import struct
import subprocess
import sys
import textwrap
import tracemalloc
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from ganalyze.cli import main
from ganalyze.errors import InputError, LoaderError
from ganalyze.generators import load_generator
from ganalyze.generators.base import Generator
from ganalyze.generators.samples import SamplesFile, from_samples


def _images(n: int = 40, seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).random((n, 28, 28)) * 255).astype(np.uint8)


def _reference(unit: np.ndarray) -> Generator:
    """Images already in [0, 1] held in memory: the subset rule as it was before streaming."""
    x = torch.from_numpy(np.ascontiguousarray(unit, dtype=np.float32)).reshape(-1, 1, 28, 28)
    return Generator("samples", "reference", images=x)


def _npy_header(shape: tuple[int, ...], descr: str = "<f4") -> bytes:
    buf = io.BytesIO()
    header = {"descr": descr, "fortran_order": False, "shape": shape}
    np.lib.format.write_array_header_1_0(buf, header)
    return buf.getvalue()


def _png_chunk(tag: bytes, data: bytes, crc_ok: bool = True) -> bytes:
    crc = zlib.crc32(tag + data) ^ (0 if crc_ok else 1)
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", crc)


def _png(
    width: int, height: int, raw: bytes = b"", bit_depth: int = 8, extra: bytes = b""
) -> bytes:
    """A grayscale PNG whose IHDR declares width x height (raw: the filtered scanlines)."""
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + extra
        + _png_chunk(b"IDAT", zlib.compress(raw))
        + _png_chunk(b"IEND", b"")
    )


def _png_folder(tmp_path: Path, arrays, name: str = "pngs") -> Path:
    folder = tmp_path / name
    folder.mkdir()
    for i, a in enumerate(arrays):
        Image.fromarray(a).save(folder / f"{i:03d}.png")
    return folder


# -- seeded subsets: the same rows as an array held in memory ---------------------------------


def _forms(tmp_path: Path):
    imgs = _images()
    floats = imgs.reshape(40, 784).astype(np.float32) / 127.5 - 1  # [-1, 1]
    doubles = imgs.astype(np.float64)  # 0-255 as floats
    np.save(tmp_path / "u8.npy", imgs[:, None])
    np.savez(tmp_path / "u8.npz", images=imgs, labels=np.zeros(40))
    np.savez_compressed(tmp_path / "f32.npz", x=floats)
    np.save(tmp_path / "f32.npy", floats)
    np.save(tmp_path / "fortran.npy", np.asfortranarray(floats))
    np.savez(tmp_path / "fortran.npz", images=np.asfortranarray(doubles))
    np.save(tmp_path / "f64.npy", doubles)
    u8, f32, f64 = imgs / np.float32(255), (floats + 1) / 2, doubles / 255
    return {
        "u8.npy": u8,
        "u8.npz": u8,
        "f32.npz": f32,
        "f32.npy": f32,
        "fortran.npy": f32,
        "fortran.npz": f64,
        "f64.npy": f64,
    }


def test_seeded_subset_is_the_same_rows_as_before(tmp_path) -> None:
    for name, unit in _forms(tmp_path).items():
        gen = load_generator(tmp_path / name)
        assert isinstance(gen, SamplesFile) and gen.kind == "samples" and gen.fn is None
        assert not gen.has_generator and gen.n_images == 40
        ref = _reference(unit)
        for n, seed in ((10, 0), (10, 1), (39, 7), (1, 3), (40, 0)):
            z, x = gen.sample(n, seed=seed)
            assert z is None and x.dtype == torch.float32 and x.shape == (n, 1, 28, 28)
            torch.testing.assert_close(x, ref.sample(n, seed=seed)[1], rtol=0, atol=1e-7)
        torch.testing.assert_close(gen.images, ref.images, rtol=0, atol=1e-7)


def test_subset_is_read_before_the_whole_file(tmp_path) -> None:
    unit = _forms(tmp_path)["f32.npz"]
    gen = load_generator(tmp_path / "f32.npz")
    _, x = gen.sample(12, seed=5)
    assert gen._all is None  # only the 12 rows were converted
    idx = torch.randperm(40, generator=torch.Generator().manual_seed(5))[:12].sort().values
    np.testing.assert_array_equal(x[:, 0].numpy(), unit[idx.numpy()].reshape(12, 28, 28))
    assert gen.images.shape == (40, 1, 28, 28)  # all of them, on demand
    torch.testing.assert_close(gen.sample(12, seed=5)[1], x, rtol=0, atol=0)


def test_more_samples_than_the_file_holds(tmp_path) -> None:
    np.save(tmp_path / "a.npy", _images(30))
    with pytest.raises(
        InputError, match=r"--n-samples 31 asks for more than the 30 images.*at most 30"
    ):
        load_generator(tmp_path / "a.npy").sample(31, seed=0)


# -- values: byte order, 16 bits, dtypes ---------------------------------------------------------


@pytest.mark.parametrize("dtype", [">f4", ">f8", ">i2", ">u2", ">i4", "<f2"])
@pytest.mark.parametrize("container", ["npy", "npz"])
def test_big_endian_arrays_load_as_their_values(tmp_path, dtype, container) -> None:
    base = _images(20).astype(np.float64)
    if dtype.endswith("u2"):
        base = base * 256 + 7  # the full 16-bit range, bytes that differ
    native = base.astype(np.dtype(dtype).newbyteorder("<"))
    swapped = base.astype(dtype)
    assert swapped.tobytes() != native.tobytes() or dtype == "<f2"
    for name, arr in (("le", native), ("be", swapped)):
        path = tmp_path / f"{name}.{container}"
        np.save(path, arr) if container == "npy" else np.savez(path, images=arr)
    le, be = (
        load_generator(tmp_path / f"le.{container}"),
        load_generator(tmp_path / f"be.{container}"),
    )
    assert be.output_range == le.output_range
    torch.testing.assert_close(be.images, le.images, rtol=0, atol=0)
    torch.testing.assert_close(be.sample(7, seed=2)[1], le.sample(7, seed=2)[1], rtol=0, atol=0)
    expected = base / (65535 if dtype.endswith("u2") else 255)
    np.testing.assert_allclose(
        be.images[:, 0].numpy(), expected, atol=2e-3 if "f2" in dtype else 1e-6
    )


def test_uint16_is_0_65535_when_it_uses_16_bits_else_0_255(tmp_path) -> None:
    imgs = _images(20)
    wide = imgs.astype(np.uint16) * 257
    np.save(tmp_path / "wide.npy", wide)
    np.save(tmp_path / "narrow.npy", imgs.astype(np.uint16))
    gen = load_generator(tmp_path / "wide.npy")
    assert gen.range_source.startswith("uint16 0-65535")
    np.testing.assert_allclose(gen.images[:, 0].numpy(), wide / 65535, atol=1e-6)
    narrow = load_generator(tmp_path / "narrow.npy")
    assert narrow.output_range == "0,255"
    np.testing.assert_allclose(narrow.images[:, 0].numpy(), imgs / 255, atol=1e-6)


@pytest.mark.parametrize("dtype", [bool, np.complex64, "U4", "S4", [("a", "<f4")]])
def test_non_numeric_dtypes_are_refused(tmp_path, dtype) -> None:
    np.save(tmp_path / "d.npy", np.zeros((3, 784), dtype=dtype))
    with pytest.raises(InputError, match=r"d\.npy holds .* values; expected uint8 0-255, uint16"):
        load_generator(tmp_path / "d.npy")


def test_nan_in_a_sampled_row_is_an_error(tmp_path) -> None:
    a = np.random.default_rng(0).random((10, 784)).astype(np.float32)
    a[:, 5] = np.nan
    np.savez(tmp_path / "nan.npz", images=a)
    with pytest.raises(InputError, match="contains 3 NaN or Inf values"):
        load_generator(tmp_path / "nan.npz").sample(3, seed=0)


# -- broken arrays: clean errors, nothing allocated -------------------------------------------


def test_object_arrays_are_not_unpickled(tmp_path) -> None:
    obj = np.array([{"a": 1}, None], dtype=object)
    np.save(tmp_path / "o.npy", obj, allow_pickle=True)
    np.savez(tmp_path / "o.npz", images=obj)
    for name in ("o.npy", "o.npz"):
        with pytest.raises(LoaderError, match="holds Python objects, which ganalyze does not"):
            load_generator(tmp_path / name)


@pytest.mark.parametrize("suffix", ["npy", "npz"])
def test_empty_files(tmp_path, suffix) -> None:
    (tmp_path / f"e.{suffix}").write_bytes(b"")
    with pytest.raises(LoaderError, match=rf"e\.{suffix} is empty; expected an array of images"):
        load_generator(tmp_path / f"e.{suffix}")


def test_empty_file_is_one_error_line_not_aborted(tmp_path) -> None:
    (tmp_path / "e.npy").write_bytes(b"")
    result = CliRunner().invoke(main, ["report", str(tmp_path / "e.npy")])
    assert result.exit_code != 0 and "Aborted" not in result.output
    assert "Error:" in result.output and "is empty" in result.output
    assert "Traceback" not in result.output


def test_empty_zip_and_no_images(tmp_path) -> None:
    zipfile.ZipFile(tmp_path / "z.npz", "w").close()
    with pytest.raises(LoaderError, match="an archive that holds no arrays"):
        load_generator(tmp_path / "z.npz")
    np.save(tmp_path / "none.npy", np.zeros((0, 784), np.float32))
    np.savez(tmp_path / "none.npz", images=np.zeros((0, 28, 28), np.uint8))
    for name in ("none.npy", "none.npz"):
        with pytest.raises(InputError, match=r"holds no images \(shape \(0, (784|28, 28)\)\)"):
            load_generator(tmp_path / name)


def test_garbage_headers(tmp_path) -> None:
    cases = {
        "random.npy": np.random.default_rng(0).bytes(300),
        "garbage.npy": b"\x93NUMPY\x01\x00" + b"garbage" * 10,
        "literal.npy": b"\x93NUMPY\x01\x00\x10\x00{'descr': <f4}  \n" + b"\0" * 64,
        "version.npy": b"\x93NUMPY\x07\x00" + b"\0" * 64,
    }
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(LoaderError, match=rf"{name} is not a NumPy array \(.+\); expected"):
            load_generator(tmp_path / name)
    for shape in ((-5, 784), (2**40, 2**40, 28), (2**70, 784)):
        (tmp_path / "odd.npy").write_bytes(_npy_header(shape) + b"\0" * 64)
        with pytest.raises(LoaderError, match=rf"impossible shape \({shape[0]}, {shape[1]}"):
            load_generator(tmp_path / "odd.npy")
    (tmp_path / "junk.npz").write_bytes(b"PK\x03\x04" + b"junk" * 50)
    with pytest.raises(LoaderError, match=r"junk\.npz is not a readable \.npz archive"):
        load_generator(tmp_path / "junk.npz")


def test_a_huge_declared_shape_allocates_nothing(tmp_path) -> None:
    rows = 10**12 // 784
    (tmp_path / "big.npy").write_bytes(_npy_header((rows, 784)) + b"\0" * 784)
    with zipfile.ZipFile(tmp_path / "big.npz", "w") as zf:
        zf.writestr("images.npy", _npy_header((rows, 784)) + b"\0" * 784)
    tracemalloc.start()
    try:
        for name in ("big.npy", "big.npz"):
            with pytest.raises(LoaderError, match=rf"declares shape \({rows}, 784\) of float32"):
                load_generator(tmp_path / name)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 << 20


def test_truncated_and_forged_members(tmp_path) -> None:
    a = np.random.default_rng(1).random((30, 784)).astype(np.float32)
    np.save(tmp_path / "full.npy", a)
    data = (tmp_path / "full.npy").read_bytes()
    (tmp_path / "cut.npy").write_bytes(data[: len(data) // 2])
    with pytest.raises(LoaderError, match=r"cut\.npy declares shape \(30, 784\).*truncated"):
        load_generator(tmp_path / "cut.npy")
    np.savez_compressed(tmp_path / "c.npz", images=a)
    blob = bytearray((tmp_path / "c.npz").read_bytes())
    blob[200:260] = bytes(60)  # inside the deflate stream
    (tmp_path / "bad.npz").write_bytes(bytes(blob))
    with pytest.raises(LoaderError, match=r"bad\.npz.*(corrupt|truncated|not a NumPy array)"):
        load_generator(tmp_path / "bad.npz").sample(30, seed=0)
    # a central directory that claims far more than deflate can produce
    with zipfile.ZipFile(tmp_path / "c.npz") as zf:
        info = zf.getinfo("images.npy")
    blob = bytearray((tmp_path / "c.npz").read_bytes())
    cd = blob.rfind(b"PK\x01\x02")
    struct.pack_into("<I", blob, cd + 24, info.compress_size * 5000)  # uncompressed size
    (tmp_path / "forged.npz").write_bytes(bytes(blob))
    with pytest.raises(LoaderError, match=r"forged\.npz.*which its compression cannot produce"):
        load_generator(tmp_path / "forged.npz")


def _patched_zip(src: Path, dst: Path, flag: int = 0, method: int | None = None) -> None:
    """A copy of a one-member zip with general-purpose flags or the method rewritten."""
    blob = bytearray(src.read_bytes())
    for at in (0, blob.rfind(b"PK\x01\x02") + 2):  # local header, central directory entry
        blob[at + 6] |= flag
        if method is not None:
            struct.pack_into("<H", blob, at + 8, method)
    dst.write_bytes(bytes(blob))


def test_members_that_cannot_be_inflated(tmp_path) -> None:
    np.savez(tmp_path / "ok.npz", images=_images(3))
    with zipfile.ZipFile(tmp_path / "crc.npz", "w") as zf:
        zf.writestr("images.npy", b"abc")
    blob = bytearray((tmp_path / "crc.npz").read_bytes())
    blob[14] ^= 0xFF  # the CRC, in both headers
    blob[blob.rfind(b"PK\x01\x02") + 16] ^= 0xFF
    (tmp_path / "crc.npz").write_bytes(bytes(blob))
    _patched_zip(tmp_path / "ok.npz", tmp_path / "enc.npz", flag=1)
    _patched_zip(tmp_path / "ok.npz", tmp_path / "m99.npz", method=99)
    for name, match in (
        ("crc.npz", "is corrupt or unreadable \\(Bad CRC-32"),
        ("enc.npz", "is encrypted"),
        ("m99.npz", "compression method is not supported"),
    ):
        with pytest.raises(LoaderError, match=rf"{name} \(member images\.npy\).*{match}"):
            load_generator(tmp_path / name)


def test_other_numeric_dtypes_and_misnamed_files(tmp_path) -> None:
    unit = np.random.default_rng(0).random((10, 28, 28))
    np.save(tmp_path / "f128.npy", unit.astype(np.longdouble))
    np.save(tmp_path / "i64.npy", np.round(unit * 255).astype(np.int64))
    with open(tmp_path / "npy_named.npz", "wb") as fh:
        np.save(fh, unit.astype(np.float32))
    np.savez(tmp_path / "npz_named.npz", images=unit)
    os.rename(tmp_path / "npz_named.npz", tmp_path / "npz_named.npy")
    for name, want in (
        ("f128.npy", unit),
        ("i64.npy", np.round(unit * 255) / 255),
        ("npy_named.npz", unit),
        ("npz_named.npy", unit),
    ):
        np.testing.assert_allclose(load_generator(tmp_path / name).images[:, 0], want, atol=1e-6)


def test_members_that_are_not_arrays(tmp_path) -> None:
    with zipfile.ZipFile(tmp_path / "txt.npz", "w") as zf:
        zf.writestr("readme.txt", "hello")
    with zipfile.ZipFile(tmp_path / "fake.npz", "w") as zf:
        zf.writestr("images.npy", b"not an array at all, really")
        zf.writestr("labels.npy", b"")
    for name, member in (("txt.npz", "readme.txt"), ("fake.npz", "images.npy")):
        with pytest.raises(LoaderError, match=rf"\(member {member}\) is not a NumPy array"):
            load_generator(tmp_path / name)
    np.savez(tmp_path / "two.npz", x=_images(3), y=_images(3))
    with pytest.raises(LoaderError, match=r"\['x', 'y'\]; expected one named 'images'"):
        load_generator(tmp_path / "two.npz")


def test_wrong_shape_is_refused_from_the_header(tmp_path) -> None:
    np.save(tmp_path / "rgb.npy", np.zeros((16, 4, 32, 32), np.float32))
    with pytest.raises(InputError, match=r"\(16, 4, 32, 32\); expected \(n, 784\)"):
        load_generator(tmp_path / "rgb.npy")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="POSIX only")
def test_devices_fifos_and_loops_are_refused_without_reading(tmp_path) -> None:
    os.mkfifo(tmp_path / "pipe.npy")
    os.symlink("/dev/zero", tmp_path / "zero.npz")
    os.symlink(tmp_path / "loop.npy", tmp_path / "loop.npy")
    for name, what in (
        ("pipe.npy", "a FIFO"),
        ("zero.npz", "a character device"),
        ("loop.npy", "cannot be opened"),
    ):
        with pytest.raises(InputError, match=what):
            from_samples(tmp_path / name, None)


# -- PNG folders ------------------------------------------------------------------------------


def test_16_bit_pngs_are_scaled_to_0_1(tmp_path) -> None:
    imgs = _images(6)
    wide = imgs.astype(np.uint16) * 257
    folder = _png_folder(tmp_path, list(wide))
    assert (folder / "000.png").read_bytes()[24] == 16  # IHDR bit depth
    gen = load_generator(folder)
    np.testing.assert_allclose(gen.images[:, 0].numpy(), wide / 65535, atol=1e-6)
    assert float((gen.images == 1).float().mean()) < 0.01
    # one 16-bit file among 8-bit ones: each scaled by its own depth
    mixed = _png_folder(tmp_path, [imgs[0], wide[1]], "mixed")
    x = load_generator(mixed).images[:, 0].numpy()
    np.testing.assert_allclose(x, [imgs[0] / 255, wide[1] / 65535], atol=1e-6)


def test_colour_pngs_become_gray(tmp_path) -> None:
    gray = _images(1)[0]
    rgb = np.stack([gray, gray, gray], -1)
    folder = tmp_path / "colour"
    folder.mkdir()
    Image.fromarray(rgb).save(folder / "a.png")
    Image.fromarray(np.dstack([rgb, np.full((28, 28), 128, np.uint8)])).save(folder / "b.png")
    Image.fromarray(gray).convert("P").save(folder / "c.png")
    Image.fromarray(gray).convert("LA").save(folder / "d.PNG")
    gen = load_generator(folder)
    assert gen.output_range == "0,255" and gen.images.shape == (4, 1, 28, 28)
    for x in gen.images[:, 0].numpy():
        np.testing.assert_allclose(x, gray / 255, atol=1.5 / 255)


def _bad_png_folder(tmp_path: Path, name: str, data: bytes) -> Path:
    folder = _png_folder(tmp_path, list(_images(2)), name.replace(".", "_"))
    (folder / name).write_bytes(data)
    return folder


def test_broken_pngs_name_the_file(tmp_path) -> None:
    good = io.BytesIO()
    Image.fromarray(_images(1)[0]).save(good, format="PNG")
    png = good.getvalue()
    bad_crc = bytearray(png)
    bad_crc[29] ^= 0xFF  # the IHDR checksum
    raw = b"".join(b"\0" + bytes(28) for _ in range(28))
    text_bomb = zlib.compress(bytes(20 << 20), 9)  # 20 MB of text from 20 kB
    cases = {
        "empty.png": b"",
        "random.png": np.random.default_rng(0).bytes(500),
        "crc.png": bytes(bad_crc),
        "truncated.png": png[: len(png) // 2],
        "idat.png": _png(28, 28, raw)[:41] + b"\xff" * 30 + _png(28, 28, raw)[71:],
        "jpeg.png": b"\xff\xd8\xff\xe0" + bytes(200),
        "ztxt.png": _png(28, 28, raw, extra=_png_chunk(b"zTXt", b"k\0\0" + text_bomb)),
    }
    for name, data in cases.items():
        folder = _bad_png_folder(tmp_path, name, data)
        with pytest.raises(
            LoaderError, match=rf"{name} is not a readable PNG image \(.+\); expected"
        ):
            load_generator(folder)


def test_decompression_bombs_are_refused_before_decoding(tmp_path) -> None:
    for side, match in (
        (100_000, "decompression bomb"),  # past PIL's error limit
        (10_000, "decompression bomb"),  # past its warning limit: the warning is an error
        (2_000, r"declares 2000x2000 pixels; expected 28x28 digit images"),
    ):
        folder = _bad_png_folder(tmp_path, f"bomb{side}.png", _png(side, side, b"\0" * 100))
        with pytest.raises(InputError, match=rf"bomb{side}\.png.*{match}"):
            load_generator(folder)
    folder = _bad_png_folder(
        tmp_path, "small.png", _png(30, 28, b"".join(b"\0" + bytes(30) for _ in range(28)))
    )
    with pytest.raises(InputError, match=r"small\.png is 30x28 pixels; expected 28x28"):
        load_generator(folder)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="POSIX only")
def test_png_names_that_are_not_files(tmp_path) -> None:
    cases = {
        "dir.png": (lambda p: p.mkdir(), "is a folder"),
        "loop.png": (lambda p: os.symlink(p, p), "cannot be opened"),
        "pipe.png": (lambda p: os.mkfifo(p), "is a FIFO"),
        "zero.png": (lambda p: os.symlink("/dev/zero", p), "is a character device"),
    }
    for name, (make, match) in cases.items():
        folder = _png_folder(tmp_path, list(_images(2)), name.replace(".", "_"))
        make(folder / name)
        with pytest.raises(InputError, match=rf"{name} {match}"):
            load_generator(folder)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(LoaderError, match="holds no .png files"):
        load_generator(empty)


# -- memory: a .npz that inflates to 784 MB, 200 samples --------------------------------------

_MEASURE = """
import sys
from pathlib import Path
import numpy as np
from ganalyze.generators import load_generator
def hwm():  # this process's peak RSS (ru_maxrss would include the parent's before exec)
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
before = hwm()
gen = load_generator(Path(sys.argv[1]))
_, x = gen.sample(200, seed=3)
peak = hwm()
import torch
idx = torch.randperm(1_000_000, generator=torch.Generator().manual_seed(3))[:200].sort().values
want = (idx.numpy() % 251).astype(np.float32) / 255
assert x.shape == (200, 1, 28, 28)
assert np.array_equal(x.reshape(200, -1).numpy(), np.repeat(want[:, None], 784, 1))
print(before, peak)
"""


def _write_bomb_npz(path: Path, rows: int = 1_000_000) -> None:
    header = _npy_header((rows, 784), "|u1")
    with (
        zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf,
        zf.open("images.npy", "w", force_zip64=True) as fh,
    ):
        fh.write(header)
        for start in range(0, rows, 10_000):
            values = (np.arange(start, min(start + 10_000, rows)) % 251).astype(np.uint8)
            fh.write(np.repeat(values[:, None], 784, 1).tobytes())


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc (Linux)")
def test_a_784_mb_npz_with_200_samples_stays_small(tmp_path) -> None:
    path = tmp_path / "inflates.npz"
    _write_bomb_npz(path)
    with zipfile.ZipFile(path) as zf:
        assert zf.getinfo("images.npy").file_size > 784_000_000
    assert path.stat().st_size < 20_000_000
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_MEASURE), str(path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    before_kb, peak_kb = map(int, out.stdout.split()[-2:])
    print(f"peak RSS before load {before_kb / 1024:.0f} MB, peak {peak_kb / 1024:.0f} MB")
    assert peak_kb - before_kb < 150 * 1024  # the subset and an 8 MB chunk, not 784 MB
    assert peak_kb < 1024 * 1024
