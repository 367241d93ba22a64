"""Entry points that name a method (``file.py:Class.method``), --init-kwargs, import safety and
safetensors files (issue 15, sections 4 and 6).

The VAE here is planted truth: its ``decode`` returns the training digit its latent points at,
from a bank of MNIST-train digits that only its weights file holds. An audit that did not load
the weights into the instance whose method it samples would see blank images; one that did must
flag a copier.
"""

from __future__ import annotations

import json
import re
import struct
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import save_file

from ganalyze import LoadOptions, audit, load_generator
from ganalyze.cli import main
from ganalyze.errors import InputError, LoaderError
from reference_gan.model import make_discriminator, make_generator

BANK = 3000  # training digits in the VAE's weights (its default holds 1000: --init-kwargs)

_VAE = """
import torch
from torch import nn


class VAE(nn.Module):
    '''A VAE whose decoder copies the training digit z points at (from the bank in its
    weights); forward takes images and returns (recon, mu, logvar), as VAEs do.'''

    def __init__(self, latent_dim=20, hidden=32, bank_size=1000):
        super().__init__()
        self.enc = nn.Linear(784, hidden)
        self.mu = nn.Linear(hidden, latent_dim)
        self.logvar = nn.Linear(hidden, latent_dim)
        self.fc_dec = nn.Linear(latent_dim, 4)
        self.register_buffer("bank", torch.zeros(bank_size, 784))

    def encode(self, x):
        h = torch.relu(self.enc(x.reshape(len(x), -1)))
        return self.mu(h), self.logvar(h)

    def decode(self, z):
        used = self.fc_dec(z)  # fails on a latent of the wrong size, as a real decoder does
        idx = (z[:, :4].abs() * 1e6).long().sum(1) % len(self.bank)
        return self.bank[idx] + 0 * used.sum(1, keepdim=True)

    def forward(self, x):
        mu, logvar = self.encode(x)
        return self.decode(mu), mu, logvar


class DecoderVAE(VAE):
    '''The same, with its decoder as a submodule named decoder (its latent size is found).'''

    def __init__(self, latent_dim=20, bank_size=1000):
        super().__init__(latent_dim, 32, bank_size)
        self.decoder = nn.Sequential(nn.Linear(latent_dim, 4))

    def decode(self, z):
        return super().decode(z) + 0 * self.decoder(z).sum(1, keepdim=True)
"""

_KWARGS = json.dumps({"bank_size": BANK})


def _write(tmp_path, name: str, body: str) -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(body))
    return str(path)


@pytest.fixture(scope="module")
def vae(reference, tmp_path_factory):
    """(vae.py, vae.pth, vae.safetensors): the VAE with a bank of MNIST-train digits."""
    root = tmp_path_factory.mktemp("vae")
    spec = _write(root, "vae.py", _VAE)
    bank = reference.train.images[:BANK].reshape(BANK, 784).float() / 255
    torch.manual_seed(0)
    ns: dict = {}
    exec(compile(_VAE, spec, "exec"), ns)  # the same class, to build its state_dict
    model = ns["VAE"](bank_size=BANK)
    model.bank.copy_(bank)
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    torch.save(state, root / "vae.pth")
    save_file(state, str(root / "vae.safetensors"))
    return spec, root / "vae.pth", root / "vae.safetensors"


def _errors(result) -> list[str]:
    return [line for line in result.output.splitlines() if line.startswith("Error:")]


def _clean_error(result, match: str) -> str:
    assert result.exit_code != 0, result.output
    assert "Traceback" not in result.output
    errors = _errors(result)
    assert len(errors) == 1, result.output
    assert re.search(match, errors[0]), errors[0]
    return errors[0]


def _copier_flagged(report) -> bool:
    flags = [f for name, f in report.flags if name == "memorization"]
    return any("copy_rate_adjusted" in f.metrics for f in flags)


def test_vae_decode_is_audited_through_the_api(vae, reference) -> None:
    spec, pth, _ = vae
    load = LoadOptions(weights=pth, latent_dim=20, init_kwargs=_KWARGS)
    rep = audit(f"{spec}:VAE.decode", n_samples=1000, analyses="memorization", load=load,
                reference=reference)  # fmt: skip
    pixel = {m.name: m.value for m in rep.result("memorization").metrics
             if m.feature_space == "pixel"}  # fmt: skip
    print(f"VAE.decode copier: copy_rate {pixel['copy_rate']:.4f}")
    assert pixel["copy_rate"] > 0.99  # the weights reached the instance whose decode ran
    assert _copier_flagged(rep)
    files = rep.meta["files"]
    assert files["entry_point"]["path"] == spec
    assert rep.meta["sha256"] == files["entry_point"]["sha256"] is not None
    assert files["weights"]["path"] == str(pth) and len(files["weights"]["sha256"]) == 64
    assert rep.meta["init_kwargs"] == {"bank_size": BANK}


def test_vae_decode_from_the_command_line_with_safetensors(vae, reference, tmp_path) -> None:
    spec, _, st = vae
    out = tmp_path / "report"
    args = ["report", f"{spec}:VAE.decode", "--weights", str(st), "--latent-dim", "20",
            "--init-kwargs", _KWARGS, "--analyses", "memorization", "--n-samples", "1000",
            "-o", str(out), "--quiet"]  # fmt: skip
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "[memorization]" in result.output
    meta = json.loads((out / "meta.json").read_text())
    assert meta["files"]["weights"]["path"] == str(st)
    assert meta["sha256"] is not None


def test_a_decoder_submodule_gives_the_latent_size(vae) -> None:
    spec, _, _ = vae
    gen = load_generator(f"{spec}:DecoderVAE.decode")
    assert gen.latent_dim == 20
    assert gen.latent_source == "first layer Linear with 20 inputs of DecoderVAE.decoder"


def test_a_guess_from_the_encoder_says_where_it_came_from(vae) -> None:
    spec, _, _ = vae
    with pytest.raises(LoaderError) as info:
        load_generator(f"{spec}:VAE.decode")
    text = str(info.value)
    found = "found from: first layer Linear with 784 inputs of VAE"
    assert f"If its latent size is not 784 ({found})" in text
    assert "--latent-dim" in text


def test_forward_returning_a_tuple_suggests_the_method(vae, tmp_path) -> None:
    spec, pth, _ = vae
    args = ["report", f"{spec}:VAE", "--weights", str(pth), "--init-kwargs", _KWARGS,
            "--analyses", "modes", "--n-samples", "50", "-o", str(tmp_path / "r")]  # fmt: skip
    result = CliRunner().invoke(main, args)
    line = _clean_error(result, r"returned a tuple of 3 \(Tensor, Tensor, Tensor\)")
    assert f"{spec}:VAE.decode" in line


def test_init_kwargs_are_needed_and_checked(vae) -> None:
    spec, pth, _ = vae
    fix = r"size mismatch for bank.*pass the ones the weights were trained with as --init-kwargs"
    with pytest.raises(LoaderError, match=rf"--weights .*does not fit .*VAE\.decode: .*{fix}"):
        load_generator(f"{spec}:VAE.decode", weights=pth, latent_dim=20)
    with pytest.raises(LoaderError, match=r"--init-kwargs \{'banks': 3\} does not fit VAE\("):
        load_generator(f"{spec}:VAE.decode", LoadOptions(init_kwargs={"banks": 3}))
    load = LoadOptions(init_kwargs='{"latent_dim": 7}', latent_dim=7)
    gen = load_generator(f"{spec}:VAE.decode", load)
    assert gen.sample(3)[0].shape == (3, 7)  # the instance was built with latent_dim 7
    fn = _write(Path(spec).parent, "fn.py", "def g(z):\n    return z\n")
    with pytest.raises(LoaderError, match=r"--init-kwargs applies to an nn.Module class"):
        load_generator(f"{fn}:g", LoadOptions(init_kwargs={"a": 1}, latent_dim=784))


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("{bad", r"not valid JSON"),
        ("[1, 2]", r"must be a JSON object .* got a list"),
        ('{"a": NaN}', r"not valid JSON"),
        ('{"1a": 1}', r"must be Python identifiers"),
        ({"a": object()}, r"a is a object; expected plain values"),
        ({"a": float("inf")}, r"expected a finite number"),
    ],
)
def test_bad_init_kwargs(value, message) -> None:
    with pytest.raises(InputError, match=message):
        LoadOptions(init_kwargs=value)


def test_bad_init_kwargs_are_a_usage_error(vae, tmp_path) -> None:
    spec, _, _ = vae
    result = CliRunner().invoke(main, ["report", f"{spec}:VAE.decode", "--init-kwargs", "{x"])
    assert result.exit_code == 2 and "not valid JSON" in result.output


def test_a_samples_spec_refuses_init_kwargs(tmp_path) -> None:
    path = tmp_path / "s.npy"
    np.save(path, np.zeros((10, 28, 28), np.float32))
    with pytest.raises(InputError, match=r"--init-kwargs applies to Python entry points"):
        load_generator(path, LoadOptions(init_kwargs={"a": 1}))


_ARGPARSE_AT_IMPORT = """
import argparse
import torch

parser = argparse.ArgumentParser()
parser.add_argument("--epochs", type=int, default=5)
args = parser.parse_args()  # at import: sees ganalyze's command line unless shielded


def g(z):
    return torch.sigmoid(z[:, :1]).repeat(1, 784)


def main():
    cli = argparse.ArgumentParser()
    cli.add_argument("--data", required=True)
    cli.parse_args()


if __name__ == "__main__":
    main()
"""

_REQUIRED_AT_IMPORT = """
import argparse

parser = argparse.ArgumentParser()
parser.add_argument("--data", required=True)
args = parser.parse_args()
"""


def test_a_module_that_parses_argv_at_import_still_loads(tmp_path) -> None:
    spec = _write(tmp_path, "train_script.py", _ARGPARSE_AT_IMPORT)
    before = list(sys.argv)
    out = tmp_path / "r"
    args = ["report", f"{spec}:g", "--latent-dim", "8", "--analyses", "modes",
            "--n-samples", "50", "-o", str(out), "--quiet"]  # fmt: skip
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert sys.argv == before  # restored
    gen = load_generator(f"{spec}:g", latent_dim=8)
    assert gen.latent_dim == 8


def test_a_module_that_needs_arguments_at_import_is_one_clean_error(tmp_path) -> None:
    spec = _write(tmp_path, "needs_args.py", _REQUIRED_AT_IMPORT)
    before = list(sys.argv)
    result = CliRunner().invoke(main, ["report", f"{spec}:g", "-o", str(tmp_path / "r")])
    line = _clean_error(result, r"called sys\.exit\(2\) at import")
    assert "the following arguments are required: --data" in line
    assert '__name__ == "__main__"' in line
    assert sys.argv == before


def test_a_module_raising_at_import_is_one_error_with_its_message(tmp_path) -> None:
    body = "raise RuntimeError('MODEL_DIR is not set: export MODEL_DIR=/models')\n"
    spec = _write(tmp_path, "broken.py", body)
    result = CliRunner().invoke(main, ["report", f"{spec}:G", "-o", str(tmp_path / "r")])
    _clean_error(result, r"Importing .*broken\.py failed: RuntimeError: MODEL_DIR is not set: "
                         r"export MODEL_DIR=/models")  # fmt: skip


# safetensors: reference state_dicts, --discriminator, and hostile files


@pytest.fixture
def reference_files(tmp_path):
    torch.manual_seed(0)
    g, d = make_generator(), make_discriminator()
    gp, dp = tmp_path / "g.safetensors", tmp_path / "d.safetensors"
    save_file(g.state_dict(), str(gp))
    save_file(d.state_dict(), str(dp))
    return gp, dp, g


def test_a_reference_state_dict_in_safetensors_is_a_generator(reference_files) -> None:
    gp, dp, g = reference_files
    gen = load_generator(gp, discriminator=dp)
    assert gen.kind == "state_dict" and gen.latent_dim == 64
    z = torch.randn(5, 64)
    with torch.no_grad():
        expected = ((g(z) + 1) / 2).reshape(5, 1, 28, 28)
    assert torch.allclose(gen.generate(z), expected.clamp(0, 1), atol=1e-6)
    assert gen.discriminator is not None
    assert gen.discriminator.scores(gen.generate(z)).shape == (5,)
    assert gen.info["files"]["discriminator"]["path"] == str(dp)
    assert len(gen.info["files"]["generator"]["sha256"]) == 64


def _header(meta: dict) -> bytes:
    raw = json.dumps(meta).encode()
    return struct.pack("<Q", len(raw)) + raw


HOSTILE = {
    "truncated": lambda good: good[: len(good) // 2],
    "header length past the file": lambda good: struct.pack("<Q", 10**6) + good[8:],
    "huge header length": lambda good: struct.pack("<Q", 2**63) + good[8:],
    "header not JSON": lambda good: struct.pack("<Q", 6) + b"{nope}" + good[8:],
    "unknown dtype": lambda good: (
        _header({"w": {"dtype": "Q99", "shape": [2], "data_offsets": [0, 8]}}) + b"\0" * 8
    ),
    "complex dtype": lambda good: (
        _header({"w": {"dtype": "C64", "shape": [1], "data_offsets": [0, 8]}}) + b"\0" * 8
    ),
    "bool dtype": lambda good: (
        _header({"w": {"dtype": "BOOL", "shape": [4], "data_offsets": [0, 4]}}) + b"\0" * 4
    ),
    "shape bigger than its data": lambda good: (
        _header({"w": {"dtype": "F32", "shape": [10**9, 10**9], "data_offsets": [0, 8]}})
        + b"\0" * 8
    ),
    "offsets past the data": lambda good: (
        _header({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 2**40]}}) + b"\0" * 8
    ),
    "empty": lambda good: b"",
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_safetensors_are_one_clean_error(case, reference_files, vae, tmp_path) -> None:
    gp, dp, _ = reference_files
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(HOSTILE[case](gp.read_bytes()))
    spec, _, _ = vae
    for call in (
        lambda: load_generator(bad),
        lambda: load_generator(gp, discriminator=bad),
        lambda: load_generator(f"{spec}:VAE.decode", weights=bad, latent_dim=20),
    ):
        with pytest.raises((LoaderError, InputError)) as info:
            call()
        assert str(bad) in str(info.value)
        assert "\n" not in str(info.value)
    result = CliRunner().invoke(main, ["report", str(gp), "--discriminator", str(bad),
                                       "-o", str(tmp_path / "r")])  # fmt: skip
    _clean_error(result, re.escape(str(bad)))
