"""``LoadOptions``: every option of :func:`ganalyze.load_generator` as one typed, frozen value.

Values are checked when the object is built, so a bad prior or range fails where it is written,
and a misspelt option name fails at the call (a dataclass takes no unknown keywords).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import torch

from ganalyze.errors import InputError
from ganalyze.generators.base import DEFAULT_TIMEOUT, parse_range
from ganalyze.generators.images import ACCEPTED_SIZES, image_dims, parse_resize
from ganalyze.generators.latents import parse_shape

PRIORS = ("normal", "uniform")
D_OUTPUTS = ("probs", "logits")


@dataclass(frozen=True)
class LoadOptions:
    """How to load a generator (see :func:`ganalyze.load_generator`).

    Parameters
    ----------
    discriminator
        A file with D: a reference-architecture state_dict, TorchScript or torch.export.
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

    def __post_init__(self) -> None:
        set_ = object.__setattr__  # frozen: normalised values are written once, here
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
