"""``audit(spec, ...) -> Report``: load, sample, run the analyses, collect the report."""

from __future__ import annotations

import datetime as _dt
import logging
import platform
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch

from ganalyze.analyses import REGISTRY
from ganalyze.analyses.base import registered
from ganalyze.classifier.model import WEIGHTS_PATH, file_sha256
from ganalyze.context import Context
from ganalyze.errors import InputError
from ganalyze.generators import load_generator
from ganalyze.report import Report

logger = logging.getLogger(__name__)


def select_analyses(names: str | Iterable[str] | None) -> list[str]:
    """Registered analyses by name, in registry order; all when ``names`` is None."""
    if names is None:
        return registered()
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
    names = list(names)
    unknown = [n for n in names if n not in REGISTRY]
    if unknown or not names:
        raise InputError(
            f"Unknown analyses {unknown or names}; registered: "
            f"{', '.join(REGISTRY)} (see `ganalyze analyses`)."
        )
    return [n for n in registered() if n in names]


def audit(
    spec: str | Path,
    *,
    n_samples: int | None = None,
    seed: int = 0,
    analyses: str | Iterable[str] | None = None,
    device: str = "cpu",
    data_dir: str | Path | None = None,
    progress: bool = False,
    train_indices=None,
    nn_index: str = "exact",
    bootstrap: int = 0,
    interp_digits: str | Iterable[int] | None = None,
    **load_options,
) -> Report:
    """Audit a generator (or a file of samples) and return its :class:`Report`.

    Parameters
    ----------
    spec
        What to audit: a ``ganalyze train`` checkpoint, a bare state_dict, TorchScript,
        torch.export, ``file.py:name`` / ``package.module:name``, a .npy/.npz of images or a
        folder of PNGs (see :func:`ganalyze.load_generator`).
    n_samples
        Samples to draw (default 10,000 for a generator, every image of a samples file).
    seed
        Seed of the latents (and of a subset of a samples file).
    analyses
        Names (or "a,b") of the analyses to run; default all registered.
    device
        "cpu", "cuda" or "auto" for the generator and discriminator.
    data_dir
        MNIST root (default $GANALYZE_DATA, else ~/.cache/ganalyze/data).
    train_indices
        The member set (MNIST-train indices the generator was trained on), an array or a
        .npy / text file of integers; default: the checkpoint's record, else all of MNIST train.
    nn_index
        "exact" (default) or an approximate FAISS index, "ivf" or "hnsw", for the samples'
        neighbours in MNIST train; its measured recall is stated in the report.
    bootstrap
        Resamples for percentile 95% intervals of the distribution metrics (0: none), seeded by
        ``seed``.
    interp_digits
        Digits (e.g. "9,7,1") whose most confident samples anchor the interpolation
        analysis's multi-anchor strip; default 9, 7, 1 (the study's figure).
    **load_options
        discriminator, weights, latent_dim, prior, output_range, d_input_range, trust_pickle:
        passed to :func:`ganalyze.load_generator`.

    Returns
    -------
    Report
        Metrics (tidy DataFrame), findings, figures and tables; ``.save(dir)`` writes them.
    """
    names = select_analyses(analyses)
    digits = _parse_digits(interp_digits)
    if n_samples is not None and n_samples < 1:
        raise InputError(f"n_samples must be positive; got {n_samples}.")
    if bootstrap < 0:
        raise InputError(f"bootstrap must be 0 or more resamples; got {bootstrap}.")
    gen = load_generator(spec, device=device, **load_options)
    members = _read_indices(train_indices) if train_indices is not None else None
    ctx = Context(
        gen,
        n_samples=n_samples,
        seed=seed,
        data_dir=data_dir,
        progress=progress,
        train_indices=members,
        nn_index=nn_index,
        bootstrap=bootstrap,
        interp_digits=digits,
    )
    _ = ctx.samples  # sampling first: the range decision belongs in the header
    available = ctx.available()
    report = Report(meta=_meta(ctx, names))
    for name in names:
        analysis = REGISTRY[name]()
        missing = [(need, available[need]) for need in analysis.needs if available[need]]
        if missing:
            report.skipped.append((name, f"needs {missing[0][0]}: {missing[0][1]}"))
            continue
        logger.info("running analysis %s", name)
        result = analysis.run(ctx)
        result.figures = analysis.plot(result)
        report.results.append(result)
    recall = ", ".join(f"{s} {v:.3f}" for s, v in ctx.nn_recall.items())
    report.meta["nn_index"] = {"kind": nn_index, "recall_at_1": dict(ctx.nn_recall)}
    report.meta["header"].append(
        ("neighbour search", "exact" if nn_index == "exact" else
         f"approximate ({nn_index}): recall@1 on 500 samples {recall or 'not used'}")
    )  # fmt: skip
    return report


def _parse_digits(value) -> tuple[int, ...] | None:
    if value is None:
        return None
    parts = value.split(",") if isinstance(value, str) else list(value)
    try:
        digits = tuple(int(str(p).strip()) for p in parts)
    except ValueError:
        digits = ()
    if len(digits) < 2 or any(not 0 <= d <= 9 for d in digits):
        raise InputError(f"--interp-digits expects two or more digits 0-9 separated by commas "
                         f"(e.g. 9,7,1); got {value!r}.")  # fmt: skip
    return digits


def _read_indices(value) -> np.ndarray:
    if isinstance(value, str | Path):
        path = Path(value)
        try:
            arr = (np.load(path, allow_pickle=False) if path.suffix == ".npy"
                   else np.loadtxt(path, dtype=np.int64, ndmin=1))  # fmt: skip
        except (OSError, ValueError) as exc:
            raise InputError(f"--train-indices {path}: expected a .npy array or a text file "
                             f"of integer MNIST-train indices ({exc}).") from None  # fmt: skip
        return np.asarray(arr, dtype=np.int64).ravel()
    return np.asarray(value, dtype=np.int64).ravel()


def _meta(ctx: Context, names: list[str]) -> dict:
    from ganalyze import __version__

    gen = ctx.generator
    d = ctx.discriminator
    meta = {
        "spec": gen.spec,
        "kind": gen.kind,
        "sha256": gen.info.get("sha256"),
        "latent_dim": gen.latent_dim,
        "prior": gen.prior if gen.has_generator else None,
        "n_samples": len(ctx.images),
        "seed": ctx.seed,
        "output_range": gen.output_range,
        "output_range_source": gen.range_source,
        "native_shape": list(gen.native_shape) if gen.native_shape else None,
        "discriminator": None
        if d is None
        else {
            "input_range": d.input_range,
            "input_shape": list(d.input_shape or ()),
            "output": d.output,
        },
        "analyses": names,
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "classifier_sha256": file_sha256(WEIGHTS_PATH),
        "versions": {
            "ganalyze": __version__,
            "torch": str(torch.__version__),
            "python": platform.python_version(),
        },
    }
    if "epoch" in gen.info:
        meta["checkpoint_epoch"] = gen.info["epoch"]
    rng = {"-1,1": "[-1, 1]", "0,1": "[0, 1]", "0,255": "0-255"}
    header = [
        ("kind", gen.kind.replace("_", " ")),
        ("file sha256", meta["sha256"] or "–"),
        (
            "latent size / prior",
            f"{gen.latent_dim} / {meta['prior']}" if gen.has_generator else "– (samples file)",
        ),
        ("samples", f"{meta['n_samples']} (seed {ctx.seed})"),
        (
            "output range",
            f"{rng.get(gen.output_range, gen.output_range)} "
            f"({gen.range_source}), native shape {tuple(gen.native_shape or ())}",
        ),
        (
            "discriminator",
            "none"
            if d is None
            else f"input {rng.get(d.input_range)}, shape "
            f"{tuple(d.input_shape or ())}, output {d.output or 'auto'}",
        ),
        ("member set", ctx.members[1]),
        ("analyses", ", ".join(names)),
        ("date (UTC)", meta["date"]),
        ("versions", ", ".join(f"{k} {v}" for k, v in meta["versions"].items())),
    ]
    if "checkpoint_epoch" in meta:
        header.insert(1, ("checkpoint epoch", str(meta["checkpoint_epoch"])))
    meta["header"] = header
    return meta
