"""The canonical generator: ``Generator.sample(n, seed) -> (z, images)``.

Inside ganalyze there is one image form: float32 (n, 1, 28, 28) in [0, 1]. Every source is
converted to it exactly once, here, and the latent z of every sample is kept. The native form
of the source (range and shape) is recorded so that a discriminator can be fed what it expects.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from ganalyze.errors import InputError, LoaderError

logger = logging.getLogger(__name__)

RANGES = ("-1,1", "0,1", "0,255")
ACCEPTED_SHAPES = "(n, 784), (n, 28, 28) or (n, 1, 28, 28)"
_DETECT_N = 1000


def detect_range(x: torch.Tensor) -> str:
    """The range rule on (the first 1,000) outputs: min below -0.05 means [-1, 1], max above 1.5
    means 0-255, else [0, 1]."""
    x = x[:_DETECT_N]
    if float(x.min()) < -0.05:
        return "-1,1"
    if float(x.max()) > 1.5:
        return "0,255"
    return "0,1"


def parse_range(value: str | None) -> str | None:
    """Normalise a user's range option ('-1,1', '[-1, 1]', '0-255', 'auto', ...)."""
    if value is None:
        return None
    v = str(value).replace(" ", "").strip("[]()").replace("-255", ",255")
    v = {"0,255": "0,255", "0255": "0,255", "-1,1": "-1,1", "0,1": "0,1", "auto": None}.get(v, v)
    if v is not None and v not in RANGES:
        raise InputError(f"Unknown range {value!r}; expected one of auto, -1,1, 0,1 or 0,255.")
    return v


def canonical_shape(x: torch.Tensor, what: str = "Generator output") -> torch.Tensor:
    """(n, 784) | (n, 28, 28) | (n, 1, 28, 28) -> (n, 1, 28, 28), or a clear InputError."""
    shape = tuple(x.shape)
    if x.ndim == 2 and shape[1] == 784 or x.ndim == 3 and shape[1:] == (28, 28):
        return x.reshape(shape[0], 1, 28, 28)
    if x.ndim == 4 and shape[1:] == (1, 28, 28):
        return x
    raise InputError(f"{what} has shape {shape}; expected {ACCEPTED_SHAPES}.")


def to_unit_range(x: torch.Tensor, rng: str, what: str = "Generator output") -> torch.Tensor:
    """Map native values to [0, 1] float32; NaN/Inf is an error, out-of-range values are clipped
    with a warning that counts them."""
    x = x.detach().to(torch.float32)
    bad = int((~torch.isfinite(x)).sum())
    if bad:
        raise InputError(
            f"{what} contains {bad} NaN or Inf values (of {x.numel()}); a generator must "
            "output finite numbers. Check its weights and the prior (--prior)."
        )
    if rng == "-1,1":
        x = (x + 1) / 2
    elif rng == "0,255":
        x = x / 255
    outside = int(((x < 0) | (x > 1)).sum())
    if outside:
        logger.warning(
            "%s: %d values (of %d) fell outside the %s range and were clipped",
            what,
            outside,
            x.numel(),
            rng,
        )
    return x.clamp_(0, 1)


def from_unit_range(x: torch.Tensor, rng: str) -> torch.Tensor:
    """The inverse of :func:`to_unit_range` (without clipping)."""
    if rng == "-1,1":
        return x * 2 - 1
    if rng == "0,255":
        return x * 255
    return x


class Discriminator:
    """A discriminator fed canonical images, converted back to its native input.

    Feeding D canonical [0, 1] images when it was trained on [-1, 1] silently ruins every D
    statistic; this wrapper converts to ``input_range`` and ``input_shape`` first.

    ``output`` is "probability" or "logits"; :meth:`scores` always returns probabilities.
    """

    def __init__(
        self,
        module: nn.Module | Callable[[torch.Tensor], torch.Tensor],
        input_range: str,
        input_shape: tuple[int, ...],
        output: str | None = None,
        device: str | torch.device = "cpu",
    ) -> None:
        self.module, self.input_range = module, input_range
        self.input_shape = tuple(input_shape) if input_shape is not None else None
        self.device = torch.device(device)
        if output is None and isinstance(module, nn.Sequential) and len(module) > 0:
            output = "probability" if isinstance(module[-1], nn.Sigmoid) else None
        self.output = output

    def native(self, images: torch.Tensor) -> torch.Tensor:
        if self.input_range is None or self.input_shape is None:
            raise InputError(
                "The discriminator's input form is unknown: sample the generator "
                "first, or pass --d-input-range."
            )
        x = from_unit_range(images.to(torch.float32), self.input_range)
        return x.reshape(x.shape[0], *self.input_shape)

    @torch.no_grad()
    def raw(self, images: torch.Tensor, batch_size: int = 2000) -> torch.Tensor:
        """D's raw outputs (n,) on canonical images."""
        outs = []
        for i in range(0, len(images), batch_size):
            x = self.native(images[i : i + batch_size]).to(self.device)
            try:
                out = self.module(x)
            except (RuntimeError, ValueError) as exc:
                shape = ", ".join(map(str, self.input_shape))
                raise InputError(
                    f"The discriminator rejected input of shape (n, {shape}) in range "
                    f"{self.input_range}: {str(exc).splitlines()[0]}. Give the D that belongs to "
                    "this generator, or set its input form with --d-input-range."
                ) from None
            outs.append(torch.as_tensor(out).detach().float().reshape(x.shape[0], -1)[:, 0].cpu())
        return torch.cat(outs) if outs else torch.empty(0)

    def decide_output(self, real_images: torch.Tensor) -> None:
        """Unless known, read D's outputs as probabilities if all its outputs on (1,000) real
        digits lie in [0, 1], else as logits."""
        if self.output is None:
            raw = self.raw(real_images[:1000])
            self.output = "probability" if bool(((raw >= 0) & (raw <= 1)).all()) else "logits"

    def scores(self, images: torch.Tensor) -> torch.Tensor:
        """P(real) (n,) on canonical images."""
        raw = self.raw(images)
        if self.output is None:  # decided on the first call: outputs all in [0, 1] are probs
            self.output = "probability" if bool(((raw >= 0) & (raw <= 1)).all()) else "logits"
        return raw if self.output == "probability" else torch.sigmoid(raw)


@dataclass
class Generator:
    """A generator in ganalyze's canonical form.

    ``fn`` maps latents (n, latent_dim) to native images; for a samples file ``fn`` is None and
    ``images`` holds the canonical samples.
    """

    kind: str
    spec: str
    fn: Callable[[torch.Tensor], torch.Tensor] | None = None
    latent_dim: int | None = None
    prior: str = "normal"
    output_range: str | None = None  # None: auto-detected on the first sample
    range_source: str = "auto"
    native_shape: tuple[int, ...] | None = None
    discriminator: Discriminator | None = None
    images: torch.Tensor | None = None
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    info: dict[str, Any] = field(default_factory=dict)  # history, member set, file hash...

    @property
    def has_generator(self) -> bool:
        return self.fn is not None

    def prior_sample(self, n: int, gen: torch.Generator) -> torch.Tensor:
        if self.latent_dim is None:
            raise InputError(
                f"The latent size of {self.spec} is unknown; pass --latent-dim D "
                "(the size of z the generator takes)."
            )
        if self.prior == "uniform":
            return torch.rand(n, self.latent_dim, generator=gen) * 2 - 1
        return torch.randn(n, self.latent_dim, generator=gen)

    @torch.no_grad()
    def generate(
        self, z: torch.Tensor, batch_size: int = 1000, progress: bool = False
    ) -> torch.Tensor:
        """Canonical images for latents ``z``, in batches."""
        from tqdm.auto import tqdm

        if self.fn is None:
            raise InputError(f"{self.spec} is a file of samples; it has no generator to call.")
        outs = []
        steps = range(0, len(z), batch_size)
        for i in tqdm(steps, desc="sampling", disable=not progress, leave=False):
            zb = z[i : i + batch_size].to(self.device)
            try:
                out = self.fn(zb)
            except (RuntimeError, ValueError, TypeError) as exc:
                raise LoaderError(
                    f"The generator {self.spec} failed on latents of shape {tuple(zb.shape)} "
                    f"(prior {self.prior}): {str(exc).splitlines()[0]}. If its latent size is "
                    "not "
                    f"{self.latent_dim}, pass --latent-dim."
                ) from exc
            if not torch.is_tensor(out):
                out = torch.as_tensor(np.asarray(out))
            out = out.detach().float().cpu()
            if self.native_shape is None:
                self.native_shape = tuple(out.shape[1:])
            out = canonical_shape(out, f"Output of {self.spec}")
            if self.output_range is None:
                self.output_range = detect_range(out)
                logger.info(
                    "%s: output range detected as [%s] from %d outputs",
                    self.spec,
                    self.output_range,
                    min(len(out), _DETECT_N),
                )
            outs.append(to_unit_range(out, self.output_range, f"Output of {self.spec}"))
        return torch.cat(outs)

    def bound_discriminator(self) -> Discriminator | None:
        """The discriminator, its native input defaulting to G's native output form."""
        d = self.discriminator
        if d is not None:
            if d.input_range is None:
                d.input_range = self.output_range or "0,1"
            if d.input_shape is None:
                d.input_shape = self.native_shape or (1, 28, 28)
        return d

    def sample(
        self, n: int, seed: int = 0, progress: bool = False
    ) -> tuple[torch.Tensor | None, torch.Tensor]:
        """n canonical samples and the latents that made them (None for a samples file).

        Deterministic for a given seed. For a samples file, n below its size takes a seeded
        subset; n above it is an error.
        """
        gen = torch.Generator().manual_seed(int(seed))
        if self.fn is None:
            total = len(self.images)
            if n > total:
                raise InputError(
                    f"--n-samples {n} asks for more than the {total} images in "
                    f"{self.spec}; use at most {total}."
                )
            if n == total:
                return None, self.images
            idx = torch.randperm(total, generator=gen)[:n].sort().values
            return None, self.images[idx]
        z = self.prior_sample(n, gen)
        return z, self.generate(z, progress=progress)
