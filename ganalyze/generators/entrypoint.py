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

A dotted name that passes through an nn.Module class, ``file.py:VAE.decode``, constructs the
class once (without arguments, or with ``--init-kwargs``), loads ``--weights`` into that
instance and samples with its method. ``--weights`` goes into the module that the entry point
gives, or the module a method is bound to; it may be a torch file (``weights_only``) or a
``.safetensors`` file.

Importing runs with ``sys.argv`` set to ``[file]``: a module that parses its command line at
import sees none of ganalyze's options, and what it prints on stderr while failing is kept
for the error message.

Importing the module, calling the factory and every later call go through
:func:`~ganalyze.generators.base.call_user`: an exception, ``sys.exit()`` or KeyboardInterrupt
becomes one LoaderError naming the entry point, and each is stopped after ``timeout`` seconds
(default :data:`~ganalyze.generators.base.DEFAULT_TIMEOUT`).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import importlib.util
import inspect
import io
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ganalyze.errors import LoaderError
from ganalyze.generators.base import DEFAULT_TIMEOUT, Discriminator, Generator, call_user
from ganalyze.generators.files import infer_latent_dim, load_state_file

# submodules whose first layer gives a method's latent size (a VAE's decode uses its decoder)
_DECODER_NAMES = ("decoder", "dec", "generator", "gen", "netG", "G")
# methods that return only images, suggested when forward returns a tuple
_IMAGE_METHODS = ("decode", "generate", "sample", "decoder", "generator")


@contextlib.contextmanager
def _shielded_import(argv0: str, stderr: io.StringIO) -> Iterator[None]:
    """sys.argv is ``[argv0]`` and stderr is captured while a user's module is imported; both
    are restored afterwards."""
    saved = sys.argv
    sys.argv = [argv0]
    try:
        with contextlib.redirect_stderr(stderr):
            yield
    finally:
        sys.argv = saved


def _run_import(
    fn: Callable[[Any], Any], arg: Any, argv0: str, who: str, timeout: float | None,
    explain: Callable[[BaseException, str], str],
) -> Any:  # fmt: skip
    """``fn(arg)`` through :func:`call_user` under :func:`_shielded_import`. What a successful
    import prints on stderr is passed on; a failed one's last line ends the error (argparse
    says there what it wanted)."""
    captured = io.StringIO()

    def body(value: Any) -> Any:
        try:
            return fn(value)
        except SystemExit as exc:
            raise LoaderError(
                f"{who} called sys.exit({exc.code!r}) at import.{_stderr_tail(captured)} It "
                "parses its command line (or exits) when imported: move that under "
                '`if __name__ == "__main__":` (ganalyze imports it with no arguments).'
            ) from None

    def explained(exc: BaseException, desc: str) -> str:
        return explain(exc, desc) + _stderr_tail(captured)

    with _shielded_import(argv0, captured):
        result = call_user(body, arg, who=who, doing="at import", timeout=timeout,
                           explain=explained)  # fmt: skip
    if captured.getvalue():
        sys.stderr.write(captured.getvalue())
    return result


def _stderr_tail(captured: io.StringIO) -> str:
    lines = [ln.strip() for ln in captured.getvalue().splitlines() if ln.strip()]
    return f" It printed: {lines[-1][:300]!r}." if lines else ""


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
            _run_import(
                spec.loader.exec_module, module, str(path), who=f"The entry point file {path}",
                timeout=timeout, explain=lambda exc, desc: f"Importing {path} failed: {desc}.",
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

    return _run_import(
        importlib.import_module, left, left, who=f"The module {left!r}", timeout=timeout,
        explain=explain,
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


def construct(
    cls: type, where: str, timeout: float | None = DEFAULT_TIMEOUT,
    init_kwargs: dict[str, Any] | None = None,
) -> nn.Module:  # fmt: skip
    """An nn.Module class constructed once, without arguments or with ``init_kwargs``."""
    if not issubclass(cls, nn.Module):
        raise LoaderError(
            f"{where}: {cls.__name__} is a class but not an nn.Module subclass; expected an "
            "nn.Module class (file.py:Class or file.py:Class.method), an instance or a function."
        )
    kwargs = dict(init_kwargs or {})
    if not kwargs and _required_params(cls.__init__) > 1:
        raise LoaderError(
            f"{where}: the constructor of {cls.__name__} needs arguments "
            f"{_required_names(cls.__init__)}; pass them as JSON with --init-kwargs (e.g. "
            f"--init-kwargs '{{\"latent_dim\": 20}}'), or expose an instance or a "
            "zero-argument factory."
        )
    doing = (f"when constructed with --init-kwargs {kwargs}" if kwargs
             else "when constructed without arguments")  # fmt: skip

    def make() -> Any:
        try:
            inspect.signature(cls).bind(**kwargs)
        except TypeError as exc:
            raise LoaderError(
                f"--init-kwargs {kwargs} does not fit {cls.__name__}{_signature(cls)}: {exc}. "
                "Give the constructor's keyword arguments, by name."
            ) from None
        except ValueError:  # no signature to check against: the call says what is wrong
            pass
        return cls(**kwargs)

    return call_user(make, who=f"The entry point {where}", doing=doing, timeout=timeout)


def _signature(fn: Any) -> str:
    try:
        return str(inspect.signature(fn))
    except (TypeError, ValueError):
        return "(...)"


def _required_names(fn: Any) -> list[str]:
    try:
        params = list(inspect.signature(fn).parameters.values())[1:]  # without self
    except (TypeError, ValueError):
        return []
    return [p.name for p in params if p.default is inspect.Parameter.empty
            and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]  # fmt: skip


def resolve_object(
    obj: Any, where: str, timeout: float | None = DEFAULT_TIMEOUT,
    init_kwargs: dict[str, Any] | None = None,
) -> Any:  # fmt: skip
    """nn.Module instance | nn.Module subclass (constructed once, with ``init_kwargs``) or
    Python zero-argument factory (called once) | any other callable (z -> images); see the
    module docstring."""
    if isinstance(obj, nn.Module):
        return obj
    if inspect.isclass(obj):
        return construct(obj, where, timeout, init_kwargs)
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


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


def _source_file(left: str, module: Any) -> Path | None:
    """The file an entry point's code comes from (file.py, or the module's __file__)."""
    if left.endswith(".py"):
        return Path(left).expanduser().resolve()
    found = getattr(module, "__file__", None)
    return Path(found) if isinstance(found, str) and Path(found).is_file() else None


def _walk(
    module: Any, attr: str, left: str, where: str, timeout: float | None,
    init_kwargs: dict[str, Any] | None,
) -> tuple[Any, nn.Module | None, str | None]:  # fmt: skip
    """(the object ``attr`` names, the nn.Module instance constructed on the way, its class
    name): a class met before the last part (``VAE`` in ``VAE.decode``) is constructed once when
    that part is an instance method or property; a classmethod or staticmethod (a factory such
    as ``Generator.from_config``) is read from the class itself."""
    obj, made, made_name = module, None, None
    parts = attr.split(".")
    for i, part in enumerate(parts):
        if i and inspect.isclass(obj) and _instance_attribute(obj, part):
            made_name = obj.__name__
            obj = made = construct(obj, where, timeout, init_kwargs)
        obj = _attribute(obj, part, left, where, timeout)
    return obj, made, made_name


def _instance_attribute(cls: type, name: str) -> bool:
    """Whether ``cls.name`` needs an instance: a plain function or property defined in the
    class (not a classmethod or staticmethod), or a name only instances have (a submodule)."""
    try:
        static = inspect.getattr_static(cls, name)
    except AttributeError:
        return True  # set in __init__ (self.decoder = ...): only an instance has it
    return inspect.isfunction(static) or isinstance(static, property)


def _load_weights(
    module: nn.Module, weights: Path, trust_pickle: bool, where: str, option: str = "--weights",
    key: str = "generator",
) -> str:  # fmt: skip
    """Load a state_dict file (torch or safetensors) into ``module``; its sha256. A checkpoint
    holding several state_dicts gives the one under ``key``."""
    state, digest = load_state_file(weights, trust_pickle, option)
    if isinstance(state, dict) and isinstance(state.get(key), dict):
        state = state[key]
    elif isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    try:
        module.load_state_dict(state)
    except (RuntimeError, TypeError, AttributeError, ValueError) as exc:
        text = " ".join(str(exc).split())
        text = text if len(text) <= 800 else text[:800] + " [...]"
        hint = (
            " The sizes come from the constructor's arguments: pass the ones the weights were "
            "trained with as --init-kwargs (a JSON object)."
            if "size mismatch" in text
            else ""
        )
        raise LoaderError(f"{option} {weights} does not fit {where}: {text}{hint}") from None
    return digest


def _latent_module(owner: nn.Module, method: str) -> tuple[nn.Module, str]:
    """The module whose first layer gives the latent size, and how to name it: for a method
    (VAE.decode), a decoder submodule when there is one, else the whole model."""
    name = type(owner).__name__
    if method == "forward":
        return owner, name
    for sub in _DECODER_NAMES:
        child = getattr(owner, sub, None)
        if isinstance(child, nn.Module):
            return child, f"{name}.{sub}"
    return owner, name


def _tuple_hint(owner: nn.Module | None, where: str) -> str | None:
    """Class.method entry points to suggest when forward returns a tuple."""
    if owner is None:
        return None
    left, _, attr = where.rpartition(":")
    base = attr.rsplit(".", 1)[0] if attr.endswith(".forward") else attr
    found = [m for m in _IMAGE_METHODS if callable(getattr(owner, m, None))]
    if not found:
        return None
    return " or ".join(f"{left}:{base}.{m}" for m in found[:2])


def from_entry_point(
    left: str,
    attr: str,
    device: torch.device,
    weights: Path | None,
    trust_pickle: bool,
    timeout: float | None = DEFAULT_TIMEOUT,
    init_kwargs: dict[str, Any] | None = None,
) -> Generator:
    """The Generator of ``left:attr``; ``timeout`` bounds the import, the constructor or
    factory, and each later call of a batch (None or 0: no limit)."""
    where = f"{left}:{attr}"
    module: Any = _import(left, timeout)
    obj, made, made_name = _walk(module, attr, left, where, timeout, init_kwargs)
    if init_kwargs and made is None and not inspect.isclass(obj):
        raise LoaderError(
            f"--init-kwargs applies to an nn.Module class (file.py:Class or "
            f"file.py:Class.method); {where} is a {type(obj).__name__}."
        )
    target = resolve_object(obj, where, timeout, init_kwargs)
    owner, files = _owner_with_weights(
        target, made, left, module, weights, trust_pickle, device, where,
        roles=("entry_point", "weights"), option="--weights",
    )  # fmt: skip
    method = attr.rsplit(".", 1)[-1]
    gen = Generator(
        "entry_point",
        where,
        fn=target,
        latent_dim=infer_latent_dim(target) if isinstance(target, nn.Module) else None,
        device=device,
        timeout=timeout,
    )
    if isinstance(target, nn.Module):
        gen.module = target
    elif owner is not None:  # a method: its latent size is a guess, named in messages
        gen.module, gen.info["latent_module"] = _latent_module(owner, method)
    gen.info["files"] = files
    gen.info["sha256"] = files.get("entry_point", {}).get("sha256")
    if made_name is not None:
        gen.info["constructed"] = made_name
    hint = _tuple_hint(owner, where)
    if hint is not None:
        gen.info["tuple_hint"] = hint
    disc = getattr(target, "discriminator", None) or getattr(obj, "discriminator", None)
    if disc is None and owner is not None:
        disc = getattr(owner, "discriminator", None)
    if isinstance(disc, nn.Module):
        gen.discriminator = Discriminator(
            disc.to(device).eval(), None, None, device=device, name=f"of {where}", timeout=timeout
        )
    return gen


def discriminator_from_entry_point(
    left: str, attr: str, device: torch.device, weights: Path | None, trust_pickle: bool,
    timeout: float | None = DEFAULT_TIMEOUT,
) -> tuple[Discriminator, dict[str, dict[str, str]]]:  # fmt: skip
    """The discriminator ``left:attr`` (resolved as a generator's entry point is: an instance,
    a class constructed once, a factory, ``Class.method``, a callable), ``weights``
    (``--d-weights``) loaded into its module; and the files involved, path and sha256."""
    where = f"{left}:{attr}"
    module: Any = _import(left, timeout)
    obj, made, _ = _walk(module, attr, left, where, timeout, None)
    target = resolve_object(obj, where, timeout, None)
    _, files = _owner_with_weights(
        target, made, left, module, weights, trust_pickle, device, where,
        roles=("discriminator", "d_weights"), option="--d-weights",
    )  # fmt: skip
    d = Discriminator(target, None, None, device=device, name=f"--discriminator {where}",
                      timeout=timeout)  # fmt: skip
    return d, files


def _owner_with_weights(
    target: Any, made: Any, left: str, module: Any, weights: Path | None, trust_pickle: bool,
    device: torch.device, where: str, *, roles: tuple[str, str], option: str,
) -> tuple[nn.Module | None, dict[str, dict[str, str]]]:  # fmt: skip
    """The nn.Module an entry point's object belongs to (the constructed class, the module
    itself, or the instance a method is bound to: ``model.decode``), with ``weights`` loaded
    into it and moved to ``device`` in eval mode; and the files involved (path and sha256 of
    the source file and the weights, under ``roles``)."""
    bound = getattr(target, "__self__", None)
    owner = made if made is not None else target if isinstance(target, nn.Module) else None
    if owner is None and isinstance(bound, nn.Module):
        owner = bound  # model.decode on a module-level instance
    files = {}
    source = _source_file(left, module)
    if source is not None:
        files[roles[0]] = {"path": str(source), "sha256": file_sha256(source)}
    if weights is not None:
        if owner is None:
            given = f"--discriminator {where}" if option == "--d-weights" else where
            raise LoaderError(
                f"{option} needs {given} to give an nn.Module or a method of one; it gave a "
                f"{type(target).__name__}."
            )
        key = "discriminator" if option == "--d-weights" else "generator"
        digest = _load_weights(owner, Path(weights), trust_pickle, where, option, key=key)
        files[roles[1]] = {"path": str(weights), "sha256": digest}
    if owner is not None:
        owner.to(device).eval()
    return owner, files
