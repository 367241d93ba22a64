"""Train the reference GAN as the study does, fast: ``train(TrainConfig(...)) -> checkpoint path``.

Every epoch draws its batch order and its latents from a generator seeded by (seed, epoch), so a
run resumed from any checkpoint, mid-epoch included, continues bit for bit.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import logging
import math
import signal
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from ganalyze._io import atomic_path, copy_file, remove_stale_temps, write_text
from ganalyze.data import load_mnist
from ganalyze.errors import (
    CheckpointError,
    InputError,
    OptionConflict,
    TrainingDiverged,
    TrainingInterrupted,
)
from reference_gan.checkpoint import load_checkpoint, save_checkpoint, versions
from reference_gan.engine import GANStep, epoch_stats
from reference_gan.model import make_discriminator, make_generator
from reference_gan.plots import save_grid, save_training_curves

logger = logging.getLogger(__name__)

# Fixed by a checkpoint: changing one of these on --resume would not continue the same run.
MODEL_KEYS = ("batch_size", "lr", "betas", "latent_dim", "hidden", "seed", "limit")
# What a run writes, per subfolder: the targets whose `.<name>.<random>.tmp` a killed save leaves.
RUN_FILES = {
    ".": r"latest\.pt|config\.json|history\.csv|curves\.(?:png|pdf)",
    "checkpoints": r"epoch_\d{4,}(?:_step_\d{5,})?\.pt",
    "samples": r"epoch_\d{4,}\.png",
}


@dataclass
class TrainConfig:
    """Options of ``ganalyze train``; the defaults are the study's setup."""

    epochs: int = 300
    batch_size: int = 32
    lr: float = 2e-4
    betas: tuple[float, float] = (0.9, 0.999)
    latent_dim: int = 64
    hidden: int = 256
    seed: int = 0
    device: str = "auto"
    out: str = "runs/reference_gan"
    save_every: int = 50
    sample_every: int = 10
    data_dir: str | None = None
    limit: int | None = None
    quiet: bool = False

    def validate(self) -> None:
        """Raise InputError naming the first option that is out of range."""
        for key in ("epochs", "batch_size", "latent_dim", "hidden", "save_every", "sample_every"):
            value = getattr(self, key)
            if not isinstance(value, int) or value < 1:
                raise InputError(f"{key} must be a positive integer; got {value!r}.")
        if not isinstance(self.seed, int) or not 0 <= self.seed < 2**32:
            raise InputError(f"seed must be an integer from 0 to 2^32 - 1; got {self.seed!r}.")
        if self.limit is not None and not (1 <= self.limit <= 60000):
            raise InputError(f"limit must be between 1 and 60000 images; got {self.limit}.")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise InputError(f"lr must be a positive finite number; got {self.lr}.")
        if len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas):
            raise InputError(f"betas must be two numbers in [0, 1); got {self.betas}.")
        if self.device not in ("auto", "cpu", "cuda"):
            raise InputError(f"device must be auto, cpu or cuda; got {self.device!r}.")
        if self.device == "cuda" and not torch.cuda.is_available():
            raise InputError(
                "device cuda was asked for, but no CUDA device is available; "
                "use --device cpu or auto."
            )


def resolve_device(name: str) -> torch.device:
    """``auto`` is CUDA when present, else the CPU."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


def merge_resume_config(saved: dict, cfg: TrainConfig, explicit: Iterable[str]) -> TrainConfig:
    """Keep the checkpoint's hyperparameters; refuse explicit options that contradict them."""
    explicit = set(explicit)
    conflicts = []
    for key in MODEL_KEYS:
        want, have = getattr(cfg, key), saved[key]
        if key == "betas":
            want, have = tuple(want), tuple(have)
        if key in explicit and want != have:
            conflicts.append(f"--{key.replace('_', '-')} {want} (checkpoint: {have})")
    if conflicts:
        raise OptionConflict(
            "--resume continues a run with its own hyperparameters; these options "
            f"contradict the checkpoint: {'; '.join(conflicts)}. Drop them, or "
            "start a new run without --resume."
        )
    kept = {key: saved[key] for key in MODEL_KEYS}
    kept["betas"] = tuple(kept["betas"])
    return dataclasses.replace(cfg, **kept)


def _rng(seed: int, *key: int) -> torch.Generator:
    state = np.random.SeedSequence([seed, *key]).generate_state(1, dtype=np.uint64)[0]
    return torch.Generator().manual_seed(int(state) & (2**63 - 1))


@contextlib.contextmanager
def _sigint_to_flag() -> Iterator[threading.Event]:
    """A first Ctrl-C sets the flag (stop after this step); a second one interrupts at once."""
    flag = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return

    def handler(signum, frame):
        if flag.is_set():
            raise KeyboardInterrupt
        flag.set()

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, previous)


@torch.no_grad()
def _mean_d(D: torch.nn.Module, x: torch.Tensor, chunk: int = 2500) -> float:
    return float(sum(D(x[i : i + chunk]).sum().item() for i in range(0, len(x), chunk)) / len(x))


class _Run:
    """The state of one training run; ``train`` drives it."""

    def __init__(self, cfg: TrainConfig, resume: dict | None) -> None:
        self.cfg, self.device = cfg, resolve_device(cfg.device)
        self.out = Path(cfg.out)
        train_split = load_mnist(True, cfg.data_dir)
        test_split = load_mnist(False, cfg.data_dir)
        self.indices = torch.arange(cfg.limit or len(train_split), dtype=torch.int64)
        self.data = train_split.to_tanh_range()[self.indices].to(self.device)
        self.test = test_split.to_tanh_range().to(self.device)
        self.member_eval = self.data[:10000]
        torch.manual_seed(cfg.seed)
        self.G = make_generator(cfg.latent_dim, cfg.hidden).to(self.device)
        self.D = make_discriminator(cfg.hidden).to(self.device)
        self.engine = GANStep(self.G, self.D, cfg.lr, tuple(cfg.betas))
        self.fixed_z = torch.randn(64, cfg.latent_dim, generator=_rng(cfg.seed, 1))
        self.eval_z = torch.randn(10000, cfg.latent_dim, generator=_rng(cfg.seed, 2))
        self.epoch, self.step, self.partial, self.history = 0, 0, None, []
        self.steps_run, self.max_steps, self.last_saved = 0, None, None
        if resume is not None:
            self.G.load_state_dict(resume["generator"])
            self.D.load_state_dict(resume["discriminator"])
            self.engine.opt_g.load_state_dict(resume["opt_g"])
            self.engine.opt_d.load_state_dict(resume["opt_d"])
            self.epoch, self.step = int(resume["epoch"]), int(resume["step"])
            self.partial, self.history = resume.get("partial_logits"), list(resume["history"])

    def nonfinite(self) -> list[str]:
        """The last epoch's losses and the weights or Adam moments that are NaN or infinite."""
        record = self.history[-1] if self.history else {}
        bad = [f"{k} {v}" for k, v in record.items() if k.endswith("loss") and not math.isfinite(v)]
        return bad + self.engine.nonfinite()

    def config_record(self) -> dict:
        cfg = dataclasses.asdict(self.cfg)
        for key in ("out", "data_dir", "quiet"):
            cfg.pop(key)
        cfg["betas"] = list(cfg["betas"])
        return {
            **cfg,
            "adam_eps": 1e-8,
            "loss": "bce_nonsaturating",
            "d_steps_per_g_step": 1,
            "dataset": "mnist",
            "prior": "normal",
            "image_range": [-1.0, 1.0],
            "g_output_shape": [784],
            "d_input_range": [-1.0, 1.0],
            "d_input_shape": [784],
            "d_output": "probability",
            "n_train": len(self.indices),
            "train_indices": self.indices.clone(),
            "device_used": self.device.type,
        }

    def save(self, interrupted: bool = False) -> Path:
        name = f"epoch_{self.epoch:04d}" + (f"_step_{self.step:05d}" if self.step else "")
        path = self.out / "checkpoints" / f"{name}.pt"
        save_checkpoint(
            {
                "generator": {k: v.detach().cpu().clone() for k, v in self.G.state_dict().items()},
                "discriminator": {
                    k: v.detach().cpu().clone() for k, v in self.D.state_dict().items()
                },
                "opt_g": {
                    k: v.cpu() if torch.is_tensor(v) else v
                    for k, v in self.engine.opt_g.state_dict().items()
                },
                "opt_d": {
                    k: v.cpu() if torch.is_tensor(v) else v
                    for k, v in self.engine.opt_d.state_dict().items()
                },
                "config": self.config_record(),
                "epoch": self.epoch,
                "step": self.step,
                "partial_logits": self.partial,
                "history": list(self.history),
                "rng": {"torch_cpu": torch.get_rng_state()},
                "fixed_z": self.fixed_z.clone(),
                "versions": versions(),
            },
            path,
        )
        copy_file(path, self.out / "latest.pt")
        self.last_saved = path
        logger.info("%s checkpoint %s", "resumable" if interrupted else "saved", path)
        return path

    def run_epoch(self, stop: threading.Event) -> bool:
        """Train one epoch from ``self.step``; False when stopped before its end."""
        cfg, n, b = self.cfg, len(self.data), self.cfg.batch_size
        gen = _rng(cfg.seed, 0, self.epoch)
        perm = torch.randperm(n, generator=gen).to(self.device)
        z = torch.randn(2 * n, cfg.latent_dim, generator=gen).to(self.device)
        logits = torch.empty(3 * n, 1, device=self.device)
        if self.partial is not None:
            logits[: len(self.partial)] = self.partial.to(self.device)
        steps = math.ceil(n / b)
        bar = tqdm(
            total=steps,
            initial=self.step,
            desc=f"epoch {self.epoch + 1}/{cfg.epochs}",
            disable=cfg.quiet,
            leave=False,
            dynamic_ncols=True,
        )
        with bar:
            for s in range(self.step, steps):
                if stop.is_set() or self.steps_run == self.max_steps:
                    self.step, self.partial = s, logits[: 3 * s * b].cpu().clone()
                    return False
                i, m = s * b, min(b, n - s * b)
                self.engine.step(
                    self.data,
                    perm[i : i + m],
                    z[2 * i : 2 * i + 2 * m],
                    logits[3 * i : 3 * i + 3 * m],
                )
                self.steps_run += 1
                bar.update()
                if (s + 1) % 200 == 0 and not cfg.quiet:
                    recent = epoch_stats(logits[3 * (i + m - 200 * b) : 3 * (i + m)], 200 * b, b)
                    bar.set_postfix(
                        {k: f"{recent[k]:.3f}" for k in ("d_loss", "g_loss", "d_real", "d_fake")}
                    )
        record = {"epoch": self.epoch + 1, "steps": steps, **epoch_stats(logits, n, b)}
        record["d_train"] = _mean_d(self.D, self.member_eval)
        record["d_test"] = _mean_d(self.D, self.test)
        with torch.no_grad():
            record["d_gen"] = _mean_d(self.D, self.G(self.eval_z.to(self.device)))
        self.history.append(record)
        self.epoch, self.step, self.partial = self.epoch + 1, 0, None
        return True

    def write_artifacts(self, final: bool) -> None:
        e, cfg = self.epoch, self.cfg
        if final or e % cfg.sample_every == 0 or e == 1:
            with torch.no_grad():
                fake = self.G(self.fixed_z.to(self.device))
            save_grid(fake, self.out / "samples" / f"epoch_{e:04d}.png")
        if final or e % cfg.save_every == 0:
            self.save()
            save_training_curves(self.history, self.out / "curves")
            with atomic_path(self.out / "history.csv") as tmp, open(tmp, "w", newline="") as fh:
                writer = csv.DictWriter(fh, fieldnames=list(self.history[0]))
                writer.writeheader()
                writer.writerows(self.history)


def _refuse_nonfinite(saved: dict, path: str | Path) -> None:
    bad = [
        f"{part}.{key}"
        for part in ("generator", "discriminator", "opt_g", "opt_d")
        if isinstance(saved[part], dict)
        for key, v in saved[part].items()
        if torch.is_tensor(v) and v.is_floating_point() and not bool(torch.isfinite(v).all())
    ]
    if bad:
        raise CheckpointError(
            f"{path} holds NaN or infinite values ({', '.join(bad[:4])}"
            f"{', ...' if len(bad) > 4 else ''}): its run had diverged, so it cannot be resumed. "
            "Resume from an earlier checkpoint of that run, or start a new run with a lower --lr."
        )


def _diverged(run: _Run, bad: list[str], resume: str | Path | None) -> TrainingDiverged:
    epoch = run.epoch if run.step == 0 else run.epoch + 1
    if run.last_saved is not None:
        where = (
            f"The last finite checkpoint is {run.last_saved}; {run.out / 'latest.pt'} holds the "
            "same weights."
        )
    elif resume is not None:
        where = f"The last finite checkpoint is {resume}, which this run resumed from."
    else:
        where = (
            "No checkpoint of this run was written before (one is written every "
            f"{run.cfg.save_every} epochs and at the end)."
        )
    return TrainingDiverged(
        f"Training diverged in epoch {epoch}: non-finite {', '.join(bad)} (lr {run.cfg.lr:g}). "
        f"{where} Nothing non-finite was saved; start a new run with a lower --lr."
    )


def _summary(h: dict) -> str:
    return (
        f"epoch {h['epoch']}: d_loss {h['d_loss']:.4f} g_loss {h['g_loss']:.4f} "
        f"D(x) {h['d_real']:.3f} D(G(z)) {h['d_fake']:.3f} acc real/fake "
        f"{h['d_acc_real']:.3f}/{h['d_acc_fake']:.3f} | D on train {h['d_train']:.3f} "
        f"test {h['d_test']:.3f} generated {h['d_gen']:.3f}"
    )


def train(
    cfg: TrainConfig,
    resume: str | Path | None = None,
    explicit: Iterable[str] | None = None,
    stop_after_steps: int | None = None,
) -> Path:
    """Train (or resume) the reference GAN; return the path of the last checkpoint written.

    Parameters
    ----------
    cfg
        The options; on ``resume`` its hyperparameters (:data:`MODEL_KEYS`) come from the
        checkpoint and ``cfg.epochs`` is the total target.
    resume
        A checkpoint written by this function (its config is kept).
    explicit
        Options the user set explicitly (the CLI passes them): with ``resume``, one that differs
        from the checkpoint is an InputError. Default: those that differ from the defaults.
    stop_after_steps
        Stop as Ctrl-C would after this many steps in this call (for tests).

    Raises
    ------
    TrainingInterrupted
        On Ctrl-C, after writing a resumable checkpoint (the message names it).
    TrainingDiverged
        When losses or weights turn NaN or infinite (checked once per epoch); nothing
        non-finite is saved, and the message names the last finite checkpoint.
    CheckpointError
        When ``resume`` is unreadable or holds NaN or infinite values.
    """
    saved = None
    if resume is not None:
        saved = load_checkpoint(resume)
        _refuse_nonfinite(saved, resume)
        if explicit is None:
            defaults = TrainConfig()
            explicit = [k for k in MODEL_KEYS if getattr(cfg, k) != getattr(defaults, k)]
        cfg = merge_resume_config(saved["config"], cfg, explicit)
    cfg.validate()
    run = _Run(cfg, saved)
    run.out.mkdir(parents=True, exist_ok=True)
    removed = sum(remove_stale_temps(run.out / sub, names) for sub, names in RUN_FILES.items())
    if removed:
        logger.info("removed %d temporary file(s) of interrupted saves from %s", removed, run.out)
    if saved is None:
        write_text(_config_json(run.config_record()), run.out / "config.json")
    last = Path(resume) if resume is not None else None
    run.max_steps = stop_after_steps
    with _sigint_to_flag() as stop:
        while run.epoch < cfg.epochs:
            finished = run.run_epoch(stop)
            bad = run.nonfinite()
            if bad:
                raise _diverged(run, bad, resume)
            if not finished:
                path = run.save(interrupted=True)
                raise TrainingInterrupted(
                    f"Training stopped at epoch {run.epoch + 1}, step {run.step}. A resumable "
                    f"checkpoint is at {path} (and {run.out / 'latest.pt'}); continue with "
                    f"`ganalyze train --resume {path}`."
                )
            logger.info(_summary(run.history[-1]))
            run.write_artifacts(final=run.epoch == cfg.epochs)
            if run.epoch == cfg.epochs or run.epoch % cfg.save_every == 0:
                last = run.out / "checkpoints" / f"epoch_{run.epoch:04d}.pt"
    return last if last is not None else run.out / "latest.pt"


def _config_json(record: dict) -> str:
    import json

    shown = {k: v for k, v in record.items() if k != "train_indices"}
    idx = record["train_indices"]
    shown["train_indices"] = f"first {len(idx)} MNIST training images (stored in checkpoints)"
    return json.dumps(shown, indent=2) + "\n"
