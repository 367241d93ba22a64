"""--discriminator in every form a generator spec takes, discriminators that fail on their input
shape, and a discriminator audited alone (no generator)."""

from __future__ import annotations

import json
import textwrap
import warnings

import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import save_file
from torch import nn

from ganalyze.cli import main
from ganalyze.errors import InputError, LoaderError
from ganalyze.generators import LoadOptions, load_generator
from reference_gan.model import make_discriminator, make_generator

_D_SOURCE = """
import torch
from torch import nn


class D(nn.Module):
    '''A small conv D of 28x28 digits.'''

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(1, 4, 4, 2, 1), nn.LeakyReLU(0.2), nn.Flatten(),
                                 nn.Linear(4 * 14 * 14, 1))

    def forward(self, x):
        return self.net(x)

    def score(self, x):
        return torch.sigmoid(self.net(x))
"""


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A reference G, and the same conv D saved as an entry point with weights, TorchScript,
    torch.export; the reference D as a state_dict and as safetensors."""
    folder = tmp_path_factory.mktemp("dspecs")
    torch.manual_seed(0)
    torch.save(make_generator().state_dict(), folder / "G.pt")
    source = folder / "d.py"
    source.write_text(textwrap.dedent(_D_SOURCE), encoding="utf-8")
    namespace: dict = {}
    exec(compile(source.read_text(), str(source), "exec"), namespace)
    d = namespace["D"]().eval()
    torch.save(d.state_dict(), folder / "d_weights.pt")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.trace(d, torch.zeros(2, 1, 28, 28)).save(str(folder / "d_script.pt"))
    batch = torch.export.Dim("batch", min=2)
    program = torch.export.export(d, (torch.zeros(4, 1, 28, 28),), dynamic_shapes=({0: batch},))
    torch.export.save(program, folder / "d.pt2")
    reference_d = make_discriminator()
    torch.save(reference_d.state_dict(), folder / "D_ref.pt")
    save_file(reference_d.state_dict(), folder / "D_ref.safetensors")
    return folder, d, reference_d


def _scores(spec, folder, **options) -> tuple[torch.Tensor, object]:
    gen = load_generator(folder / "G.pt", LoadOptions(discriminator=spec, **options))
    images = gen.sample(16, seed=1)[1]
    return gen.discriminator.scores(images), images


@pytest.mark.parametrize("form", ["entry", "method", "torchscript", "export"])
def test_a_conv_d_in_any_form(files, form) -> None:
    folder, d, _ = files
    spec, options = {
        "entry": (f"{folder / 'd.py'}:D", {"d_weights": folder / "d_weights.pt"}),
        "method": (
            f"{folder / 'd.py'}:D.score",
            {"d_weights": folder / "d_weights.pt", "d_output": "probs"},
        ),
        "torchscript": (str(folder / "d_script.pt"), {}),
        "export": (str(folder / "d.pt2"), {}),
    }[form]
    options.setdefault("d_output", "logits")  # forward returns logits, score probabilities
    scores, images = _scores(spec, folder, **options)
    x = images * 2 - 1  # G's native range [-1, 1]: D is fed it
    with torch.no_grad():
        expected = torch.sigmoid(d(x)[:, 0])
    torch.testing.assert_close(scores, expected)


def test_the_reference_d_as_state_dict_and_safetensors(files) -> None:
    folder, _, reference_d = files
    a, images = _scores(str(folder / "D_ref.pt"), folder)
    b, _ = _scores(str(folder / "D_ref.safetensors"), folder)
    with torch.no_grad():
        expected = reference_d(images.reshape(16, 784) * 2 - 1)[:, 0]
    torch.testing.assert_close(a, expected)
    torch.testing.assert_close(b, expected)


def test_meta_records_the_entry_point_and_its_weights(files) -> None:
    folder, _, _ = files
    options = LoadOptions(discriminator=f"{folder / 'd.py'}:D", d_weights=folder / "d_weights.pt")
    gen = load_generator(folder / "G.pt", options)
    recorded = gen.info["files"]
    assert recorded["discriminator"]["path"] == str(folder / "d.py")
    assert recorded["d_weights"]["path"] == str(folder / "d_weights.pt")
    assert all(len(v["sha256"]) == 64 for v in recorded.values())


def test_bad_discriminator_options(files) -> None:
    folder, _, _ = files
    with pytest.raises(InputError, match="--d-weights .* pass --discriminator file.py:Class"):
        LoadOptions(d_weights=folder / "d_weights.pt")
    with pytest.raises(InputError, match="--d-weights applies to a discriminator given as a"):
        _scores(str(folder / "D_ref.pt"), folder, d_weights=folder / "d_weights.pt")
    with pytest.raises(LoaderError, match="--d-weights .* does not fit"):
        _scores(f"{folder / 'd.py'}:D", folder, d_weights=folder / "D_ref.pt")
    with pytest.raises(LoaderError, match="does not exist. ganalyze accepts a state_dict of the"):
        _scores(str(folder / "nothing.pt"), folder)
    result = CliRunner().invoke(main, ["report", str(folder / "G.pt"), "--discriminator",
                                       str(folder / "nothing.pt")])  # fmt: skip
    assert result.exit_code == 2 and "does not exist" in result.output


def test_a_d_that_fails_on_its_input_shows_torchs_whole_message(files) -> None:
    folder, _, _ = files
    torch.jit.script(nn.Sequential(nn.Flatten(), nn.Linear(100, 1))).save(str(folder / "bad.pt"))
    with pytest.raises(InputError) as info:
        _scores(str(folder / "bad.pt"), folder)
    text = str(info.value)
    assert "mat1 and mat2 shapes cannot be multiplied (16x784 and 100x1)" in text
    assert "--d-input-shape" in text and "--d-input-range" in text


def test_a_discriminator_audited_alone(files, mnist_dir, tmp_path) -> None:
    folder, _, _ = files
    out = tmp_path / "r"
    result = CliRunner().invoke(main, ["report", "--discriminator", str(folder / "D_ref.pt"),
                                       "--data-dir", str(mnist_dir), "--quiet",
                                       "-o", str(out)])  # fmt: skip
    assert result.exit_code == 0, result.output
    meta = json.loads((out / "meta.json").read_text())
    results = json.loads((out / "results.json").read_text()) if (out / "results.json").exists() \
        else None  # fmt: skip
    assert meta["kind"] == "discriminator" and meta["n_samples"] == 0
    assert meta["discriminator"]["input_range"] == "-1,1"
    assert "assumed for a discriminator alone" in meta["discriminator"]["input_range_source"]
    assert results is not None
    metrics = (out / "metrics.csv").read_text()
    assert "d_membership_auc" in metrics and "d_gen_mean" not in metrics
    html = (out / "index.html").read_text(encoding="utf-8")
    assert "only the discriminator is audited" in html
    usage = CliRunner().invoke(main, ["report"])
    assert usage.exit_code == 2 and "--discriminator D to audit a discriminator alone" in \
        usage.output  # fmt: skip


def test_the_python_api_audits_a_discriminator_alone(files, reference) -> None:
    from ganalyze import audit

    folder, _, _ = files
    rep = audit(None, discriminator=folder / "D_ref.safetensors", reference=reference)
    assert [r.name for r in rep.results] == ["dscores"]
    skipped = dict(rep.skipped)
    assert "only the discriminator is audited" in skipped["modes"]
    auc = rep.result("dscores").metric("d_membership_auc")
    print(f"untrained reference D alone: d_membership_auc {auc.value:.4f}")
    assert 0.45 < auc.value < 0.55
