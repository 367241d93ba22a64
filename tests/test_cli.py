"""``ganalyze train`` end to end, its usage errors and its message for missing data."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from ganalyze import data as data_mod
from ganalyze.cli import main
from ganalyze.data import MNIST_FILES


def _invoke(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_train_smoke_run_writes_checkpoint_samples_and_curves(mnist_dir, tmp_path) -> None:
    out = tmp_path / "runs" / "smoke"
    result = _invoke(
        "train",
        "--epochs",
        "1",
        "--limit",
        "2048",
        "--out",
        str(out),
        "--data-dir",
        str(mnist_dir),
        "--device",
        "cpu",
    )
    assert result.exit_code == 0, result.output
    assert "epoch 1: d_loss" in result.output  # the per-epoch summary line
    ckpt = torch.load(out / "checkpoints" / "epoch_0001.pt", weights_only=True)
    assert ckpt["config"]["limit"] == 2048 and ckpt["config"]["epochs"] == 1
    assert (out / "latest.pt").is_file()
    assert (out / "samples" / "epoch_0001.png").is_file()
    assert (out / "curves.png").is_file() and (out / "curves.pdf").is_file()

    # --resume continues in the checkpoint's run folder; a conflicting option is a usage error
    result = _invoke("train", "--resume", str(out / "latest.pt"), "--batch-size", "64")
    assert result.exit_code == 2
    assert "--batch-size 64 (checkpoint: 32)" in result.output
    result = _invoke(
        "train",
        "--resume",
        str(out / "latest.pt"),
        "--epochs",
        "2",
        "--quiet",
        "--data-dir",
        str(mnist_dir),
        "--sample-every",
        "1",
    )
    assert result.exit_code == 0, result.output
    assert torch.load(out / "latest.pt", weights_only=True)["epoch"] == 2
    assert (out / "samples" / "epoch_0002.png").is_file()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--batch-size", "0"], "--batch-size"),
        (["--epochs", "-3"], "--epochs"),
        (["--device", "tpu"], "'tpu' is not one of"),
        (["--betas", "0.9"], "expected two numbers"),
        (["--lr", "0"], "--lr"),
        (["--limit", "0"], "--limit"),
        (["--resume", "does/not/exist.pt"], "does not exist"),
    ],
)
def test_bad_options_are_usage_errors(args, message, tmp_path) -> None:
    result = _invoke("train", "--out", str(tmp_path / "run"), *args)
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output


def test_unwritable_output_folder_is_a_usage_error(tmp_path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    result = _invoke("train", "--out", str(blocker / "run"))
    assert result.exit_code == 2
    assert "is not a folder" in result.output
    if os.geteuid() != 0:  # root writes anywhere
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        result = _invoke("train", "--out", str(locked / "run"))
        assert result.exit_code == 2 and "writable" in result.output


def test_missing_mnist_offline_names_folder_and_files(tmp_path, monkeypatch) -> None:
    def offline(root):
        raise OSError("Temporary failure in name resolution")

    monkeypatch.setattr(data_mod, "_download", offline)
    empty = tmp_path / "nodata"
    result = _invoke(
        "train", "--epochs", "1", "--data-dir", str(empty), "--out", str(tmp_path / "run")
    )
    assert result.exit_code == 2
    error_lines = [ln for ln in result.output.splitlines() if ln.startswith("Error:")]
    assert len(error_lines) == 1 and error_lines[0].startswith("Error: MNIST not found in ")
    assert str(empty.resolve()) in result.output
    for name in MNIST_FILES:
        assert name in result.output
    assert "GANALYZE_DATA" in result.output and "Traceback" not in result.output
    assert not empty.exists() or not any(empty.rglob("*-ubyte"))


def test_ctrl_c_writes_a_resumable_checkpoint(mnist_dir, tmp_path) -> None:
    out = tmp_path / "run"
    env = {**os.environ, "GANALYZE_DATA": str(mnist_dir), "PYTHONUNBUFFERED": "1"}
    cmd = [
        sys.executable,
        "-m",
        "ganalyze.cli",
        "train",
        "--limit",
        "2048",
        "--epochs",
        "200",
        "--out",
        str(out),
        "--device",
        "cpu",
        "--save-every",
        "100",
    ]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    line = ""
    while time.monotonic() < deadline and "epoch 1:" not in line:
        line = proc.stderr.readline()
        assert line or proc.poll() is None, "trainer exited early"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Training stopped at epoch" in err and "--resume" in err
    assert "Traceback" not in err
    ckpt = torch.load(out / "latest.pt", weights_only=True)
    assert ckpt["epoch"] >= 1 and ckpt["epoch"] < 200
    assert Path(out / "checkpoints").is_dir()
