"""Training that diverges stops with a clear error; what a run writes stays finite and tidy."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from ganalyze import data as data_mod
from ganalyze.cli import main
from ganalyze.errors import CheckpointError, InputError
from reference_gan.checkpoint import load_checkpoint
from reference_gan.engine import GANStep
from reference_gan.train import TrainConfig, TrainingDiverged, train


def _cfg(mnist_dir: Path, out: Path, **kw) -> TrainConfig:
    base = dict(
        limit=512,
        epochs=1,
        data_dir=str(mnist_dir),
        out=str(out),
        device="cpu",
        quiet=True,
        save_every=1,
        sample_every=1,
    )
    return TrainConfig(**{**base, **kw})


def _cli(*args: str):
    return CliRunner().invoke(main, ["train", "--quiet", *args], catch_exceptions=False)


def _error_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("Error:")]


def _all_finite(path: Path) -> bool:
    ckpt = load_checkpoint(path)
    tensors = [*ckpt["generator"].values(), *ckpt["discriminator"].values()]
    tensors += [ckpt[opt][k] for opt in ("opt_g", "opt_d") for k in ("exp_avg", "exp_avg_sq")]
    return all(bool(torch.isfinite(t).all()) for t in tensors)


def test_lr_1e30_exits_nonzero_and_leaves_latest_finite(mnist_dir, tmp_path) -> None:
    out = tmp_path / "run"
    train(_cfg(mnist_dir, out))
    before = (out / "latest.pt").read_bytes()
    result = _cli(
        "--lr", "1e30", "--epochs", "2", "--limit", "512", "--device", "cpu",
        "--data-dir", str(mnist_dir), "--out", str(out),
    )  # fmt: skip
    assert result.exit_code == 1, result.output
    errors = _error_lines(result.output)
    assert len(errors) == 1 and "Traceback" not in result.output
    assert "Training diverged in epoch 1" in errors[0] and "lower --lr" in errors[0]
    assert "No checkpoint of this run was written" in errors[0]
    assert (out / "latest.pt").read_bytes() == before and _all_finite(out / "latest.pt")
    assert not (out / "checkpoints" / "epoch_0002.pt").exists()


def test_lr_inf_is_refused_before_training(mnist_dir, tmp_path) -> None:
    with pytest.raises(InputError, match="lr must be a positive finite number; got inf"):
        _cfg(mnist_dir, tmp_path, lr=math.inf).validate()
    result = _cli("--lr", "inf", "--out", str(tmp_path / "new" / "run"))
    assert result.exit_code != 0 and "lr" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "new").exists()


def test_divergence_mid_run_keeps_the_last_finite_checkpoint(mnist_dir, tmp_path, monkeypatch):
    real_step, calls = GANStep.step, []

    def step_then_blow_up(self, *args):
        real_step(self, *args)
        calls.append(1)
        if len(calls) == 20:  # 16 steps per epoch: in epoch 2
            self.d_flat.data[0] = math.inf

    monkeypatch.setattr(GANStep, "step", step_then_blow_up)
    out = tmp_path / "run"
    with pytest.raises(TrainingDiverged) as info:
        train(_cfg(mnist_dir, out, epochs=3))
    message = str(info.value)
    assert "diverged in epoch 2" in message and "D's weights" in message
    first = out / "checkpoints" / "epoch_0001.pt"
    assert f"The last finite checkpoint is {first}" in message
    assert (out / "latest.pt").read_bytes() == first.read_bytes() and _all_finite(first)
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["epoch_0001.pt"]
    assert sorted(p.name for p in (out / "samples").iterdir()) == ["epoch_0001.png"]


@pytest.mark.parametrize(
    ("part", "key", "index"),
    [("generator", "2.weight", (0, 0)), ("opt_d", "exp_avg_sq", 3)],
)
def test_resuming_from_nan_weights_is_refused(mnist_dir, tmp_path, part, key, index) -> None:
    path = train(_cfg(mnist_dir, tmp_path / "run"))
    ckpt = torch.load(path, weights_only=True)
    ckpt[part][key][index] = math.nan if part == "generator" else math.inf
    bad = tmp_path / "run" / "checkpoints" / "epoch_0001_nan.pt"
    torch.save(ckpt, bad)
    with pytest.raises(CheckpointError, match=r"(?i)NaN or inf"):
        train(_cfg(mnist_dir, tmp_path / "run", epochs=2), resume=bad)
    result = _cli("--resume", str(bad), "--epochs", "2")
    assert result.exit_code == 1, result.output
    errors = _error_lines(result.output)
    assert len(errors) == 1 and str(bad) in errors[0] and "Traceback" not in result.output
    assert not (tmp_path / "run" / "checkpoints" / "epoch_0002.pt").exists()


def test_leftover_temp_files_are_removed_at_the_next_start(
    mnist_dir, tmp_path, monkeypatch, caplog
) -> None:
    # the CLI's handler setup (in another test) stops propagation to caplog's root handler
    monkeypatch.setattr(logging.getLogger("reference_gan"), "propagate", True)
    out = tmp_path / "run"
    ours = [
        ".latest.pt.k3j_x9a2.tmp",
        ".history.csv.abcdefgh.tmp",
        "checkpoints/.epoch_0001.pt.0a1b2c3d.tmp",
        "checkpoints/.epoch_0003_step_00007.pt.zzzzzzzz.tmp",
        "samples/.epoch_0001.png.q1w2e3r4.tmp",
    ]
    theirs = [".notes.txt.abcd1234.tmp", "scratch.tmp", "checkpoints/.latest.pt.abcd1234.tmp"]
    for name in ours + theirs:
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_bytes(b"half a checkpoint")
    with caplog.at_level(logging.INFO, logger="reference_gan.train"):
        path = train(_cfg(mnist_dir, out))
    for name in ours:
        assert not (out / name).exists(), name
    for name in theirs:
        assert (out / name).exists(), name
    assert "removed 5 temporary file(s) of interrupted saves" in caplog.text
    # and on --resume
    (out / ".latest.pt.aaaabbbb.tmp").write_bytes(b"x")
    train(_cfg(mnist_dir, out, epochs=2), resume=path)
    assert not (out / ".latest.pt.aaaabbbb.tmp").exists()


def test_a_train_that_fails_at_once_leaves_no_folder(tmp_path, monkeypatch) -> None:
    def offline(root):
        raise OSError("Temporary failure in name resolution")

    monkeypatch.setattr(data_mod, "_download", offline)
    out = tmp_path / "new" / "run"
    result = _cli("--epochs", "1", "--data-dir", str(tmp_path / "nodata"), "--out", str(out))
    assert result.exit_code == 2 and "MNIST not found" in result.output
    assert not (tmp_path / "new").exists()
