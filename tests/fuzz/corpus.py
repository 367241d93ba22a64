"""The hostile-input corpus: every case is built by code at test time (no committed binaries).

A :class:`Case` names its class, builds its inputs in a fresh folder and returns the ganalyze
arguments to run, and states its expected outcome:

- ``"error"``: a clean error (exit code != 0, exactly one line starting with ``Error:``, no
  ``Traceback``);
- ``"success"``: exit code 0, and ``check(env, output)`` verifies what makes it correct.

Pickled payloads write a canary file (``builtins.open(canary, "w")``, ``pathlib.Path.touch`` or
``builtins.exec`` of an ``open``), never anything else; the runner checks that it never appears.
Builders are cheap: the few costly artifacts (a torch.export program, a TorchScript module) are
built once per session and rewritten per case.
"""

from __future__ import annotations

import builtins
import copy
import functools
import io
import json
import os
import pathlib
import pickle
import struct
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from reference_gan.checkpoint import FORMAT, REQUIRED_KEYS
from reference_gan.model import make_discriminator, make_generator

N = "64"  # samples drawn by report cases: enough for modes, cheap


@dataclass
class Env:
    """Where a case lives: its own folder, the session's canary path and MNIST root."""

    root: Path
    canary: Path
    data: Path

    def file(self, name: str, content: bytes | str = b"") -> Path:
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str):
            content = content.encode()
        path.write_bytes(content)
        return path

    @property
    def out(self) -> Path:
        return self.root / "report"


@dataclass
class Case:
    id: str
    cls: str
    build: Callable[[Env], list[str]]
    expect: str = "error"
    check: Callable[[Env, str], None] | None = None
    mnist: bool = False  # reaches a real report or training when it behaves as expected
    subprocess: bool = False
    api: bool = False  # run through ganalyze.load_generator (a loader property, no report)
    timeout: float = 60.0
    rss_limit_mb: int = 2500
    skip_if: Callable[[], str | None] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        assert self.expect in ("error", "success"), self.expect
        assert self.expect == "error" or self.check is not None, self.id


def report_args(env: Env, spec: str | Path, *extra: str, analyses: str = "modes") -> list[str]:
    args = ["report", str(spec), "-o", str(env.out), "--quiet"]
    if analyses:
        args += ["--analyses", analyses]
    if "--n-samples" not in extra:
        args += ["--n-samples", N]
    return args + list(extra)


def resume_args(env: Env, path: Path, *extra: str) -> list[str]:
    return [
        "train",
        "--resume",
        str(path),
        "--out",
        str(env.root / "run"),
        "--epochs",
        "2",
        "--data-dir",
        str(env.data),
        "--quiet",
        "--device",
        "cpu",
        *extra,
    ]


# --------------------------------------------------------------------------- payloads


class _Open:
    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (builtins.open, (self.path, "w"))


class _Touch:
    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (pathlib.Path.touch, (pathlib.Path(self.path),))


class _Exec:
    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (builtins.exec, (f"open({self.path!r}, 'w').close()",))


PAYLOADS = {"open": _Open, "touch": _Touch, "exec": _Exec}


def payload(kind: str, env: Env):
    return PAYLOADS[kind](str(env.canary))


def torch_bytes(obj, legacy: bool = False) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf, _use_new_zipfile_serialization=not legacy)
    return buf.getvalue()


# --------------------------------------------------------------------------- valid artifacts


@functools.cache
def _models() -> tuple[dict, dict]:
    torch.manual_seed(0)
    g, d = make_generator(), make_discriminator()
    return g.state_dict(), d.state_dict()


def g_state() -> dict:
    return {k: v.clone() for k, v in _models()[0].items()}


def d_state() -> dict:
    return {k: v.clone() for k, v in _models()[1].items()}


@functools.cache
def _adam_states() -> tuple[dict, dict]:
    """The trainer's own optimizer states (flat Adam moments), as `ganalyze train` saves them."""
    from reference_gan.engine import GANStep

    torch.manual_seed(0)
    step = GANStep(make_generator(), make_discriminator(), 2e-4, (0.9, 0.999))
    return step.opt_g.state_dict(), step.opt_d.state_dict()


@functools.cache
def _checkpoint_template() -> dict:
    record = {
        "epoch": 1,
        "steps": 2,
        "d_loss": 1.3,
        "g_loss": 0.7,
        "d_real": 0.5,
        "d_fake": 0.5,
        "d_acc_real": 0.5,
        "d_acc_fake": 0.5,
        "d_train": 0.5,
        "d_test": 0.5,
        "d_gen": 0.5,
    }
    config = {
        "epochs": 1,
        "batch_size": 32,
        "lr": 2e-4,
        "betas": [0.9, 0.999],
        "latent_dim": 64,
        "hidden": 256,
        "seed": 0,
        "device": "cpu",
        "save_every": 50,
        "sample_every": 10,
        "limit": 64,
        "adam_eps": 1e-8,
        "loss": "bce_nonsaturating",
        "d_steps_per_g_step": 1,
        "dataset": "mnist",
        "prior": "normal",
        "image_range": [-1.0, 1.0],
        "g_output_shape": [784],
        "d_input_range": [-1.0, 1.0],
        "d_input_shape": [784],
        "d_output": "probability",
        "n_train": 64,
        "train_indices": torch.arange(64),
        "device_used": "cpu",
    }
    return {
        "format": FORMAT,
        "generator": g_state(),
        "discriminator": d_state(),
        "opt_g": _adam_states()[0],
        "opt_d": _adam_states()[1],
        "config": config,
        "epoch": 1,
        "step": 0,
        "partial_logits": None,
        "history": [record],
        "rng": {"torch_cpu": torch.get_rng_state()},
        "fixed_z": torch.randn(64, 64, generator=torch.Generator().manual_seed(1)),
        "versions": {"ganalyze": "0.1.0", "torch": str(torch.__version__)},
    }


def checkpoint() -> dict:
    """A fresh copy of a valid `ganalyze train` checkpoint (synthetic: no training needed)."""
    return copy.deepcopy(_checkpoint_template())


class _Linear8(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(8, 784)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.lin(z))


@functools.cache
def export_bytes() -> bytes:
    """A real torch.export.save of a tiny generator 8 -> 784 with tanh (dynamic batch)."""
    torch.manual_seed(0)
    batch = torch.export.Dim("batch", min=1)
    program = torch.export.export(
        _Linear8().eval(), (torch.randn(4, 8),), dynamic_shapes=({0: batch},)
    )
    buf = io.BytesIO()
    torch.export.save(program, buf)
    return buf.getvalue()


@functools.cache
def torchscript_bytes() -> bytes:
    torch.manual_seed(0)
    module = torch.jit.script(_Linear8().eval())
    buf = io.BytesIO()
    torch.jit.save(module, buf)
    return buf.getvalue()


def rewrite_zip(
    src: bytes,
    replace: dict[str, bytes | None],
    add: dict[str, bytes] | None = None,
) -> bytes:
    """Copy a zip, replacing (or dropping, for None) members whose name ends with a key and
    adding members (``add`` names are joined to the archive's top folder)."""
    zin = zipfile.ZipFile(io.BytesIO(src))
    names = zin.namelist()
    top = names[0].split("/")[0] + "/" if "/" in names[0] else ""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as zout:
        for name in names:
            key = next((k for k in replace if name.endswith(k)), None)
            if key is None:
                zout.writestr(name, zin.read(name))
            elif replace[key] is not None:
                zout.writestr(name, replace[key])
        for name, data in (add or {}).items():
            zout.writestr(top + name, data)
    return out.getvalue()


def member(src: bytes, suffix: str) -> bytes:
    zin = zipfile.ZipFile(io.BytesIO(src))
    return zin.read(next(n for n in zin.namelist() if n.endswith(suffix)))


# --------------------------------------------------------------------------- checks


def load_meta(env: Env) -> dict:
    return json.loads((env.out / "meta.json").read_text(encoding="utf-8"))


def check_report(**expected) -> Callable[[Env, str], None]:
    """A report was written whose meta.json holds the expected values."""

    def check(env: Env, output: str) -> None:
        assert (env.out / "index.html").is_file(), "no index.html written"
        meta = load_meta(env)
        for key, value in expected.items():
            assert meta.get(key) == value, f"meta[{key!r}] = {meta.get(key)!r}, expected {value!r}"

    return check


def _loaded_images(spec: Path) -> np.ndarray:
    from ganalyze.generators import load_generator

    gen = load_generator(spec)
    _, images = gen.sample(len(gen.images), 0)
    return images.numpy()


def check_same_images(native_name: str, spec_name: str, report: bool) -> Callable[[Env, str], None]:
    """The samples file loads (and reports), with images equal to those of the native file."""

    def check(env: Env, output: str) -> None:
        if report:
            check_report(kind="samples")(env, output)
        spec = env.root / spec_name
        got, want = _loaded_images(spec), _loaded_images(env.root / native_name)
        assert got.shape == want.shape, f"shape {got.shape} != native {want.shape}"
        assert np.array_equal(got, want), f"max |diff| {np.abs(got - want).max():.3g}"

    return check


# --------------------------------------------------------------------------- class builders

CASES: list[Case] = []


def case(id: str, cls: str, build, **kw) -> None:
    CASES.append(Case(id=id, cls=cls, build=build, **kw))


def _entry_module(env: Env, body: str, name: str = "gen.py") -> Path:
    header = "import sys, os, time\nimport numpy as np\nimport torch\nfrom torch import nn\n\n"
    return env.file(name, header + body)


_LINEAR_MODULE = """
class G(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(8, 784)

    def forward(self, z):
        return torch.tanh(self.lin(z))
"""


# 1. pickles with a canary payload in torch files -------------------------------------------

_PLACEMENTS: dict[str, Callable[[object], bytes]] = {
    "zip": lambda p: torch_bytes(p),
    "legacy": lambda p: torch_bytes(p, legacy=True),
    "zip-in-list": lambda p: torch_bytes([1, p]),
    "state_dict-value": lambda p: torch_bytes({**g_state(), "0.weight": p}),
    "ckpt-config": lambda p: torch_bytes({**checkpoint(), "config": {"evil": p}}),
    "ckpt-history": lambda p: torch_bytes({**checkpoint(), "history": [p]}),
    "ckpt-generator": lambda p: torch_bytes({**checkpoint(), "generator": p}),
    "legacy-ckpt": lambda p: torch_bytes({**checkpoint(), "versions": p}, legacy=True),
    "pickle-p2": lambda p: pickle.dumps(p, protocol=2),
    "pickle-p5": lambda p: pickle.dumps({"generator": p}, protocol=5),
}


def _pickle_cases() -> None:
    routes = {
        "spec": lambda env, f: report_args(env, f),
        "discriminator": lambda env, f: report_args(
            env, env.file("g.pt", torch_bytes(g_state())), "--discriminator", str(f)
        ),
        "weights": lambda env, f: report_args(
            env, f"{_entry_module(env, _LINEAR_MODULE)}:G", "--weights", str(f)
        ),
        "resume": lambda env, f: resume_args(env, f),
    }
    for place, make in _PLACEMENTS.items():
        for kind in PAYLOADS:
            for route, args in routes.items():
                ext = ".pkl" if place.startswith("pickle") and route == "spec" else ".pt"

                def build(env, make=make, kind=kind, args=args, ext=ext):
                    return args(env, env.file("evil" + ext, make(payload(kind, env))))

                case(f"pickle-{place}-{kind}-{route}", "pickle", build)


# trust-pickle must work for what it promises: a whole pickled module (success)
def _trust_pickle_cases() -> None:
    def build(env):
        torch.manual_seed(0)
        path = env.file("module.pt", torch_bytes(make_generator()))
        return report_args(env, path, "--trust-pickle")

    case(
        "pickle-module-trust-pickle",
        "pickle",
        build,
        expect="success",
        mnist=True,
        check=check_report(kind="pickled_module", n_samples=64),
    )

    def build_refused(env):
        return report_args(env, env.file("module.pt", torch_bytes(make_generator())))

    case("pickle-module-without-trust", "pickle", build_refused)


# 2. torch.export archives ------------------------------------------------------------------


def _weights_config_use_pickle() -> bytes:
    config = json.loads(member(export_bytes(), "data/weights/model_weights_config.json"))
    entry = config["config"]["lin.weight"]
    entry["use_pickle"], entry["tensor_meta"] = True, None
    return json.dumps(config).encode()


def _constants(path_name: str, use_pickle: bool) -> bytes:
    meta = {
        "path_name": path_name,
        "is_param": False,
        "use_pickle": use_pickle,
        "tensor_meta": None,
    }
    return json.dumps({"config": {"evil": meta}}).encode()


_PT2_POISONS: dict[str, Callable[[object], tuple[dict, dict]]] = {
    "sample_inputs": lambda p: ({"data/sample_inputs/model.pt": torch_bytes((p, {}))}, {}),
    "sample_inputs-bare": lambda p: ({"data/sample_inputs/model.pt": torch_bytes(p)}, {}),
    "use_pickle-weight": lambda p: (
        {
            "data/weights/model_weights_config.json": _weights_config_use_pickle(),
            "data/weights/weight_0": torch_bytes(p),
        },
        {},
    ),
    "use_pickle-constant": lambda p: (
        {"data/constants/model_constants_config.json": _constants("tensor_c0", True)},
        {"data/constants/tensor_c0": torch_bytes(p)},
    ),
    "opaque-constant": lambda p: (
        {"data/constants/model_constants_config.json": _constants("opaque_obj_0", False)},
        {"data/constants/opaque_obj_0": pickle.dumps(p)},
    ),
    "custom-obj-constant": lambda p: (
        {"data/constants/model_constants_config.json": _constants("custom_obj_0", False)},
        {"data/constants/custom_obj_0": pickle.dumps(p)},
    ),
    "legacy-weights": lambda p: ({}, {"data/weights/model.pt": torch_bytes(p)}),
    "legacy-constants": lambda p: ({}, {"data/constants/model.pt": torch_bytes(p)}),
}


def _pt2_cases() -> None:
    for poison, make in _PT2_POISONS.items():
        for kind in ("open", "touch"):
            for name, route in (
                ("pt2", "spec"),
                ("pt", "spec"),
                ("pt2", "discriminator"),
                ("pt", "discriminator"),
            ):

                def build(env, make=make, kind=kind, name=name, route=route):
                    replace, add = make(payload(kind, env))
                    path = env.file(f"evil.{name}", rewrite_zip(export_bytes(), replace, add))
                    if route == "spec":
                        return report_args(env, path)
                    g = env.file("g.pt", torch_bytes(g_state()))
                    return report_args(env, g, "--discriminator", str(path))

                suffix = "" if name == "pt2" else "-as-pt"
                case(f"pt2-{poison}-{kind}{suffix}-{route}", "pt2", build)

    case(
        "pt2-valid",
        "pt2",
        lambda env: report_args(env, env.file("g.pt2", export_bytes())),
        expect="success",
        mnist=True,
        check=check_report(kind="torch_export", latent_dim=8),
    )


# 3. TorchScript archives whose pickles reference a non-TorchScript global -------------------


def _ts_cases() -> None:
    for member_name in ("data.pkl", "constants.pkl"):
        for kind in ("open", "touch", "exec"):
            for route in ("spec", "discriminator"):

                def build(env, member_name=member_name, kind=kind, route=route):
                    data = pickle.dumps(payload(kind, env), protocol=2)
                    path = env.file(
                        "evil.pt", rewrite_zip(torchscript_bytes(), {member_name: data})
                    )
                    if route == "spec":
                        return report_args(env, path)
                    g = env.file("g.pt", torch_bytes(g_state()))
                    return report_args(env, g, "--discriminator", str(path))

                case(f"ts-{member_name.split('.')[0]}-{kind}-{route}", "torchscript", build)


# 4. truncated, bit-flipped and zero-length files of every kind ------------------------------


def _npy_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr)
    return buf.getvalue()


def _npz_bytes(compressed: bool = False, **arrays) -> bytes:
    buf = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(buf, **arrays)
    return buf.getvalue()


def digits_like(n: int = 64, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, 28, 28), dtype=np.uint8)


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_bytes(
    pixels: np.ndarray,
    bit_depth: int = 8,
    idat: bytes | None = None,
    size: tuple[int, int] | None = None,
) -> bytes:
    """A grayscale PNG written by hand (so 16-bit and hostile variants need no encoder)."""
    h, w = size or pixels.shape
    ihdr = struct.pack(">IIBBBBB", w, h, bit_depth, 0, 0, 0, 0)
    if idat is None:
        dtype = ">u2" if bit_depth == 16 else "u1"
        rows = [b"\x00" + pixels[i].astype(dtype).tobytes() for i in range(h)]
        idat = zlib.compress(b"".join(rows))
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", idat)
        + _png_chunk(b"IEND", b"")
    )


@functools.cache
def _kinds() -> dict[str, tuple[str, bytes]]:
    """A valid file of each kind ganalyze reads: (file name, bytes)."""
    return {
        "ckpt": ("ck.pt", torch_bytes(checkpoint())),
        "legacy-ckpt": ("ck.pt", torch_bytes(checkpoint(), legacy=True)),
        "state_dict": ("g.pt", torch_bytes(g_state())),
        "torchscript": ("g.pt", torchscript_bytes()),
        "pt2": ("g.pt2", export_bytes()),
        "npy": ("x.npy", _npy_bytes(digits_like())),
        "npz": ("x.npz", _npz_bytes(images=digits_like())),
        "npz-compressed": ("x.npz", _npz_bytes(True, images=digits_like())),
        "png": ("pngs/0.png", png_bytes(digits_like(1)[0])),
    }


def _spec_for(env: Env, kind: str, name: str, data: bytes) -> list[str]:
    path = env.file(name, data)
    if kind == "png":
        return report_args(env, path.parent)
    return report_args(env, path)


def _zip_data_offsets(data: bytes) -> list[int]:
    """Offsets of the first, middle and last byte of every member's data (CRC-checked)."""
    offsets = []
    zf = zipfile.ZipFile(io.BytesIO(data))
    for info in zf.infolist():
        if info.compress_size == 0:
            continue
        name_len, extra_len = struct.unpack(
            "<HH", data[info.header_offset + 26 : info.header_offset + 30]
        )
        start = info.header_offset + 30 + name_len + extra_len
        offsets += [start, start + info.compress_size // 2, start + info.compress_size - 1]
    return offsets


def _flip_offsets(kind: str, data: bytes) -> dict[str, int]:
    """Named positions where any change must be detected: structure and opcodes, or data that a
    checksum covers (torch's zip reader checks no CRC, numpy's zipfile and PIL do)."""
    if kind in ("ckpt", "state_dict", "torchscript", "pt2"):
        zf = zipfile.ZipFile(io.BytesIO(data))
        infos = zf.infolist()
        first = next(i for i in infos if i.filename.endswith((".pkl", ".json")))
        start = _zip_data_offsets(data)[infos.index(first) * 3]
        return {
            "local-magic": 0,
            "first-member-start": start,
            "central-magic": data.find(b"PK\x01\x02"),
            "eocd-magic": data.rfind(b"PK\x05\x06"),
        }
    if kind in ("npz", "npz-compressed"):
        offs = _zip_data_offsets(data)
        return {
            "local-magic": 0,
            "member-start": offs[0],
            "member-middle": offs[1],
            "member-end": offs[2],
            "eocd-magic": data.rfind(b"PK\x05\x06"),
        }
    if kind == "legacy-ckpt":
        return {"first-opcode": 0, "magic-number": 3, "protocol": 12, "sys-info": 40}
    if kind == "npy":
        return {"magic": 1, "version": 6, "header-descr": 12, "header-shape": data.index(b"(") + 1}
    if kind == "png":
        return {"signature": 1, "ihdr-width": 19, "ihdr-crc": 30, "idat-data": 45}
    raise KeyError(kind)


def _corrupt_cases() -> None:
    for kind in (
        "ckpt",
        "legacy-ckpt",
        "state_dict",
        "torchscript",
        "pt2",
        "npy",
        "npz",
        "npz-compressed",
        "png",
    ):
        # truncation points: strictly inside the content that a loader must read
        for label, frac in (
            ("1B", None),
            ("10pct", 0.1),
            ("25pct", 0.25),
            ("50pct", 0.5),
            ("75pct", 0.75),
            ("90pct", 0.9),
            ("minus1B", -1),
        ):

            def build(env, kind=kind, frac=frac):
                name, data = _kinds()[kind]
                cut = 1 if frac is None else len(data) - 1 if frac == -1 else int(len(data) * frac)
                if kind == "png":  # cut inside IHDR/IDAT, never in the trailing IEND chunk
                    cut = min(cut, len(data) - 26)
                return _spec_for(env, kind, name, data[:cut])

            case(f"truncated-{kind}-{label}", "corrupt", build)
        for label in _flip_offsets(kind, _kinds()[kind][1]):

            def build(env, kind=kind, label=label):
                name, data = _kinds()[kind]
                pos = _flip_offsets(kind, data)[label]
                flipped = bytearray(data)
                flipped[pos] ^= 0xFF
                return _spec_for(env, kind, name, bytes(flipped))

            case(f"bitflip-{kind}-{label}", "corrupt", build)
    # zero-length files, under every name and in every role
    for name in ("x.pt", "x.pth", "x.ckpt", "x.pt2", "x.bin", "x", "x.npy", "x.npz", "pngs/0.png"):

        def build(env, name=name):
            path = env.file(name, b"")
            return report_args(env, path.parent if name.endswith(".png") else path)

        case(f"empty-{name.replace('/', '-')}", "corrupt", build)
    roles = {
        "discriminator": lambda env, f: report_args(
            env, env.file("g.pt", torch_bytes(g_state())), "--discriminator", str(f)
        ),
        "weights": lambda env, f: report_args(
            env, f"{_entry_module(env, _LINEAR_MODULE)}:G", "--weights", str(f)
        ),
        "resume": lambda env, f: resume_args(env, f),
        "train-indices": lambda env, f: report_args(
            env, env.file("ck.pt", torch_bytes(checkpoint())), "--train-indices", str(f)
        ),
        "entry-point": lambda env, f: report_args(env, f"{f}:G"),
    }
    for role, args in roles.items():
        name = (
            "empty.py"
            if role == "entry-point"
            else "empty.npy"
            if role == "train-indices"
            else "empty.pt"
        )
        case(
            f"empty-as-{role}",
            "corrupt",
            lambda env, args=args, name=name: args(env, env.file(name, b"")),
        )
        case(
            f"truncated-ckpt-as-{role}" if role != "entry-point" else "truncated-py-as-entry",
            "corrupt",
            lambda env, args=args, role=role: args(
                env,
                env.file(
                    "half.py"
                    if role == "entry-point"
                    else "half.npy"
                    if role == "train-indices"
                    else "half.pt",
                    _LINEAR_MODULE[:40]
                    if role == "entry-point"
                    else (
                        _npy_bytes(np.arange(20))[:70]
                        if role == "train-indices"
                        else _kinds()["ckpt"][1][: len(_kinds()["ckpt"][1]) // 2]
                    ),
                ),
            ),
        )


# 5. special files handled in-process (no device reads): folders, loops, dangling links ------


def _special_cases() -> None:
    def folder_named(name):
        def build(env):
            path = env.root / name
            path.mkdir()
            return report_args(env, path)

        return build

    for name in ("model.pt", "model.pt2", "x.npy", "x.npz", "x.png"):
        case(f"dir-named-{name}", "special", folder_named(name))

    def png_dir_inside(env):
        (env.root / "pngs" / "0.png").mkdir(parents=True)
        return report_args(env, env.root / "pngs")

    case("png-folder-holding-dir-named-png", "special", png_dir_inside)

    def loop(name, in_folder=False):
        def build(env):
            base = env.root / "pngs" if in_folder else env.root
            base.mkdir(exist_ok=True)
            a, b = base / name, base / ("other" + Path(name).suffix)
            os.symlink(b, a)
            os.symlink(a, b)
            return report_args(env, base if in_folder else a)

        return build

    for name in ("loop.pt", "loop.pt2", "loop.npy", "loop.npz"):
        case(f"symlink-loop-{name}", "special", loop(name))
    case("symlink-loop-png-in-folder", "special", loop("loop.png", in_folder=True))

    def self_loop(env):
        path = env.root / "self.pt"
        os.symlink(path, path)
        return report_args(env, path)

    case("symlink-self-loop-pt", "special", self_loop)

    def dangling(name, in_folder=False):
        def build(env):
            base = env.root / "pngs" if in_folder else env.root
            base.mkdir(exist_ok=True)
            os.symlink(env.root / "missing.bin", base / name)
            return report_args(env, base if in_folder else base / name)

        return build

    case("symlink-dangling-pt", "special", dangling("gone.pt"))
    case("symlink-dangling-png-in-folder", "special", dangling("gone.png", in_folder=True))

    def dev_null(name):
        def build(env):
            os.symlink("/dev/null", env.root / name)
            return report_args(env, env.root / name)

        return build

    case("dev-null-spec", "special", lambda env: report_args(env, "/dev/null"))
    for name in ("null.pt", "null.npy", "null.npz", "null.pt2"):
        case(f"symlink-to-dev-null-{name}", "special", dev_null(name))
    case(
        "dev-null-as-discriminator",
        "special",
        lambda env: report_args(
            env, env.file("g.pt", torch_bytes(g_state())), "--discriminator", "/dev/null"
        ),
    )
    case(
        "dir-as-discriminator",
        "special",
        lambda env: report_args(
            env, env.file("g.pt", torch_bytes(g_state())), "--discriminator", str(env.root)
        ),
    )


# 6. .npy / .npz samples files ---------------------------------------------------------------


def _npy_header(header: str, magic: bytes = b"\x93NUMPY\x01\x00") -> bytes:
    text = header.encode("latin1")
    pad = 64 - (len(magic) + 2 + len(text) + 1) % 64
    text += b" " * pad + b"\n"
    return magic + struct.pack("<H", len(text)) + text


def _zip_of(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _npy_cases() -> None:
    obj = np.empty(3, dtype=object)
    obj[:] = [np.zeros((28, 28)), "x", None]
    bad = {
        "object-array-npy": ("x.npy", lambda env: _npy_bytes(obj)),
        "object-array-npz": ("x.npz", lambda env: _npz_bytes(images=obj)),
        "object-array-npz-canary": (
            "x.npz",
            lambda env: _zip_of(
                {
                    "images.npy": _npy_header(
                        "{'descr': '|O', 'fortran_order': False, 'shape': (1,), }"
                    )
                    + pickle.dumps([payload("open", env)])
                }
            ),
        ),
        "object-array-npy-canary": (
            "x.npy",
            lambda env: (
                _npy_header("{'descr': '|O', 'fortran_order': False, 'shape': (1,), }")
                + pickle.dumps([payload("touch", env)])
            ),
        ),
        "garbage-magic": ("x.npy", lambda env: b"NOTNUMPY" + bytes(800)),
        "garbage-header-text": ("x.npy", lambda env: _npy_header("this is not a dict") + bytes(64)),
        "garbage-header-code": (
            "x.npy",
            lambda env: _npy_header("__import__('os').getcwd()") + bytes(64),
        ),
        "garbage-header-version-9": (
            "x.npy",
            lambda env: (
                _npy_header(
                    "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 784), }",
                    magic=b"\x93NUMPY\x09\x00",
                )
                + bytes(3136)
            ),
        ),
        "garbage-descr": (
            "x.npy",
            lambda env: (
                _npy_header("{'descr': '<x9', 'fortran_order': False, 'shape': (1, 784), }")
                + bytes(3136)
            ),
        ),
        "garbage-shape-negative": (
            "x.npy",
            lambda env: (
                _npy_header("{'descr': '<f4', 'fortran_order': False, 'shape': (-1, 784), }")
                + bytes(3136)
            ),
        ),
        "garbage-shape-string": (
            "x.npy",
            lambda env: (
                _npy_header("{'descr': '<f4', 'fortran_order': False, 'shape': 'big', }")
                + bytes(3136)
            ),
        ),
        "garbage-header-len-beyond-file": ("x.npy", lambda env: b"\x93NUMPY\x01\x00\xff\xff{"),
        "header-more-rows-than-data": (
            "x.npy",
            lambda env: (
                _npy_header("{'descr': '|u1', 'fortran_order': False, 'shape': (1000, 784), }")
                + bytes(784)
            ),
        ),
        "structured-dtype": (
            "x.npy",
            lambda env: _npy_bytes(np.zeros((4, 784), dtype=[("a", "u1"), ("b", "f4")])),
        ),
        "string-dtype": ("x.npy", lambda env: _npy_bytes(np.full((4, 784), "a"))),
        "complex-dtype": ("x.npy", lambda env: _npy_bytes(np.zeros((4, 784), np.complex64))),
        "shape-0x784": ("x.npy", lambda env: _npy_bytes(np.zeros((0, 784), np.float32))),
        "shape-0x28x28-npz": ("x.npz", lambda env: _npz_bytes(images=np.zeros((0, 28, 28)))),
        "shape-784": ("x.npy", lambda env: _npy_bytes(np.zeros(784, np.float32))),
        "shape-scalar": ("x.npy", lambda env: _npy_bytes(np.float32(3))),
        "shape-10x4x32x32": ("x.npy", lambda env: _npy_bytes(np.zeros((10, 4, 32, 32)))),
        "rgb-unequal-channels": (
            "x.npy",
            lambda env: _npy_bytes(
                np.repeat(np.eye(3)[None, :, 0, None, None], 10, 0) + np.zeros((10, 3, 32, 32))
            ),
        ),  # fmt: skip
        "nan-values": ("x.npy", lambda env: _npy_bytes(np.full((8, 784), np.nan, np.float32))),
        "inf-values": ("x.npy", lambda env: _npy_bytes(np.full((8, 784), np.inf, np.float32))),
        "range-minus-5": ("x.npy", lambda env: _npy_bytes(np.full((8, 784), -5.0, np.float32))),
        "npz-empty-archive": ("x.npz", lambda env: _zip_of({})),
        "npz-not-zip": ("x.npz", lambda env: b"PK\x03\x04" + bytes(100)),
        "npz-only-txt-member": ("x.npz", lambda env: _zip_of({"images.txt": b"1 2 3"})),
        "npz-two-txt-members": ("x.npz", lambda env: _zip_of({"a.txt": b"1", "b.bin": b"2"})),
        "npz-png-as-npy-member": (
            "x.npz",
            lambda env: _zip_of({"images.npy": png_bytes(digits_like(1)[0])}),
        ),
        "npz-empty-npy-member": ("x.npz", lambda env: _zip_of({"images.npy": b""})),
        "npz-two-arrays-no-images": (
            "x.npz",
            lambda env: _npz_bytes(a=digits_like(4), b=digits_like(4)),
        ),
        "npz-dir-member": ("x.npz", lambda env: _zip_of({"images.npy/": b""})),
        "npz-declared-size-lie": ("x.npz", lambda env: _npz_size_lie()),
    }
    for name, (fname, make) in bad.items():
        case(
            f"npy-{name}",
            "npy",
            lambda env, fname=fname, make=make: report_args(env, env.file(fname, make(env))),
        )

    # big-endian arrays must load, with the values of the native array
    native = {
        "f4-unit": digits_like(64).astype(np.float32) / 255,
        "f8-tanh": digits_like(64).astype(np.float64) / 127.5 - 1,
        "f4-tanh-784": (digits_like(64).astype(np.float32) / 127.5 - 1).reshape(64, 784),
        "i4-0-255": digits_like(64).astype(np.int32),
    }
    for name, arr in native.items():
        for container in ("npy", "npz"):

            def build(env, arr=arr, container=container):
                be = arr.astype(arr.dtype.newbyteorder(">"))
                if container == "npy":
                    env.file("native.npy", _npy_bytes(arr))
                    return report_args(env, env.file("be.npy", _npy_bytes(be)))
                env.file("native.npz", _npz_bytes(images=arr))
                return report_args(env, env.file("be.npz", _npz_bytes(images=be)))

            report = (name, container) == ("f4-unit", "npy")  # one report; loads for the rest
            case(
                f"npy-big-endian-{name}-{container}",
                "npy",
                build,
                expect="success",
                mnist=report,
                api=not report,
                check=check_same_images(f"native.{container}", f"be.{container}", report),
            )


def _npz_size_lie() -> bytes:
    """A stored npz member whose zip headers declare 10^12 bytes."""
    data = bytearray(_zip_of({"images.npy": _npy_bytes(digits_like(2))}))
    cd = data.rfind(b"PK\x01\x02")
    struct.pack_into("<I", data, 22, 0xFFFFFFF0)  # local header: uncompressed size
    struct.pack_into("<I", data, cd + 24, 0xFFFFFFF0)  # central directory: uncompressed size
    return bytes(data)


# 7. PNG folders ------------------------------------------------------------------------------


def _png_cases() -> None:
    digit = digits_like(1)[0]
    good = png_bytes(digit)
    bad = {
        "empty-folder": {},
        "empty-file": {"0.png": b""},
        "random-bytes": {"0.png": np.random.default_rng(1).bytes(300)},
        "random-after-signature": {"0.png": good[:8] + np.random.default_rng(2).bytes(300)},
        "bad-crc-ihdr": {"0.png": good[:29] + bytes([good[29] ^ 0xFF]) + good[30:]},
        "bad-crc-idat": {"0.png": good[:-13] + bytes([good[-13] ^ 0xFF]) + good[-12:]},
        "bad-idat-zlib": {"0.png": png_bytes(digit, idat=b"\x78\x9cgarbage-not-zlib")},
        "truncated-in-ihdr": {"0.png": good[:20]},
        "truncated-in-idat": {"0.png": good[: len(good) // 2]},
        "truncated-idat-data": {"0.png": png_bytes(digit, idat=zlib.compress(bytes(200)))},
        "one-good-one-truncated": {"0.png": good, "1.png": good[:40]},
        "wrong-size-29x28": {"0.png": png_bytes(np.zeros((28, 29), np.uint8))},
        "zero-width": {"0.png": png_bytes(np.zeros((28, 0), np.uint8), size=(28, 0))},
        "bomb-declared-100000x100000": {
            "0.png": png_bytes(digit, idat=zlib.compress(bytes(100)), size=(100000, 100000))
        },
        "bomb-10000x10000-full-idat": {
            "0.png": png_bytes(digit, idat=_deflate_zeros(10000 * 10001), size=(10000, 10000))
        },
        "npy-bytes-named-png": {"0.png": _npy_bytes(digits_like(1))},
        "text-chunk-bomb": {"0.png": _png_with_ztxt_bomb(digit)},
    }
    for name, files in bad.items():

        def build(env, files=files):
            folder = env.root / "pngs"
            folder.mkdir()
            for fname, data in files.items():
                (folder / fname).write_bytes(data)
            return report_args(env, folder)

        case(f"png-{name}", "png", build)

    # 16-bit PNGs: must load scaled by 65535 (mean pixel as in the source)
    rng = np.random.default_rng(3)
    sixteen = {
        "full-range": rng.integers(0, 65536, (4, 28, 28)),
        "low-values": rng.integers(0, 1000, (4, 28, 28)),
        "digit-x257": digits_like(4).astype(np.int64) * 257,
    }
    for name, arr in sixteen.items():

        def build(env, arr=arr):
            folder = env.root / "pngs"
            folder.mkdir()
            for i, img in enumerate(arr):
                (folder / f"{i}.png").write_bytes(png_bytes(img, bit_depth=16))
            return report_args(env, folder, "--n-samples", str(len(arr)))

        report = name == "full-range"
        case(
            f"png-16bit-{name}",
            "png",
            build,
            expect="success",
            mnist=report,
            api=not report,
            check=_check_png_mean(arr.mean() / 65535, report),
        )


def _check_png_mean(want: float, report: bool) -> Callable[[Env, str], None]:
    def check(env: Env, output: str) -> None:
        if report:
            check_report(kind="samples")(env, output)
        got = float(_loaded_images(env.root / "pngs").mean())
        assert abs(got - want) < 1 / 255, f"mean pixel {got:.4f}, source {want:.4f}"

    return check


def _deflate_zeros(n: int) -> bytes:
    """zlib stream of n zero bytes, built from one repeated full-flush block (fast)."""
    chunk = 1 << 20
    comp = zlib.compressobj(9)
    first = comp.compress(bytes(chunk)) + comp.flush(zlib.Z_FULL_FLUSH)
    unit = comp.compress(bytes(chunk)) + comp.flush(zlib.Z_FULL_FLUSH)
    full, rest = divmod(n, chunk)
    body = first + unit * (full - 1) if full else b""
    tail_comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    tail = tail_comp.compress(bytes(rest)) + tail_comp.flush() if rest else b""
    if not rest:  # close the stream with an empty final block
        tail = b"\x03\x00"
    crc = 1
    for _ in range(full):
        crc = zlib.adler32(bytes(chunk), crc)
    crc = zlib.adler32(bytes(rest), crc)
    return body + tail + struct.pack(">I", crc)


def _png_with_ztxt_bomb(digit: np.ndarray) -> bytes:
    good = png_bytes(digit)
    ztxt = _png_chunk(b"zTXt", b"Comment\x00\x00" + zlib.compress(bytes(50 << 20)))
    return good[:33] + ztxt + good[33:]


# 8. checkpoints: missing keys, wrong types, bad values, NaN weights --------------------------

_TOP_KEYS = REQUIRED_KEYS


def _ckpt_case(id: str, mutate: Callable[[dict], None], routes=("report",), **kw) -> None:
    for route in routes:

        def build(env, mutate=mutate, route=route):
            ck = checkpoint()
            mutate(ck)
            path = env.file("ck.pt", torch_bytes(ck))
            return report_args(env, path) if route == "report" else resume_args(env, path)

        case(f"ckpt-{id}-{route}", "checkpoint", build, **kw)


def _set(path: str, value) -> Callable[[dict], None]:
    keys = path.split(".")

    def mutate(ck: dict) -> None:
        target = ck
        for k in keys[:-1]:
            target = target[k]
        target[keys[-1]] = value() if callable(value) and not isinstance(value, type) else value

    return mutate


def _del(path: str) -> Callable[[dict], None]:
    keys = path.split(".")

    def mutate(ck: dict) -> None:
        target = ck
        for k in keys[:-1]:
            target = target[k]
        del target[keys[-1]]

    return mutate


def _checkpoint_cases() -> None:
    both = ("report", "resume")
    for key in _TOP_KEYS:
        # without its format tag a dict is a foreign file, handled elsewhere; versions are
        # informational (who wrote the file), not needed to audit or resume
        if key not in ("format", "versions"):
            # what only training needs (optimizer, RNG, history...) may be absent on report
            needed = key in ("generator", "discriminator", "config", "epoch")
            _ckpt_case(f"missing-{key}", _del(key), both if needed else ("resume",))
    for key in ("latent_dim", "image_range", "d_input_range", "d_input_shape"):
        _ckpt_case(f"missing-config.{key}", _del(f"config.{key}"))
    for key in ("batch_size", "lr", "betas", "hidden", "seed", "limit"):
        _ckpt_case(f"missing-config.{key}", _del(f"config.{key}"), ("resume",))
    wrong_types = {
        "config": ["a string", 5, None, [1, 2]],
        "epoch": [[1], "1", None, 1.5],
        "step": ["0", None, [0]],
        "generator": [7, "weights", None, [1, 2]],
        "discriminator": [7, "weights", None],
        "history": ["history", 5, [1, 2], {"epoch": 1}],
        "fixed_z": ["z", 5, [[0.0] * 64]],
        "opt_g": ["adam", 3],
        "rng": ["seed", 3],
        "versions": ["v1", 3],
    }
    for key, values in wrong_types.items():
        for value in values:
            routes = (
                ("report", "resume")
                if key in ("config", "epoch", "generator")
                else (("resume",) if key in ("opt_g", "rng", "step", "versions") else ("report",))
            )
            _ckpt_case(
                f"type-{key}-{type(value).__name__}-{_short(value)}", _set(key, value), routes
            )
    _ckpt_case(
        "type-generator-tensor-as-list",
        lambda ck: ck["generator"].update({"0.weight": ck["generator"]["0.weight"].tolist()}),
    )
    _ckpt_case("type-generator-value-str", lambda ck: ck["generator"].update({"4.bias": "zeros"}))
    _ckpt_case(
        "type-generator-int-tensor",
        lambda ck: ck["generator"].update(
            {"0.weight": ck["generator"]["0.weight"].to(torch.int64)}
        ),
    )
    config_types = {
        "latent_dim": ["64", 64.5, None, [64], True],
        "image_range": ["-1,1", [1.0], [-1.0, 0.0, 1.0], None, ["a", "b"], 1.0],
        "d_input_range": ["-1,1", [1.0], None],
        "d_input_shape": ["784", None, ["a"]],
        "g_output_shape": ["784", [-1]],
        "prior": [3, None, ["normal"]],
        "d_output": [1, ["probability"], True],
        "train_indices": ["all", 5.5, [[1, 2], [3, 4]]],
        "betas": ["0.9,0.999", [0.9]],
        "lr": ["fast", None],
        "batch_size": ["32", 0],
    }
    for key, values in config_types.items():
        for value in values:
            routes = ("resume",) if key in ("betas", "lr", "batch_size") else ("report",)
            _ckpt_case(
                f"type-config.{key}-{type(value).__name__}-{_short(value)}",
                _set(f"config.{key}", value),
                routes,
            )
    bad_values = {
        "d_output": ["maybe", "logit", ""],
        "prior": ["cauchy", "Normal", ""],
        "image_range": [
            [5.0, 7.0],
            [1.0, -1.0],
            [0.0, 0.0],
            [float("nan"), 1.0],
            [float("-inf"), float("inf")],
        ],
        "d_input_range": [[5.0, 7.0], [1.0, 1.0]],
        "latent_dim": [0, -3, 63, 65, 10**12],
        "d_input_shape": [[-1], [0], [28, 29]],
        "g_output_shape": [[0]],
    }
    for key, values in bad_values.items():
        for value in values:
            _ckpt_case(f"value-config.{key}-{_short(value)}", _set(f"config.{key}", value))
    for label, idx in (
        ("60000", [0, 60000]),
        ("minus1", [-1, 5]),
        ("1e12", [10**12]),
        ("empty", []),
        ("2d", [[0, 1], [2, 3]]),
    ):
        _ckpt_case(
            f"value-config.train_indices-{label}",
            _set("config.train_indices", lambda idx=idx: torch.tensor(idx, dtype=torch.int64)),
        )
    _ckpt_case(
        "value-config.train_indices-float",
        _set("config.train_indices", lambda: torch.arange(20, dtype=torch.float32) + 0.5),
    )
    _ckpt_case("value-epoch-negative", _set("epoch", -1), ("report", "resume"))
    _ckpt_case("value-step-negative", _set("step", -5), ("resume",))
    _ckpt_case("value-config.lr-inf", _set("config.lr", float("inf")), ("resume",), mnist=True)
    _ckpt_case("value-fixed_z-63", _set("fixed_z", lambda: torch.zeros(64, 63)), ("resume",))
    _ckpt_case(
        "shape-generator-latent-63",
        lambda ck: ck["generator"].update({"0.weight": torch.zeros(256, 63)}),
        ("report", "resume"),
    )
    _ckpt_case(
        "shape-discriminator-783",
        lambda ck: ck["discriminator"].update({"0.weight": torch.zeros(256, 783)}),
    )
    _ckpt_case(
        "keys-generator-renamed",
        lambda ck: ck.update(generator={f"net.{k}": v for k, v in ck["generator"].items()}),
    )

    def poison(net: str, key: str, value: float):
        def mutate(ck: dict) -> None:
            ck[net][key] = torch.full_like(ck[net][key], value)

        return mutate

    nan, inf = float("nan"), float("inf")
    _ckpt_case(
        "nan-generator-0.weight",
        poison("generator", "0.weight", nan),
        ("report", "resume"),
        mnist=True,
    )
    _ckpt_case("nan-generator-4.bias", poison("generator", "4.bias", nan))
    _ckpt_case("inf-generator-0.bias", poison("generator", "0.bias", inf))
    _ckpt_case("nan-discriminator-4.bias", poison("discriminator", "4.bias", nan), mnist=True)
    _ckpt_case("inf-discriminator-0.weight", poison("discriminator", "0.weight", -inf), mnist=True)
    _ckpt_case(
        "nan-discriminator-resume",
        poison("discriminator", "2.weight", nan),
        ("resume",),
        mnist=True,
    )

    # controls: the valid checkpoint reports and resumes
    def valid_report(env):
        return report_args(env, env.file("ck.pt", torch_bytes(checkpoint())))

    case(
        "ckpt-valid-report",
        "checkpoint",
        valid_report,
        expect="success",
        mnist=True,
        check=check_report(kind="ganalyze_checkpoint", n_samples=64),
    )

    def valid_resume(env):
        return resume_args(env, env.file("ck.pt", torch_bytes(checkpoint())))

    def resumed(env: Env, output: str) -> None:
        ck = torch.load(env.root / "run" / "latest.pt", weights_only=True)
        assert ck["epoch"] == 2, f"latest.pt is at epoch {ck['epoch']}"
        assert all(torch.isfinite(v).all() for v in ck["generator"].values()), "non-finite G"

    case(
        "ckpt-valid-resume", "checkpoint", valid_resume, expect="success", mnist=True, check=resumed
    )

    # training that diverges to NaN stops with an error
    for lr in ("inf", "1e30"):
        case(
            f"train-lr-{lr}",
            "checkpoint",
            lambda env, lr=lr: [
                "train",
                "--lr",
                lr,
                "--limit",
                "64",
                "--epochs",
                "1",
                "--out",
                str(env.root / "run"),
                "--data-dir",
                str(env.data),
                "--quiet",
                "--device",
                "cpu",
            ],
            mnist=True,
        )


def _short(value) -> str:
    text = "".join(c if c.isalnum() or c in ".-" else "_" for c in repr(value))
    return text.strip("_")[:16] or "empty"


# 9. entry points ------------------------------------------------------------------------------

_CALL = """
def G(z):
    {body}
"""


def _entry_cases() -> None:
    at_import = {
        "ValueError": "raise ValueError('broken at import')",
        "ImportError": "import ganalyze_no_such_module_xyz",
        "SyntaxError": "def broken(:\n    pass",
        "NameError": "undefined_name_xyz",
        "ZeroDivisionError": "1 / 0",
        "sys.exit-0": "sys.exit(0)",
        "sys.exit-3": "sys.exit(3)",
        "sys.exit-str": "sys.exit('bye')",
        "RecursionError": "def f():\n    return f()\nf()",
        "MemoryError": "raise MemoryError",
    }
    for name, body in at_import.items():
        case(
            f"entry-import-{name}",
            "entry",
            lambda env, body=body: report_args(
                env, f"{_entry_module(env, body + chr(10) + _LINEAR_MODULE)}:G"
            ),
        )
    at_call = {
        "KeyError": "raise KeyError('z')",
        "ZeroDivisionError": "return 1 / 0",
        "AssertionError": "assert False, 'nope'",
        "RuntimeError": "raise RuntimeError('cuda out of memory')",
        "StopIteration": "raise StopIteration",
        "sys.exit-0": "sys.exit(0)",
        "sys.exit-1": "sys.exit(1)",
        "GeneratorExit": "raise GeneratorExit",
        "returns-None": "return None",
        "returns-str": "return 'images'",
        "returns-dict": "return {'images': torch.zeros(len(z), 784)}",
        "returns-tuple": "return torch.zeros(len(z), 784), z",
        "returns-int": "return 7",
        "returns-generator": "return (x for x in z)",
        "returns-object-array": "return np.array([None] * len(z), dtype=object)",
        "returns-n-minus-1": "return torch.tanh(torch.randn(len(z) - 1, 784))",
        "returns-2n": "return torch.tanh(torch.randn(2 * len(z), 784))",
        "returns-0-rows": "return torch.zeros(0, 784)",
        "returns-nan": "return torch.full((len(z), 784), float('nan'))",
        "returns-half-nan": "x = torch.zeros(len(z), 784); x[::2] = float('nan'); return x",
        "returns-inf": "return torch.full((len(z), 784), float('inf'))",
        "returns-shape-2x32x32": "return torch.zeros(len(z), 2, 32, 32)",
        "returns-rgb-unequal": "x = torch.zeros(len(z), 3, 32, 32); x[:, 0] = 1; return x",
        "returns-shape-8x8": "return torch.zeros(len(z), 8, 8)",
        "returns-shape-10": "return torch.zeros(len(z), 10)",
        "returns-flat": "return torch.zeros(len(z) * 784)",
        "returns-complex": "return torch.zeros(len(z), 784, dtype=torch.complex64)",
        "returns-str-array": "return np.full((len(z), 784), 'a')",
        "returns-minus-5": "return torch.full((len(z), 784), -5.0)",
    }
    for name, body in at_call.items():
        case(
            f"entry-call-{name}",
            "entry",
            lambda env, body=body: report_args(
                env,
                f"{_entry_module(env, 'LATENT_DIM = 8' + _CALL.format(body=body))}:G",
                "--latent-dim",
                "8",
            ),
        )
    factories = {
        "factory-returns-None": "def G():\n    return None",
        "factory-returns-int": "def G():\n    return 5",
        "factory-raises": "def G():\n    raise OSError('no weights here')",
        "factory-sys-exit": "def G():\n    sys.exit(0)",
        "class-needs-args": "class G(nn.Module):\n    def __init__(self, a, b):\n"
        "        super().__init__()",
        "class-init-raises": "class G(nn.Module):\n    def __init__(self):\n"
        "        raise RuntimeError('init failed')",
        "class-not-module": "class G:\n    pass",
        "attribute-int": "G = 5",
        "attribute-str": "G = 'generator'",
        "attribute-missing": "H = 1",
    }
    for name, body in factories.items():
        case(
            f"entry-{name}",
            "entry",
            lambda env, body=body: report_args(env, f"{_entry_module(env, body)}:G"),
        )
    for spec in (
        "sys:exit",
        "builtins:exit",
        "builtins:quit",
        "os:getcwd",
        "time:time",
        "gc:collect",
        "builtins:input",
        "os:no_such_attr",
        "no_such_module_xyz:G",
    ):
        case(
            f"entry-spec-{spec.replace(':', '.')}",
            "entry",
            lambda env, spec=spec: report_args(env, spec),
        )
    case("entry-missing-file", "entry", lambda env: report_args(env, f"{env.root}/nope.py:G"))
    case(
        "entry-weights-mismatch",
        "entry",
        lambda env: report_args(
            env,
            f"{_entry_module(env, _LINEAR_MODULE)}:G",
            "--weights",
            str(env.file("w.pt", torch_bytes(g_state()))),
        ),
    )


# 10. options ------------------------------------------------------------------------------------


def _ckpt_file(env: Env) -> Path:
    return env.file("ck.pt", torch_bytes(checkpoint()))


def _option_cases() -> None:
    for label, seed in (("2e64", 2**64), ("2e64+1", 2**64 + 1), ("1e30", 10**30), ("minus1", -1)):
        case(
            f"option-seed-{label}",
            "options",
            lambda env, seed=seed: report_args(env, _ckpt_file(env), "--seed", str(seed)),
        )
    case(
        "option-seed-2e64-minus1",
        "options",
        lambda env: report_args(env, _ckpt_file(env), "--seed", str(2**64 - 1)),
    )
    case(
        "option-seed-2e32-minus1",
        "options",
        lambda env: report_args(env, _ckpt_file(env), "--seed", str(2**32 - 1)),
        expect="success",
        mnist=True,
        check=check_report(seed=2**32 - 1),
    )
    for b in ("1000000000", "1000000000000"):
        case(
            f"option-bootstrap-{b}",
            "options",
            lambda env, b=b: report_args(env, _ckpt_file(env), "--bootstrap", b),
        )
    case(
        "option-n-samples-0",
        "options",
        lambda env: report_args(env, _ckpt_file(env), "--n-samples", "0"),
    )
    case(
        "option-n-samples-minus5",
        "options",
        lambda env: report_args(env, _ckpt_file(env), "--n-samples", "-5"),
    )
    case(
        "option-device-tpu",
        "options",
        lambda env: report_args(env, _ckpt_file(env), "--device", "tpu"),
    )
    case(
        "option-device-cuda",
        "options",
        lambda env: report_args(env, _ckpt_file(env), "--device", "cuda"),
        skip_if=lambda: "a CUDA device is present" if torch.cuda.is_available() else None,
    )
    case(
        "option-analyses-unknown",
        "options",
        lambda env: report_args(env, _ckpt_file(env), analyses="modes,nonsense"),
    )
    case(
        "option-latent-dim-63",
        "options",
        lambda env: report_args(env, _ckpt_file(env), "--latent-dim", "63"),
    )
    case(
        "option-interp-digits-garbage",
        "options",
        lambda env: report_args(env, _ckpt_file(env), "--interp-digits", "nine,seven"),
    )
    # tiny n: every analysis runs or is skipped with its reason; the report is written
    for n in (1, 2, 3):
        case(
            f"option-n-samples-{n}",
            "options",
            lambda env, n=n: report_args(
                env, _ckpt_file(env), "--n-samples", str(n), analyses="modes,memorization"
            ),
            expect="success",
            mnist=True,
            check=check_report(n_samples=n),
        )
    case(
        "option-npy-2-images",
        "options",
        lambda env: report_args(
            env, env.file("x.npy", _npy_bytes(digits_like(2))), "--n-samples", "2"
        ),
        expect="success",
        mnist=True,
        check=check_report(n_samples=2),
    )

    def members(n: int):
        def check(env: Env, output: str) -> None:
            check_report()(env, output)
            member_set = load_meta(env)["member_set"]
            assert member_set.startswith(f"{n} MNIST"), member_set

        return check

    case(
        "option-train-indices-20",
        "options",
        lambda env: report_args(
            env,
            _ckpt_file(env),
            "--train-indices",
            str(env.file("idx.npy", _npy_bytes(np.arange(20, dtype=np.int64)))),
            analyses="modes,memorization",
        ),
        expect="success",
        mnist=True,
        check=members(20),
    )
    bad_indices = {
        "60000.npy": _npy_bytes(np.array([0, 60000])),
        "minus1.npy": _npy_bytes(np.array([-1, 3])),
        "1e12.txt": b"1000000000000\n",
        "float.txt": b"1.5 2.5\n",
        "garbage.txt": b"these are not indices\n",
        "2d.npy": _npy_bytes(np.zeros((2, 2), np.int64) - 1),
        "empty.txt": b"",
        "bool.npy": _npy_bytes(np.ones(5, bool)),
        "float.npy": _npy_bytes(np.array([0.5, 1.5])),
    }
    for name, data in bad_indices.items():
        case(
            f"option-train-indices-{name}",
            "options",
            lambda env, name=name, data=data: report_args(
                env, _ckpt_file(env), "--train-indices", str(env.file("idx_" + name, data))
            ),
        )
    case(
        "option-train-indices-canary-npy",
        "options",
        lambda env: report_args(
            env,
            _ckpt_file(env),
            "--train-indices",
            str(
                env.file(
                    "idx.npy",
                    _npy_header("{'descr': '|O', 'fortran_order': False, 'shape': (1,), }")
                    + pickle.dumps([payload("open", env)]),
                )
            ),
        ),
    )


# 11. real subprocesses: devices, FIFOs, memory, exit codes -------------------------------------


def _sub(id: str, cls: str, build, **kw) -> None:
    case(id, cls, build, subprocess=True, **kw)


def _npz_bomb(env: Env, rows: int) -> Path:
    """A compressed npz whose single member inflates to rows x 784 bytes of uint8 zeros."""
    npy_len = rows * 784
    header = _npy_header(f"{{'descr': '|u1', 'fortran_order': False, 'shape': ({rows}, 784), }}")
    body = _deflate_zeros(npy_len)[2:-4]  # raw deflate without the zlib wrapper
    # the raw stream must start with the header's bytes: compress them separately (a stored block)
    stored = b"\x00" + struct.pack("<HH", len(header), 0xFFFF ^ len(header)) + header
    deflated = stored + body
    crc = zlib.crc32(header)
    zero = bytes(1 << 20)
    full, rest = divmod(npy_len, len(zero))
    for _ in range(full):
        crc = zlib.crc32(zero, crc)
    crc = zlib.crc32(zero[:rest], crc)
    size = len(header) + npy_len
    name = b"images.npy"
    local = (
        struct.pack(
            "<IHHHHHIIIHH", 0x04034B50, 20, 0, 8, 0, 0, crc, len(deflated), size, len(name), 0
        )
        + name
    )
    central = (
        struct.pack(
            "<IHHHHHHIIIHHHHHII",
            0x02014B50,
            20,
            20,
            0,
            8,
            0,
            0,
            crc,
            len(deflated),
            size,
            len(name),
            0,
            0,
            0,
            0,
            0,
            0,
        )
        + name
    )
    cd_offset = len(local) + len(deflated)
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 1, 1, len(central), cd_offset, 0)
    return env.file("bomb.npz", local + deflated + central + end)


def _subprocess_cases() -> None:
    _sub("dev-zero-spec", "special", lambda env: report_args(env, "/dev/zero"))
    _sub("dev-urandom-spec", "special", lambda env: report_args(env, "/dev/urandom"))

    def link(target: str, name: str):
        def build(env):
            os.symlink(target, env.root / name)
            return report_args(env, env.root / name)

        return build

    _sub("symlink-to-dev-zero-pt", "special", link("/dev/zero", "zero.pt"))
    _sub("symlink-to-dev-urandom-npz", "special", link("/dev/urandom", "random.npz"))
    _sub(
        "dev-zero-as-discriminator",
        "special",
        lambda env: report_args(
            env, env.file("g.pt", torch_bytes(g_state())), "--discriminator", "/dev/zero"
        ),
    )
    _sub("dev-zero-as-resume", "special", lambda env: resume_args(env, Path("/dev/zero")))

    def fifo(name: str, role: str = "spec"):
        def build(env):
            path = env.root / name
            path.parent.mkdir(parents=True, exist_ok=True)
            os.mkfifo(path)
            if role == "spec":
                return report_args(env, path.parent if name.endswith(".png") else path)
            if role == "train-indices":
                return report_args(
                    env, env.file("ck.pt", torch_bytes(checkpoint())), "--train-indices", str(path)
                )
            return report_args(
                env, env.file("g.pt", torch_bytes(g_state())), "--discriminator", str(path)
            )

        return build

    _sub("fifo-spec-pt", "special", fifo("pipe.pt"), timeout=45)
    _sub("fifo-spec-npy", "special", fifo("pipe.npy"), timeout=45)
    _sub("fifo-png-in-folder", "special", fifo("pngs/0.png"), timeout=45)
    _sub("fifo-as-discriminator", "special", fifo("pipe.pt", "discriminator"), timeout=45)
    _sub("fifo-as-train-indices", "special", fifo("idx.npy", "train-indices"), timeout=45)
    _sub(
        "npz-bomb-784MB",
        "npy",
        lambda env: report_args(env, _npz_bomb(env, 1_000_000), "--n-samples", "200"),
        expect="success",  # the subset is taken while inflating: bounded memory, a real audit
        check=check_report(n_samples=200),
        mnist=True,
    )
    _sub(
        "npy-header-1e12-elements",
        "npy",
        lambda env: report_args(
            env,
            env.file(
                "huge.npy",
                _npy_header("{'descr': '<f4', 'fortran_order': False, 'shape': (1000000000000,), }")
                + bytes(4096),
            ),
        ),
    )
    _sub(
        "npy-header-1e12-images",
        "npy",
        lambda env: report_args(
            env,
            env.file(
                "huge.npy",
                _npy_header(
                    "{'descr': '|u1', 'fortran_order': False, 'shape': (1275510204, 784), }"
                )
                + bytes(784 * 4),
            ),
        ),
    )
    _sub(
        "option-n-samples-5e7",
        "options",
        lambda env: report_args(env, _ckpt_file(env), "--n-samples", "50000000"),
    )
    _sub(
        "option-latent-dim-1e8",
        "options",
        lambda env: report_args(env, _ckpt_file(env), "--latent-dim", "100000000"),
    )
    _sub("entry-spec-os.abort", "entry", lambda env: report_args(env, "os:abort"))
    _sub(
        "entry-import-KeyboardInterrupt",
        "entry",
        lambda env: report_args(
            env, f"{_entry_module(env, 'raise KeyboardInterrupt' + chr(10) + _LINEAR_MODULE)}:G"
        ),
    )
    _sub(
        "entry-call-KeyboardInterrupt",
        "entry",
        lambda env: report_args(
            env,
            f"{_entry_module(env, _CALL.format(body='raise KeyboardInterrupt'))}:G",
            "--latent-dim",
            "8",
        ),
    )
    _sub(
        "entry-call-sys.exit-0-process",
        "entry",
        lambda env: report_args(
            env, f"{_entry_module(env, _CALL.format(body='sys.exit(0)'))}:G", "--latent-dim", "8"
        ),
    )


def _hang_cases() -> None:
    """User code that never returns is stopped by --timeout (real processes, wall-clock bound)."""
    hangs = {
        "import-sleep": ("time.sleep(10**6)\n" + _LINEAR_MODULE, []),
        "call-sleep": (_CALL.format(body="time.sleep(10**6)"), ["--latent-dim", "8"]),
        "call-busy-loop": (_CALL.format(body="while True:\n        pass"), ["--latent-dim", "8"]),
    }
    for name, (body, extra) in hangs.items():
        _sub(
            f"entry-{name}-timeout-2s",
            "entry",
            lambda env, body=body, extra=extra: report_args(
                env, f"{_entry_module(env, body)}:G", *extra, "--timeout", "2"
            ),
            timeout=60,
        )


def build_corpus() -> list[Case]:
    if not CASES:
        for builder in (
            _pickle_cases,
            _trust_pickle_cases,
            _pt2_cases,
            _ts_cases,
            _corrupt_cases,
            _special_cases,
            _npy_cases,
            _png_cases,
            _checkpoint_cases,
            _entry_cases,
            _option_cases,
            _subprocess_cases,
            _hang_cases,
        ):
            builder()
        ids = [c.id for c in CASES]
        dupes = {i for i in ids if ids.count(i) > 1}
        assert not dupes, f"duplicate case ids: {sorted(dupes)}"
    return CASES


def cases(*classes: str, subprocess: bool = False) -> list[Case]:
    return [c for c in build_corpus() if c.cls in classes and c.subprocess == subprocess]
