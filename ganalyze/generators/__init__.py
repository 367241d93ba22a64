"""One loader for everything a user may be handed: ``load_generator(spec, ...) -> Generator``.

Resolution order:

1. ``path/to/file.py:name`` or ``package.module:name``: a Python entry point;
2. a folder: PNG samples; a ``.npy`` / ``.npz`` file: an array of samples;
3. a TorchScript file (torch.jit.save) or a torch.export program (.pt2, torch.export.save),
   recognised by their archive contents;
4. any other torch file, read with ``weights_only=True``: a ``ganalyze train`` checkpoint, or a
   bare state_dict of the reference architecture (keys 0.weight ... 4.bias, legacy format too).

The options are one :class:`LoadOptions`. A generator comes back settled: its output range and
native shape are known (from the source, an option, or a probe batch of 1,000 outputs), and its
discriminator, if any, is bound to that native form.
"""

from __future__ import annotations

import hashlib
import logging
import math
from pathlib import Path

import torch
from torch import nn

from ganalyze.errors import InputError, LoaderError, UnsafeFileError
from ganalyze.generators.base import (
    ACCEPTED_SHAPES,
    DEFAULT_TIMEOUT,
    PROBE_N,
    Discriminator,
    Generator,
    canonical_shape,
    detect_range,
    parse_range,
    to_unit_range,
)
from ganalyze.generators.entrypoint import (
    discriminator_from_entry_point,
    from_entry_point,
    split_entry_point,
)
from ganalyze.generators.files import (
    from_export,
    from_torch_object,
    from_torchscript,
    is_reference_state_dict,
    load_torch_file,
    reference_discriminator,
)
from ganalyze.generators.images import ImageForm, parse_resize
from ganalyze.generators.labels import PASS_LABELS, input_count
from ganalyze.generators.latents import infer_latent
from ganalyze.generators.options import LoadOptions, merge_options
from ganalyze.generators.samples import SamplesFile, from_samples

__all__ = [
    "ACCEPTED_FORMS",
    "ACCEPTED_SHAPES",
    "Discriminator",
    "Generator",
    "ImageForm",
    "LoadOptions",
    "PROBE_N",
    "SamplesFile",
    "canonical_shape",
    "detect_range",
    "load_generator",
    "parse_range",
    "parse_resize",
    "to_unit_range",
]

logger = logging.getLogger(__name__)

ACCEPTED_FORMS = (
    "a checkpoint written by `ganalyze train`; "
    "a bare state_dict of the reference MLP (keys 0.weight ... 4.bias; torch.save or "
    ".safetensors), with --discriminator FILE for D; a TorchScript file (torch.jit.save); a "
    "torch.export program (.pt2); a Python entry point path/to/file.py:name, "
    "path/to/file.py:Class.method or package.module:name (with --weights FILE, .pth or "
    ".safetensors); a .npy/.npz of images; or a folder of PNG images"
)
D_FORMS = (
    "a state_dict of the reference D (keys 0.weight ... 4.bias; torch.save or .safetensors) or "
    "a `ganalyze train` checkpoint; TorchScript; a torch.export program (.pt2); or a Python "
    "entry point path/to/file.py:Class, file.py:Class.method or package.module:name (with "
    "--d-weights FILE)"
)
D_ALONE_RANGE = "-1,1"  # most MNIST GANs train D on Normalize((0.5,), (0.5,)) digits


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


def load_generator(
    spec: str | Path | None,
    options: LoadOptions | None = None,
    *,
    seed: int = 0,
    discriminator: str | Path | None = None,
    weights: str | Path | None = None,
    latent_dim: int | None = None,
    prior: str | None = None,
    output_range: str | None = None,
    d_input_range: str | None = None,
    d_output: str | None = None,
    trust_pickle: bool = False,
    timeout: float | None = DEFAULT_TIMEOUT,
    device: str | torch.device = "cpu",
) -> Generator:
    """Load a generator (or a file of samples) into ganalyze's canonical form, settled.

    Parameters
    ----------
    spec
        What to audit; see the module docstring for the accepted forms. None: the
        discriminator of ``options`` alone (no samples; ``dscores`` on real digits).
    options
        The loading options (see :class:`LoadOptions`). The keywords discriminator ... device
        are a shorthand that builds it; a keyword that contradicts ``options`` is a TypeError.
    seed
        Seed of the probe batch that settles the output range and native shape: its 1,000
        latents are the first ones of ``sample(n, seed)``, so an audit passes its own seed.

    Returns
    -------
    Generator
        ``sample(n, seed) -> (z, images)`` with images float32 (n, 1, 28, 28) in [0, 1];
        ``output_range`` and ``native_shape`` set, ``discriminator`` bound to them.

    Raises
    ------
    LoaderError
        When the spec cannot be read; the message lists every accepted form.
    InputError
        Bad option values (from :class:`LoadOptions`), or a probe batch the generator fails on.
    """
    opts = merge_options(
        options, discriminator=discriminator, weights=weights, latent_dim=latent_dim,
        prior=prior, output_range=output_range, d_input_range=d_input_range,
        d_output=d_output, trust_pickle=trust_pickle, timeout=timeout, device=device,
    )  # fmt: skip
    gen = _discriminator_alone(opts) if spec is None else _load_source(str(spec), opts)
    gen.timeout = opts.timeout
    gen.resize = opts.resize
    if gen.kind not in ("samples", "discriminator"):
        _set_latents(gen, opts)
        _set_labels(gen, opts)
        if opts.prior is not None:
            gen.prior = opts.prior
        if opts.output_range is not None:
            gen.output_range, gen.range_source = opts.output_range, "option"
    elif opts.num_classes is not None and gen.kind == "samples":
        raise InputError(f"--num-classes applies to a conditional generator G(z, y); {spec} is "
                         "a file of samples, which carries no labels.")  # fmt: skip
    if opts.discriminator is not None:
        gen.discriminator, files = load_discriminator(opts.discriminator, opts)
        gen.info.setdefault("files", {}).update(files)
    elif opts.d_weights is not None:
        raise InputError("--d-weights needs --discriminator file.py:Class.")
    d = gen.discriminator
    if d is not None and gen.kind == "discriminator" and opts.d_input_range is None:
        d.input_range = D_ALONE_RANGE
        d.range_source = (f"assumed for a discriminator alone ([{D_ALONE_RANGE}]: most MNIST "
                          "GANs' D; --d-input-range to change)")  # fmt: skip
    if d is not None and opts.d_input_range is not None:
        d.input_range, d.range_source = opts.d_input_range, "--d-input-range"
    if d is not None and opts.d_input_shape is not None:
        d.input_shape, d.shape_source = opts.d_input_shape, "--d-input-shape"
        d.conversion = None  # decided again for this shape when bound
    if d is not None and opts.d_output is not None:
        d.output = "probability" if opts.d_output == "probs" else "logits"
        d.output_rule = "--d-output"
    gen.settle(seed)
    gen.bound_discriminator()
    return gen


def _set_latents(gen: Generator, opts: LoadOptions) -> None:
    """The latent size and shape G is called with, and how they were found (the order of
    :mod:`ganalyze.generators.latents`); the probe batch may still turn a flat guess into
    (d, 1, 1)."""
    if opts.latent_shape is not None:
        gen.latent_shape, gen.latent_fixed = opts.latent_shape, True
        gen.latent_dim, gen.latent_source = math.prod(opts.latent_shape), "--latent-shape"
        return
    if gen.latent_shape is None and gen.module is not None:
        found = infer_latent(gen.module)
        if found is not None and (gen.latent_dim is None or found[0] == gen.latent_dim):
            gen.latent_dim, gen.latent_shape, gen.latent_source = found
            if gen.info.get("latent_module"):  # a guess: say from which model, e.g. a VAE
                gen.latent_source += f" of {gen.info['latent_module']}"
            gen.latent_fixed = found[1] is not None and len(found[1]) > 1
    if opts.latent_dim is not None and opts.latent_dim != gen.latent_dim:
        gen.latent_dim, gen.latent_shape = opts.latent_dim, None
        gen.latent_source, gen.latent_fixed = "--latent-dim", False
    elif opts.latent_dim is not None and gen.latent_source is None:
        gen.latent_source = "--latent-dim"
    if gen.latent_dim is not None and gen.latent_source is None:
        gen.latent_source = "given by the source"


def _load_source(spec: str, opts: LoadOptions) -> Generator:
    """The Generator of ``spec`` as its source describes it (before the options apply)."""
    device = opts.torch_device
    if spec.startswith("pretrained:"):  # a shipped checkpoint, its sha256 checked first
        from ganalyze.pretrained import resolve

        gen = _load_source(str(resolve(spec)), opts)
        gen.info["pretrained"], gen.spec = spec, spec
        return gen
    entry = split_entry_point(spec)
    path = Path(spec).expanduser()
    if entry is not None:
        weights = Path(opts.weights) if opts.weights else None
        gen = from_entry_point(
            *entry, device, weights, opts.trust_pickle, opts.timeout, opts.init_kwargs
        )
        if isinstance(gen.fn, nn.Module):
            gen.module = gen.fn
        return gen
    if not path.exists():
        what = (
            "is a link that leads nowhere (dangling or a loop)"
            if path.is_symlink()
            else ("does not exist")
        )
        raise LoaderError(f"{spec} {what}. ganalyze accepts {ACCEPTED_FORMS}.")
    if path.is_dir() or path.suffix.lower() in (".npy", ".npz"):
        gen = from_samples(path, opts.output_range, opts.resize)
        if path.is_file():
            gen.info["sha256"] = _file_sha256(path)
    else:
        try:
            kind, obj, digest = load_torch_file(path, opts.trust_pickle, "generator", device)
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
    for name, value in (("--weights", opts.weights), ("--init-kwargs", opts.init_kwargs)):
        if value is not None:
            raise InputError(
                f"{name} applies to Python entry points (file.py:Class or file.py:Class.method); "
                f"{spec} is a {gen.kind.replace('_', ' ')}."
            )
    if path.is_file():
        gen.info["files"] = {"generator": {"path": str(path), "sha256": gen.info.get("sha256")}}
    return gen


def _set_labels(gen: Generator, opts: LoadOptions) -> None:
    """A conditional G's classes, label input and label draw (``--num-classes``, ...); a
    program whose signature takes labels without ``--num-classes`` is an error that says how
    to pass them."""
    found = gen.info.get("label_signature")
    if opts.num_classes is None:
        if found is not None:
            what = "class indices (n,)" if found[0] == "index" else "one-hot rows (n, K)"
            raise InputError(f"The torch.export program {gen.spec} takes a second input, labels "
                             f"as {what}: it looks conditional; {PASS_LABELS}.")  # fmt: skip
        for name, value in (("--label-input", opts.label_input), ("--labels", opts.labels)):
            if value not in (None, "uniform"):
                raise InputError(f"{name} applies to a conditional generator; pass --num-classes "
                                 "K with it (10 for MNIST's digits).")  # fmt: skip
        return
    if found is None and gen.kind == "torch_export" or input_count(gen.fn, required=False) == 1:
        raise InputError(f"--num-classes {opts.num_classes} was given, but {gen.spec} takes one "
                         "input (z alone): it is not conditional. Drop --num-classes.")  # fmt: skip
    gen.num_classes, gen.labels = opts.num_classes, opts.labels
    if found is not None and found[1] is not None and found[1] != opts.num_classes:
        raise InputError(f"The torch.export program {gen.spec} takes one-hot labels of "
                         f"{found[1]} classes; got --num-classes {opts.num_classes}.")  # fmt: skip
    if opts.label_input is not None:
        gen.label_input, gen.label_source = opts.label_input, "--label-input"
    elif found is not None:
        gen.label_input, gen.label_source = found[0], "the program's input signature"


def _discriminator_alone(opts: LoadOptions) -> Generator:
    """A source with no samples that carries only ``--discriminator``."""
    if opts.discriminator is None:
        raise InputError("Nothing to audit: give a SPEC (a generator or samples; see `ganalyze "
                         "report --help`), or --discriminator D to audit a discriminator "
                         "alone.")  # fmt: skip
    for name, value in (("--weights", opts.weights), ("--init-kwargs", opts.init_kwargs),
                        ("--latent-dim", opts.latent_dim), ("--latent-shape", opts.latent_shape),
                        ("--prior", opts.prior), ("--output-range", opts.output_range),
                        ("--label-input", opts.label_input)):  # fmt: skip
        if value is not None:
            raise InputError(f"{name} applies to a generator, but no SPEC was given: only the "
                             f"discriminator {opts.discriminator} is audited.")  # fmt: skip
    gen = Generator("discriminator", f"--discriminator {opts.discriminator}",
                    images=torch.empty(0, 1, 28, 28), num_classes=opts.num_classes)  # fmt: skip
    gen.range_source = "none: a discriminator alone"
    return gen


def load_discriminator(
    spec: str | Path, opts: LoadOptions
) -> tuple[Discriminator, dict[str, dict[str, str | None]]]:
    """D from ``--discriminator`` in any form a generator spec takes (see :data:`D_FORMS`), and
    the files involved (path and sha256)."""
    device, text = opts.torch_device, str(spec)
    entry = split_entry_point(text)
    if entry is not None:
        weights = Path(opts.d_weights) if opts.d_weights is not None else None
        return discriminator_from_entry_point(*entry, device, weights, opts.trust_pickle,
                                              opts.timeout)  # fmt: skip
    path = Path(text).expanduser()
    if not path.exists():
        raise LoaderError(f"--discriminator {text} does not exist. ganalyze accepts {D_FORMS}.")
    if opts.d_weights is not None:
        raise InputError(f"--d-weights applies to a discriminator given as a Python entry point "
                         f"(file.py:Class); --discriminator {text} is a file.")  # fmt: skip
    kind, state, digest = load_torch_file(path, opts.trust_pickle, "--discriminator", device)
    d = _discriminator_of(kind, state, path, device)
    d.timeout = opts.timeout
    return d, {"discriminator": {"path": text, "sha256": digest}}


def _discriminator_of(kind: str, state, path: Path, device: torch.device) -> Discriminator:
    name = f"--discriminator {path}"
    if kind == "torchscript":
        return Discriminator(state, None, None, device=device, name=name)
    if kind == "export":
        return Discriminator(state.module(), None, None, device=device, name=name)
    if isinstance(state, nn.Module):  # only reachable with trust_pickle
        return Discriminator(state.to(device).eval(), None, None, device=device, name=name)
    if isinstance(state, dict) and not is_reference_state_dict(state):
        state = state.get("discriminator", state)
    if not is_reference_state_dict(state):
        found = sorted(map(str, state))[:12] if isinstance(state, dict) else type(state).__name__
        raise LoaderError(
            f"--discriminator {path}: expected {D_FORMS}; found a torch file of {found}. For "
            "another architecture use --discriminator file.py:Class --d-weights FILE."
        )
    module = reference_discriminator(state).to(device)
    return Discriminator(module, None, None, device=device, name=name)
