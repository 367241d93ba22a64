"""Generators from torch files: ganalyze checkpoints, bare state_dicts, TorchScript, torch.export.

Nothing is unpickled beyond tensors and plain data: plain torch files go through
``torch.load(weights_only=True)``, archives are inspected first (:mod:`.archives`); a whole
pickled object is refused unless the user passes ``trust_pickle``.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import math
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ganalyze.errors import CheckpointError, LoaderError
from ganalyze.generators.archives import (
    archive_kind,
    check_export,
    check_torchscript,
    read_bytes,
    safetensors_weights,
    torch_weights,
    trusted_load,
)
from ganalyze.generators.base import Discriminator, Generator
from ganalyze.generators.latents import infer_latent

logger = logging.getLogger(__name__)

REFERENCE_KEYS = {"0.weight", "0.bias", "2.weight", "2.bias", "4.weight", "4.bias"}
_G_KEYS = ("generator", "G", "netG", "gen", "g")
_D_KEYS = ("discriminator", "D", "netD", "disc", "d")


def load_torch_file(
    path: Path, trust_pickle: bool = False, what: str = "generator", device: Any = "cpu"
) -> tuple[str, Any, str]:
    """(kind, object, sha256) of a torch file: 'torchscript' and a module, 'export' and an
    ExportedProgram, 'safetensors' and a flat state_dict, or 'torch' and what ``torch.load``
    returned.

    The file is read once and inspected before torch deserializes anything (see
    :mod:`ganalyze.generators.archives`); ``trust_pickle`` skips the inspection.
    """
    data = read_bytes(path, what)
    source = str(path) if what == "generator" else f"{what} {path}"
    kind, digest = archive_kind(data, Path(path).name), hashlib.sha256(data).hexdigest()
    if kind == "safetensors":  # no code in the format: --trust-pickle changes nothing
        return kind, safetensors_weights(data, source), digest
    if kind == "torchscript":
        if not trust_pickle:
            check_torchscript(data, source)
        try:
            module = torch.jit.load(io.BytesIO(data), map_location=device).eval()
        except Exception as exc:  # TorchScript raises many types for foreign files
            raise LoaderError(f"Could not load TorchScript file {source}: {_line(exc)}") from None
        return kind, module, digest
    if kind == "export":
        if not trust_pickle:
            check_export(data, source)
        try:
            with _quiet("torch.export"), _quiet("torch._export"):
                program = torch.export.load(io.BytesIO(data))
        except Exception as exc:  # torch.export raises many types for foreign files
            raise LoaderError(
                f"Could not load torch.export program {source}: {_line(exc)}"
            ) from None
        return kind, program, digest
    obj = trusted_load(data, source) if trust_pickle else torch_weights(data, source)
    return "torch", obj, digest


def safe_load(path: Path, trust_pickle: bool = False, what: str = "generator") -> Any:
    """A torch or safetensors file of tensors and plain data (a checkpoint or state_dict); an
    archive of a whole model (TorchScript, torch.export) is refused here with a message saying
    so."""
    return load_state_file(path, trust_pickle, what)[0]


def load_state_file(path: Path, trust_pickle: bool = False, what: str = "generator"
                    ) -> tuple[Any, str]:  # fmt: skip
    """:func:`safe_load` and the file's sha256."""
    kind, obj, digest = load_torch_file(path, trust_pickle, what)
    if kind not in ("torch", "safetensors"):
        name = "a TorchScript module" if kind == "torchscript" else "a torch.export program"
        raise LoaderError(
            f"{what} {path} is {name}; expected a state_dict (torch.save or safetensors). "
            "Pass the module itself as the spec instead."
        )
    return obj, digest


@contextlib.contextmanager
def _quiet(name: str):
    """Silence a torch logger that reports a foreign file with a traceback."""
    log = logging.getLogger(name)
    level, log.level = log.level, logging.CRITICAL
    try:
        yield
    finally:
        log.setLevel(level)


def _line(exc: BaseException) -> str:
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


def is_reference_state_dict(obj: Any) -> bool:
    return (
        isinstance(obj, dict)
        and set(obj) == REFERENCE_KEYS
        and all(torch.is_tensor(v) for v in obj.values())
    )


def _check_chain(state: dict, what: str) -> None:
    from reference_gan.schema import mlp_chain_error

    problem = mlp_chain_error(state)
    if problem:
        raise LoaderError(
            f"The {what} state_dict does not fit the reference architecture (MLP "
            f"64-256-256-784): {problem}."
        )


def reference_generator(state: dict) -> nn.Sequential:
    """The study's G with the sizes that the state_dict's shapes imply."""
    from reference_gan.model import make_generator

    _check_chain(state, "generator")
    hidden, latent = state["0.weight"].shape
    image = state["4.weight"].shape[0]
    g = make_generator(latent, hidden, image)
    _load_strict(g, state, "generator")
    return g.eval()


def reference_discriminator(state: dict) -> nn.Sequential:
    from reference_gan.model import make_discriminator

    _check_chain(state, "discriminator")
    hidden, image = state["0.weight"].shape
    d = make_discriminator(hidden, image)
    _load_strict(d, state, "discriminator")
    return d.eval()


def _load_strict(model: nn.Module, state: dict, what: str) -> None:
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise LoaderError(
            f"The {what} state_dict does not fit the reference architecture "
            f"(MLP 64-256-256-784): {str(exc).splitlines()[0]}"
        ) from None


def _module_fn(module: nn.Module, device: torch.device):
    module = module.to(device).eval()
    return lambda *inputs: module(*inputs)


def from_torch_object(obj: Any, path: Path, device: torch.device) -> Generator:
    """A generator from what ``torch.load`` returned."""
    from reference_gan.checkpoint import FORMAT

    if isinstance(obj, dict) and obj.get("format") == FORMAT:
        return _from_ganalyze_checkpoint(obj, path, device)
    if isinstance(obj, dict) and "format" in obj and "config" in obj:
        raise CheckpointError(
            f"{path} is a checkpoint of format {repr(obj['format'])[:60]}; ganalyze reads "
            f"format {FORMAT!r}. Write it with this version's `ganalyze train`, or pass the "
            "generator's state_dict instead."
        )
    if isinstance(obj, nn.Module) or callable(obj) and not isinstance(obj, dict):
        # a whole pickled object: only reachable with trust_pickle
        return Generator(
            "pickled_module",
            str(path),
            fn=_module_fn(obj, device),
            latent_dim=infer_latent_dim(obj),
            device=device,
            module=obj,
        )
    g_state = obj if is_reference_state_dict(obj) else None
    d_state = None
    if g_state is None and isinstance(obj, dict):
        g_state = next((obj[k] for k in _G_KEYS if is_reference_state_dict(obj.get(k))), None)
        d_state = next((obj[k] for k in _D_KEYS if is_reference_state_dict(obj.get(k))), None)
    if g_state is None:
        found = sorted(map(str, obj))[:12] if isinstance(obj, dict) else type(obj).__name__
        raise LoaderError(
            f"{path} is a torch file, but not a generator ganalyze recognises (found {found}). "
            "Expected a `ganalyze train` checkpoint or a state_dict of the reference "
            "architecture (keys 0.weight ... 4.bias). For another architecture use a Python "
            "entry point `file.py:Class --weights FILE`, TorchScript or torch.export."
        )
    g = reference_generator(g_state)
    gen = Generator(
        "state_dict",
        str(path),
        fn=_module_fn(g, device),
        latent_dim=g[0].in_features,
        device=device,
        latent_source=f"the reference MLP's first layer ({g[0].in_features} inputs)",
    )
    if d_state is not None:
        gen.discriminator = Discriminator(
            reference_discriminator(d_state).to(device), None, None, device=device
        )
    return gen


def _from_ganalyze_checkpoint(ck: dict, path: Path, device: torch.device) -> Generator:
    from reference_gan.schema import validate

    validate(ck, str(path))
    cfg = ck["config"]
    g = reference_generator(ck["generator"])
    d = reference_discriminator(ck["discriminator"]).to(device)
    img_range = ",".join(f"{v:g}" for v in cfg["image_range"])
    gen = Generator(
        "ganalyze_checkpoint",
        str(path),
        fn=_module_fn(g, device),
        latent_dim=int(cfg["latent_dim"]),
        prior=cfg.get("prior", "normal"),
        output_range=img_range,
        range_source="checkpoint",
        device=device,
        latent_source="the checkpoint's config",
    )
    d_range = ",".join(f"{v:g}" for v in cfg["d_input_range"])
    gen.discriminator = Discriminator(
        d, d_range, tuple(cfg["d_input_shape"]), output=cfg.get("d_output"), device=device
    )
    gen.info.update(
        history=list(ck.get("history", [])),
        train_indices=cfg.get("train_indices"),
        epoch=int(ck["epoch"]),
        config={k: v for k, v in cfg.items() if k != "train_indices"},
        fixed_z=ck.get("fixed_z"),
        run_dir=_run_dir(path),
    )
    return gen


def _run_dir(path: Path) -> Path:
    path = path.resolve()
    return path.parent.parent if path.parent.name == "checkpoints" else path.parent


def infer_latent_dim(module: Any) -> int | None:
    """``latent_dim`` (or nz / z_dim) if the module has one, else the first Linear's inputs."""
    for attr in ("latent_dim", "nz", "z_dim", "latent_size"):
        value = getattr(module, attr, None)
        if isinstance(value, int) and value > 0:
            return value
    if isinstance(module, nn.Module):
        for m in module.modules():
            if isinstance(m, nn.Linear):
                return m.in_features
            if isinstance(m, nn.Conv2d | nn.ConvTranspose2d):
                return None
    return None


def from_torchscript(module: Any, path: Path, device: torch.device) -> Generator:
    found = infer_latent(module)
    latent, shape, source = found if found is not None else (None, None, None)
    if latent is None:
        first = next((p for p in module.parameters() if p.ndim == 2), None)
        latent = int(first.shape[1]) if first is not None else None
        source = "its first 2-D weight" if first is not None else None
    gen = Generator(
        "torchscript", str(path), fn=lambda *inputs: module(*inputs), latent_dim=latent,
        device=device,
        latent_shape=shape, latent_source=source, latent_fixed=shape is not None and len(shape) > 1,
    )  # fmt: skip
    d = getattr(module, "discriminator", None)
    if d is not None:
        gen.discriminator = Discriminator(d, None, None, device=device)
    return gen


def from_export(program: Any, path: Path, device: torch.device) -> Generator:
    module = program.module()
    shapes = [
        tuple(n.meta["val"].shape)
        for n in program.graph.nodes
        if n.op == "placeholder" and n.name in program.graph_signature.user_inputs
    ]
    shown = [tuple(s if isinstance(s, int) else "n" for s in shape) for shape in shapes]
    if (
        len(shapes) not in (1, 2)
        or len(shapes[0]) < 2
        or not all(isinstance(s, int) for s in shapes[0][1:])
        or (len(shapes) == 2 and not 1 <= len(shapes[1]) <= 2)
    ):
        raise LoaderError(
            f"The torch.export program {path} takes inputs {shown}; expected one latent batch "
            "of shape (n, latent_dim) or (n, *latent_shape), e.g. (n, 100, 1, 1), and for a "
            "conditional generator a second input of labels, (n,) class indices or (n, K) "
            "one-hot rows."
        )
    batch, *latent = shapes[0]
    fixed = int(batch) if isinstance(batch, int) else None
    gen = Generator(
        "torch_export",
        str(path),
        fn=_fixed_batch(module, fixed),
        latent_dim=math.prod(latent),
        device=device,
        latent_shape=tuple(latent),
        latent_source="the program's input signature",
        latent_fixed=True,
    )
    if len(shapes) == 2:  # G(z, y): the label input's form is in the signature
        label = shapes[1]
        gen.info["label_signature"] = ("index", None) if len(label) == 1 else (
            "onehot", label[1] if isinstance(label[1], int) else None)  # fmt: skip
    if fixed is not None:
        logger.info("%s was exported for batches of %d; calling it in such batches", path, fixed)
    return gen


def _fixed_batch(module, batch: int | None):
    """Call a program exported with a static batch size on any number of latents (padding)."""
    if batch is None:
        return lambda *inputs: module(*inputs)

    def call(z: torch.Tensor, *rest: torch.Tensor) -> torch.Tensor:
        outs = []
        for i in range(0, len(z), batch):
            parts = [x[i : i + batch] for x in (z, *rest)]
            pad = batch - len(parts[0])
            if pad:
                parts = [torch.cat([x, x.new_zeros(pad, *x.shape[1:])]) for x in parts]
            outs.append(module(*parts)[: batch - pad])
        return torch.cat(outs)

    return call
