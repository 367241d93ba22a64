"""Images of any size to the canonical 28x28 form, and canonical digits back to a discriminator's.

A source's native images may be flat (n, 784) or (n, s*s), (n, H, W), (n, 1, H, W), or
(n, 3, H, W) whose three channels are equal (a gray image stored as RGB). They are converted
once, at the loader, by the :class:`ImageForm` decided on the source's first images
(``--resize``):

- ``auto``: 28x28 is kept; a 32x32 image whose 2-pixel border is empty is centre-cropped (that
  is exact: it is how MNIST is padded to 32x32 for LeNet); any other size is resized;
- ``crop``: a centre crop to 28x28 (of images at least 28x28);
- ``resize``: a resize to 28x28;
- ``none``: only 28x28 images (the error of earlier versions for any other size).

Resizing down is the least-squares inverse of bilinear enlargement: each 28x28 image is the one
whose bilinear enlargement to the native size is nearest (L2) to the native image, computed per
axis with the pseudo-inverse of the bilinear interpolation matrix. That is the orthogonal
projection onto what a 28x28 image can represent, the L2-optimal antialiasing prefilter for
linear splines (Unser, Aldroubi and Eden 1995), and it recovers exactly a 28x28 digit that was
enlarged bilinearly, which is how MNIST reaches a 64x64 DCGAN (torchvision's ``Resize(64)``): the
audit sees the digits the generator was trained to imitate. Measured on MNIST test taken to
64x64 and back (tests/test_image_sizes.py), it keeps the classifier's accuracy and the copy rate
(0.0100) exactly, where a bilinear antialiased reduction (PIL's, torchvision's) blurs the
strokes: accuracy -0.13 points, copy rate 0.0003 in pixel space, and a copier of MNIST train
found at 0.88 instead of 1.00 (0.67 in the classifier's feature space). Digits enlarged by
bicubic or nearest-neighbour interpolation come back within a mean 0.007 and 0.021 of their
originals (0.020 and 0.027 by the bilinear antialiased reduction). Its filter has
negative lobes (it sharpens), so results are clipped to [0, 1]. Resizing up (a 14x14 source, or
digits fed to a 64x64 discriminator) is bilinear, the enlargement that the reduction inverts.

A discriminator is fed the inverse (:func:`to_native_size`): canonical digits are padded back
to 32x32 when the generator's images were cropped (or, without a generator, when D takes
32x32), otherwise resized to D's size, and repeated over its channels.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ganalyze.errors import InputError

SIDE = 28
RESIZE_MODES = ("auto", "crop", "resize", "none")
RESIZE_METHOD = "least-squares inverse of bilinear"
MIN_SIDE = 14
"""The smallest image side accepted (half of MNIST's): below it, no digit is legible."""
PAD_BORDER = 2  # MNIST padded for LeNet: 28 + 2 + 2 = 32
BORDER_INK = 0.5  # a border pixel above half intensity is ink
BORDER_INK_SHARE = 0.001  # a border is empty when at most 0.1% of its pixels are ink
CHANNEL_TOLERANCE = 2 / 255  # channels equal up to 8-bit rounding
ACCEPTED_SHAPES = "(n, 784), (n, 28, 28) or (n, 1, 28, 28)"
ACCEPTED_SIZES = (
    f"(n, 784), (n, H, W), (n, 1, H, W), (n, 3, H, W) with three equal channels, or (n, H*W) of "
    f"a square image, with H and W at least {MIN_SIDE}"
)


def parse_resize(value: str | None) -> str:
    """``value`` as one of :data:`RESIZE_MODES` (None: auto), else an InputError."""
    mode = "auto" if value is None else str(value).strip().lower()
    if mode not in RESIZE_MODES:
        raise InputError(f"Unknown --resize {value!r}; expected auto, crop, resize or none.")
    return mode


def image_dims(shape: tuple[int, ...]) -> tuple[int, int, int] | None:
    """(channels, height, width) of one image of per-image ``shape``, None if it is none."""
    shape = tuple(int(s) for s in shape)
    if len(shape) == 1:
        side = math.isqrt(shape[0])
        dims = (1, side, side) if side * side == shape[0] else None
    elif len(shape) == 2:
        dims = (1, *shape)
    elif len(shape) == 3 and shape[0] in (1, 3):
        dims = shape
    else:
        dims = None
    if dims is None or min(dims[1:]) < MIN_SIDE:
        return None
    return dims


def check_shape(shape: tuple[int, ...], mode: str, what: str) -> tuple[int, int, int]:
    """The (channels, height, width) of images of batch ``shape``, or the InputError that says
    which shapes are accepted (the 28x28 ones only under ``--resize none``)."""
    shape = tuple(int(s) for s in shape)
    dims = image_dims(shape[1:]) if len(shape) >= 2 else None
    if mode == "none":
        if dims == (1, SIDE, SIDE):
            return dims
        raise InputError(f"{what} has shape {shape}; expected {ACCEPTED_SHAPES}.")
    if dims is None:
        raise InputError(f"{what} has shape {shape}; expected {ACCEPTED_SIZES}.")
    return dims


def _size(h: int, w: int) -> str:
    return f"{w}x{h}" if h != w else f"{h}x{h}"


@dataclass(frozen=True)
class ImageForm:
    """How one source's native images become canonical: float32 (n, 1, 28, 28) in [0, 1].

    ``native`` is one image's native shape (e.g. (3, 64, 64)); ``op`` is "none", "crop" or
    "resize"; ``rule`` says why (the mode and, for auto, what was seen).
    """

    native: tuple[int, ...]
    op: str
    rule: str

    def __post_init__(self) -> None:
        if image_dims(self.native) is None or self.op not in ("none", "crop", "resize"):
            raise InputError(
                f"ImageForm({self.native}, {self.op!r}): expected an image shape "
                f"({ACCEPTED_SIZES}, without n) and op none, crop or resize."
            )

    @property
    def dims(self) -> tuple[int, int, int]:
        return image_dims(self.native)  # type: ignore[return-value]  # checked when built

    def to_canonical(self, x: torch.Tensor, what: str) -> torch.Tensor:
        """Native images already mapped to [0, 1] -> (n, 1, 28, 28), checked batch by batch."""
        if tuple(x.shape[1:]) != self.native:
            first = ", ".join(map(str, self.native))
            raise InputError(
                f"{what} has shape {tuple(x.shape)}; expected (n, {first}), the shape of its "
                "first batch. A generator must emit one image size."
            )
        c, h, w = self.dims
        x = gray(x.reshape(len(x), c, h, w), what)
        if self.op == "crop":
            x = crop_center(x, SIDE, SIDE)
        elif self.op == "resize":
            x = resize(x, SIDE, SIDE)
        return x.contiguous()

    def facts(self) -> dict:
        """Plain values for a report's meta (the header is rendered from them)."""
        c, h, w = self.dims
        return {
            "native_size": [h, w],
            "channels": c,
            "conversion": self.op,
            "method": RESIZE_METHOD if self.op == "resize" else None,
            "rule": self.rule,
        }


def decide_form(
    shape: tuple[int, ...], mode: str, first: Callable[[], torch.Tensor], what: str
) -> ImageForm:
    """The :class:`ImageForm` of images of batch ``shape`` under ``--resize mode``.

    ``first()`` gives the first images in [0, 1] (native shape); it is called only when the
    decision depends on them (auto on 32x32: is the 2-pixel border empty?).
    """
    c, h, w = check_shape(shape, mode, what)
    native = tuple(int(s) for s in shape[1:])
    if (h, w) == (SIDE, SIDE):
        return ImageForm(native, "none", "native 28x28")
    if mode == "crop":
        if h < SIDE or w < SIDE:
            raise InputError(
                f"{what} is {_size(h, w)}, smaller than 28x28: --resize crop cannot crop it. "
                "Use --resize resize (or auto)."
            )
        return ImageForm(native, "crop", "--resize crop")
    if mode == "resize":
        return ImageForm(native, "resize", "--resize resize")
    if (h, w) == (SIDE + 2 * PAD_BORDER,) * 2:
        x = gray(first().reshape(-1, c, h, w), what)
        ink = float(border_ink_share(x))
        if ink <= BORDER_INK_SHARE:
            return ImageForm(native, "crop", f"auto: 32x32 with an empty {PAD_BORDER}-pixel "
                             "border (MNIST padded for LeNet)")  # fmt: skip
        rule = (f"auto: 32x32, but {ink:.2%} of its {PAD_BORDER}-pixel border is ink (over "
                f"{BORDER_INK_SHARE:.1%})")  # fmt: skip
        return ImageForm(native, "resize", rule)
    return ImageForm(native, "resize", f"auto: {_size(h, w)} is not 28x28")


def border_ink_share(x: torch.Tensor, border: int = PAD_BORDER) -> torch.Tensor:
    """Share of the pixels in the ``border``-pixel frame of (n, 1, H, W) images in [0, 1] that
    are ink (above :data:`BORDER_INK`)."""
    mask = torch.ones(x.shape[-2:], dtype=torch.bool)
    mask[border:-border, border:-border] = False
    return (x[..., mask] > BORDER_INK).float().mean()


def gray(x: torch.Tensor, what: str) -> torch.Tensor:
    """(n, 1, H, W) from (n, 1 or 3, H, W) in [0, 1]; three channels must be equal (within
    :data:`CHANNEL_TOLERANCE`) and are averaged, else an InputError."""
    if x.shape[1] == 1:
        return x
    spread = x.amax(1) - x.amin(1)
    worst = float(spread.max()) if spread.numel() else 0.0
    if worst > CHANNEL_TOLERANCE:
        bad = int((spread > CHANNEL_TOLERANCE).sum())
        raise InputError(
            f"{what} has 3 channels that differ (by up to {worst:.3g} on a 0-1 scale, in {bad} of "
            f"{spread.numel()} pixels); expected grayscale digits: (n, 1, H, W), or (n, 3, H, W) "
            "with three equal channels. Emit one channel, or convert to gray in a wrapper (e.g. "
            "images.mean(1, keepdim=True)) if the difference is only colour noise."
        )
    return x.mean(1, keepdim=True)


def crop_center(x: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """The centre h x w of (n, c, H, W) images (top-left offset rounded down)."""
    top, left = (x.shape[-2] - h) // 2, (x.shape[-1] - w) // 2
    return x[..., top : top + h, left : left + w]


def pad_center(x: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """(n, c, H, W) images padded with 0 (background) to h x w: the inverse of
    :func:`crop_center`."""
    top, left = (h - x.shape[-2]) // 2, (w - x.shape[-1]) // 2
    return F.pad(x, (left, w - x.shape[-1] - left, top, h - x.shape[-2] - top))


def resize(x: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """(n, c, H, W) images in [0, 1] resized to h x w, per axis: bilinear enlargement, or its
    least-squares inverse to reduce (see the module docstring for why); clipped to [0, 1]."""
    if tuple(x.shape[-2:]) == (h, w):
        return x
    rows, cols = _axis(x.shape[-2], h), _axis(x.shape[-1], w)
    return (rows @ x.float() @ cols.T).clamp_(0, 1)


@functools.lru_cache(maxsize=32)
def _axis(n_in: int, n_out: int) -> torch.Tensor:
    """The (n_out, n_in) matrix taking one axis from n_in to n_out samples: bilinear
    interpolation (align_corners=False) to enlarge, its pseudo-inverse to reduce."""
    if n_out == n_in:
        return torch.eye(n_in)
    small, large = min(n_in, n_out), max(n_in, n_out)
    basis = torch.eye(small, dtype=torch.float64).reshape(small, 1, small)
    up = F.interpolate(basis, size=large, mode="linear", align_corners=False)[:, 0, :].T
    return (up if n_out > n_in else torch.linalg.pinv(up)).float()


def d_conversion(
    shape: tuple[int, ...], mode: str, g_form: ImageForm | None, what: str
) -> tuple[str, str]:
    """How canonical digits reach a discriminator of per-image input ``shape``: ("none" |
    "pad" | "resize", why), or an InputError when ``shape`` is not an image shape."""
    dims = image_dims(shape)
    if dims is None and math.prod(shape) == SIDE * SIDE:  # e.g. (1, 784): a plain reshape
        return "none", "28x28, reshaped"
    if dims is None:
        raise InputError(
            f"{what} takes inputs of shape (n, {', '.join(map(str, shape))}); expected one image "
            f"per row: {ACCEPTED_SIZES}. Set its input shape with --d-input-shape, e.g. 1,64,64."
        )
    c, h, w = dims
    if (h, w) == (SIDE, SIDE):
        return "none", "28x28"
    if mode == "none":
        raise InputError(
            f"{what} takes {_size(h, w)} images, but --resize none feeds only 28x28. Use "
            "--resize auto, or give a discriminator of 28x28 images."
        )
    if g_form is not None and g_form.op != "none" and g_form.dims[1:] == (h, w):
        op = "pad" if g_form.op == "crop" else "resize"
        return op, f"the inverse of G's {g_form.op}"
    if mode == "crop" or (mode == "auto" and (h, w) == (SIDE + 2 * PAD_BORDER,) * 2):
        if h < SIDE or w < SIDE:
            return "resize", f"{_size(h, w)} is smaller than 28x28"
        rule = "--resize crop" if mode == "crop" else "32x32: MNIST padded for LeNet"
        return "pad", rule
    return "resize", f"{'--resize resize' if mode == 'resize' else 'auto'}: D takes {_size(h, w)}"


def to_native_size(x: torch.Tensor, shape: tuple[int, ...], op: str) -> torch.Tensor:
    """Canonical (n, 1, 28, 28) images in [0, 1] as a discriminator's (n, *shape): padded or
    resized to its size, repeated over its channels."""
    c, h, w = image_dims(shape) or (1, SIDE, SIDE)
    if op == "pad":
        x = pad_center(x, h, w)
    elif op == "resize":
        x = resize(x, h, w)
    if c != 1:
        x = x.expand(len(x), c, h, w)
    return x.reshape(len(x), *shape)
