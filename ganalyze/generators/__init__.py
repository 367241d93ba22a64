"""One loader for everything a user may be handed: ``load_generator(spec, ...) -> Generator``.

Resolution order:

1. ``path/to/file.py:name`` or ``package.module:name``: a Python entry point;
2. a folder: PNG samples; a ``.npy`` / ``.npz`` file: an array of samples;
3. a TorchScript file (torch.jit.save) or a torch.export program (.pt2, torch.export.save),
   recognised by their archive contents;
4. any other torch file, read with ``weights_only=True``: a ``ganalyze train`` checkpoint, or a
   bare state_dict of the reference architecture (keys 0.weight ... 4.bias, legacy format too).
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import torch
from torch import nn

from ganalyze.errors import InputError, LoaderError, UnsafeFileError
from ganalyze.generators.base import (
    ACCEPTED_SHAPES,
    DEFAULT_TIMEOUT,
    Discriminator,
    Generator,
    canonical_shape,
    detect_range,
    parse_range,
    to_unit_range,
)
from ganalyze.generators.entrypoint import from_entry_point, split_entry_point
from ganalyze.generators.files import (
    from_export,
    from_torch_object,
    from_torchscript,
    is_reference_state_dict,
    load_torch_file,
    reference_discriminator,
)
from ganalyze.generators.samples import from_samples

__all__ = [
    "ACCEPTED_FORMS",
    "ACCEPTED_SHAPES",
    "Discriminator",
    "Generator",
    "canonical_shape",
    "detect_range",
    "load_generator",
    "parse_range",
    "to_unit_range",
]

logger = logging.getLogger(__name__)

ACCEPTED_FORMS = (
    "a checkpoint written by `ganalyze train`; "
    "a bare state_dict of the reference MLP (keys 0.weight ... 4.bias), with --discriminator FILE "
    "for D; a TorchScript file (torch.jit.save); a torch.export program (.pt2); a Python entry "
    "point path/to/file.py:name or package.module:name (with --weights FILE); a .npy/.npz of "
    "images; or a folder of PNG images"
)


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


def load_generator(
    spec: str | Path,
    *,
    discriminator: str | Path | None = None,
    weights: str | Path | None = None,
    latent_dim: int | None = None,
    prior: str | None = None,
    output_range: str | None = None,
    d_input_range: str | None = None,
    d_output: str | None = None,
    trust_pickle: bool = False,
    device: str | torch.device = "cpu",
    timeout: float | None = DEFAULT_TIMEOUT,
) -> Generator:
    """Load a generator (or a file of samples) into ganalyze's canonical form.

    Parameters
    ----------
    spec
        What to audit; see the module docstring for the accepted forms.
    discriminator
        A file with D: a reference-architecture state_dict, TorchScript or torch.export.
    weights
        A state_dict file loaded into an entry point's module (``weights_only=True``).
    latent_dim, prior
        Override the latent size and the prior ("normal": N(0, I); "uniform": U(-1, 1)).
    output_range, d_input_range
        "-1,1", "0,1" or "0,255" instead of auto-detection / G's native range.
    d_output
        "probs" or "logits": how to read D's outputs (default: probabilities if D ends in a
        Sigmoid or all its outputs on 1,000 test digits lie in [0, 1]).
    trust_pickle
        Allow unpickling whole objects (only for files you trust).
    device
        Where the generator and discriminator run.
    timeout
        Seconds a call into the generator or discriminator (a batch of up to 1,000) may take
        before it is stopped (default 600; None or 0: no limit).

    Returns
    -------
    Generator
        ``sample(n, seed) -> (z, images)`` with images float32 (n, 1, 28, 28) in [0, 1].

    Raises
    ------
    LoaderError
        When the spec cannot be read; the message lists every accepted form.
    """
    device = torch.device(
        "cuda"
        if device == "auto" and torch.cuda.is_available()
        else "cpu"
        if device == "auto"
        else device
    )
    spec_str = str(spec)
    out_range, d_range = parse_range(output_range), parse_range(d_input_range)
    if prior not in (None, "normal", "uniform"):
        raise InputError(f"Unknown prior {prior!r}; expected normal or uniform.")
    entry = split_entry_point(spec_str)
    path = Path(spec_str).expanduser()
    if entry is not None:
        gen = from_entry_point(
            *entry, device, Path(weights) if weights else None, trust_pickle, timeout
        )
    elif not path.exists():
        what = (
            "is a link that leads nowhere (dangling or a loop)"
            if path.is_symlink()
            else ("does not exist")
        )
        raise LoaderError(f"{spec_str} {what}. ganalyze accepts {ACCEPTED_FORMS}.")
    elif path.is_dir() or path.suffix.lower() in (".npy", ".npz"):
        gen = from_samples(path, out_range)
        if path.is_file():
            gen.info["sha256"] = _file_sha256(path)
    else:
        try:
            kind, obj, digest = load_torch_file(path, trust_pickle, "generator", device)
        except UnsafeFileError:
            raise
        except LoaderError as exc:
            raise LoaderError(f"{exc} ganalyze accepts {ACCEPTED_FORMS}.") from None
        if kind == "torchscript":
            gen = from_torchscript(obj, path, device)
        elif kind == "export":
            gen = from_export(obj, path, device)
        else:
            gen = from_torch_object(obj, path, device)
        gen.info["sha256"] = digest
    gen.timeout = timeout
    if weights is not None and entry is None:
        raise InputError(
            "--weights applies to Python entry points (file.py:Class); "
            f"{spec_str} is a {gen.kind.replace('_', ' ')}."
        )
    if gen.kind != "samples":
        if latent_dim is not None:
            gen.latent_dim = int(latent_dim)
        if prior is not None:
            gen.prior = prior
        if out_range is not None:
            gen.output_range, gen.range_source = out_range, "option"
    if discriminator is not None:
        gen.discriminator = _load_discriminator(Path(discriminator), device, trust_pickle)
    if d_output not in (None, "auto", "probs", "logits"):
        raise InputError(f"Unknown --d-output {d_output!r}; expected probs or logits.")
    if gen.discriminator is not None and d_range is not None:
        gen.discriminator.input_range = d_range
    if gen.discriminator is not None and d_output in ("probs", "logits"):
        gen.discriminator.output = "probability" if d_output == "probs" else "logits"
    return gen


def _load_discriminator(path: Path, device: torch.device, trust_pickle: bool) -> Discriminator:
    kind, state, _ = load_torch_file(path, trust_pickle, "--discriminator", device)
    if kind == "torchscript":
        return Discriminator(state, None, None, device=device, name=str(path))
    if kind == "export":
        return Discriminator(state.module(), None, None, device=device, name=str(path))
    if isinstance(state, nn.Module):  # only reachable with trust_pickle
        return Discriminator(state.to(device).eval(), None, None, device=device, name=str(path))
    if isinstance(state, dict) and not is_reference_state_dict(state):
        state = state.get("discriminator", state)
    if not is_reference_state_dict(state):
        found = sorted(map(str, state))[:12] if isinstance(state, dict) else type(state).__name__
        raise LoaderError(
            f"--discriminator {path}: expected a state_dict of the reference D "
            f"(keys 0.weight ... 4.bias), TorchScript or torch.export; found "
            f"{found}."
        )
    module = reference_discriminator(state).to(device)
    return Discriminator(module, None, None, device=device, name=str(path))
