"""Generators from Python entry points: ``path/to/file.py:name`` or ``package.module:name``.

``name`` may be an nn.Module instance, an nn.Module subclass or a zero-argument factory (called
once), or a callable mapping z to images. They are told apart by type and signature, never by
trial calls.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ganalyze.errors import LoaderError
from ganalyze.generators.base import Discriminator, Generator
from ganalyze.generators.files import infer_latent_dim, safe_load


def split_entry_point(spec: str) -> tuple[str, str] | None:
    """(module or file, attribute) when ``spec`` has the entry-point form, else None."""
    if ":" not in spec or Path(spec).exists():
        return None
    left, _, attr = spec.rpartition(":")
    if not left or not all(part.isidentifier() for part in attr.split(".")):
        return None
    if left.endswith(".py") or all(p.isidentifier() for p in left.split(".")):
        return left, attr
    return None


def _import(left: str) -> Any:
    if left.endswith(".py"):
        path = Path(left).expanduser().resolve()
        if not path.is_file():
            raise LoaderError(f"Entry point file {path} does not exist.")
        name = f"ganalyze_entry_{abs(hash(str(path)))}"
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        sys.path.insert(0, str(path.parent))
        try:
            spec.loader.exec_module(module)
        except Exception as exc:
            raise LoaderError(f"Importing {path} failed: {type(exc).__name__}: {exc}") from exc
        finally:
            sys.path.remove(str(path.parent))
        return module
    try:
        return importlib.import_module(left)
    except ImportError as exc:
        raise LoaderError(
            f"Cannot import module {left!r}: {exc}. Use package.module:name with "
            "the package importable, or path/to/file.py:name."
        ) from exc


def _required_params(fn: Any) -> int:
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return 1
    return sum(
        p.default is inspect.Parameter.empty
        and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        for p in sig.parameters.values()
    )


def resolve_object(obj: Any, where: str) -> Any:
    """nn.Module instance | nn.Module subclass or zero-argument factory (called once) | callable."""
    if isinstance(obj, nn.Module):
        return obj
    if inspect.isclass(obj):
        if issubclass(obj, nn.Module):
            if _required_params(obj.__init__) > 1:
                raise LoaderError(
                    f"{where} is an nn.Module class whose constructor needs "
                    "arguments; expose an instance or a zero-argument factory."
                )
            return obj()
        raise LoaderError(f"{where} is a class but not an nn.Module subclass.")
    if callable(obj):
        if _required_params(obj) == 0:
            made = obj()
            if isinstance(made, nn.Module) or callable(made):
                return made
            raise LoaderError(
                f"{where} was called as a factory and returned "
                f"{type(made).__name__}; expected an nn.Module or a callable."
            )
        return obj
    raise LoaderError(
        f"{where} is a {type(obj).__name__}; expected an nn.Module instance, an "
        "nn.Module subclass, a zero-argument factory or a callable z -> images."
    )


def from_entry_point(
    left: str, attr: str, device: torch.device, weights: Path | None, trust_pickle: bool
) -> Generator:
    where = f"{left}:{attr}"
    obj: Any = _import(left)
    for part in attr.split("."):
        if not hasattr(obj, part):
            names = sorted(n for n in dir(obj) if not n.startswith("_"))[:20]
            raise LoaderError(f"{left} has no attribute {part!r}; found {names}.")
        obj = getattr(obj, part)
    target = resolve_object(obj, where)
    if weights is not None:
        if not isinstance(target, nn.Module):
            raise LoaderError(
                f"--weights needs {where} to give an nn.Module; it gave a {type(target).__name__}."
            )
        state = safe_load(Path(weights), trust_pickle)
        if isinstance(state, dict) and isinstance(state.get("generator"), dict):
            state = state["generator"]
        elif isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
            state = state["state_dict"]
        try:
            target.load_state_dict(state)
        except (RuntimeError, TypeError, AttributeError) as exc:
            raise LoaderError(
                f"--weights {weights} does not fit {where}: {str(exc).splitlines()[0]}"
            ) from None
    if isinstance(target, nn.Module):
        target = target.to(device).eval()
    gen = Generator(
        "entry_point", where, fn=target, latent_dim=infer_latent_dim(target), device=device
    )
    disc = getattr(target, "discriminator", None) or getattr(obj, "discriminator", None)
    if isinstance(disc, nn.Module):
        gen.discriminator = Discriminator(disc.to(device).eval(), None, None, device=device)
    return gen
