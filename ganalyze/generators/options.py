"""``LoadOptions``: every option of :func:`ganalyze.load_generator` as one typed, frozen value.

Values are checked when the object is built, so a bad prior or range fails where it is written,
and a misspelt option name fails at the call (a dataclass takes no unknown keywords).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import torch

from ganalyze.errors import InputError
from ganalyze.generators.base import DEFAULT_TIMEOUT, parse_range
from ganalyze.generators.images import ACCEPTED_SIZES, image_dims, parse_resize
from ganalyze.generators.labels import check_label_options
from ganalyze.generators.latents import parse_shape

PRIORS = ("normal", "uniform")
D_OUTPUTS = ("probs", "logits")


@dataclass(frozen=True)
class LoadOptions:
    """How to load a generator (see :func:`ganalyze.load_generator`).

    Parameters
    ----------
    discriminator
        D, in any form a generator spec takes: a reference-MLP state_dict (torch.save or
        .safetensors) or a ``ganalyze train`` checkpoint, TorchScript, torch.export, or a Python
        entry point ``file.py:Class`` / ``file.py:Class.method`` / ``package.module:name``.
    d_weights
        A state_dict file (torch.save or .safetensors) loaded into an entry-point
        discriminator's module.
    weights
        A state_dict file loaded into an entry point's module (``weights_only=True``).
    latent_dim
        The latent size, instead of the one the source records or implies (a positive integer).
    prior
        "normal" (N(0, I)) or "uniform" (U(-1, 1)); None: the source's, else normal.
    output_range, d_input_range
        "-1,1", "0,1" or "0,255" (also written "[-1, 1]", "0-255"; "auto" means None) instead of
        the probe batch's decision / G's native range.
    d_output
        "probs" or "logits": how to read D's outputs ("auto" means None: probabilities if D
        ends in a Sigmoid or all its outputs on 1,000 MNIST test digits lie in [0, 1]).
    trust_pickle
        Allow unpickling whole objects (only for files you trust).
    timeout
        Seconds one call into user code (a batch of up to 1,000) may take (default 600; None,
        0, inf or NaN: no limit).
    device
        Where the generator and discriminator run: "cpu", "cuda", "cuda:N" or "auto".
    resize
        How native images of another size than 28x28 become 28x28: "auto" (a 32x32 image with
        an empty 2-pixel border is cropped, any other size resized), "crop", "resize" or "none"
        (28x28 only); see :mod:`ganalyze.generators.images`.
    latent_shape
        One latent's shape as G takes it, e.g. (100, 1, 1) or "100,1,1"; the latent size is its
        product. None: from the source, the model's first layer, or the probe batch.
    d_input_shape
        One input's shape as D takes it, e.g. (1, 64, 64) or "1,64,64". None: G's native shape,
        or a shape a probe finds D takes.
    init_kwargs
        Keyword arguments for an entry point's class (``file.py:Class``,
        ``file.py:Class.method``): a JSON object (text, e.g. '{"latent_dim": 20}') or a mapping,
        of plain values (strings, numbers, booleans, null, lists and objects of them). None: the
        class is constructed without arguments.
    num_classes
        Number of classes of a conditional generator G(z, y) (10 for MNIST's digits); None: G
        takes z alone. A conditional discriminator D(x, y) is fed labels of as many classes.
    label_input
        How G takes its label: "index" (n,) int64 or "onehot" (n, K) float32; None or "auto":
        index, else one-hot, whichever works on the probe batch.
    labels
        How conditioning labels are drawn (seeded): "uniform" (each class 1/K) or "train"
        (MNIST train's digit shares).
    """

    discriminator: str | Path | None = None
    weights: str | Path | None = None
    latent_dim: int | None = None
    prior: str | None = None
    output_range: str | None = None
    d_input_range: str | None = None
    d_output: str | None = None
    trust_pickle: bool = False
    timeout: float | None = DEFAULT_TIMEOUT
    device: str | torch.device = "cpu"
    resize: str = "auto"
    latent_shape: tuple[int, ...] | str | None = None
    d_input_shape: tuple[int, ...] | str | None = None
    init_kwargs: Mapping[str, Any] | str | None = field(default=None, hash=False)
    num_classes: int | None = None
    label_input: str | None = None
    labels: str = "uniform"
    d_weights: str | Path | None = None

    def __post_init__(self) -> None:
        set_ = object.__setattr__  # frozen: normalised values are written once, here
        num_classes, label_input, labels = check_label_options(
            self.num_classes, self.label_input, self.labels
        )
        set_(self, "label_input", label_input)
        set_(self, "labels", labels)
        if self.d_weights is not None and self.discriminator is None:
            raise InputError(
                f"--d-weights {self.d_weights} is loaded into a discriminator given as an entry "
                "point; pass --discriminator file.py:Class (or file.py:Class.method) with it."
            )
        set_(self, "init_kwargs", parse_init_kwargs(self.init_kwargs))
        set_(self, "resize", parse_resize(self.resize))
        set_(self, "latent_shape", parse_shape(self.latent_shape, "--latent-shape", "100,1,1"))
        shape = parse_shape(self.d_input_shape, "--d-input-shape", "1,64,64")
        if shape is not None and image_dims(shape) is None and math.prod(shape) != 784:
            raise InputError(
                f"--d-input-shape {','.join(map(str, shape))} is not the shape of one image; "
                f"expected C,H,W with C 1 or 3, H,W, or H*W of a square image (as in "
                f"{ACCEPTED_SIZES}), e.g. 1,64,64."
            )
        set_(self, "d_input_shape", shape)
        set_(self, "output_range", parse_range(self.output_range))
        set_(self, "d_input_range", parse_range(self.d_input_range))
        if self.prior not in (None, *PRIORS):
            raise InputError(f"Unknown prior {self.prior!r}; expected normal or uniform.")
        d_output = None if self.d_output == "auto" else self.d_output
        if d_output not in (None, *D_OUTPUTS):
            raise InputError(f"Unknown --d-output {self.d_output!r}; expected probs or logits.")
        set_(self, "d_output", d_output)
        if self.latent_dim is not None:
            ok = isinstance(self.latent_dim, int) and not isinstance(self.latent_dim, bool)
            if not ok or self.latent_dim < 1:
                raise InputError(
                    f"--latent-dim must be a positive integer (the size of z the generator "
                    f"takes); got {self.latent_dim!r}."
                )
        if self.timeout is not None and (
            isinstance(self.timeout, bool)
            or not isinstance(self.timeout, int | float)
            or self.timeout < 0
        ):
            raise InputError(
                f"--timeout must be a number of seconds >= 0 (0: no limit); got {self.timeout!r}."
            )
        if self.timeout is not None and math.isnan(self.timeout):
            set_(self, "timeout", None)
        if (
            self.latent_shape is not None
            and self.latent_dim is not None
            and math.prod(self.latent_shape) != self.latent_dim
        ):
            raise InputError(
                f"--latent-shape {','.join(map(str, self.latent_shape))} holds "
                f"{math.prod(self.latent_shape)} values, but --latent-dim is {self.latent_dim}; "
                "give one of them (the latent size is the product of the shape)."
            )

    @property
    def torch_device(self) -> torch.device:
        """``device`` as a torch.device ("auto": CUDA when present, else the CPU)."""
        if str(self.device) == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        return torch.device(self.device)


_KWARGS_EXAMPLE = """--init-kwargs '{"latent_dim": 20, "hidden": 400}'"""
_MAX_KWARGS_TEXT = 100_000  # characters: far past any constructor's arguments
_MAX_DEPTH = 8


def parse_init_kwargs(value: Any) -> dict[str, Any] | None:
    """``--init-kwargs`` as a dict of plain values: JSON text of an object, or a mapping whose
    keys are identifiers and whose values are plain (None, bool, int, float, str, lists and
    dicts of them); an empty object means None."""
    if value is None:
        return None
    if isinstance(value, str):
        if len(value) > _MAX_KWARGS_TEXT:
            raise InputError(
                f"--init-kwargs is {len(value):,} characters long; expected a short JSON object "
                f"of the constructor's keyword arguments (at most {_MAX_KWARGS_TEXT:,}), like "
                f"{_KWARGS_EXAMPLE}."
            )
        try:
            value = json.loads(value, parse_constant=_no_constant)
        except (ValueError, RecursionError) as exc:
            raise InputError(
                f"--init-kwargs is not valid JSON ({exc}); got {value[:200]!r}. Expected a JSON "
                f"object of keyword arguments, like {_KWARGS_EXAMPLE} (double quotes around "
                "names and strings, and the whole in single quotes in a shell)."
            ) from None
    if not isinstance(value, Mapping):
        raise InputError(
            f"--init-kwargs must be a JSON object of keyword arguments; got a "
            f"{_json_type(value)} ({str(value)[:200]}). Write it like {_KWARGS_EXAMPLE}."
        )
    bad_keys = [k for k in value if not isinstance(k, str) or not k.isidentifier()]
    if bad_keys:
        raise InputError(
            f"--init-kwargs names must be Python identifiers (the constructor's parameters); "
            f"got {bad_keys[:5]}. Write it like {_KWARGS_EXAMPLE}."
        )
    for key, item in value.items():
        _check_plain(item, key, 0)
    return dict(value) or None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def _json_type(value: Any) -> str:
    return {list: "list", str: "string", int: "number", float: "number", bool: "boolean",
            type(None): "null"}.get(type(value), type(value).__name__)  # fmt: skip


def _check_plain(value: Any, where: str, depth: int) -> None:
    if depth > _MAX_DEPTH:
        raise InputError(f"--init-kwargs {where} nests deeper than {_MAX_DEPTH} levels; "
                         "expected plain keyword arguments.")  # fmt: skip
    if value is None or isinstance(value, bool | int | str):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InputError(f"--init-kwargs {where} is {value}; expected a finite number.")
        return
    if isinstance(value, list | tuple):
        for i, item in enumerate(value):
            _check_plain(item, f"{where}[{i}]", depth + 1)
        return
    if isinstance(value, Mapping) and all(isinstance(k, str) for k in value):
        for k, item in value.items():
            _check_plain(item, f"{where}.{k}", depth + 1)
        return
    raise InputError(
        f"--init-kwargs {where} is a {type(value).__name__}; expected plain values only "
        "(strings, numbers, booleans, null, lists and objects of them), as JSON writes them."
    )


_DEFAULTS = {f.name: f.default for f in fields(LoadOptions)}


def merge_options(options: LoadOptions | None, **given: Any) -> LoadOptions:
    """``options`` (default: all defaults) with the keyword options that differ from their
    defaults; giving ``options`` together with a different keyword value is a TypeError."""
    changed = {k: v for k, v in given.items() if not _same(v, _DEFAULTS[k])}
    if options is None:
        return LoadOptions(**changed)
    if not changed:
        return options
    merged = replace(options, **changed)
    clash = [k for k in changed if not _same(getattr(merged, k), getattr(options, k))]
    if clash:
        named = ", ".join(f"{k}={changed[k]!r}" for k in clash)
        raise TypeError(
            f"Loading options given twice: as a LoadOptions and as {named}. Pass them either "
            "in the LoadOptions or as keywords (dataclasses.replace(options, ...) changes one)."
        )
    return options


def _same(a: Any, b: Any) -> bool:
    try:
        return bool(a == b)
    except Exception:  # tensors, odd objects: only identity counts
        return a is b
