"""``audit(spec, ...) -> Report``: load, sample, run the analyses, collect the report."""

from __future__ import annotations

import datetime as _dt
import logging
import platform
import sys
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ganalyze._guard import check_allocation, regular_file
from ganalyze.analyses import REGISTRY
from ganalyze.analyses.base import params_dict, registered, resolve_params
from ganalyze.analyses.distribution import MAX_BOOTSTRAP  # noqa: F401  (public here too)
from ganalyze.classifier.model import WEIGHTS_PATH, file_sha256
from ganalyze.context import DEFAULT_N_SAMPLES, Context
from ganalyze.errors import InputError
from ganalyze.generators import LoadOptions, load_generator
from ganalyze.generators.base import DEFAULT_TIMEOUT
from ganalyze.generators.options import merge_options
from ganalyze.reference import ReferenceData
from ganalyze.report import Report
from ganalyze.report.figures import BackgroundRenderer
from ganalyze.report.figures import submit as submit_figures
from ganalyze.stats import NotEnoughData

logger = logging.getLogger(__name__)

SEED_MAX = 2**32 - 1  # numpy's legacy seeds and scikit-learn's random_state stop here


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
            f"{', '.join(registered())} (see `ganalyze analyses`)."
        )
    return [n for n in registered() if n in names]


def audit(
    spec: str | Path | None,
    *,
    n_samples: int | None = None,
    seed: int = 0,
    analyses: str | Iterable[str] | None = None,
    device: str = "cpu",
    data_dir: str | Path | None = None,
    progress: bool | None = None,
    train_indices=None,
    nn_index: str = "exact",
    params: Mapping[str, Mapping[str, Any]] | None = None,
    bootstrap: int | None = None,
    interp_digits: str | Iterable[int] | None = None,
    reference: ReferenceData | None = None,
    load: LoadOptions | None = None,
    discriminator: str | Path | None = None,
    weights: str | Path | None = None,
    latent_dim: int | None = None,
    prior: str | None = None,
    output_range: str | None = None,
    d_input_range: str | None = None,
    d_output: str | None = None,
    trust_pickle: bool = False,
    timeout: float | None = DEFAULT_TIMEOUT,
    num_classes: int | None = None,
    label_input: str | None = None,
    labels: str = "uniform",
    renderer: BackgroundRenderer | None = None,
) -> Report:
    """Audit a generator (or a file of samples) and return its :class:`Report`.

    Parameters
    ----------
    spec
        What to audit: a ``ganalyze train`` checkpoint, a bare state_dict, TorchScript,
        torch.export, ``file.py:name`` / ``package.module:name``, a .npy/.npz of images or a
        folder of PNGs (see :func:`ganalyze.load_generator`); None with a ``discriminator``:
        that discriminator alone (``dscores`` on member and test digits, the other analyses
        skipped with the reason).
    n_samples
        Samples to draw (default 10,000 for a generator, every image of a samples file). An
        audit whose estimated memory (:func:`estimate_memory`) exceeds half the available
        memory is refused before sampling.
    seed
        Seed of the latents (and of a subset of a samples file), 0 to 2^32 - 1.
    analyses
        Names (or "a,b") of the analyses to run; default all registered.
    device
        "cpu", "cuda" (or "cuda:N") or "auto" for the generator and discriminator; "cuda" on
        a machine without a CUDA device is an error.
    data_dir
        MNIST root (default $GANALYZE_DATA, else ~/.cache/ganalyze/data).
    progress
        Progress bars (sampling, classifier passes, one bar over the analyses): True or False;
        None (default) shows them when running interactively (stderr is a terminal, or a
        Jupyter kernel) and stays silent otherwise (scripts, pipes, worker processes).
    train_indices
        The member set (MNIST-train indices the generator was trained on), an array or a
        .npy / text file of integers; default: the checkpoint's record, else all of MNIST train.
    nn_index
        "exact" (default) or an approximate FAISS index, "ivf" or "hnsw", for the samples'
        neighbours in MNIST train; its measured recall is stated in the report.
    params
        Options of the analyses, ``{analysis: {field: value}}`` (e.g. ``{"interpolation":
        {"digits": (9, 7, 1)}}``); a value may be given as text ("9,7,1"). Defaults for the
        rest; ``ganalyze analyses --params`` lists them. An unknown analysis or field, or a
        value out of range, is an InputError. The values in effect are in ``meta["params"]``.
    bootstrap
        Alias of ``params={"distribution": {"bootstrap": B}}``: resamples for percentile 95%
        intervals of the distribution metrics (0: none, at most 10,000), seeded by ``seed``.
    interp_digits
        Alias of ``params={"interpolation": {"digits": ...}}`` (e.g. "9,7,1"): digits whose
        most confident samples anchor the interpolation strip; default 9, 7, 1.
    reference
        The reference data (train and test digits) to compare with, e.g. from
        :meth:`ReferenceData.from_arrays`; default MNIST from ``data_dir`` (then unused).
    load
        The loading options, a :class:`ganalyze.LoadOptions`.
    renderer
        A :class:`ganalyze.report.figures.BackgroundRenderer`: each analysis's figures are
        rendered in its helper process as soon as the analysis finishes, on a core the audit
        leaves idle, and :meth:`Report.save` writes what it sent back. Default: the figures
        are drawn and rendered by ``save``. The files are the same either way.
    discriminator, weights, latent_dim, prior, output_range, d_input_range, d_output, \
trust_pickle, timeout, num_classes, label_input, labels
        A shorthand for the fields of ``load`` (``device`` above is its device); a keyword that
        contradicts ``load`` is a TypeError, as is a misspelt one.

    Returns
    -------
    Report
        Metrics (tidy DataFrame), findings, figures and tables; ``.save(dir)`` writes them.
        An analysis whose statistics need more samples or members than it was given (a
        :class:`~ganalyze.stats.NotEnoughData`) is in ``skipped`` with the reason; the others
        run. ``meta["timings_s"]`` holds the seconds each step took: ``load`` (options,
        loader, member set), ``sampling``, one entry per analysis that ran, and ``total``
        (drawing figures and writing files come later, in ``save``); they are also logged
        (``ganalyze report`` prints them unless ``--quiet``).

    Raises
    ------
    InputError
        Options out of range, an unavailable device, a bad member set, or an audit too large
        for the machine's memory.
    """
    start = time.perf_counter()
    names = select_analyses(analyses)
    chosen = analysis_params(params, names, bootstrap=bootstrap, interp_digits=interp_digits)
    _check_int("n_samples", n_samples, 1, None, "Draw at least one sample (default 10,000).")
    _check_int("seed", seed, 0, SEED_MAX, f"Use a seed from 0 to {SEED_MAX} (2^32 - 1).")
    options = merge_options(
        load, device=device, discriminator=discriminator, weights=weights,
        latent_dim=latent_dim, prior=prior, output_range=output_range,
        d_input_range=d_input_range, d_output=d_output, trust_pickle=trust_pickle,
        timeout=timeout, num_classes=num_classes, label_input=label_input, labels=labels,
    )  # fmt: skip
    check_device(options.device)
    gen = load_generator(spec, options, seed=seed)
    members = _read_indices(train_indices) if train_indices is not None else None
    default = DEFAULT_N_SAMPLES if gen.has_generator else gen.n_images  # no file is read here
    check_memory(n_samples or default, (gen.latent_dim or 0) if gen.has_generator else 0, names)
    progress = interactive() if progress is None else bool(progress)
    ctx = Context(
        gen,
        n_samples=n_samples,
        seed=seed,
        data_dir=data_dir,
        progress=progress,
        train_indices=members,
        nn_index=nn_index,
        reference=reference,
    )
    available = ctx.available()
    timings = {"load": time.perf_counter() - start}
    with _timed(timings, "sampling"):
        ctx.samples  # noqa: B018  (drawn once, here, so that no analysis's time includes it)
    report = Report(meta=_meta(ctx, names, chosen, options))
    for name in _progress_bar(names, progress):
        analysis = REGISTRY[name]()
        analysis.params = chosen[name]
        missing = [(need, available[need]) for need in analysis.needs if available[need]]
        if missing:
            report.skipped.append((name, f"needs {missing[0][0]}: {missing[0][1]}"))
            continue
        logger.info("running analysis %s", name)
        try:
            with _timed(timings, name):
                result = analysis.run(ctx)
        except NotEnoughData as exc:  # too few samples or members for this analysis's maths
            logger.warning("skipping %s: %s", name, exc)
            report.skipped.append((name, str(exc)))
            continue
        report.results.append(result)  # its figures are drawn when the report is saved,
        if renderer is not None:  # or now, by a helper process
            submit_figures(report, result, renderer)
    report.meta.update(_facts(ctx))
    report.meta["latents_sha256"] = _digest(ctx.latents)
    report.preview = _preview(ctx.images)
    timings["total"] = time.perf_counter() - start
    report.meta["timings_s"] = timings
    logger.info("audit: %s", ", ".join(f"{k} {v:.1f} s" for k, v in timings.items()))
    return report


class _timed:
    """Adds the seconds its block took to ``timings[name]`` and logs them."""

    def __init__(self, timings: dict[str, float], name: str) -> None:
        self.timings, self.name = timings, name

    def __enter__(self) -> None:
        self.start = time.perf_counter()

    def __exit__(self, *exc) -> None:
        seconds = time.perf_counter() - self.start
        self.timings[self.name] = self.timings.get(self.name, 0.0) + seconds
        if exc[0] is None:
            logger.info("%s: %.1f s", self.name, seconds)


def interactive() -> bool:
    """Whether a person is watching: stderr is a terminal, or this is a Jupyter kernel."""
    if "ipykernel" in sys.modules:
        try:
            from IPython import get_ipython

            shell = get_ipython()
        except ImportError:
            shell = None
        if shell is not None and type(shell).__name__ == "ZMQInteractiveShell":
            return True
    stream = sys.stderr
    return bool(stream is not None and hasattr(stream, "isatty") and stream.isatty())


def _progress_bar(names: list[str], progress: bool):
    """The analyses in turn, under a progress bar that names the running one (when shown)."""
    if not progress:
        yield from names
        return
    from tqdm.auto import tqdm

    with tqdm(names, desc="analyses", unit="analysis", leave=False) as bar:
        for name in bar:
            bar.set_postfix_str(name, refresh=True)
            yield name


def _digest(z: torch.Tensor | None) -> str | None:
    """SHA-256 of the latents (None for samples): equal digests, the same latents."""
    import hashlib

    return None if z is None else hashlib.sha256(z.detach().cpu().numpy().tobytes()).hexdigest()


PREVIEW = 32  # samples kept as uint8 in the report, for grids across reports (same latents)


def _preview(images: torch.Tensor) -> np.ndarray:
    return (images[:PREVIEW, 0].numpy() * 255).round().astype(np.uint8)


# Memory of one audit beyond what the process holds when it is checked (before sampling), as
# peak RSS minus RSS at the check, reference cache warm, one process, latent size 64:
#   modes, memorization, distribution:           n = 5,000: 1,047 MB   n = 40,000: 1,505 MB
#   + dscores, interpolation, training:          n = 2,000: 1,278 MB   n = 10,000: 1,273 MB
#   latent_map alone:                            n = 2,000:   938 MB   n = 12,000: 1,097 MB
# so about 13.1 kB per sample (1,505 - 1,047 MB over 35,000 samples, the latents' 512 B
# included) over a fixed part of about 1.0 GB, 1.3 GB with every analysis: MNIST as float32,
# cached features and neighbours, C_T's k-means, the interpolation analysis's 10,000 triples.
# Per sample: the image (784 x 4 B) and its batch copies, features and probabilities, k-NN
# results and search buffers in two spaces, the per-sample tables, float64 copies in the
# distribution metrics. Latents cost 4 B per coordinate per sample, twice (z and the batch
# fed to G), and the interpolation analysis holds some 60,000 latents at once. latent_map
# alone grows by 16.0 kB per sample (the shared part and its UMAP inputs: the samples beside
# MNIST test in pixel space, 3.1 kB each, their k-NN graph and its symmetrised edges): 3 kB
# more than the shared part (4 kB below), with a fixed part under the others'.
# The estimate is linear in n (a sum, where the measured peaks of the small runs are a max), so
# it errs high for small audits, which stay far below any limit.
MEMORY_FIXED = 1_300 * 2**20
MEMORY_PER_SAMPLE = 14_000
MEMORY_PER_SAMPLE_LATENT_MAP = 4_000
MEMORY_LATENT_TRIPLES = 60_000  # latents the interpolation analysis holds at once


def estimate_memory(n_samples: int, latent_dim: int, analyses: Iterable[str]) -> int:
    """Bytes an audit of ``n_samples`` samples with ``latent_dim``-dimensional latents needs
    beyond what the process holds before sampling (see the measurements above)."""
    names = set(analyses)
    per_sample = MEMORY_PER_SAMPLE + 8 * latent_dim
    per_sample += MEMORY_PER_SAMPLE_LATENT_MAP if "latent_map" in names else 0
    fixed = MEMORY_FIXED + (4 * MEMORY_LATENT_TRIPLES * latent_dim if "interpolation" in names
                            else 0)  # fmt: skip
    return fixed + n_samples * per_sample


def check_memory(n_samples: int, latent_dim: int, analyses: Iterable[str]) -> None:
    """Refuse, before sampling, an audit that would need more memory than the machine has."""
    from ganalyze._guard import available_memory

    names = list(analyses)
    fixed = estimate_memory(0, latent_dim, names)
    per_sample = estimate_memory(1, latent_dim, names) - fixed
    fits = (available_memory() // 2 - fixed) // per_sample
    size = f" with latent size {latent_dim}" if latent_dim else ""
    fix = (f"Use --n-samples {fits:,} or fewer{size}, or run fewer --analyses." if fits >= 1
           else "Not even one sample fits: run fewer --analyses (interpolation holds 60,000 "
           "latents at once), or audit on a machine with more memory.")  # fmt: skip
    check_allocation(estimate_memory(n_samples, latent_dim, names),
                     f"An audit of {n_samples:,} samples{size}", fix)  # fmt: skip


def _check_int(name: str, value, low: int, high: int | None, fix: str) -> None:
    if value is None and name == "n_samples":
        return
    bounds = f"from {low} to {high}" if high is not None else f"of at least {low}"
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise InputError(f"{name} must be an integer {bounds}; got {value!r}. {fix}")
    if value < low or (high is not None and value > high):
        raise InputError(f"{name} must be an integer {bounds}; got {value}. {fix}")


def check_device(device: str | torch.device) -> str | torch.device:
    """``device`` if it names a device this machine has ("cpu", "auto", "cuda", "cuda:N"),
    else an InputError saying which it lacks and what to use instead."""
    text = str(device)
    try:
        parsed = torch.device(text) if text != "auto" else None
    except (RuntimeError, ValueError):
        raise InputError(f"Unknown device {text!r}; expected cpu, cuda, cuda:N or auto.") from None
    if parsed is not None and parsed.type not in ("cpu", "cuda"):
        raise InputError(f"Unsupported device {text!r}; expected cpu, cuda, cuda:N or auto.")
    if parsed is not None and parsed.type == "cuda":
        if not torch.cuda.is_available():
            raise InputError(f"Device {text!r} asked for, but no CUDA device is available on "
                             "this machine (torch finds no NVIDIA GPU or driver). Use --device "
                             "cpu, or --device auto to take a GPU when there is one.")  # fmt: skip
        count = torch.cuda.device_count()
        if parsed.index is not None and parsed.index >= count:
            raise InputError(f"Device {text!r} asked for, but this machine has {count} CUDA "
                             f"device(s), cuda:0 to cuda:{count - 1}. Pick one of them, or use "
                             "--device auto.")  # fmt: skip
    return device


ALIASES = {"bootstrap": ("distribution", "bootstrap"),
           "interp_digits": ("interpolation", "digits")}  # fmt: skip


def analysis_params(
    params: Mapping[str, Mapping[str, Any]] | None, names: Iterable[str], **aliases: Any
) -> dict[str, Any]:
    """The Params of each analysis of ``names``: ``params`` ({analysis: {field: value}}) and
    the ``aliases`` not None (bootstrap, interp_digits) over the defaults."""
    merged = {name: dict(values) if isinstance(values, Mapping) else values
              for name, values in (params or {}).items()}  # fmt: skip
    for keyword, value in aliases.items():
        if value is None:
            continue
        analysis, field = ALIASES[keyword]
        values = merged.setdefault(analysis, {})
        if isinstance(values, dict) and field in values:
            raise InputError(f"{analysis}.{field} is set twice: by {keyword}={value!r} and by "
                             "params; give one of them.")  # fmt: skip
        if isinstance(values, dict):
            values[field] = value
    return resolve_params(merged, names)


def _params_changed(chosen: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The parameters set to other values than their defaults, {analysis: {field: value}}."""
    changed = {name: {field: value for field, value in params_dict(p).items()
                      if value != params_dict(type(p)())[field]}
               for name, p in chosen.items()}  # fmt: skip
    return {name: fields for name, fields in changed.items() if fields}


def _read_indices(value) -> np.ndarray:
    if isinstance(value, str | Path):
        path = regular_file(value, "--train-indices")
        try:
            arr = (np.load(path, allow_pickle=False) if path.suffix == ".npy"
                   else np.loadtxt(path, dtype=np.int64, ndmin=1))  # fmt: skip
        except (OSError, ValueError, EOFError) as exc:
            raise InputError(f"--train-indices {path}: expected a .npy array or a text file "
                             f"of integer MNIST-train indices ({exc}).") from None  # fmt: skip
        if np.asarray(arr).size == 0:
            raise InputError(f"--train-indices {path} holds no indices; expected the "
                             "MNIST-train indices the generator was trained on.")  # fmt: skip
        return np.asarray(arr).ravel()  # the member set checks the values and the dtype
    return np.asarray(value).ravel()


def _meta(ctx: Context, names: list[str], chosen: dict[str, Any], options: LoadOptions) -> dict:
    """What is audited and how, as plain values (the report's header is rendered from them)."""
    from ganalyze import __version__

    gen = ctx.generator
    d = ctx.discriminator
    meta = {
        "spec": gen.spec,
        "kind": gen.kind,
        "sha256": gen.info.get("sha256"),
        "weights": str(options.weights) if options.weights is not None else None,
        "init_kwargs": options.init_kwargs,
        "files": gen.info.get("files", {}),
        "has_generator": gen.has_generator,
        "latent_dim": gen.latent_dim,
        "prior": gen.prior if gen.has_generator else None,
        "n_samples": len(ctx.images),
        "seed": ctx.seed,
        "output_range": gen.output_range,
        "output_range_source": gen.range_source,
        "native_shape": list(gen.native_shape) if gen.native_shape else None,
        "image_conversion": gen.image_form.facts() if gen.image_form is not None else None,
        "latent_shape": list(gen.call_shape or ()) or None if gen.has_generator else None,
        "latent_shape_source": gen.latent_source if gen.has_generator else None,
        "conditional": {
            "num_classes": gen.num_classes,
            "label_input": gen.label_input,
            "label_input_source": gen.label_source,
            "labels": gen.labels,
        }
        if gen.conditional and gen.has_generator
        else None,
        "discriminator": None
        if d is None
        else {
            "input_range": d.input_range,
            "input_shape": list(d.input_shape or ()),
            "input_shape_source": d.shape_source,
            "conversion": d.conversion,
            "conversion_rule": d.conversion_rule,
            "output": d.output,
            "input_range_source": d.range_source,
            "conditional": d.conditional,
            "label_input": d.label_input if d.conditional else None,
            "label_input_source": d.label_rule if d.conditional else None,
        },
        "member_set": ctx.members[1],
        "analyses": names,
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "classifier_sha256": file_sha256(WEIGHTS_PATH),
        "versions": {
            "ganalyze": __version__,
            "torch": str(torch.__version__),
            "python": platform.python_version(),
        },
        "params": {name: params_dict(p) for name, p in chosen.items()},
        "params_changed": _params_changed(chosen),
    }
    if "epoch" in gen.info:
        meta["checkpoint_epoch"] = gen.info["epoch"]
    return meta


RECALL_QUERIES = 500  # samples on which an approximate index's recall@1 is measured


def _facts(ctx: Context) -> dict:
    """What the audit measured while the analyses ran: the neighbour search and, for an
    approximate index, its recall@1 per space (measured when a space is first searched)."""
    return {"nn_index": {"kind": ctx.nn_index, "recall_at_1": dict(ctx.nn_recall),
                         "recall_queries": RECALL_QUERIES}}  # fmt: skip
