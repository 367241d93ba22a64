"""The checkpoint schema: what a reference-GAN checkpoint must hold before anything believes it.

Values in a checkpoint steer the audit (the range G's outputs are mapped from, whether D's
outputs go through a sigmoid, the prior z is drawn from, the member set), so each is checked
against the few values ganalyze knows how to use. A foreign or hand-edited file that says
``d_output: "maybe"`` or ``image_range: [5, 7]`` is refused, never half-used.

:func:`violations` lists every problem as "field: expected ...; found ..."; :func:`validate`
raises one :class:`~ganalyze.errors.CheckpointError` that names them all on one line.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch

from ganalyze.errors import CheckpointError

REFERENCE_KEYS = ("0.weight", "0.bias", "2.weight", "2.bias", "4.weight", "4.bias")
RANGES = ([-1.0, 1.0], [0.0, 1.0], [0.0, 255.0])
MNIST_TRAIN = 60000
Check = Callable[[Any], str | None]  # None when the value is valid, else what was expected


def _int(lo: int = 0) -> Check:
    def check(v: Any) -> str | None:
        ok = isinstance(v, int) and not isinstance(v, bool) and v >= lo
        return None if ok else f"an integer >= {lo}"

    return check


def _one_of(*allowed: Any) -> Check:
    return lambda v: None if v in allowed else "one of " + ", ".join(map(repr, allowed))


def _range(v: Any) -> str | None:
    ok = isinstance(v, list | tuple) and [_num(x) for x in v] in RANGES
    return None if ok else "a range [-1, 1], [0, 1] or [0, 255]"


def _num(x: Any) -> float | None:
    return float(x) if isinstance(x, int | float) and not isinstance(x, bool) else None


def _shape(v: Any) -> str | None:
    ok = (
        isinstance(v, list | tuple)
        and all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in v)
        and math.prod(v) == 784
    )
    return None if ok else "a list of positive sizes whose product is 784 (e.g. [784])"


def _positive_float(v: Any) -> str | None:
    x = _num(v)
    return None if x is not None and math.isfinite(x) and x > 0 else "a finite number > 0"


def _betas(v: Any) -> str | None:
    ok = isinstance(v, list | tuple) and len(v) == 2
    ok = ok and all(_num(b) is not None and 0 <= b < 1 for b in v)
    return None if ok else "two numbers in [0, 1)"


def _optional(check: Check) -> Check:
    return lambda v: None if v is None else check(v)


def _indices(v: Any) -> str | None:
    if not torch.is_tensor(v) or v.ndim != 1 or v.dtype.is_floating_point or v.is_complex():
        return "a 1-D integer tensor of MNIST-train indices"
    if len(v) == 0:
        return "at least one index"
    if int(v.min()) < 0 or int(v.max()) >= MNIST_TRAIN:
        return f"indices in [0, {MNIST_TRAIN}) (found {int(v.min())} to {int(v.max())})"
    if len(torch.unique(v)) != len(v):
        return "distinct indices"
    return None


def _state_dict(v: Any) -> str | None:
    expected = "a state_dict of the reference MLP (keys 0.weight ... 4.bias, finite tensors)"
    if not isinstance(v, dict) or set(v) != set(REFERENCE_KEYS):
        return expected
    if not all(torch.is_tensor(t) and t.is_floating_point() for t in v.values()):
        return expected
    bad = sum(int((~torch.isfinite(t)).sum()) for t in v.values())
    return f"finite weights ({bad} are NaN or Inf)" if bad else None


def _fixed_z(v: Any) -> str | None:
    ok = torch.is_tensor(v) and v.ndim == 2 and v.is_floating_point()
    return None if ok else "a 2-D float tensor of latents"


def _is(kind: type | tuple[type, ...], name: str) -> Check:
    return lambda v: None if isinstance(v, kind) else name


# Fields every checkpoint needs to be audited; ``RESUME`` adds what resuming needs.
AUDIT: dict[str, Check] = {
    "generator": _state_dict,
    "discriminator": _state_dict,
    "config": _is(dict, "a dict of settings"),
    "epoch": _int(0),
    "history": _optional(_is(list, "a list of per-epoch records")),
    "fixed_z": _optional(_fixed_z),
}
CONFIG: dict[str, Check] = {
    "latent_dim": _int(1),
    "image_range": _range,
    "d_input_range": _range,
    "d_input_shape": _shape,
    "d_output": _one_of("probability", "logits"),
    "prior": _one_of("normal", "uniform"),
    "train_indices": _optional(_indices),
}
RESUME: dict[str, Check] = {
    "opt_g": _is(dict, "an optimizer state_dict"),
    "opt_d": _is(dict, "an optimizer state_dict"),
    "step": _int(0),
    "rng": _is(dict, "a dict of RNG states"),
    "history": _is(list, "a list of per-epoch records"),
    "fixed_z": _fixed_z,
}
RESUME_CONFIG: dict[str, Check] = {
    "epochs": _int(1),
    "batch_size": _int(1),
    "hidden": _int(1),
    "seed": _int(0),
    "lr": _positive_float,
    "betas": _betas,
    "limit": _optional(_int(1)),
    "train_indices": _indices,
}
OPTIONAL_CONFIG = {"prior", "d_output"}  # checkpoints of format 1 written before these existed


def violations(ck: Any, resume: bool = False) -> list[str]:
    """Every problem of ``ck`` as "field: expected X; found Y" (empty when it is valid)."""
    if not isinstance(ck, dict):
        return [f"the file: expected a dict of checkpoint fields; found {_show(ck)}"]
    optional = set() if resume else {"history", "fixed_z"}
    found = _check(ck, {**AUDIT, **(RESUME if resume else {})}, "", optional)
    cfg = ck.get("config")
    if isinstance(cfg, dict):
        fields = {**CONFIG, **(RESUME_CONFIG if resume else {})}
        optional = OPTIONAL_CONFIG | (set() if resume else {"train_indices"})
        found += _check(cfg, fields, "config.", optional)
        found += _consistency(ck, cfg)
    return found


def validate(ck: Any, source: str, resume: bool = False) -> None:
    """Raise one CheckpointError naming every violation of the schema."""
    problems = violations(ck, resume)
    if problems:
        more = f" ({len(problems)} problems)" if len(problems) > 1 else ""
        raise CheckpointError(
            f"{source} is not a valid ganalyze checkpoint{more}: {'; '.join(problems[:6])}"
            f"{'; ...' if len(problems) > 6 else ''}. It was damaged or edited by hand; use a "
            "file written by `ganalyze train`, or pass the generator's state_dict with the "
            "options (--latent-dim, --output-range, --d-output, --prior) instead."
        )


def _check(obj: dict, fields: dict[str, Check], prefix: str, optional: set[str]) -> list[str]:
    found = []
    for key, check in fields.items():
        if key not in obj:
            if key not in optional:
                found.append(f"{prefix}{key}: missing")
            continue
        expected = check(obj[key])
        if expected is not None:
            found.append(f"{prefix}{key}: expected {expected}; found {_show(obj[key])}")
    return found


def _consistency(ck: dict, cfg: dict) -> list[str]:
    g = ck.get("generator")
    latent = cfg.get("latent_dim")
    if _state_dict(g) is None and _int(1)(latent) is None and g["0.weight"].shape[1] != latent:
        return [
            f"config.latent_dim: expected the generator's input size "
            f"{g['0.weight'].shape[1]}; found {latent}"
        ]
    return []


def _show(v: Any) -> str:
    if torch.is_tensor(v):
        return f"a {v.dtype} tensor of shape {tuple(v.shape)}"
    text = repr(v)
    return f"{type(v).__name__} {text[:60]}{'...' if len(text) > 60 else ''}"
