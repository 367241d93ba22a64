"""Training runs on real MNIST: checkpoints, exact resume, records."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from ganalyze.errors import CheckpointError, InputError, TrainingInterrupted
from reference_gan import checkpoint as ckpt_mod
from reference_gan.checkpoint import FORMAT, REQUIRED_KEYS, load_checkpoint
from reference_gan.train import TrainConfig, train


def _cfg(mnist_dir: Path, out: Path, **kw) -> TrainConfig:
    base = dict(
        limit=2048,
        epochs=1,
        data_dir=str(mnist_dir),
        out=str(out),
        device="cpu",
        quiet=True,
        save_every=1,
        sample_every=1,
    )
    return TrainConfig(**{**base, **kw})


def _assert_same_run(a: dict, b: dict) -> None:
    for net in ("generator", "discriminator"):
        for key in a[net]:
            assert torch.equal(a[net][key], b[net][key]), f"{net}.{key} differs"
    for opt in ("opt_g", "opt_d"):
        for key in ("step", "exp_avg", "exp_avg_sq"):
            assert torch.equal(a[opt][key], b[opt][key]), f"{opt}.{key} differs"
    assert a["history"] == b["history"]
    assert a["epoch"] == b["epoch"]


def test_checkpoint_has_every_key_and_loads_with_weights_only(mnist_dir, tmp_path) -> None:
    path = train(_cfg(mnist_dir, tmp_path))
    obj = torch.load(path, weights_only=True)
    assert obj["format"] == FORMAT
    assert set(REQUIRED_KEYS) <= set(obj)
    cfg = obj["config"]
    assert cfg["image_range"] == [-1.0, 1.0] and cfg["d_input_range"] == [-1.0, 1.0]
    assert cfg["d_output"] == "probability"
    assert torch.equal(cfg["train_indices"], torch.arange(2048))
    assert (cfg["batch_size"], cfg["lr"], cfg["betas"]) == (32, 2e-4, [0.9, 0.999])
    assert obj["epoch"] == 1 and obj["step"] == 0
    assert obj["fixed_z"].shape == (64, 64)
    assert all(torch.is_tensor(v) for v in obj["rng"].values())
    (record,) = obj["history"]
    assert record["steps"] == 64
    for key in (
        "d_loss",
        "g_loss",
        "d_real",
        "d_fake",
        "d_acc_real",
        "d_acc_fake",
        "d_train",
        "d_test",
        "d_gen",
    ):
        assert isinstance(record[key], float), key
    assert 0 < record["d_test"] < 1 and 0 < record["d_gen"] < 1
    latest = torch.load(tmp_path / "latest.pt", weights_only=True)
    _assert_same_run(obj, latest)
    for name in (
        "samples/epoch_0001.png",
        "curves.png",
        "curves.pdf",
        "history.csv",
        "config.json",
    ):
        assert (tmp_path / name).stat().st_size > 0, name
    assert b"/Type3" not in (tmp_path / "curves.pdf").read_bytes()  # TrueType, for papers


def test_one_epoch_moves_the_generator_towards_digits(mnist_dir, tmp_path) -> None:
    """After an epoch on 2048 digits, D still tells them apart but G's outputs are no longer
    the untrained near-zero images: ink (positive pixels) appears."""
    path = train(_cfg(mnist_dir, tmp_path, epochs=2))
    obj = load_checkpoint(path)
    h = obj["history"]
    assert h[1]["d_loss"] < h[0]["d_loss"]
    assert h[-1]["d_train"] > h[-1]["d_gen"]


def test_resume_between_epochs_is_bit_identical(mnist_dir, tmp_path) -> None:
    straight = load_checkpoint(train(_cfg(mnist_dir, tmp_path / "a", epochs=2)))
    first = train(_cfg(mnist_dir, tmp_path / "b", epochs=1))
    resumed = load_checkpoint(train(_cfg(mnist_dir, tmp_path / "b", epochs=2), resume=first))
    _assert_same_run(straight, resumed)


def test_interrupted_mid_epoch_resume_is_bit_identical(mnist_dir, tmp_path) -> None:
    # 2000 images: 62 full batches and one of 16; stop inside the second epoch.
    cfg = _cfg(mnist_dir, tmp_path / "b", epochs=2, limit=2000)
    with pytest.raises(TrainingInterrupted, match="--resume"):
        train(cfg, stop_after_steps=63 + 20)
    partial = load_checkpoint(tmp_path / "b" / "latest.pt")
    assert (partial["epoch"], partial["step"]) == (1, 20)
    assert partial["partial_logits"].shape == (3 * 20 * 32, 1)
    resumed = load_checkpoint(train(cfg, resume=tmp_path / "b" / "latest.pt"))
    straight = load_checkpoint(train(dataclasses.replace(cfg, out=str(tmp_path / "a"))))
    _assert_same_run(straight, resumed)


def test_resume_keeps_checkpoint_config_and_refuses_conflicts(mnist_dir, tmp_path) -> None:
    first = train(_cfg(mnist_dir, tmp_path, epochs=1))
    with pytest.raises(InputError, match=r"--lr 0\.001 \(checkpoint: 0\.0002\)"):
        train(_cfg(mnist_dir, tmp_path, epochs=2, lr=1e-3), resume=first)
    # the same value given explicitly is no conflict
    path = train(_cfg(mnist_dir, tmp_path, epochs=2, lr=2e-4), resume=first, explicit=["lr"])
    assert load_checkpoint(path)["epoch"] == 2


def test_resume_of_a_foreign_or_truncated_file_is_a_clear_error(tmp_path) -> None:
    bad = tmp_path / "bad.pt"
    torch.save({"0.weight": torch.zeros(1)}, bad)
    with pytest.raises(CheckpointError, match="not a ganalyze reference-GAN checkpoint"):
        load_checkpoint(bad)
    bad.write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(CheckpointError, match="Could not read"):
        load_checkpoint(bad)


def test_a_failed_save_leaves_the_previous_checkpoint_intact(mnist_dir, tmp_path, monkeypatch):
    train(_cfg(mnist_dir, tmp_path, epochs=1))
    good = (tmp_path / "latest.pt").read_bytes()

    def full_disk(obj, f, *a, **kw):
        Path(f).write_bytes(b"partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ckpt_mod, "save_torch", lambda obj, path: _atomic_fail(path, full_disk))
    with pytest.raises(OSError, match="No space"):
        train(_cfg(mnist_dir, tmp_path, epochs=2), resume=tmp_path / "latest.pt")
    assert (tmp_path / "latest.pt").read_bytes() == good
    assert not list(tmp_path.rglob("*.tmp"))


def _atomic_fail(path, writer):
    from ganalyze._io import atomic_path

    with atomic_path(path) as tmp:
        writer(None, tmp)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("batch_size", 0, "batch_size must be a positive integer"),
        ("epochs", -1, "epochs must be a positive integer"),
        ("device", "tpu", "device must be auto, cpu or cuda"),
        ("limit", 70000, "limit must be between 1 and 60000"),
    ],
)
def test_bad_config_values_are_input_errors(field, value, message) -> None:
    with pytest.raises(InputError, match=message):
        dataclasses.replace(TrainConfig(), **{field: value}).validate()
