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
    chain = mlp_chain_error(v)
    if chain:
        return f"{expected[:-1]}: {chain})"
    bad = sum(int((~torch.isfinite(t)).sum()) for t in v.values())
    return f"finite weights ({bad} are NaN or Inf)" if bad else None


def mlp_chain_error(state: dict) -> str | None:
    """Why the reference MLP's tensors do not chain (2-D weights, 1-D biases, sizes that
    agree), or None."""
    size = None
    for layer in ("0", "2", "4"):
        w, b = state[f"{layer}.weight"], state[f"{layer}.bias"]
        if w.ndim != 2 or b.ndim != 1 or b.shape[0] != w.shape[0] or 0 in w.shape:
            return f"layer {layer} has weight {tuple(w.shape)} and bias {tuple(b.shape)}"
        if size is not None and w.shape[1] != size:
            return f"layer {layer} takes {w.shape[1]} inputs after a layer of {size}"
        size = w.shape[0]
    return None


def _history(v: Any) -> str | None:
    ok = isinstance(v, list) and all(isinstance(r, dict) for r in v)
    return None if ok else "a list of per-epoch records (dicts)"


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
    "history": _optional(_history),
    "fixed_z": _optional(_fixed_z),
}
CONFIG: dict[str, Check] = {
    "latent_dim": _int(1),
    "image_range": _range,
    "d_input_range": _range,
    "d_input_shape": _shape,
    "g_output_shape": _shape,
    "d_output": _one_of("probability", "logits"),
    "prior": _one_of("normal", "uniform"),
    "train_indices": _optional(_indices),
}
RESUME: dict[str, Check] = {
    "opt_g": _is(dict, "an optimizer state_dict"),
    "opt_d": _is(dict, "an optimizer state_dict"),
    "step": _int(0),
    "rng": _is(dict, "a dict of RNG states"),
    "history": _history,
    "fixed_z": _fixed_z,
    "versions": _optional(_is(dict, "a dict of versions")),  # informational only
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
OPTIONAL_CONFIG = {
    "prior",
    "d_output",
    "g_output_shape",
}  # checkpoints of format 1 written before these existed


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
    """Sizes that must agree: z with G's input, G's output and D's input with the image."""
    g, d, found = ck.get("generator"), ck.get("discriminator"), []
    latent = cfg.get("latent_dim")
    if _state_dict(g) is None:
        if _int(1)(latent) is None and g["0.weight"].ndim == 2 and g["0.weight"].shape[1] != latent:
            found.append(
                f"config.latent_dim: expected the generator's input size "
                f"{g['0.weight'].shape[1]}; found {latent}"
            )
        if g["4.weight"].shape[0] != 784:
            found.append(f"generator: expected 784 outputs (28x28); found {g['4.weight'].shape[0]}")
    if _state_dict(d) is None and (d["0.weight"].ndim != 2 or d["0.weight"].shape[1] != 784):
        found.append(
            f"discriminator: expected 784 inputs (config.d_input_shape); found "
            f"{tuple(d['0.weight'].shape)[1:]}"
        )
    z = ck.get("fixed_z")
    if _fixed_z(z) is None and _int(1)(latent) is None and z.shape[1] != latent:
        found.append(f"fixed_z: expected latents of size {latent}; found {z.shape[1]}")
    return found


def _show(v: Any) -> str:
    if torch.is_tensor(v):
        return f"a {v.dtype} tensor of shape {tuple(v.shape)}"
    if isinstance(v, dict):
        keys = ", ".join(map(str, list(v)[:8]))
        return f"a dict with keys [{keys}{', ...' if len(v) > 8 else ''}]"
    text = repr(v)
    return f"{type(v).__name__} {text[:60]}{'...' if len(text) > 60 else ''}"
