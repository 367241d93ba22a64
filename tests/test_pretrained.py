"""Shipped generators: pretrained:NAME[@EPOCH] specs, their sha256 checked before loading, the
listing, load_pretrained and compare's pretrained:NAME@* (on a shipped folder built here from a
small training run, with the same code that builds the real one)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

import ganalyze
import ganalyze.pretrained as pretrained
from ganalyze.cli import main
from ganalyze.comparison.specs import expand_specs
from ganalyze.errors import InputError, LoaderError
from ganalyze.pretrained.build import write

pytestmark = pytest.mark.mnist


@pytest.fixture(scope="module")
def run_folder(mnist_dir, tmp_path_factory) -> Path:
    """A 2-epoch run on 512 digits with a checkpoint after each epoch."""
    from reference_gan.train import TrainConfig, train

    out = tmp_path_factory.mktemp("pretrained_run")
    train(TrainConfig(epochs=2, limit=512, data_dir=str(mnist_dir), out=str(out), quiet=True,
                      device="cpu", save_every=1, sample_every=1))  # fmt: skip
    return out


@pytest.fixture()
def shipped(run_folder, tmp_path, monkeypatch) -> Path:
    """The package's shipped folder replaced by one built from ``run_folder``."""
    folder = tmp_path / "shipped"
    write(run_folder, [1, 2], folder / "tiny-gan", name="tiny-gan", trained="a test run",
          log=lambda *_: None)  # fmt: skip
    monkeypatch.setattr(pretrained, "HERE", folder)
    return folder / "tiny-gan"


def test_build_keeps_what_an_audit_needs_and_records_each_sha256(shipped, run_folder) -> None:
    manifest = json.loads((shipped / "manifest.json").read_text())
    assert manifest["default_epoch"] == 2 and set(manifest["files"]) == {"1", "2"}
    assert "--limit 512" in manifest["command"]
    for record in manifest["files"].values():
        data = (shipped / record["file"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == record["sha256"]
        assert len(data) == record["bytes"]
        ck = torch.load(shipped / record["file"], weights_only=True)
        assert not {"opt_g", "opt_d", "rng"} & set(ck)
        assert {"generator", "discriminator", "config", "history", "fixed_z"} <= set(ck)
        # a member set that is not all of MNIST train is kept, exactly, in half the bytes
        full = torch.load(run_folder / "checkpoints" / record["file"], weights_only=True)
        assert ck["config"]["train_indices"].dtype == torch.int32
        assert torch.equal(ck["config"]["train_indices"].long(), full["config"]["train_indices"])
        for key, value in full["generator"].items():
            assert torch.equal(ck["generator"][key], value)
        assert len(data) < 0.5 * (run_folder / "checkpoints" / record["file"]).stat().st_size


def test_specs_name_the_final_or_one_epoch(shipped) -> None:
    assert pretrained.resolve("pretrained:tiny-gan") == shipped / "epoch_0002.pt"
    assert pretrained.resolve("pretrained:tiny-gan@1") == shipped / "epoch_0001.pt"
    g = ganalyze.load_generator("pretrained:tiny-gan@1")
    assert g.info["epoch"] == 1 and g.latent_dim == 64
    g2 = ganalyze.load_pretrained("tiny-gan")
    assert g2.info["epoch"] == 2
    z, images = g2.sample(8, seed=0)
    assert images.shape == (8, 1, 28, 28)


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ("pretrained:tiny-gan@7", ["@7 is not shipped", "1, 2"]),
        ("pretrained:other", ["not shipped", "tiny-gan", "ganalyze pretrained"]),
        ("pretrained:tiny-gan@x", ["not a pretrained spec", "pretrained:NAME@EPOCH"]),
        ("pretrained:tiny-gan@*", ["names 2 checkpoints", "ganalyze compare"]),
    ],
)
def test_a_bad_spec_is_one_clear_error(shipped, spec, words) -> None:
    with pytest.raises(LoaderError) as err:
        ganalyze.load_generator(spec)
    for word in words:
        assert word in str(err.value)


def test_a_damaged_file_is_refused_before_it_is_read(shipped, tmp_path) -> None:
    path = shipped / "epoch_0002.pt"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(LoaderError, match="is damaged .* Reinstall ganalyze"):
        ganalyze.load_pretrained("tiny-gan")
    result = CliRunner().invoke(main, ["report", "pretrained:tiny-gan", "-o",
                                       str(tmp_path / "r"), "--quiet"])  # fmt: skip
    assert result.exit_code != 0
    assert result.output.count("Error:") == 1 and "Traceback" not in result.output
    assert not (tmp_path / "r").exists()
    (shipped / "epoch_0001.pt").unlink()
    with pytest.raises(LoaderError, match="is missing from the installation"):
        ganalyze.load_pretrained("tiny-gan", epoch=1)


def test_the_listing_says_what_is_shipped(shipped) -> None:
    result = CliRunner().invoke(main, ["pretrained"])
    assert result.exit_code == 0, result.output
    assert "tiny-gan: epochs 1, 2 (default 2)" in result.output
    assert "ganalyze train --seed 0" in result.output and "a test run" in result.output
    size = sum(p.stat().st_size for p in shipped.glob("*.pt")) / 1e6
    assert f"{size:.1f} MB" in result.output


def test_compare_expands_every_shipped_epoch_as_a_step(shipped) -> None:
    entries = expand_specs(["pretrained:tiny-gan@*"])
    assert [(e.label, e.step) for e in entries] == [("tiny-gan@1", 1), ("tiny-gan@2", 2)]
    assert [Path(e.spec) for e in entries] == [shipped / "epoch_0001.pt",
                                              shipped / "epoch_0002.pt"]  # fmt: skip
    assert [e.step for e in expand_specs(["pretrained:tiny-gan"])] == [2]
    with pytest.raises(InputError, match="not shipped"):
        expand_specs(["pretrained:nothing@all"])


def test_an_audit_of_a_shipped_checkpoint_reads_its_record(shipped, tmp_path) -> None:
    report = ganalyze.audit("pretrained:tiny-gan", n_samples=200, analyses="training",
                            seed=0)  # fmt: skip
    metrics = report.metrics.set_index("metric")["value"]
    assert metrics["epochs_trained"] == 2
    assert report.meta["spec"] == "pretrained:tiny-gan"


def test_the_shipped_reference_gan_is_the_studys_run_and_intact() -> None:
    """The files in the package: every sha256 as recorded, at most 12 MB, the study's
    hyperparameters, all 300 epochs with their history, and D's end state as the run ended."""
    item = pretrained.get("reference-gan")
    assert item.epochs == [10, 50, 100, 200, 300] and item.default_epoch == 300
    assert item.total_bytes <= 12_000_000
    for epoch in item.epochs:
        ck = torch.load(item.path(epoch), weights_only=True)  # path() checks the sha256
        cfg = ck["config"]
        assert ck["epoch"] == epoch and len(ck["history"]) == epoch
        assert (
            cfg["seed"],
            cfg["epochs"],
            cfg["batch_size"],
            cfg["lr"],
            cfg["hidden"],
            cfg["latent_dim"],
            cfg["n_train"],
        ) == (0, 300, 32, 2e-4, 256, 64, 60_000)
        assert "train_indices" not in cfg and cfg["limit"] is None  # all of MNIST train
        assert not {"opt_g", "opt_d", "rng"} & set(ck)
    last = ck["history"][-1]
    # the study's end state: D(x) about 0.7, D(G(z)) about 0.3; held-out digits below members
    assert 0.65 < last["d_real"] < 0.8 and 0.2 < last["d_fake"] < 0.35
    assert last["d_test"] < last["d_train"] - 0.1
