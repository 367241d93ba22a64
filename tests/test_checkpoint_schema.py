"""A checkpoint is validated before it is believed: every field that steers the audit or a
resumed run is checked, and each violation is named in one clean error."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from click.testing import CliRunner

from ganalyze.cli import main
from ganalyze.errors import CheckpointError
from ganalyze.generators import load_generator
from reference_gan.checkpoint import FORMAT, load_checkpoint
from reference_gan.model import make_discriminator, make_generator
from reference_gan.schema import violations


def _valid() -> dict:
    """A complete, valid checkpoint of the reference GAN (untrained weights)."""
    torch.manual_seed(0)
    g, d = make_generator(), make_discriminator()
    opt = torch.optim.Adam(g.parameters())
    return {
        "format": FORMAT,
        "generator": g.state_dict(),
        "discriminator": d.state_dict(),
        "opt_g": opt.state_dict(),
        "opt_d": torch.optim.Adam(d.parameters()).state_dict(),
        "config": {
            "epochs": 2,
            "batch_size": 32,
            "lr": 2e-4,
            "betas": [0.9, 0.999],
            "latent_dim": 64,
            "hidden": 256,
            "seed": 0,
            "limit": 512,
            "prior": "normal",
            "image_range": [-1.0, 1.0],
            "g_output_shape": [784],
            "d_input_range": [-1.0, 1.0],
            "d_input_shape": [784],
            "d_output": "probability",
            "train_indices": torch.arange(512),
        },
        "epoch": 1,
        "step": 0,
        "partial_logits": None,
        "history": [],
        "rng": {"torch_cpu": torch.get_rng_state()},
        "fixed_z": torch.randn(64, 64),
        "versions": {},
    }


def _set(ck: dict, field: str, value) -> dict:
    ck = copy.deepcopy(ck)
    *parents, last = field.split(".")
    target = ck
    for p in parents:
        target = target[p]
    if value is _DELETE:
        del target[last]
    else:
        target[last] = value
    return ck


_DELETE = object()
_NAN_G = "nan-generator"

# (field, bad value, what the message must say)
BAD = [
    ("config", "a string", r"config: expected a dict of settings; found str"),
    ("config", _DELETE, r"config: missing"),
    ("generator", 3, r"generator: expected a state_dict of the reference MLP"),
    ("discriminator", {"0.weight": 1}, r"discriminator: expected a state_dict"),
    ("epoch", [1], r"epoch: expected an integer >= 0; found list"),
    ("epoch", -1, r"epoch: expected an integer >= 0"),
    ("config.d_output", "maybe", r"config.d_output: expected one of 'probability', 'logits'"),
    ("config.prior", "cauchy", r"config.prior: expected one of 'normal', 'uniform'"),
    ("config.image_range", [5, 7], r"config.image_range: expected a range \[-1, 1\]"),
    ("config.d_input_range", "0,1", r"config.d_input_range: expected a range"),
    ("config.d_input_shape", [3, 32, 32], r"config.d_input_shape: expected a list of positive"),
    ("config.latent_dim", 0, r"config.latent_dim: expected an integer >= 1"),
    ("config.latent_dim", -3, r"config.latent_dim: expected an integer >= 1"),
    ("config.latent_dim", 32, r"config.latent_dim: expected the generator's input size 64"),
    ("config.latent_dim", True, r"config.latent_dim: expected an integer"),
    ("config.train_indices", torch.tensor([0, 60000]), r"indices in \[0, 60000\)"),
    ("config.train_indices", torch.tensor([-1, 5]), r"indices in \[0, 60000\)"),
    ("config.train_indices", torch.tensor([3, 3]), r"distinct indices"),
    ("config.train_indices", torch.zeros(4), r"a 1-D integer tensor"),
    ("fixed_z", "z", r"fixed_z: expected a 2-D float tensor"),
    ("history", {"a": 1}, r"history: expected a list"),
    ("generator", _NAN_G, r"generator: expected finite weights \(1 are NaN or Inf\)"),
]


def _bad(field: str, value) -> dict:
    ck = _valid()
    if value is _NAN_G:
        ck["generator"]["2.bias"][5] = math.nan
        return ck
    return _set(ck, field, value)


def test_a_valid_checkpoint_has_no_violations() -> None:
    assert violations(_valid()) == [] and violations(_valid(), resume=True) == []


@pytest.mark.parametrize(
    ("field", "value", "message"), BAD, ids=[f"{b[0]}={b[1]!s:.12}" for b in BAD]
)
def test_each_violation_is_named_on_report(tmp_path, field, value, message) -> None:
    path = tmp_path / "ck.pt"
    torch.save(_bad(field, value), path)
    with pytest.raises(CheckpointError, match=message):
        load_generator(path)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("opt_g", _DELETE, "opt_g: missing"),
        ("config.lr", math.inf, "config.lr: expected a finite number > 0"),
        ("config.betas", [0.9], "config.betas: expected two numbers"),
        ("config.train_indices", _DELETE, "config.train_indices: missing"),
        ("step", "0", "step: expected an integer"),
        ("fixed_z", None, "fixed_z: expected a 2-D float tensor"),
        ("config.d_output", "maybe", "config.d_output"),
    ],
)
def test_resume_checks_what_resuming_needs(tmp_path, field, value, message) -> None:
    path = tmp_path / "ck.pt"
    torch.save(_bad(field, value), path)
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(path)
    result = CliRunner().invoke(main, ["train", "--resume", str(path), "--quiet"])
    assert result.exit_code != 0 and "Traceback" not in result.output
    errors = [ln for ln in result.output.splitlines() if ln.startswith("Error:")]
    assert len(errors) == 1 and field in errors[0]


def test_every_violation_is_listed_in_one_line(tmp_path) -> None:
    ck = _set(_set(_valid(), "config.d_output", "maybe"), "config.prior", "cauchy")
    path = tmp_path / "ck.pt"
    torch.save(ck, path)
    result = CliRunner().invoke(main, ["report", str(path), "-o", str(tmp_path / "r")])
    errors = [ln for ln in result.output.splitlines() if ln.startswith("Error:")]
    assert result.exit_code == 1 and len(errors) == 1, result.output
    assert "(2 problems)" in errors[0] and "d_output" in errors[0] and "prior" in errors[0]


def test_a_valid_checkpoint_steers_the_loader(tmp_path) -> None:
    ck = _set(_valid(), "config.d_output", "logits")
    ck = _set(ck, "config.prior", "uniform")
    path = tmp_path / "ck.pt"
    torch.save(ck, path)
    gen = load_generator(path)
    assert gen.prior == "uniform" and gen.discriminator.output == "logits"
    z, images = gen.sample(8, seed=0)
    assert float(z.abs().max()) <= 1.0 and images.shape == (8, 1, 28, 28)


def test_an_unknown_format_is_named(tmp_path) -> None:
    path = tmp_path / "ck.pt"
    torch.save(_set(_valid(), "format", "ganalyze.reference_gan/9"), path)
    with pytest.raises(CheckpointError, match="format 'ganalyze.reference_gan/9'"):
        load_generator(path)
