"""Generators from Python entry points: ``path/to/file.py:name`` or ``package.module:name``.

``name`` (dotted names such as ``model.decode`` walk attributes) is told apart by type and
signature, never by trial calls:

- an nn.Module instance: the generator;
- an nn.Module subclass: a factory, constructed once without arguments;
- a function written in Python (``inspect.isfunction``: ``def`` or ``lambda``, or such a
  function bound as a method) whose parameters all have defaults: a factory, called once; it
  must return an nn.Module or a callable z -> images;
- anything else callable: the generator itself, called as ``fn(z)``. That includes builtins and
  C functions: ``os:abort`` or ``os:_exit`` are never called without arguments, so they cannot
  end the process; called with a latent tensor they fail with a clean error.

Importing the module, calling the factory and every later call go through
:func:`~ganalyze.generators.base.call_user`: an exception, ``sys.exit()`` or KeyboardInterrupt
becomes one LoaderError naming the entry point, and each is stopped after ``timeout`` seconds
(default :data:`~ganalyze.generators.base.DEFAULT_TIMEOUT`).
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
from ganalyze.generators.base import DEFAULT_TIMEOUT, Discriminator, Generator, call_user
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


def _import(left: str, timeout: float | None = DEFAULT_TIMEOUT) -> Any:
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
            call_user(
                spec.loader.exec_module, module, who=f"The entry point file {path}",
                doing="at import", timeout=timeout,
                explain=lambda exc, desc: f"Importing {path} failed: {desc}.",
            )  # fmt: skip
        except LoaderError:
            sys.modules.pop(name, None)
            raise
        finally:
            if str(path.parent) in sys.path:
                sys.path.remove(str(path.parent))
        return module

    def explain(exc: BaseException, desc: str) -> str:
        if isinstance(exc, ImportError):
            return (
                f"Cannot import module {left!r}: {desc}. Use package.module:name with "
                "the package importable, or path/to/file.py:name."
            )
        return f"Importing module {left!r} failed: {desc}."

    return call_user(
        importlib.import_module, left, who=f"The module {left!r}", doing="at import",
        timeout=timeout, explain=explain,
    )  # fmt: skip


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


def is_factory(obj: Any) -> bool:
    """A function written in Python (or such a function bound as a method) with no required
    parameters; builtins and C functions never are, whatever their signature."""
    func = obj.__func__ if inspect.ismethod(obj) else obj
    return inspect.isfunction(func) and _required_params(obj) == 0


def resolve_object(obj: Any, where: str, timeout: float | None = DEFAULT_TIMEOUT) -> Any:
    """nn.Module instance | nn.Module subclass or Python zero-argument factory (called once) |
    any other callable (z -> images); see the module docstring."""
    if isinstance(obj, nn.Module):
        return obj
    if inspect.isclass(obj):
        if issubclass(obj, nn.Module):
            if _required_params(obj.__init__) > 1:
                raise LoaderError(
                    f"{where} is an nn.Module class whose constructor needs "
                    "arguments; expose an instance or a zero-argument factory."
                )
            return call_user(
                obj, who=f"The entry point {where}", doing="when constructed without arguments",
                timeout=timeout,
            )  # fmt: skip
        raise LoaderError(f"{where} is a class but not an nn.Module subclass.")
    if is_factory(obj):
        made = call_user(
            obj, who=f"The entry point {where}", doing="when called as a factory (no arguments)",
            timeout=timeout,
        )  # fmt: skip
        if isinstance(made, nn.Module) or callable(made) and not inspect.isclass(made):
            return made
        hint = (
            " (a tuple: return only the generator, and expose the discriminator as an "
            "attribute `discriminator` of it or of the module)"
            if isinstance(made, tuple)
            else ""
        )
        raise LoaderError(
            f"{where} was called as a factory and returned "
            f"{type(made).__name__}; expected an nn.Module or a callable z -> images{hint}."
        )
    if callable(obj):
        return obj
    raise LoaderError(
        f"{where} is a {type(obj).__name__}; expected an nn.Module instance, an "
        "nn.Module subclass, a zero-argument factory or a callable z -> images."
    )


def _attribute(obj: Any, part: str, left: str, where: str, timeout: float | None) -> Any:
    missing = object()
    value = call_user(
        getattr,
        obj,
        part,
        missing,
        who=f"The entry point {where}",
        doing=f"when its attribute {part!r} was read",
        timeout=timeout,
    )
    if value is missing:
        names = sorted(n for n in dir(obj) if not n.startswith("_"))[:20]
        raise LoaderError(f"{left} has no attribute {part!r}; found {names}.")
    return value


def from_entry_point(
    left: str,
    attr: str,
    device: torch.device,
    weights: Path | None,
    trust_pickle: bool,
    timeout: float | None = DEFAULT_TIMEOUT,
) -> Generator:
    """The Generator of ``left:attr``; ``timeout`` bounds the import, the factory and each
    later call of a batch (None or 0: no limit)."""
    where = f"{left}:{attr}"
    obj: Any = _import(left, timeout)
    for part in attr.split("."):
        obj = _attribute(obj, part, left, where, timeout)
    target = resolve_object(obj, where, timeout)
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
        "entry_point",
        where,
        fn=target,
        latent_dim=infer_latent_dim(target),
        device=device,
        timeout=timeout,
    )
    disc = getattr(target, "discriminator", None) or getattr(obj, "discriminator", None)
    if isinstance(disc, nn.Module):
        gen.discriminator = Discriminator(
            disc.to(device).eval(), None, None, device=device, name=f"of {where}", timeout=timeout
        )
    return gen
