"""The canonical generator: ``Generator.sample(n, seed) -> (z, images)``.

Inside ganalyze there is one image form: float32 (n, 1, 28, 28) in [0, 1]. Every source is
converted to it exactly once, here, and the latent z of every sample is kept. The native form
of the source (range and shape) is recorded so that a discriminator can be fed what it expects.

Every call into code ganalyze did not write (a generator, a discriminator, an entry point's
import or factory) goes through :func:`call_user`, so that no audit silently lies:

- whatever the call raises, ``SystemExit`` and ``KeyboardInterrupt`` included, becomes one
  :class:`~ganalyze.errors.LoaderError` (:class:`~ganalyze.errors.InputError` for a
  discriminator) naming the code, the exception type and its whole message;
- a call that does not return within ``timeout`` seconds is stopped (:data:`DEFAULT_TIMEOUT`,
  600 s per call, that is per batch of 1,000 latents: hundreds of times what an MNIST generator
  needs on a CPU, yet a hung audit ends within minutes). The limit is a ``SIGALRM`` timer, so a
  pure-Python loop or a ``time.sleep`` is interrupted; a single C++ operation is interrupted
  when it returns to Python, and code that swallows ``BaseException`` cannot be stopped. Signals
  exist only in the main thread of a POSIX process: elsewhere (a worker thread, Windows) calls
  run without a time limit, with a debug log line saying so;
- what a generator returns is checked before it is believed: a tensor or numeric array (a tuple,
  None, a string or a dict is an error), with exactly one image per latent, in order;
- what a discriminator returns is checked too: one finite score per image. NaN or Inf scores are
  an error naming D and counting them (not a flag: every D statistic would be NaN or wrong).
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from ganalyze._guard import check_allocation
from ganalyze.errors import GanalyzeError, InputError, LoaderError
from ganalyze.generators.images import (
    ACCEPTED_SHAPES,
    ACCEPTED_SIZES,
    ImageForm,
    check_shape,
    d_conversion,
    decide_form,
    to_native_size,
)
from ganalyze.generators.labels import (
    LABEL_INPUTS,
    PASS_LABELS,
    draw_labels,
    encode,
    input_count,
    looks_conditional,
    make_code,
    split_code,
)
from ganalyze.generators.latents import flat, infer_latent

logger = logging.getLogger(__name__)

RANGES = ("-1,1", "0,1", "0,255")
_DETECT_N = 1000
PROBE_N = 1000
"""Latents of the probe batch that settles a generator's output range and native shape."""
_PROBE_EXTRA = 16  # drawn and dropped: torch refills the last 16 values of a normal tensor
_FAR_SHARE = 0.01  # values a whole range outside: more than this share is an error, not a clip
DEFAULT_TIMEOUT = 600.0
"""Seconds one call of user code (a batch of the generator, of D, an import) may take."""
_MAX_MESSAGE = 2000
_NO_LIMIT = 1e8  # seconds (3 years); setitimer overflows near 1e11
# how torch rejects a shape (TorchScript raises torch.jit.Error, an Exception, for them all)
# (a torch.export program's input guards raise AssertionError)
_SHAPE_ERRORS = (RuntimeError, ValueError, TypeError, IndexError, AssertionError, torch.jit.Error)


class _Timeout(BaseException):
    """Raised by the SIGALRM handler; a BaseException so that ``except Exception`` in the user's
    code does not swallow it."""


@contextmanager
def _time_limit(seconds: float | None) -> Iterator[None]:
    """Raise _Timeout in the main thread after ``seconds`` (no limit when None or 0); the
    previous SIGALRM handler and any outer timer are restored afterwards."""
    usable = hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
    if not seconds or not 0 < seconds < _NO_LIMIT or not usable:  # inf, NaN: no limit
        if seconds and not usable:
            logger.debug("no time limit: signals work only in the main thread on POSIX")
        yield
        return
    armed = [True]

    def _alarm(signum: int, frame: Any) -> None:
        if armed[0]:
            armed[0] = False
            raise _Timeout

    previous = signal.signal(signal.SIGALRM, _alarm)
    outer_delay, outer_interval = signal.setitimer(signal.ITIMER_REAL, seconds)
    start = time.monotonic()
    try:
        yield
    finally:
        try:  # the one-shot alarm may fire once more here: the inner finally still runs
            armed[0] = False
            signal.setitimer(signal.ITIMER_REAL, 0)
        finally:
            signal.signal(signal.SIGALRM, previous if previous is not None else signal.SIG_DFL)
            if outer_delay:
                left = max(outer_delay - (time.monotonic() - start), 1e-3)
                signal.setitimer(signal.ITIMER_REAL, left, outer_interval)


def describe_exception(exc: BaseException) -> str:
    """``Type: message`` on one line (every line of the message kept, whitespace collapsed)."""
    text = " ".join(str(exc).split())
    if len(text) > _MAX_MESSAGE:
        text = text[:_MAX_MESSAGE] + " [...]"
    name = type(exc).__name__
    return f"{name}: {text}" if text else f"{name} (no message)"


def call_user(
    fn: Callable[..., Any],
    *args: Any,
    who: str,
    doing: str,
    timeout: float | None = DEFAULT_TIMEOUT,
    error: type[GanalyzeError] = LoaderError,
    explain: Callable[[BaseException, str], str] | None = None,
) -> Any:
    """``fn(*args)`` with a time limit, every exception turned into one ``error``.

    ``who`` names the code ("The generator g.py:G"), ``doing`` what it was asked ("on latents
    of shape (50, 8)"). An exception's message is ``explain(exc, "Type: message")`` when given,
    else "{who} raised Type: message {doing}.". A ganalyze error raised inside passes
    unchanged. KeyboardInterrupt becomes an error that says "interrupted" (exit code 130).
    """
    try:
        with _time_limit(timeout):
            return fn(*args)
    except GanalyzeError:
        raise
    except _Timeout:
        raise error(
            f"{who} did not return within {timeout:g} s {doing} and was stopped. If it is only "
            "slow, raise --timeout SECONDS (0: no limit); if it loops or waits forever, fix it."
        ) from None
    except SystemExit as exc:
        raise error(
            f"{who} called sys.exit({exc.code!r}) {doing}; ganalyze stopped instead of "
            "exiting without a report. Code that ganalyze calls must return or raise, not exit."
        ) from None
    except KeyboardInterrupt:
        err = error(f"{who} was interrupted (KeyboardInterrupt) {doing}; no report was written.")
        err.exit_code = 130
        raise err from None
    except BaseException as exc:  # GeneratorExit and other BaseExceptions too
        desc = describe_exception(exc)
        text = explain(exc, desc) if explain is not None else f"{who} raised {desc} {doing}."
        raise error(text) from exc


def _returned(
    out: Any,
    n: int,
    who: str,
    expected: str,
    error: type[GanalyzeError] = LoaderError,
    method_hint: str | None = None,
) -> torch.Tensor:
    """``out`` as a float tensor with n rows, or an error that says what came back instead;
    ``method_hint`` names the entry points to suggest when a tuple comes back."""
    if isinstance(out, tuple):
        kinds = ", ".join(type(o).__name__ for o in out[:5])
        method = method_hint or "module:object.method (e.g. vae.py:VAE.decode)"
        raise error(
            f"{who} returned a tuple of {len(out)} ({kinds}) for {n} inputs; "
            f"expected {expected}. Its forward returns several things (a VAE's (recon, mu, "
            f"logvar), a GAN's (images, features)): point ganalyze at the method that returns "
            f"only the images, {method}, or at a small wrapper function."
        )
    if isinstance(out, list | np.ndarray) and not torch.is_tensor(out):
        try:
            arr = np.asarray(out)
        except (ValueError, TypeError):
            arr = None
        if arr is None or arr.dtype.kind not in "biuf":
            kind = type(out).__name__ if arr is None else f"{type(out).__name__} of {arr.dtype}"
            raise error(f"{who} returned a {kind}; expected {expected}.")
        out = torch.from_numpy(np.ascontiguousarray(arr))
    if not torch.is_tensor(out):
        raise error(
            f"{who} returned {'None' if out is None else 'a ' + type(out).__name__} for {n} "
            f"inputs; expected {expected}."
        )
    if out.is_complex():
        raise error(f"{who} returned complex values ({out.dtype}); expected {expected}.")
    if out.ndim == 0 or out.shape[0] != n:
        rows = "a scalar" if out.ndim == 0 else f"{out.shape[0]} rows"
        raise error(
            f"{who} returned {rows} (shape {tuple(out.shape)}) for {n} inputs; expected "
            f"{expected}, one row per input and in the same order. Fix it so that row i "
            "belongs to input i."
        )
    return out.detach().float().cpu()


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
    x = x.detach().to(torch.float32).contiguous()  # an expanded view cannot be clipped in place
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
    far = int(((x < -1) | (x > 2)).sum())
    if far > _FAR_SHARE * x.numel():
        raise InputError(
            f"{what}: {far} of {x.numel()} values lie more than a whole range outside "
            f"{rng.replace(',', ' to ')} (min {float(x.min()):.3g}, max {float(x.max()):.3g} "
            "after scaling to 0-1); clipping them would audit a different generator. Set "
            "--output-range to the range it really emits, or fix the generator."
        )
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
    statistic; this wrapper converts to ``input_range`` and ``input_shape`` first. A D of
    another size than 28x28 gets the digits padded or resized to it (``conversion``: "none",
    "pad" or "resize", see :func:`~ganalyze.generators.images.d_conversion`), and repeated
    over three channels if it takes RGB.

    ``output`` is "probability" or "logits" (None until :meth:`decide_output`, the one place
    where it is decided); :meth:`scores` always returns probabilities.
    """

    def __init__(
        self,
        module: nn.Module | Callable[[torch.Tensor], torch.Tensor],
        input_range: str,
        input_shape: tuple[int, ...],
        output: str | None = None,
        device: str | torch.device = "cpu",
        name: str | None = None,
        timeout: float | None = DEFAULT_TIMEOUT,
    ) -> None:
        self.module, self.input_range = module, input_range
        self.input_shape = tuple(input_shape) if input_shape is not None else None
        self.shape_source = "given" if input_shape is not None else None  # how it was found
        self.conversion: str | None = None  # "none" | "pad" | "resize"; None: from the shape
        self.conversion_rule: str | None = None
        self.device = torch.device(device)
        self.output = output  # "probability", "logits", or None: decide_output decides
        self.output_rule = "given" if output is not None else None  # how it was decided
        self.name = name  # how errors name D, e.g. "--discriminator d.pt"; set by the generator
        self.timeout = timeout  # seconds per call of a batch; None or 0: no limit
        self.range_source = "given" if input_range is not None else None  # how it was found
        count = input_count(module)
        self.conditional = count is not None and count >= 2  # D(x, y): from its signature
        self.num_classes: int | None = None  # set when bound: G's, --num-classes, else 10
        self.label_input: str | None = None  # "index" | "onehot"; None: decided by a probe
        self.label_rule: str | None = None  # how label_input was found

    def call(self, x: torch.Tensor, labels: torch.Tensor | None) -> Any:
        """D on native inputs ``x``; a conditional D gets ``labels`` (n,) encoded as it takes
        them (class indices by default)."""
        if not self.conditional:
            return self.module(x)
        y = encode(labels, self.num_classes or 10, self.label_input or "index")
        return self.module(x, y.to(x.device))

    def labels_for(self, images: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor | None:
        """The labels a conditional D is fed: those given, else the digit the bundled
        classifier reads in each image (frames of an interpolation have no label of their
        own); None for an unconditional D."""
        if not self.conditional:
            return None
        if labels is not None:
            return torch.as_tensor(np.asarray(labels)).long()
        from ganalyze.reference import classify

        return torch.from_numpy(classify(images)[0].argmax(1)).long()

    def native(self, images: torch.Tensor) -> torch.Tensor:
        if self.input_range is None or self.input_shape is None:
            raise InputError(
                "The discriminator's input form is unknown: sample the generator "
                "first, or pass --d-input-range."
            )
        if self.conversion is None:
            self.conversion, self.conversion_rule = d_conversion(
                self.input_shape, "auto", None, f"The discriminator {self.name or ''}".rstrip()
            )
        x = to_native_size(images.to(torch.float32), self.input_shape, self.conversion)
        return from_unit_range(x, self.input_range)

    @torch.no_grad()
    def raw(
        self, images: torch.Tensor, labels: torch.Tensor | None = None, batch_size: int = 2000
    ) -> torch.Tensor:
        """D's raw outputs (n,) on canonical images: one finite score per image, or an error.
        A conditional D also gets ``labels`` (n,), see :meth:`labels_for`."""
        who = f"The discriminator {self.name or ''}".rstrip()
        shape = ", ".join(map(str, self.input_shape or ()))
        form = f"input of shape (n, {shape}) in range {self.input_range}"
        if self.conditional:
            form += f" with labels as {self.label_input or 'index'} of {self.num_classes} classes"
        labels = self.labels_for(images, labels)

        def explain(exc: BaseException, desc: str) -> str:
            if isinstance(exc, _SHAPE_ERRORS):
                return (
                    f"{who} rejected {form}: {desc}. Give the D that belongs to this generator, "
                    "or set the shape it takes with --d-input-shape (e.g. 1,64,64; its range "
                    "with --d-input-range)."
                )
            return f"{who} raised {desc} on {form}. Fix it, or audit without it."

        outs = []
        for i in range(0, len(images), batch_size):
            x = self.native(images[i : i + batch_size]).to(self.device)
            n = x.shape[0]
            y = labels[i : i + batch_size] if labels is not None else None
            out = call_user(
                self.call, x, y, who=who, doing=f"on {form}", timeout=self.timeout,
                error=InputError, explain=explain,
            )  # fmt: skip
            expected = "one score per image, of shape (n,) or (n, 1)"
            out = _returned(out, n, who, expected, InputError).reshape(n, -1)
            if out.shape[1] != 1:
                raise InputError(
                    f"{who} returned {out.shape[1]} values per image (shape "
                    f"{(n, out.shape[1])}) on {form}; expected {expected}. Wrap it so that "
                    "it returns only the score that an image is real."
                )
            outs.append(out[:, 0])
        raw = torch.cat(outs) if outs else torch.empty(0)
        nan, inf = int(torch.isnan(raw).sum()), int(torch.isinf(raw).sum())
        if nan or inf:
            raise InputError(
                f"{who} returned {nan} NaN and {inf} infinite scores (of {len(raw)}) on {form}; "
                "every D statistic would be NaN or wrong. Check its weights, or audit without "
                "the discriminator."
            )
        return raw

    def decide_output(self, real_images: torch.Tensor, labels: torch.Tensor | None = None) -> str:
        """How D's outputs are read, "probability" or "logits", decided once by these rules:

        1. as given (``--d-output``, ``LoadOptions.d_output``, a checkpoint's record);
        2. probabilities if D is an ``nn.Sequential`` that ends in a Sigmoid;
        3. probabilities if all its outputs on (the first 1,000 of) ``real_images`` lie in
           [0, 1], else logits.

        The audit passes MNIST test digits; :meth:`scores` on an undecided D passes the images
        it is given.
        """
        if self.output is None:
            m = self.module
            if isinstance(m, nn.Sequential) and len(m) > 0 and isinstance(m[-1], nn.Sigmoid):
                self.output, self.output_rule = "probability", "ends in a Sigmoid"
            else:
                raw = self.raw(
                    real_images[:_DETECT_N], None if labels is None else labels[:_DETECT_N]
                )
                in_unit = bool(((raw >= 0) & (raw <= 1)).all())
                self.output = "probability" if in_unit else "logits"
                self.output_rule = (
                    f"scores on {len(raw)} images {'in' if in_unit else 'outside'} [0, 1]"
                )
        return self.output

    def scores(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """P(real) (n,) on canonical images (and, for a conditional D, their labels (n,))."""
        output = self.decide_output(images, labels)
        raw = self.raw(images, labels)
        return raw if output == "probability" else torch.sigmoid(raw)


@dataclass
class Generator:
    """A generator in ganalyze's canonical form.

    ``fn`` maps latents to native images; for a samples file ``fn`` is None and ``images``
    holds the canonical samples. Latents are flat, (n, latent_dim), everywhere but in the call
    into ``fn``, which gets them as (n, *latent_shape) (e.g. (n, 100, 1, 1) for a DCGAN; see
    :mod:`ganalyze.generators.latents`). Native images of any size become canonical by
    ``image_form``, decided at :meth:`settle` under ``resize`` (see
    :mod:`ganalyze.generators.images`).
    """

    kind: str
    spec: str
    fn: Callable[[torch.Tensor], torch.Tensor] | None = None
    latent_dim: int | None = None
    prior: str = "normal"
    output_range: str | None = None  # None until settled: see settle()
    range_source: str = "auto"
    native_shape: tuple[int, ...] | None = None  # G's own output shape per image, e.g. (784,)
    discriminator: Discriminator | None = None
    images: torch.Tensor | None = None
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    info: dict[str, Any] = field(default_factory=dict)  # history, member set, file hash...
    timeout: float | None = DEFAULT_TIMEOUT  # seconds per call of a batch; None or 0: no limit
    latent_shape: tuple[int, ...] | None = None  # one latent as G takes it; None: (latent_dim,)
    latent_source: str | None = None  # how latent_shape (or latent_dim) was found
    latent_fixed: bool = False  # the shape is known for sure: the probe tries no other
    resize: str = "auto"  # --resize: auto, crop, resize or none
    image_form: ImageForm | None = None  # None until settled (or canonical samples)
    module: Any = None  # the model behind fn, when there is one (inspected for its latents)
    num_classes: int | None = None  # a conditional G(z, y): its classes; None: G takes z only
    label_input: str | None = None  # "index" | "onehot" (see labels.py); None: the probe decides
    label_source: str | None = None  # how label_input was found
    labels: str = "uniform"  # how conditioning labels are drawn: "uniform" or "train"

    @property
    def conditional(self) -> bool:
        """Whether G takes a class label besides z (``--num-classes``)."""
        return self.num_classes is not None

    def split(self, code: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(z, labels) of flat codes: a conditional G's codes end in a one-hot label (see
        :mod:`ganalyze.generators.labels`); labels None otherwise."""
        if not self.conditional:
            return code, None
        return split_code(code, self.num_classes)

    def code(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """The flat code of latents z (n, latent_dim) with conditioning ``labels`` (n,)."""
        return make_code(z, torch.as_tensor(labels).long(), self.num_classes)

    @property
    def has_generator(self) -> bool:
        return self.fn is not None

    @property
    def n_images(self) -> int:
        """How many images a samples source holds (without converting them)."""
        return 0 if self.images is None else len(self.images)

    @property
    def call_shape(self) -> tuple[int, ...] | None:
        """One latent's shape in the call into G."""
        if self.latent_shape is not None:
            return self.latent_shape
        return None if self.latent_dim is None else (self.latent_dim,)

    def prior_sample(self, n: int, gen: torch.Generator) -> torch.Tensor:
        if self.latent_dim is None:
            raise InputError(
                f"The latent size of {self.spec} is unknown; pass --latent-dim D "
                "(the size of z the generator takes) or --latent-shape (e.g. 100,1,1)."
            )
        # a conditional G's labels come from their own stream, seeded by one draw made before z:
        # the first m codes of any n are the same (the probe's are the audit's first 1,000)
        label_seed = int(torch.randint(0, 2**62, (1,), generator=gen)) if self.conditional else 0
        if self.prior == "uniform":
            z = torch.rand(n, self.latent_dim, generator=gen) * 2 - 1
        else:
            z = torch.randn(n, self.latent_dim, generator=gen)
        if not self.conditional:
            return z
        return make_code(z, draw_labels(n, self.num_classes, self.labels, label_seed),
                         self.num_classes)  # fmt: skip

    @torch.no_grad()
    def generate(
        self, z: torch.Tensor, batch_size: int = 1000, progress: bool = False
    ) -> torch.Tensor:
        """Canonical images for flat latents ``z`` (n, latent_dim), in batches."""
        from tqdm.auto import tqdm

        if self.fn is None:
            raise InputError(f"{self.spec} is a file of samples; it has no generator to call.")
        if not self.settled:  # a Generator built by hand, not by load_generator
            self.settle()
        outs = []
        steps = range(0, len(z), batch_size)
        for i in tqdm(steps, desc="sampling", disable=not progress, leave=False):
            outs.append(self._canonical(self._native(z[i : i + batch_size])))
        return torch.cat(outs)

    def _canonical(self, out: torch.Tensor) -> torch.Tensor:
        what = f"Output of {self.spec}"
        check_shape(tuple(out.shape), self.resize, what)
        return self.image_form.to_canonical(to_unit_range(out, self.output_range, what), what)

    def _native(self, z: torch.Tensor, shape: tuple[int, ...] | None = None) -> torch.Tensor:
        """G's own output on one batch of flat latents, checked (a float tensor, one row each);
        the batch reaches G as (n, *shape), by default (n, *latent_shape), with its labels
        for a conditional G."""
        who = f"The generator {self.spec}"
        z, labels = self.split(z)
        shape = shape or self.call_shape or tuple(z.shape[1:])
        zb = z.to(self.device).reshape(len(z), *shape)
        given = tuple(zb.shape)
        args = (zb,)
        if labels is not None:
            how = self.label_input or "index"
            args = (zb, encode(labels, self.num_classes, how).to(self.device))
            given = f"{given} and labels as {how} {tuple(args[1].shape)}"

        def explain(exc: BaseException, desc: str) -> str:
            text = f"{who} raised {desc} on latents of shape {given} (prior {self.prior})."
            if isinstance(exc, RuntimeError | ValueError | TypeError | IndexError):
                text += " " + self._latent_hint(exc)
            return text

        out = call_user(
            self.fn, *args, who=who, doing=f"on latents of shape {given}",
            timeout=self.timeout, explain=explain,
        )  # fmt: skip
        return _returned(out, len(zb), who, f"images of shape {ACCEPTED_SIZES}",
                         method_hint=self.info.get("tuple_hint"))  # fmt: skip

    def _latent_hint(self, exc: BaseException) -> str:
        """What to try when G rejects its inputs: labels for a G that looks conditional (a
        second input, or a first layer 10 wider than z: a one-hot label concatenated), else
        another latent size or shape."""
        first = infer_latent(self.module) if self.module is not None else None
        wider = first is not None and self.latent_dim is not None and first[0] - self.latent_dim
        if not self.conditional and (
            looks_conditional(exc, self.fn)
            or (self.module is not None and looks_conditional(exc, self.module))
        ):
            return f"It looks conditional: it takes a second input, a class label y; {PASS_LABELS}."
        if not self.conditional and wider == 10:
            return (f"Its first layer takes {first[0]} = {self.latent_dim} + 10 inputs: if it "
                    f"is conditional (a one-hot label concatenated to z), {PASS_LABELS}; else "
                    "pass its latent size with --latent-dim.")  # fmt: skip
        guessed = self.latent_source not in (None, "--latent-dim", "--latent-shape")
        came = f" (found from: {self.latent_source})" if guessed else ""
        text = (f"If its latent size is not {self.latent_dim}{came}, pass --latent-dim; if it "
                "takes latents of another shape, pass --latent-shape (e.g. 100,1,1).")  # fmt: skip
        if self.conditional:
            text += (f" It was given labels as {self.label_input or 'index'} "
                     f"({self.label_source or '--label-input'}): try --label-input "
                     f"{'onehot' if self.label_input != 'onehot' else 'index'}, or check "
                     f"--num-classes {self.num_classes}.")  # fmt: skip
        return text

    @property
    def settled(self) -> bool:
        """Whether the output range, native shape and image conversion are known (always,
        after loading)."""
        return (self.output_range is not None and self.native_shape is not None
                and self.image_form is not None)  # fmt: skip

    @torch.no_grad()
    def settle(self, seed: int = 0) -> None:
        """Decide the latent shape (if not known), the output range, native shape and image
        conversion from a probe batch, if not known yet.

        The probe is :data:`PROBE_N` latents drawn with ``seed``: exactly the first 1,000
        latents of ``sample(n, seed)`` for n >= 1,016 (16 more are drawn and dropped, because
        torch redraws the last 16 values of a tensor of normal values), so an audit decides on
        the same outputs as its own first batch. The range rule is :func:`detect_range`; the
        image conversion is :func:`~ganalyze.generators.images.decide_form` under ``resize``.
        A samples file is settled when it is read.
        """
        if self.fn is None or self.settled:
            return
        if self.latent_dim is not None:
            check_allocation(
                8 * (PROBE_N + _PROBE_EXTRA) * self.latent_dim,
                f"A probe batch of {PROBE_N:,} latents of latent size {self.latent_dim}",
                "Check the latent size (--latent-dim or --latent-shape).",
            )
        gen = torch.Generator().manual_seed(int(seed))
        z = self.prior_sample(PROBE_N + _PROBE_EXTRA, gen)[:PROBE_N]
        out = self._probe(z)
        what = f"Output of {self.spec}"
        check_shape(tuple(out.shape), self.resize, what)
        self.native_shape = tuple(out.shape[1:])
        if self.output_range is None:
            self.output_range = detect_range(out)
            logger.info(
                "%s: output range detected as [%s] from a probe batch of %d outputs (seed %d)",
                self.spec, self.output_range, len(out), seed,
            )  # fmt: skip
        self.image_form = decide_form(
            tuple(out.shape), self.resize, lambda: to_unit_range(out, self.output_range, what),
            what,
        )  # fmt: skip

    def _probe(self, z: torch.Tensor) -> torch.Tensor:
        """G's output on the probe latents; for a conditional G whose label input is not
        given, labels as class indices, else as one-hot rows (the first that works is kept)."""
        if not self.conditional or self.label_input is not None:
            return self._probe_shape(z)
        failed = []
        for how in LABEL_INPUTS:
            self.label_input = how
            try:
                out = self._probe_shape(z)
            except LoaderError as exc:
                failed.append(f"as {how}: {exc}")
                continue
            self.label_source = (f"auto: {how} worked" if not failed else
                                 f"auto: index failed, {how} worked")  # fmt: skip
            logger.info("%s: labels fed as %s (%s)", self.spec, how, self.label_source)
            return out
        self.label_input = None
        raise LoaderError(f"The conditional generator {self.spec} failed with its labels as "
                          f"class indices and as one-hot rows; {'; '.join(failed)}")  # fmt: skip

    def _probe_shape(self, z: torch.Tensor) -> torch.Tensor:
        """G's output on the probe latents; a flat latent shape that G rejects with a
        shape-like error is tried once more as (n, d, 1, 1), and kept if that works."""
        try:
            return self._native(z)
        except LoaderError as exc:
            shape_like = isinstance(exc.__cause__, _SHAPE_ERRORS)
            if self.latent_fixed or not shape_like or len(self.call_shape or ()) != 1:
                raise
            first = exc
        shape = (self.latent_dim, 1, 1)
        try:
            out = self._native(z, shape)
        except LoaderError:
            raise first from None
        tried = flat((self.latent_dim,))
        self.latent_shape, self.latent_fixed = shape, True
        before = f" ({self.latent_source})" if self.latent_source else ""
        self.latent_source = f"probe: {tried} failed, {flat(shape)} worked{before}"
        logger.info("%s: latents of shape %s (%s)", self.spec, flat(shape), self.latent_source)
        return out

    def bound_discriminator(self) -> Discriminator | None:
        """The discriminator, its native input defaulting to G's native output form: range,
        shape (a probe tries other common shapes when D rejects G's), and the conversion of
        canonical digits to that shape (the inverse of G's)."""
        self.settle()
        d = self.discriminator
        if d is not None:
            d.name = d.name or f"of {self.spec}"
            d.timeout = self.timeout
            if d.num_classes is None:
                d.num_classes = self.num_classes or 10
            if d.input_range is None:
                d.input_range = self.output_range or "0,1"
                d.range_source = "G's native range" if self.output_range else "default"
            if d.input_shape is None:
                d.input_shape = self.native_shape or (1, 28, 28)
                d.shape_source = "G's native shape" if self.native_shape else "canonical"
                probe_input_shape(d)
            if d.conditional and d.label_input is None:
                probe_label_input(d)
            if d.conversion is None:
                d.conversion, d.conversion_rule = d_conversion(
                    d.input_shape, self.resize, self.image_form, f"The discriminator {d.name}"
                )
        return d

    def sample(
        self, n: int, seed: int = 0, progress: bool = False
    ) -> tuple[torch.Tensor | None, torch.Tensor]:
        """n canonical samples and the flat latents that made them (None for a samples file).

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


D_SHAPES = ((1, 28, 28), (784,), (1, 32, 32), (1, 64, 64), (3, 32, 32), (3, 64, 64))
"""Input shapes a discriminator's probe tries, in order, after the one it was bound to."""
_D_PROBE_TIMEOUT = 30.0  # seconds per probe call of two images


def probe_input_shape(d: Discriminator) -> None:
    """Keep D's input shape if D takes two blank digits in it; else try :data:`D_SHAPES` and
    keep the first it takes (one score per image), saying so in ``d.shape_source``. A D that
    fails otherwise (no shape-like error, a hang, no shape works) keeps its shape: the audit's
    own call then reports D's error."""
    blank = torch.zeros(2, 1, 28, 28)

    def takes(shape: tuple[int, ...]) -> bool | None:
        """True: one score per image; False: rejected as a shape; None: failed otherwise."""
        try:
            op, _ = d_conversion(shape, "auto", None, "The discriminator")
        except InputError:
            return False
        x = from_unit_range(to_native_size(blank, shape, op), d.input_range or "0,1")
        return _d_takes(d, x)

    if d.conditional and d.label_input is None:
        probe_label_input(d)
    first = takes(d.input_shape)
    if first is not False:
        return
    for shape in D_SHAPES:
        if shape == d.input_shape:
            continue
        if takes(shape):
            logger.info("discriminator %s: input shape %s found by a probe (it rejected %s)",
                        d.name, shape, d.input_shape)  # fmt: skip
            d.shape_source = f"probe: it rejected {d.input_shape}, took {shape}"
            d.input_shape = shape
            return


def _d_takes(d: Discriminator, x: torch.Tensor) -> bool | None:
    """Whether D gives one score per image of the native batch ``x`` (labels 0 for a
    conditional D): True; False: rejected as a shape; None: failed otherwise."""
    limit = min(d.timeout or _D_PROBE_TIMEOUT, _D_PROBE_TIMEOUT)
    labels = torch.zeros(len(x), dtype=torch.long)
    try:
        out = call_user(d.call, x.to(d.device), labels, who="The discriminator",
                        doing="(probe)", timeout=limit, error=InputError)  # fmt: skip
    except InputError as exc:
        return False if isinstance(exc.__cause__, _SHAPE_ERRORS) else None
    try:
        return _returned(out, len(x), "D", "scores", InputError).reshape(len(x), -1).shape[1] == 1
    except InputError:
        return False


def probe_label_input(d: Discriminator) -> None:
    """How a conditional D takes its labels: as class indices if it takes two blank digits
    with them (in its input shape, or any of :data:`D_SHAPES`), else as one-hot rows; said in
    ``d.label_rule``. Neither: indices, and the audit's own call reports D's error."""
    shapes = [s for s in (d.input_shape, *D_SHAPES) if s is not None]
    blank = torch.zeros(2, 1, 28, 28)
    for how in LABEL_INPUTS:
        d.label_input = how
        for shape in shapes:
            try:
                op, _ = d_conversion(shape, "auto", None, "The discriminator")
            except InputError:
                continue
            x = from_unit_range(to_native_size(blank, shape, op), d.input_range or "0,1")
            if _d_takes(d, x):
                d.label_rule = ("probe: it takes class indices" if how == "index" else
                                "probe: it rejected class indices, took one-hot rows")  # fmt: skip
                return
    d.label_input, d.label_rule = "index", "probe: neither form worked; class indices"
