"""Torch files read safely: what an archive would unpickle is checked before torch reads it.

ganalyze promises that nothing in a file it is handed is unpickled beyond tensors and plain data.
``torch.load(weights_only=True)`` keeps that promise for ``torch.save`` files, but the other two
archive formats have paths that unpickle whole objects:

- torch.export (.pt2): in torch 2.14, ``torch.export.load`` falls back to plain pickle for the
  sample inputs (``data/sample_inputs/*.pt``), for legacy weight and constant files, and for a
  weight or constant whose payload config says ``use_pickle``; custom objects go through
  ``torch._C._pickle_load_obj`` or ``pickle.loads``; ``data/aotinductor/`` holds compiled native
  code that it loads as a shared library.
- TorchScript: its pickles (``data.pkl``, ``constants.pkl``) may name custom C++ classes
  (``torch.classes``) whose ``__setstate__`` runs native code.

So every file is read into memory once (only regular files, with its size checked), inspected,
and the same bytes are handed to torch (no second read a swapped file could exploit):

- a plain torch file goes to ``torch.load(weights_only=True)``;
- in a .pt2 archive, every member torch would unpickle must load under the weights-only
  unpickler, no payload may be marked ``use_pickle``, and there may be no custom-object
  constants and no native code;
- in a TorchScript archive, every pickle is scanned without running it: only the opcodes the
  weights-only unpickler implements, and only globals from its allowlist or TorchScript's own
  compiled classes (``__torch__.*``, never ``torch.classes``).

``trust_pickle=True`` turns every check off and loads whole objects (which may run code).
"""

from __future__ import annotations

import io
import json
import logging
import pickle
import pickletools
import zipfile
from pathlib import Path
from typing import Any

import torch

from ganalyze._guard import check_allocation, regular_file
from ganalyze.errors import LoaderError, UnsafeFileError

logger = logging.getLogger(__name__)

# The opcodes torch's weights-only unpickler implements (torch/_weights_only_unpickler.py).
_SAFE_OPCODES = frozenset(
    [
        "PROTO",
        "STOP",
        "GLOBAL",
        "NEWOBJ",
        "REDUCE",
        "BUILD",
        "APPEND",
        "APPENDS",
        "SETITEM",
        "SETITEMS",
        "MARK",
        "TUPLE",
        "TUPLE1",
        "TUPLE2",
        "TUPLE3",
        "NONE",
        "NEWFALSE",
        "NEWTRUE",
        "EMPTY_TUPLE",
        "EMPTY_LIST",
        "EMPTY_DICT",
        "EMPTY_SET",
        "BINPERSID",
        "BININT",
        "BININT1",
        "BININT2",
        "BINFLOAT",
        "BINGET",
        "LONG_BINGET",
        "BINPUT",
        "LONG_BINPUT",
        "BINUNICODE",
        "SHORT_BINSTRING",
        "LONG1",
    ]
)
_TORCHSCRIPT_PREFIXES = ("__torch__.", "torch.jit._pickle.")
_NATIVE_SUFFIXES = (".so", ".dll", ".dylib", ".pyd")
_PICKLED_SUFFIXES = (".pt", ".pth", ".pkl", ".pickle")
_TRUST_HINT = (
    "ganalyze reads only tensors and plain data from the files it is handed. Hand it the "
    "model another way: a Python entry point with a state_dict (`module:Class --weights FILE`, "
    "e.g. path/to/model.py:Class), a TorchScript file (torch.jit.save), or a torch.export "
    "program (torch.export.save) whose sample inputs are tensors. Only if you "
    "trust the file and its author, --trust-pickle loads it as is (that may run code)."
)


def read_bytes(path: str | Path, what: str) -> bytes:
    """The whole of a regular file, after checking that memory can hold it."""
    path = regular_file(path, what)
    size = path.stat().st_size
    check_allocation(2 * size, f"Reading {what} {path} ({size} bytes)", "Use a smaller file.")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise LoaderError(f"Could not read {what} {path}: {exc.strerror}.") from None


def archive_kind(data: bytes, name: str = "") -> str:
    """'torchscript', 'export', 'safetensors' or 'torch' (torch.save, zip or legacy) by the
    contents (a .safetensors name counts too, so that a damaged one is read as what it claims)."""
    if name.lower().endswith(".safetensors") or is_safetensors(data):
        return "safetensors"
    if not data.startswith(b"PK"):
        return "torch"
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            names = zf.namelist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        return "torch"
    if any(n.endswith("/archive_format") or n == "archive_format" for n in names):
        return "export"
    if "serialized_exported_program.json" in names:
        return "export"  # the format of torch 2.7 and before
    if any("/code/" in n for n in names) and any(n.endswith("constants.pkl") for n in names):
        return "torchscript"
    if name.endswith(".pt2"):
        return "export"
    return "torch"


def torch_weights(data: bytes, source: str) -> Any:
    """``torch.load(weights_only=True)`` on bytes; a refusal names what would have been run."""
    try:
        return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        # what was refused is judged from the bytes (torch's message is not an interface)
        plain = _is_pickle(data) and not _is_legacy_torch(data)
        found = scan_pickle(data) if plain else _refused_in_torch_file(data)
        if plain or found:
            detail = ("a plain pickle: " if plain else "") + ", ".join(found[:3])
            raise UnsafeFileError(
                f"{source} holds pickled Python objects ({detail}), which ganalyze does not "
                f"unpickle: loading them could run arbitrary code. {_TRUST_HINT}",
                detail=detail,
            ) from None
        raise LoaderError(f"Could not read {source} as a torch file: {_first_line(exc)}.") from None
    except (RuntimeError, EOFError, OSError, ValueError, KeyError, IndexError, TypeError) as exc:
        raise LoaderError(
            f"Could not read {source} as a torch file: {_first_line(exc)}. Expected a file "
            "written by torch.save (a checkpoint or a state_dict)."
        ) from None


_SAFETENSORS_DTYPES = (
    torch.float16,
    torch.bfloat16,
    torch.float32,
    torch.float64,
    torch.uint8,
    torch.int8,
    torch.int16,
    torch.int32,
    torch.int64,
)


def is_safetensors(data: bytes) -> bool:
    """A safetensors file by its first bytes: a little-endian u64 header length that fits in
    the file, then a JSON object."""
    if len(data) < 10:
        return False
    size = int.from_bytes(data[:8], "little")
    return 2 <= size <= len(data) - 8 and data[8:9] == b"{"


def safetensors_weights(data: bytes, source: str) -> dict[str, torch.Tensor]:
    """A flat {name: tensor} from safetensors bytes: a header and raw tensor data, nothing that
    can run code. A damaged or hostile file (truncated, bad or oversized header, offsets outside
    the data, an unknown dtype) is one LoaderError; memory stays bounded by the file's size,
    which :func:`read_bytes` checked (safetensors also caps the header at 100 MB)."""
    from safetensors import SafetensorError
    from safetensors.torch import load

    fix = ("Expected a file written by safetensors.torch.save_file (a state_dict of real "
           "tensors); write it again.")  # fmt: skip
    try:
        state = load(data)
    except (SafetensorError, ValueError, TypeError, RuntimeError, OverflowError) as exc:
        raise LoaderError(
            f"Could not read {source} as a safetensors file: {_first_line(exc)}. {fix}"
        ) from None
    bad = {k: str(v.dtype).replace("torch.", "") for k, v in state.items()
           if v.dtype not in _SAFETENSORS_DTYPES}  # fmt: skip
    if bad:
        shown = ", ".join(f"{k} ({t})" for k, t in list(bad.items())[:4])
        raise LoaderError(
            f"{source} holds {len(bad)} tensors of a dtype a model's weights do not have: "
            f"{shown}; expected float16, bfloat16, float32, float64 or integer tensors. {fix}"
        )
    return state


def trusted_load(data: bytes, source: str) -> Any:
    """Whole objects, as the user asked with --trust-pickle (a torch file or a plain pickle)."""
    logger.warning("--trust-pickle: unpickling %s with weights_only=False", source)
    if data.startswith(b"PK") or _is_legacy_torch(data):  # torch.save, zip or legacy
        try:
            return torch.load(io.BytesIO(data), map_location="cpu", weights_only=False)
        except RuntimeError as exc:
            raise LoaderError(f"Could not read {source}: {_first_line(exc)}.") from None
    try:  # pickle.dump of an object, not torch.save
        return pickle.loads(data)
    except Exception as exc:  # a trusted pickle may raise anything while it is rebuilt
        raise LoaderError(
            f"Could not read {source} as a torch file or a pickle: "
            f"{type(exc).__name__}: {_first_line(exc)}."
        ) from None


def check_export(data: bytes, source: str) -> None:
    """Refuse a torch.export archive that would make torch unpickle objects or load code."""
    problems: list[str] = []
    with _zip(data, source) as zf:
        infos = zf.infolist()
        _check_declared_sizes(infos, source)
        for info in infos:
            name = info.filename
            base = name.rsplit("/", 1)[-1]
            if "/aotinductor/" in f"/{name}" or name.endswith(_NATIVE_SUFFIXES):
                problems.append(f"{name} is compiled native code")
            elif base.startswith(("custom_obj", "opaque_obj")):
                problems.append(f"{name} is a pickled custom object")
            elif name.endswith("_config.json"):
                problems += _pickled_payloads(_read(zf, info, source), name)
            elif _torch_unpickles(name):
                try:
                    torch_weights(_read(zf, info, source), f"{source} member {name}")
                except UnsafeFileError as exc:
                    problems.append(f"{name} holds pickled objects ({exc.detail})")
                except LoaderError:
                    problems.append(f"{name} is not a torch file that loads with weights only")
    if problems:
        raise UnsafeFileError(
            f"{source} is a torch.export archive that would run code when loaded: "
            f"{'; '.join(problems[:4])}{' ...' if len(problems) > 4 else ''}. {_TRUST_HINT}"
        )


def check_torchscript(data: bytes, source: str) -> None:
    """Refuse a TorchScript archive whose pickles need more than tensors and compiled classes."""
    allowed = _allowed_globals()
    problems: list[str] = []
    with _zip(data, source) as zf:
        infos = zf.infolist()
        _check_declared_sizes(infos, source)
        for info in infos:
            name = info.filename
            if name.endswith(_NATIVE_SUFFIXES):
                problems.append(f"{name} is compiled native code")
            elif name.endswith(("pkl", ".pickle")):
                found = _scan_pickle(_read(zf, info, source), allowed, True)
                problems += [f"{name}: {p}" for p in found]
    if problems:
        raise UnsafeFileError(
            f"{source} is a TorchScript archive whose pickles need more than tensors and "
            f"TorchScript classes: {'; '.join(problems[:4])}. {_TRUST_HINT}"
        )


def scan_pickle(data: bytes, torchscript: bool = False) -> list[str]:
    """What in a pickle the weights-only unpickler would refuse, found without running it."""
    return _scan_pickle(data, _allowed_globals(), torchscript)


def _scan_pickle(data: bytes, allowed: frozenset[str], torchscript: bool) -> list[str]:
    found: dict[str, None] = {}  # distinct findings, in order
    try:
        for op, arg, _pos in pickletools.genops(data):
            if op.name not in _SAFE_OPCODES:
                found[f"opcode {op.name}"] = None
            elif op.name == "GLOBAL":
                name = str(arg).replace(" ", ".")
                if not _global_ok(name, allowed, torchscript):
                    found[f"global {name}"] = None
    except (ValueError, pickle.UnpicklingError, EOFError, IndexError, OverflowError) as exc:
        found[f"not a valid pickle ({_first_line(exc)})"] = None
    return list(found)


def _is_pickle(data: bytes) -> bool:
    """A whole, valid pickle (of any protocol), as ``pickle.dump`` writes it."""
    findings = scan_pickle(data) if data[:1] == b"\x80" else ["not a pickle"]
    return not any(f.startswith("not a") for f in findings)


_TORCH_MAGIC = 0x1950A86A20F9469CFC6C  # the first pickle of a legacy torch.save file


def _is_legacy_torch(data: bytes) -> bool:
    """A torch.save file of the legacy (pre-zip) format: its first pickle is torch's magic
    number."""
    try:
        ops = [(op.name, arg) for op, arg, _pos in pickletools.genops(data[:64])]
    except (ValueError, pickle.UnpicklingError, EOFError, IndexError, OverflowError):
        return False
    return ("LONG1", _TORCH_MAGIC) in ops


def _leading_pickles(data: bytes, count: int) -> list[bytes]:
    """The first ``count`` whole pickles of a stream of pickles (a legacy torch file)."""
    fh, out = io.BytesIO(data), []
    for _ in range(count):
        start = fh.tell()
        try:
            for _op in pickletools.genops(fh):
                pass
        except (ValueError, pickle.UnpicklingError, EOFError, IndexError, OverflowError):
            break
        out.append(data[start : fh.tell()])
    return out


def _refused_in_torch_file(data: bytes) -> list[str]:
    """The globals and opcodes outside the weights-only unpickler's that a torch file's pickles
    name: a zip file's ``*.pkl`` members, or a legacy file's four leading pickles (magic
    number, protocol, system info, the object)."""
    if data.startswith(b"PK"):
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as zf:
                pickles = [zf.read(i) for i in zf.infolist() if i.filename.endswith(".pkl")]
        except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError):
            return []
    else:
        pickles = _leading_pickles(data, 4)
    allowed = _allowed_globals()
    found: dict[str, None] = {}
    for blob in pickles:
        found.update(
            (f, None) for f in _scan_pickle(blob, allowed, False) if not f.startswith("not a")
        )
    return list(found)


def _global_ok(name: str, allowed: frozenset[str], torchscript: bool) -> bool:
    if name in allowed:
        return True
    if not torchscript or "torch.classes" in name or "torch.classes" in name.replace("__", ""):
        return False
    return name.startswith(_TORCHSCRIPT_PREFIXES)


def _allowed_globals() -> frozenset[str]:
    from torch._weights_only_unpickler import _get_allowed_globals

    return frozenset(_get_allowed_globals())


def _torch_unpickles(name: str) -> bool:
    """Members that torch.export.load hands to torch.load (with a pickle fallback)."""
    return (
        "/sample_inputs/" in f"/{name}"
        or name.startswith("serialized_")
        and name.endswith(".pt")
        or name.endswith(_PICKLED_SUFFIXES)
    )


def _pickled_payloads(raw: bytes, name: str) -> list[str]:
    try:
        config = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return [f"{name} is not valid JSON"]
    problems = []
    for fqn, entry in _payload_entries(config):
        if entry.get("use_pickle"):
            problems.append(f"{name} marks {fqn} as use_pickle (a pickled payload)")
        path_name = str(entry.get("path_name", ""))
        if path_name.startswith(("custom_obj", "opaque_obj")):
            problems.append(f"{name} names the custom object {path_name}")
    return problems


def _payload_entries(config: Any) -> list[tuple[str, dict]]:
    entries = config.get("config", config) if isinstance(config, dict) else {}
    if not isinstance(entries, dict):
        return [("the config", {"use_pickle": True})]  # not the shape torch writes: refuse
    return [(str(k), v) for k, v in entries.items() if isinstance(v, dict)]


def _read(zf: zipfile.ZipFile, info: zipfile.ZipInfo, source: str) -> bytes:
    try:
        return zf.read(info)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as exc:
        raise LoaderError(
            f"{source} is damaged: its member {info.filename} cannot be read ({exc}). "
            "Expected an intact archive as torch wrote it."
        ) from None
    except NotImplementedError as exc:  # an unknown compression method
        raise LoaderError(f"{source}: member {info.filename} cannot be read ({exc}).") from None


def _check_declared_sizes(infos: list[zipfile.ZipInfo], source: str) -> None:
    total = sum(i.file_size for i in infos)
    check_allocation(total, f"Unpacking {source} ({len(infos)} members)", "Use a smaller file.")


def _zip(data: bytes, source: str) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise LoaderError(f"{source} is not a readable zip archive: {exc}.") from None


def _first_line(exc: BaseException) -> str:
    lines = [ln for ln in str(exc).splitlines() if ln.strip() and "weights_only" not in ln]
    return lines[0].strip() if lines else type(exc).__name__
