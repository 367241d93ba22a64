"""The ``ganalyze`` command line: thin click commands over the Python API.

Bad options are click usage errors (exit code 2). A :class:`~ganalyze.errors.GanalyzeError`
becomes one ``Error: ...`` line and its exit code; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
import tempfile
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

from ganalyze import __version__
from ganalyze.errors import GanalyzeError, InputError, OptionConflict


class _TqdmHandler(logging.Handler):
    """Log lines that do not break a running progress bar."""

    def emit(self, record: logging.LogRecord) -> None:
        from tqdm.auto import tqdm

        tqdm.write(self.format(record), file=sys.stderr)


def _setup_logging(quiet: bool) -> None:
    handler = _TqdmHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    for name in ("ganalyze", "reference_gan"):
        log = logging.getLogger(name)
        log.handlers[:] = [handler]
        log.setLevel(logging.WARNING if quiet else logging.INFO)
        log.propagate = False


def _handle_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Turn GanalyzeError into a clean message and exit code (the traceback with --debug)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        ctx = click.get_current_context()
        try:
            return func(*args, **kwargs)
        except GanalyzeError as exc:
            if ctx.find_root().params.get("debug"):
                raise
            click.echo(f"Error: {exc}", err=True)
            ctx.exit(exc.exit_code)

    return wrapper


class _Betas(click.ParamType):
    name = "B1,B2"

    def convert(self, value: Any, param: Any, ctx: Any) -> tuple[float, float]:
        if isinstance(value, tuple):
            return value
        try:
            b1, b2 = (float(v) for v in str(value).split(","))
        except ValueError:
            self.fail(f"expected two numbers separated by a comma, like 0.9,0.999; got {value!r}")
        if not (0 <= b1 < 1 and 0 <= b2 < 1):
            self.fail(f"both betas must lie in [0, 1); got {value!r}")
        return (b1, b2)


def _check_writable_dir(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
    if value is None:
        return value
    path = Path(value).expanduser()
    probe = path
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        raise click.BadParameter(f"{probe} exists and is not a folder.", ctx, param)
    try:  # probe the nearest existing folder: nothing is created until something is written
        with tempfile.TemporaryFile(dir=probe):
            pass
    except OSError as exc:
        raise click.BadParameter(
            f"cannot write into {path} ({probe}: {exc.strerror}); choose a writable folder.",
            ctx,
            param,
        ) from None
    return str(path)


_POSITIVE = click.IntRange(min=1)
_SEED = click.IntRange(0, 2**32 - 1)  # numpy's legacy seeds and scikit-learn's random_state
_SEED_HELP = "Random seed, 0 to 2^32 - 1 (4294967295)."


def _check_device(ctx: click.Context, param: click.Parameter, value: str) -> str:
    from ganalyze.pipeline import check_device

    try:
        return check_device(value)
    except InputError as exc:
        raise click.BadParameter(str(exc), ctx, param) from None


def _parse_params(
    ctx: click.Context, param: click.Parameter, values: tuple[str, ...]
) -> dict[str, dict[str, str]]:
    """--param ANALYSIS.FIELD=VALUE, repeatable (the last of a field wins), as {analysis:
    {field: text}}; each checked against the analysis's Params."""
    from ganalyze.pipeline import analysis_params

    parsed: dict[str, dict[str, str]] = {}
    for item in values:
        key, eq, value = item.partition("=")
        analysis, dot, field = key.strip().partition(".")
        if not (eq and dot and analysis and field):
            example = "interpolation.digits=9,7,1"
            message = f"expected ANALYSIS.FIELD=VALUE (e.g. {example}); got {item!r}."
            raise click.BadParameter(message, ctx, param)
        parsed.setdefault(analysis, {})[field.strip()] = value
    try:
        analysis_params(parsed, [])
    except InputError as exc:
        raise click.BadParameter(str(exc), ctx, param) from None
    return parsed


def _check_params(options: dict[str, Any]) -> None:
    """--param with its aliases --bootstrap and --interp-digits: a usage error if they clash or
    a value is bad."""
    from ganalyze.pipeline import analysis_params

    try:
        analysis_params(options["params"], [], bootstrap=options["bootstrap"],
                        interp_digits=options["interp_digits"])  # fmt: skip
    except InputError as exc:
        message = str(exc).replace("by params", "by --param")
        for keyword in ("bootstrap", "interp_digits"):
            message = message.replace(f"by {keyword}=", f"by --{keyword.replace('_', '-')} ")
        raise click.UsageError(message) from None


_DATA_DIR = click.option(
    "--data-dir",
    type=click.Path(file_okay=False),
    default=None,
    help="MNIST root (holds MNIST/raw/) [default: $GANALYZE_DATA, else ~/.cache/ganalyze/data].",
)


_ANALYSES = click.option(
    "--analyses",
    default=None,
    metavar="A,B",
    help="Analyses to run [default: all; see `ganalyze analyses`].",
)
_DEVICE = click.option(
    "--device",
    type=click.Choice(["auto", "cpu", "cuda"]),
    default="cpu",
    show_default=True,
    callback=_check_device,
    help="Where G and D run; cuda needs a CUDA GPU (auto: CUDA when present, else the CPU).",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="ganalyze")
@click.option("--debug", is_flag=True, help="Show full tracebacks on errors.")
def main(debug: bool) -> None:
    """Audit what a trained image generator really learned (MNIST first)."""


@main.command()
@click.option(
    "--epochs",
    type=_POSITIVE,
    default=300,
    show_default=True,
    help="Total epochs (the target, also on --resume).",
)
@click.option("--batch-size", type=_POSITIVE, default=32, show_default=True)
@click.option(
    "--lr",
    type=click.FloatRange(min=0, min_open=True),
    default=2e-4,
    show_default=True,
    help="Adam learning rate of both nets.",
)
@click.option(
    "--betas",
    type=_Betas(),
    default="0.9,0.999",
    show_default=True,
    help="Adam betas of both nets.",
)
@click.option("--latent-dim", type=_POSITIVE, default=64, show_default=True)
@click.option(
    "--hidden",
    type=_POSITIVE,
    default=256,
    show_default=True,
    help="Width of both hidden layers of G and of D.",
)
@click.option("--seed", type=_SEED, default=0, show_default=True, help=_SEED_HELP)
@click.option(
    "--device",
    type=click.Choice(["auto", "cpu", "cuda"]),
    default="auto",
    show_default=True,
    help="auto: CUDA when present, else the CPU.",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    default="runs/reference_gan",
    show_default=True,
    callback=_check_writable_dir,
    help="Run folder: checkpoints/, latest.pt, samples/, curves.png|pdf.",
)
@click.option(
    "--save-every",
    type=_POSITIVE,
    default=50,
    show_default=True,
    help="Write a checkpoint every N epochs (and at the end).",
)
@click.option(
    "--sample-every",
    type=_POSITIVE,
    default=10,
    show_default=True,
    help="Write a sample grid every N epochs (and after the first and last).",
)
@_DATA_DIR
@click.option(
    "--resume",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="Continue the run of this checkpoint, with its hyperparameters.",
)
@click.option(
    "--limit",
    type=click.IntRange(1, 60000),
    default=None,
    help="Train on the first N training images only (smoke runs).",
)
@click.option("--quiet", is_flag=True, help="No progress bars or per-epoch lines.")
@_handle_errors
def train(**options: Any) -> None:
    """Train the study's reference GAN (MLP G and D, Adam, batch 32, 300 epochs)."""
    from reference_gan.train import TrainConfig
    from reference_gan.train import train as run_training

    ctx = click.get_current_context()
    resume = options.pop("resume")
    explicit = [k for k in options if ctx.get_parameter_source(k) == ParameterSource.COMMANDLINE]
    if resume is not None and "out" not in explicit:
        ckpt = Path(resume).resolve()
        options["out"] = str(
            ckpt.parent.parent if ckpt.parent.name == "checkpoints" else ckpt.parent
        )
    if options["data_dir"] is not None:
        options["data_dir"] = os.path.abspath(os.path.expanduser(options["data_dir"]))
    _setup_logging(options["quiet"])
    cfg = TrainConfig(**options)
    try:
        path = run_training(cfg, resume=resume, explicit=explicit)
    except OptionConflict as exc:  # options that contradict the resumed checkpoint
        raise click.UsageError(str(exc)) from None
    click.echo(f"Checkpoint: {path}")


_RANGE = click.Choice(["auto", "-1,1", "0,1", "0,255"])


def _parse_shape(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
    """--latent-shape / --d-input-shape such as 100,1,1 as a tuple of positive ints, checked as
    LoadOptions checks it; a bad one is a usage error."""
    from ganalyze.generators import LoadOptions

    if value is None:
        return None
    try:
        return getattr(LoadOptions(**{param.name: value}), param.name)
    except InputError as exc:
        raise click.BadParameter(str(exc), ctx, param) from None


def _parse_init_kwargs(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
    """--init-kwargs JSON as LoadOptions checks it; a bad one is a usage error."""
    from ganalyze.generators.options import parse_init_kwargs

    try:
        return parse_init_kwargs(value)
    except InputError as exc:
        raise click.BadParameter(str(exc), ctx, param) from None


def _check_discriminator(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
    """--discriminator: an existing file or a Python entry point (file.py:Class)."""
    from ganalyze.generators.entrypoint import split_entry_point

    if value is None or split_entry_point(value) is not None or Path(value).is_file():
        return value
    what = "is a folder" if Path(value).is_dir() else "does not exist"
    raise click.BadParameter(
        f"{value} {what}; expected a file (reference-MLP state_dict, checkpoint, TorchScript, "
        ".pt2, .safetensors) or a Python entry point file.py:Class.",
        ctx,
        param,
    )


# a conditional generator G(z, y): shared by report and compare
_NUM_CLASSES = click.option(
    "--num-classes",
    type=click.IntRange(2, 100_000),
    default=None,
    metavar="K",
    help="A conditional generator G(z, y) of K classes (10 for MNIST's digits): each sample "
    "gets a class label, kept for the conditional analysis [default: G takes z only].",
)
_LABEL_INPUT = click.option(
    "--label-input",
    type=click.Choice(["auto", "index", "onehot"]),
    default="auto",
    show_default=True,
    help="How G takes its label: class indices (n,) or one-hot rows (n, K); auto tries index, "
    "then onehot, and the report says which worked.",
)
_LABELS = click.option(
    "--labels",
    type=click.Choice(["uniform", "train"]),
    default="uniform",
    show_default=True,
    help="How conditioning labels are drawn (seeded): each class equally often, or at MNIST "
    "train's digit shares.",
)


@main.command()
@click.argument("spec", required=False)
@click.option(
    "-o",
    "--out",
    type=click.Path(file_okay=False),
    default=None,
    callback=_check_writable_dir,
    help="Report folder, replaced whole by each report [default: reports/<folder>-<name>-"
    "<hash>: the spec's folder and file stem, and 8 hex digits of its resolved path].",
)
@click.option(
    "--n-samples",
    type=_POSITIVE,
    default=None,
    help="Samples to draw [default: 10,000; every image of a samples file]. An audit needs "
    "about 14-18 kB per sample (more with a large latent size); runs needing more than half "
    "the available memory are refused before sampling.",
)
@click.option(
    "--seed", type=_SEED, default=0, show_default=True, help=f"{_SEED_HELP} Seeds the latents."
)
@_ANALYSES
@_DEVICE
@_DATA_DIR
@click.option(
    "--discriminator",
    default=None,
    callback=_check_discriminator,
    help="D, in any form SPEC takes: a reference-MLP state_dict (.pth or .safetensors) or "
    "checkpoint, TorchScript, .pt2, or file.py:Class / file.py:Class.method (with "
    "--d-weights). Without SPEC, D alone is audited (dscores on member and test digits).",
)
@click.option(
    "--d-weights",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="state_dict file for an entry-point discriminator's module (.safetensors or "
    "torch.save, loaded weights_only).",
)
@click.option(
    "--weights",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="state_dict file for an entry point's module: .safetensors (recommended: the format "
    "cannot run code) or a torch.save file (loaded weights_only).",
)
@click.option(
    "--init-kwargs",
    default=None,
    metavar="JSON",
    callback=_parse_init_kwargs,
    help="Keyword arguments for an entry point's class, file.py:Class or file.py:Class.method, "
    """as a JSON object, e.g. '{"latent_dim": 20}' [default: constructed without arguments].""",
)
@click.option("--latent-dim", type=_POSITIVE, default=None, help="Size of z.")
@_NUM_CLASSES
@_LABEL_INPUT
@_LABELS
@click.option(
    "--latent-shape",
    default=None,
    metavar="100,1,1",
    callback=_parse_shape,
    help="Shape of one z as G takes it, e.g. 100,1,1 for a DCGAN; z stays flat inside ganalyze "
    "(its size is the product) [default: the source's, the model's first layer (a "
    "ConvTranspose2d with d input channels: d,1,1), or (d) unless only (d,1,1) works].",
)
@click.option(
    "--resize",
    type=click.Choice(["auto", "crop", "resize", "none"]),
    default="auto",
    show_default=True,
    help="Images of another size than 28x28: auto crops a 32x32 image whose 2-pixel border is "
    "empty and resizes any other size (least-squares inverse of bilinear enlargement); crop: a "
    "centre crop; resize: always resize; none: refuse any size but 28x28.",
)
@click.option(
    "--prior",
    type=click.Choice(["normal", "uniform"]),
    default=None,
    help="Latent prior [default: the checkpoint's, else normal N(0, I)].",
)
@click.option(
    "--output-range",
    type=_RANGE,
    default="auto",
    show_default=True,
    help="Range of G's outputs (auto: detected on the first 1,000).",
)
@click.option(
    "--d-input-range",
    type=_RANGE,
    default="auto",
    show_default=True,
    help="Range D expects (auto: G's native range).",
)
@click.option(
    "--d-input-shape",
    default=None,
    metavar="1,64,64",
    callback=_parse_shape,
    help="Shape of one input of D, e.g. 1,64,64; MNIST digits reach it padded or resized to "
    "that size [default: G's native shape, else a shape a probe finds D takes].",
)
@click.option(
    "--d-output",
    type=click.Choice(["auto", "probs", "logits"]),
    default="auto",
    show_default=True,
    help="What D returns (auto: probabilities if it ends in a Sigmoid or its scores on 1,000 "
    "test digits lie in [0, 1], else logits).",
)
@click.option(
    "--train-indices",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="The member set: MNIST-train indices G was trained on (.npy or text) [default: the "
    "checkpoint's record, else all of MNIST train].",
)
@click.option(
    "--nn-index",
    type=click.Choice(["exact", "ivf", "hnsw"]),
    default="exact",
    show_default=True,
    help="Neighbour search: exact, or an approximate FAISS index (its recall is reported).",
)
@click.option(
    "--param",
    "params",
    multiple=True,
    metavar="ANALYSIS.FIELD=VALUE",
    callback=_parse_params,
    help="Set an analysis's parameter, e.g. interpolation.digits=9,7,1 (repeatable; see "
    "`ganalyze analyses --params`).",
)
@click.option(
    "--bootstrap",
    type=click.IntRange(0, 10_000),
    default=None,
    metavar="B",
    help="Bootstrap resamples for 95% intervals of the distribution metrics (0: none). At most "
    "10,000: each costs about 0.1 s at 10,000 samples (10,000 take some 20 minutes), and "
    "1,000-2,000 already settle a 95% percentile interval. Alias of --param "
    "distribution.bootstrap=B [default: 0].",
)
@click.option(
    "--interp-digits",
    default=None,
    metavar="9,7,1",
    help="Digits whose most confident samples anchor the interpolation strip. Alias of --param "
    "interpolation.digits=9,7,1 [default: 9,7,1].",
)
@click.option(
    "--trust-pickle",
    is_flag=True,
    help="Unpickle whole objects (runs code from the file: only for files you trust).",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0),
    default=None,
    metavar="SECONDS",
    help="Stop a generator or discriminator call (one batch of up to 1,000 samples), an entry "
    "point's import or factory, that has not returned after SECONDS, with an error (0: no "
    "limit) [default: 600: hundreds of times what an MNIST generator needs on a CPU, yet a "
    "hung audit ends within minutes].",
)
@click.option("--quiet", is_flag=True, help="No progress bars or log lines.")
@_handle_errors
def report(spec: str | None, out: str | None, quiet: bool, **options: Any) -> None:
    """Audit SPEC and write an HTML report with every number as CSV/JSON.

    SPEC: a `ganalyze train` checkpoint, a bare state_dict (keys 0.weight ... 4.bias),
    TorchScript, a torch.export program (.pt2), path/to/file.py:name or package.module:name,
    a .npy/.npz of images, or a folder of PNGs. Without SPEC, --discriminator D is audited
    alone.

    Code that SPEC brings (a generator, its discriminator, an entry point's import) runs under
    --timeout: a call that never returns ends the audit with an error, as does one that raises
    or exits.
    """
    from ganalyze.generators import LoadOptions
    from ganalyze.pipeline import audit
    from ganalyze.report import default_name
    from ganalyze.report.figures import BackgroundRenderer

    if spec is None and options["discriminator"] is None:
        raise click.UsageError("Missing argument 'SPEC' (or --discriminator D to audit a "
                               "discriminator alone).")  # fmt: skip
    _setup_logging(quiet)
    if options["timeout"] is None:  # the loader's default, DEFAULT_TIMEOUT (600 s)
        del options["timeout"]
    try:  # option values that contradict each other (--latent-shape and --latent-dim)
        load = LoadOptions(**{f.name: options.pop(f.name) for f in fields(LoadOptions)
                              if f.name in options})  # fmt: skip
    except InputError as exc:
        raise click.UsageError(str(exc)) from None
    _check_params(options)
    target = Path(out) if out else Path("reports") / default_name(spec or str(load.discriminator))
    with BackgroundRenderer() as renderer:  # figures rendered on the core the audit leaves idle
        result = audit(spec, progress=not quiet, load=load, renderer=renderer, **options)
        index = result.save(target)
    for name, flag in result.flags:
        click.echo(f"[{name}] {flag.message}")
    click.echo(f"Report: {index}")


@main.command()
@click.argument("specs", nargs=-1, required=True, metavar="SPEC [SPEC ...]")
@click.option(
    "-o",
    "--out",
    type=click.Path(file_okay=False),
    default=None,
    callback=_check_writable_dir,
    help="Comparison folder, replaced whole [default: reports/compare-<name>-<hash>].",
)
@click.option(
    "--n-samples",
    type=_POSITIVE,
    default=None,
    help="Samples per generator [default: 10,000; every image of a samples file].",
)
@click.option(
    "--seed",
    type=_SEED,
    default=0,
    show_default=True,
    help=f"{_SEED_HELP} The same latents for every generator of one latent size.",
)
@_ANALYSES
@click.option(
    "--param",
    "params",
    multiple=True,
    metavar="ANALYSIS.FIELD=VALUE",
    callback=_parse_params,
    help="Set an analysis's parameter for every audit (repeatable).",
)
@click.option(
    "--workers",
    type=click.IntRange(1, 256),
    default=1,
    show_default=True,
    help="Local processes to run the audits in (the cores are shared among them).",
)
@click.option(
    "--scheduler",
    default=None,
    metavar="ADDRESS",
    help="Run the audits on a Dask distributed cluster (tcp://host:8786), one task per "
    "generator; needs ganalyze[cluster], and on the workers ganalyze, MNIST and a writable "
    "cache, with the output folder on a shared file system.",
)
@_DEVICE
@_DATA_DIR
@_NUM_CLASSES
@_LABEL_INPUT
@_LABELS
@click.option(
    "--no-cache",
    "no_cache",
    is_flag=True,
    help="Audit every generator afresh, neither reusing nor saving cached results.",
)
@click.option("--quiet", is_flag=True, help="No progress lines.")
@_handle_errors
def compare(specs: tuple[str, ...], out: str | None, quiet: bool, no_cache: bool,
            **options: Any) -> None:  # fmt: skip
    """Audit several generators with the same options and compare them in one report.

    SPEC: anything `ganalyze report` accepts; a `ganalyze train` run folder (every checkpoint,
    by epoch: a trajectory); or a manifest, .csv or .toml, one row per generator with the
    columns spec (required), label, step, discriminator, weights, d_weights, latent_dim,
    prior, output_range, d_input_range, d_output, resize, latent_shape, d_input_shape,
    init_kwargs, num_classes, label_input, labels and train_indices (paths relative to the
    manifest). --num-classes, --label-input and --labels apply to every generator.

    A second run reuses every audit whose files and options are unchanged: after a new
    checkpoint, only that one is audited.
    """
    from ganalyze.comparison import compare as run_compare
    from ganalyze.comparison import default_folder

    _setup_logging(quiet)
    target = Path(out) if out else default_folder(specs)
    load = {"num_classes": options.pop("num_classes"), "labels": options.pop("labels"),
            "label_input": options.pop("label_input")}  # fmt: skip
    load = {k: v for k, v in load.items() if v not in (None, "auto", "uniform")}
    comparison = run_compare(list(specs), out=target, cache=not no_cache, load=load or None,
                             **options)  # fmt: skip
    for label, error in comparison.failures.items():
        click.echo(f"Failed: {label}: {error}", err=True)
    if comparison.failures:
        click.echo(f"{len(comparison.failures)} of {len(comparison.entries)} audits failed; "
                   "the comparison holds the others.", err=True)  # fmt: skip
    reused = len(comparison.meta.get("reused", []))
    click.echo(f"Audited {len(comparison.meta.get('audited', []))}, reused {reused} from the "
               f"cache.")  # fmt: skip
    click.echo(f"Comparison: {target / 'index.html'}")


@main.command("analyses")
@click.option(
    "--params",
    "show_params",
    is_flag=True,
    help="Also list each analysis's parameters (--param ANALYSIS.FIELD=VALUE), their defaults "
    "and help.",
)
def list_analyses(show_params: bool) -> None:
    """List the registered analyses (built-in, then plugins)."""
    from ganalyze.analyses import PLUGINS, REGISTRY
    from ganalyze.analyses.base import format_value, param_specs, registered

    for name in registered():
        cls = REGISTRY[name]
        needs = ", ".join(cls.needs)
        plugin = f" [plugin: {PLUGINS[name]}]" if name in PLUGINS else ""
        click.echo(f"{name:14s} {cls.title}: {cls.description} [needs: {needs}]{plugin}")
        for spec in param_specs(cls) if show_params else ():
            click.echo(f"    {name}.{spec.name}={format_value(spec.default)} ({spec.type_name})"
                       f"  {spec.help}")  # fmt: skip


@main.command("pretrained")
@_handle_errors
def list_pretrained() -> None:
    """List the generators shipped with ganalyze (audit one with pretrained:NAME[@EPOCH])."""
    from ganalyze.pretrained import listing

    rows = listing()
    if not rows:
        click.echo("No pretrained generators are shipped with this installation.")
    for row in rows:
        epochs = ", ".join(map(str, row["epochs"]))
        click.echo(f"{row['name']}: epochs {epochs} (default {row['default']}), "
                   f"{row['megabytes']:.1f} MB")  # fmt: skip
        click.echo(f"    {row['description']}")
        click.echo(f"    trained with: {row['command']}" + (f" ({row['trained']})"
                                                           if row["trained"] else ""))  # fmt: skip
        click.echo(f"    audit: ganalyze report pretrained:{row['name']}  |  "
                   f"ganalyze report pretrained:{row['name']}@{row['epochs'][0]}  |  "
                   f"ganalyze compare 'pretrained:{row['name']}@*'")  # fmt: skip


@main.group()
def classifier() -> None:
    """The bundled MNIST classifier (the mnist_cnn feature space)."""


@classifier.command("train")
@click.option(
    "--out",
    type=click.Path(dir_okay=False),
    default="mnist_cnn.pt",
    show_default=True,
    help="Weights file to write.",
)
@click.option("--epochs", type=_POSITIVE, default=4, show_default=True)
@click.option("--seed", type=_SEED, default=0, show_default=True)
@_DATA_DIR
@click.option("--quiet", is_flag=True)
@_handle_errors
def classifier_train(out: str, epochs: int, seed: int, data_dir: str | None, quiet: bool) -> None:
    """Train the classifier reproducibly (the shipped weights: --epochs 4 --seed 0)."""
    from ganalyze.classifier.train import train_classifier

    _setup_logging(quiet)
    record = train_classifier(out, epochs=epochs, seed=seed, data_dir=data_dir, quiet=quiet)
    click.echo(f"Wrote {out}: test accuracy {record['test_accuracy']:.4f}")


if __name__ == "__main__":  # pragma: no cover
    main()
