"""The shape a generator takes its latents in, and how it was found.

Inside ganalyze a latent is flat, (n, d): the context keeps z so, and interpolation and
latent_map walk in that space. Only the call into G reshapes a batch to ``(n, *latent_shape)``,
e.g. (n, 100, 1, 1) for a DCGAN. The shape is, in this order:

1. ``--latent-shape`` (``LoadOptions.latent_shape``), e.g. 100,1,1;
2. what the source records (a torch.export program's input, a checkpoint's latent size);
3. the model's first layer: a Linear with d inputs takes (n, d); a ConvTranspose2d with d input
   channels, or a Conv2d with more than 3 (an image has 1 or 3), takes (n, d, 1, 1); a latent
   size attribute (``latent_dim``, ``nz``, ``z_dim``, ``latent_size``) gives d;
4. the probe batch (:meth:`Generator.settle`): when (n, d) fails inside G with a shape-like
   error (RuntimeError, ValueError, TypeError, IndexError) and (n, d, 1, 1) works, the latter.
"""

from __future__ import annotations

import math
import re
from typing import Any

from ganalyze.errors import InputError

MAX_LATENT = 2**31 - 1  # one latent's coordinates: far past any generator, below int overflow
_SIZE_ATTRS = ("latent_dim", "nz", "z_dim", "latent_size")


def parse_shape(value: Any, option: str, example: str, max_size: int = MAX_LATENT) -> tuple:
    """A shape option ("100,1,1", "(100, 1, 1)", "100x1x1", or a sequence of ints) as a tuple
    of positive ints whose product is at most ``max_size``; None stays None."""
    if value is None:
        return None
    if isinstance(value, str):
        parts = [p for p in re.split(r"[,x\s]+", value.strip().strip("()[]").strip()) if p]
        if not parts or not all(re.fullmatch(r"\+?\d+", p) for p in parts):
            raise InputError(f"{option} must be positive integers separated by commas, like "
                             f"{example}; got {value!r}.")  # fmt: skip
        dims = tuple(int(p) for p in parts)
    else:
        try:
            dims = tuple(value)
        except TypeError:
            dims = (value,)
        if not all(isinstance(d, int) and not isinstance(d, bool) for d in dims) or not dims:
            raise InputError(f"{option} must be positive integers, like {example}; got "
                             f"{value!r}.")  # fmt: skip
    if any(d < 1 for d in dims):
        raise InputError(f"{option} must be positive integers, like {example}; got "
                         f"{','.join(map(str, dims))} (each size at least 1).")  # fmt: skip
    if len(dims) > 8 or math.prod(dims) > max_size:
        raise InputError(
            f"{option} {','.join(map(str, dims))} holds {math.prod(dims):,} values in "
            f"{len(dims)} dimensions; expected at most 8 dimensions and {max_size:,} values "
            f"(like {example})."
        )
    return dims


def flat(shape: tuple[int, ...] | None) -> str:
    """A latent shape as people read it: (n, 100, 1, 1)."""
    return f"(n, {', '.join(map(str, shape or ()))})"


_LAYERS = ("Linear", "ConvTranspose2d", "Conv2d")


def _layer(module: Any) -> tuple[str, Any] | None:
    """The first Linear, ConvTranspose2d or Conv2d in registration order, and its type name
    (TorchScript modules too, by their original name)."""
    if not hasattr(module, "modules"):
        return None
    for m in module.modules():
        name = getattr(m, "original_name", None) or type(m).__name__
        if name in _LAYERS:
            return name, m
    return None


def infer_latent(module: Any) -> tuple[int | None, tuple[int, ...] | None, str] | None:
    """(latent size, latent shape, how it was found) from a model, or None when it says
    nothing; the shape is None where only the size is known (an attribute)."""
    size = None
    for attr in _SIZE_ATTRS:
        value = getattr(module, attr, None)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            size, found = value, f"attribute {attr} = {value}"
            break
    first = _layer(module)
    if first is not None:
        name, layer = first
        weight = getattr(layer, "weight", None)
        shape = tuple(weight.shape) if weight is not None else ()
        if name == "Linear" and len(shape) == 2:
            d, how = shape[1], f"first layer Linear with {shape[1]} inputs"
            if size is None or size == d:
                return d, (d,), how if size is None else f"{found}, {how}"
        elif name in ("ConvTranspose2d", "Conv2d") and len(shape) == 4:
            d = shape[0] if name == "ConvTranspose2d" else shape[1]
            how = f"first layer {name} with {d} input channels"
            if (name == "ConvTranspose2d" or d > 3) and (size is None or size == d):
                return d, (d, 1, 1), how if size is None else f"{found}, {how}"
    if size is not None:
        return size, None, found
    return None
