"""Conditional generators G(z, y) and discriminators D(x, y): how class labels are drawn and fed.

A conditional generator is audited with ``--num-classes K``. Inside ganalyze its latent code is
flat, ``(n, d + K)``: the d coordinates of z followed by the one-hot label, so that every
analysis that walks or perturbs latents (interpolation, latent_map) keeps working unchanged;
the label of a code is the argmax of its last K coordinates (a walk between two codes of
different classes switches class half way). Only the call into G splits a code into z and y,
fed as class indices (n,) int64 (``--label-input index``) or as one-hot rows (n, K) float32
(``onehot``); ``auto`` tries index first, then one-hot, on the probe batch and says which
worked.

Labels are drawn by ``--labels``: ``uniform`` (each class 1/K) or ``train`` (MNIST train's
class shares), from a generator seeded by one number drawn before z, so that the first 1,000
codes of ``sample(n, seed)`` are the probe's for any n, labels included.
"""

from __future__ import annotations

import inspect
import re
from typing import Any

import torch
import torch.nn.functional as F

from ganalyze.errors import InputError

LABEL_INPUTS = ("index", "onehot")
LABEL_DRAWS = ("uniform", "train")
MNIST_CLASSES = 10
# digits 0-9 in MNIST's 60,000 training images (torchvision's MNIST, train=True)
MNIST_TRAIN_COUNTS = (5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949)
MAX_CLASSES = 100_000
_MISSING_ARGUMENT = re.compile(
    r"missing (?:\d+ )?(?:required )?(?:positional )?(?:value for )?argument|"
    r"expected \d+ (?:positional )?(?:arguments?|inputs?)|takes \d+ positional argument",
    re.IGNORECASE,
)

PASS_LABELS = (
    "pass --num-classes 10 (MNIST's digits) so that each sample gets a class label y, fed as "
    "class indices or one-hot rows (--label-input index|onehot; auto tries both) and drawn by "
    "--labels uniform|train"
)


def check_label_options(num_classes: Any, label_input: Any, labels: Any) -> tuple:
    """The three options checked: (num_classes or None, label_input or None for auto, labels)."""
    if num_classes is not None:
        ok = isinstance(num_classes, int) and not isinstance(num_classes, bool)
        if not ok or not 2 <= num_classes <= MAX_CLASSES:
            raise InputError(f"--num-classes must be an integer from 2 to {MAX_CLASSES:,} (10 for "
                             f"MNIST's digits); got {num_classes!r}.")  # fmt: skip
    label_input = None if label_input in (None, "auto") else str(label_input).lower()
    if label_input is not None and label_input not in LABEL_INPUTS:
        raise InputError(f"Unknown --label-input {label_input!r}; expected auto, index or onehot.")
    labels = "uniform" if labels is None else str(labels).lower()
    if labels not in LABEL_DRAWS:
        raise InputError(f"Unknown --labels {labels!r}; expected uniform or train.")
    if labels == "train" and num_classes not in (None, MNIST_CLASSES):
        raise InputError(f"--labels train draws MNIST train's shares of its 10 digits; got "
                         f"--num-classes {num_classes}. Use --labels uniform.")  # fmt: skip
    return num_classes, label_input, labels


def draw_labels(n: int, num_classes: int, rule: str, seed: int) -> torch.Tensor:
    """n class labels (int64) by ``rule`` ("uniform" or "train"), prefix-stable in n: the
    first m labels of any draw with one seed are the same."""
    u = torch.rand(n, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    if rule == "train":
        shares = torch.tensor(MNIST_TRAIN_COUNTS, dtype=torch.float64)
        edges = torch.cumsum(shares / shares.sum(), 0)
        return torch.searchsorted(edges, u, right=True).clamp_(max=num_classes - 1)
    return (u * num_classes).long().clamp_(max=num_classes - 1)


def onehot(y: torch.Tensor, num_classes: int) -> torch.Tensor:
    return F.one_hot(y.long(), num_classes).to(torch.float32)


def encode(y: torch.Tensor, num_classes: int, how: str) -> torch.Tensor:
    """Labels as a model takes them: indices (n,) int64 or one-hot rows (n, K) float32."""
    return y.long() if how == "index" else onehot(y, num_classes)


def split_code(code: torch.Tensor, num_classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(z, y) of flat codes (n, d + K): the label is the argmax of the last K coordinates."""
    return code[:, :-num_classes], code[:, -num_classes:].argmax(1)


def make_code(z: torch.Tensor, y: torch.Tensor, num_classes: int) -> torch.Tensor:
    """The flat code (n, d + K) of latents z (n, d) and labels y (n,)."""
    return torch.cat([z.reshape(len(z), -1).to(torch.float32), onehot(y, num_classes)], 1)


def input_count(fn: Any, required: bool = True) -> int | None:
    """How many positional inputs a model or callable requires (all it takes, with
    ``required=False``; None: unknown), read from its signature or TorchScript schema, never
    by calling it."""
    forward = getattr(fn, "forward", None)
    schema = getattr(forward, "schema", None)
    if schema is not None:  # TorchScript: the first argument is self
        return sum(not (required and a.has_default_value()) for a in schema.arguments[1:])
    target = forward if isinstance(fn, torch.nn.Module) and forward is not None else fn
    try:
        params = inspect.signature(target).parameters.values()
    except (TypeError, ValueError):
        return None
    if any(p.kind == p.VAR_POSITIONAL for p in params):
        return None
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return sum((p.default is inspect.Parameter.empty or not required) and p.kind in positional
               for p in params)  # fmt: skip


def looks_conditional(exc: BaseException, fn: Any) -> bool:
    """Whether a failure of ``fn(z)`` says that it wants a second input (a label)."""
    count = input_count(fn)
    return (count is not None and count >= 2) or bool(_MISSING_ARGUMENT.search(str(exc)))
