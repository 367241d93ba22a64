"""Other image sizes (--resize), DCGAN latents (--latent-shape) and discriminators of another
input size (--d-input-shape), on planted truth (issue 15, sections 1, 2 and 5).

The generators here are copiers and held-out digits whose true answers are known: a copier of
MNIST train emitting 64x64 in [-1, 1] or 32x32 zero-padded in [0, 1] must be flagged as a
copier; MNIST test upsampled to 64x64 must look like MNIST test (10 modes, copy rate about
0.01, the classifier's accuracy within 0.3 points); a DCGAN-shaped G taking (n, 100, 1, 1)
must run every analysis.
"""

from __future__ import annotations

import textwrap

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner
from torch import nn

from ganalyze import audit
from ganalyze.cli import main
from ganalyze.errors import InputError, LoaderError
from ganalyze.generators import LoadOptions, load_generator
from ganalyze.generators.base import Discriminator
from ganalyze.generators.images import (
    ImageForm,
    crop_center,
    d_conversion,
    decide_form,
    pad_center,
    resize,
    to_native_size,
)
from ganalyze.reference import classify
from ganalyze.report.html import header_rows
from reference_gan.model import make_discriminator, make_generator

# -- conversion rules, on synthetic images ------------------------------------------------------


def _digits(n: int, side: int = 28, seed: int = 0) -> torch.Tensor:
    """Blobs in the centre 20x20 of a side x side canvas, in [0, 1]."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.zeros(n, 1, side, side)
    lo = (side - 20) // 2
    x[:, :, lo : lo + 20, lo : lo + 20] = torch.rand(n, 1, 20, 20, generator=gen)
    return x


def _form(x: torch.Tensor, mode: str = "auto") -> ImageForm:
    return decide_form(tuple(x.shape), mode, lambda: x, "Output of G")


def test_auto_crops_an_empty_bordered_32x32_and_resizes_other_sizes() -> None:
    padded = _digits(50, 32)
    form = _form(padded)
    assert (form.op, form.native) == ("crop", (1, 32, 32)) and "empty 2-pixel border" in form.rule
    torch.testing.assert_close(form.to_canonical(padded, "x"), crop_center(padded, 28, 28))
    inked = padded.clone()
    inked[:, :, 0, :] = 1  # ink in the border: a 32x32 digit, not a padded one
    assert _form(inked).op == "resize" and "border is ink" in _form(inked).rule
    assert _form(_digits(5, 64)).op == "resize" and _form(_digits(5, 28)).op == "none"
    flat = _digits(5, 32).reshape(5, 1024)  # (n, H*W) of a square image
    assert _form(flat).op == "crop" and _form(flat).to_canonical(flat, "x").shape == (5, 1, 28, 28)
    assert _form(_digits(5, 64), "crop").op == "crop" and _form(padded, "resize").op == "resize"


def test_padding_is_the_exact_inverse_of_the_crop() -> None:
    for side in (32, 29, 40):  # offsets rounded down, the same way both ways
        padded = _digits(20, side)  # ink only in the centre 20x20
        torch.testing.assert_close(pad_center(crop_center(padded, 28, 28), side, side), padded)


def test_the_reduction_inverts_bilinear_enlargement_and_stays_in_range() -> None:
    x = _digits(20, 28)
    for size in ((64, 64), (32, 32), (40, 96)):
        big = resize(x, *size)  # bilinear, as torchvision's Resize enlarges MNIST
        torch.testing.assert_close(big, F.interpolate(x, size=size, mode="bilinear"))
        torch.testing.assert_close(resize(big, 28, 28), x, atol=2e-5, rtol=0)
    noise = torch.rand(10, 1, 64, 64)  # not an enlargement: the sharpening filter is clipped
    small = resize(noise, 28, 28)
    assert small.shape == (10, 1, 28, 28) and 0 <= float(small.min()) <= float(small.max()) <= 1


def test_rgb_with_equal_channels_is_gray_and_unequal_channels_are_an_error() -> None:
    gray = _digits(4, 64)
    rgb = gray.expand(4, 3, 64, 64)
    torch.testing.assert_close(_form(rgb).to_canonical(rgb, "x"), resize(gray, 28, 28))
    colour = rgb.clone()
    colour[:, 0] = 1 - colour[:, 0]
    with pytest.raises(InputError, match=r"3 channels that differ \(by up to 1 on a 0-1 scale.*"
                       r"expected grayscale digits.*mean\(1, keepdim=True\)"):  # fmt: skip
        _form(colour).to_canonical(colour, "Output of G")


@pytest.mark.parametrize(
    ("shape", "mode", "message"),
    [
        ((4, 3, 32, 32), "none", r"\(4, 3, 32, 32\); expected \(n, 784\), \(n, 28, 28\) or \(n, 1"),
        ((4, 64, 64), "none", r"\(4, 64, 64\); expected \(n, 784\), \(n, 28, 28\)"),
        ((4, 8, 8), "auto", r"\(4, 8, 8\); expected \(n, 784\), \(n, H, W\).*at least 14"),
        ((4, 2, 32, 32), "auto", r"\(4, 2, 32, 32\); expected"),
        ((4, 1000), "auto", r"\(4, 1000\); expected"),
        ((4, 20, 20), "crop", r"20x20, smaller than 28x28: --resize crop cannot crop it"),
    ],
)
def test_shapes_that_are_refused(shape, mode, message) -> None:
    with pytest.raises(InputError, match=message):
        _form(torch.zeros(shape), mode)


def test_digits_reach_a_discriminator_in_its_own_size() -> None:
    x = _digits(6, 28)
    padded_g = _form(_digits(6, 32))
    assert d_conversion((1, 32, 32), "auto", padded_g, "D") == ("pad", "the inverse of G's crop")
    assert d_conversion((1, 64, 64), "auto", None, "D")[0] == "resize"
    assert d_conversion((784,), "auto", None, "D")[0] == "none"
    assert d_conversion((1, 32, 32), "resize", None, "D")[0] == "resize"
    with pytest.raises(InputError, match=r"takes 64x64 images, but --resize none feeds only"):
        d_conversion((1, 64, 64), "none", None, "D")
    d = Discriminator(lambda v: v.mean((1, 2, 3)), "-1,1", (1, 32, 32))
    native = d.native(x)
    assert native.shape == (6, 1, 32, 32) and d.conversion == "pad"
    assert bool((native[:, :, :2] == -1).all())  # the padding is background, -1 in [-1, 1]
    torch.testing.assert_close(crop_center(native, 28, 28), x * 2 - 1)
    rgb = to_native_size(x, (3, 64, 64), "resize")
    assert rgb.shape == (6, 3, 64, 64) and torch.equal(rgb[:, 0], rgb[:, 2])


# -- latent shapes ------------------------------------------------------------------------------

_DCGAN = """
import torch
from torch import nn


class G(nn.Module):
    '''pytorch/examples' DCGAN generator, small: (n, 100, 1, 1) -> (n, 1, 64, 64) in [-1, 1].'''

    def __init__(self, nz=100, ngf=4):
        super().__init__()
        self.main = nn.Sequential(
            nn.ConvTranspose2d(nz, ngf * 8, 4, 1, 0, bias=False), nn.BatchNorm2d(ngf * 8),
            nn.ReLU(True), nn.ConvTranspose2d(ngf * 8, ngf * 4, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ngf * 4), nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 2),
            nn.ReLU(True), nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ngf), nn.ReLU(True), nn.ConvTranspose2d(ngf, 1, 4, 2, 1, bias=False),
            nn.Tanh(),
        )

    def forward(self, z):
        return self.main(z)


def make():
    torch.manual_seed(0)
    return G()


MODEL = make().eval()


def wrapped(z):
    return MODEL(z)
"""


def _write(tmp_path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return str(path)


def test_dcgan_latent_shape_from_the_first_layer_or_the_probe(tmp_path) -> None:
    path = _write(tmp_path, "dcgan.py", _DCGAN)
    gen = load_generator(f"{path}:make")
    assert (gen.latent_dim, gen.latent_shape) == (100, (100, 1, 1))
    assert gen.latent_source == "first layer ConvTranspose2d with 100 input channels"
    assert gen.native_shape == (1, 64, 64) and gen.image_form.op == "resize"
    z, x = gen.sample(12, seed=3)
    assert z.shape == (12, 100) and x.shape == (12, 1, 28, 28)  # z stays flat
    torch.testing.assert_close(gen.generate(z), x)
    # a plain function hides the model: (n, 100) fails inside it, (n, 100, 1, 1) works
    probed = load_generator(f"{path}:wrapped", latent_dim=100)
    assert probed.latent_shape == (100, 1, 1)
    assert probed.latent_source == "probe: (n, 100) failed, (n, 100, 1, 1) worked (--latent-dim)"
    torch.testing.assert_close(probed.sample(12, seed=3)[1], x)
    given = load_generator(f"{path}:wrapped", LoadOptions(latent_shape="100,1,1"))
    assert (given.latent_dim, given.latent_source) == (100, "--latent-shape")
    # a shape that fits neither way: G's own message, and both options named
    with pytest.raises(LoaderError, match=r"latents of shape \(1000, 64\).*--latent-shape"):
        load_generator(f"{path}:wrapped", latent_dim=64)


def test_an_exported_dcgan_takes_its_latent_shape_from_its_signature(tmp_path) -> None:
    model = nn.Sequential(nn.ConvTranspose2d(100, 1, 16), nn.Tanh()).eval()  # 16x16 out
    program = torch.export.export(model, (torch.randn(2, 100, 1, 1),))
    torch.export.save(program, tmp_path / "g.pt2")
    gen = load_generator(tmp_path / "g.pt2")
    assert (gen.latent_shape, gen.latent_source) == ((100, 1, 1), "the program's input signature")
    assert gen.image_form.op == "resize"  # 16x16 up to 28x28
    assert gen.sample(5)[1].shape == (5, 1, 28, 28)  # a static batch of 2, padded


# -- the CLI: hostile values of the new options -------------------------------------------------


@pytest.fixture(scope="module")
def reference_g(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("g") / "G.pt"
    torch.save(make_generator().state_dict(), path)
    return path


def _cli(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--latent-shape", "0"], "--latent-shape must be positive integers"),
        (["--latent-shape", "-100,1,1"], "must be positive integers separated by commas"),
        (["--latent-shape", "100,0,1"], "each size at least 1"),
        (["--latent-shape", "abc"], "like 100,1,1; got 'abc'"),
        (["--latent-shape", "1e3"], "got '1e3'"),
        (["--latent-shape", ""], "got ''"),
        (["--latent-shape", "100000,100000,100000"], "expected at most 8 dimensions and"),
        (["--latent-shape", "1,1,1,1,1,1,1,1,1"], "in 9 dimensions"),
        (["--latent-shape", "32,1,1", "--latent-dim", "64"], "but --latent-dim is 64"),
        (["--d-input-shape", "2,64,64"], "is not the shape of one image"),
        (["--d-input-shape", "1,8,8"], "is not the shape of one image"),
        (["--d-input-shape", "0"], "--d-input-shape must be positive integers"),
        (["--d-input-shape", "1;64;64"], "got '1;64;64'"),
        (["--resize", "bicubic"], "'bicubic' is not one of"),
        (["--resize", ""], "is not one of"),
    ],
)
def test_bad_new_options_are_usage_errors(reference_g, tmp_path, args, message) -> None:
    result = _cli("report", str(reference_g), "-o", str(tmp_path / "r"), *args)
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split()), result.output
    assert "Traceback" not in result.output


def test_a_latent_shape_too_large_for_memory_is_one_clean_error(reference_g, tmp_path) -> None:
    result = _cli("report", str(reference_g), "-o", str(tmp_path / "r"),
                  "--latent-shape", "1000000,1000")  # fmt: skip
    assert result.exit_code == 1, result.output
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: A probe batch of 1,000 latents of "
                                                   "latent size 1000000000")  # fmt: skip
    assert "Traceback" not in result.output


def test_resize_none_keeps_the_old_error_on_the_command_line(tmp_path) -> None:
    np.save(tmp_path / "x64.npy", _digits(8, 64).numpy())
    result = _cli("report", str(tmp_path / "x64.npy"), "-o", str(tmp_path / "r"),
                  "--resize", "none")  # fmt: skip
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        f"Error: The images in {tmp_path / 'x64.npy'} has shape (8, 1, 64, 64); expected (n, "
        "784), (n, 28, 28) or (n, 1, 28, 28)."
    ]


def test_unequal_rgb_channels_are_one_clean_error(tmp_path) -> None:
    spec = _write(tmp_path, "rgb.py", """
        import torch

        def g(z):
            x = torch.zeros(len(z), 3, 32, 32)
            x[:, 0] = torch.sigmoid(z[:, :1, None]).expand(-1, 32, 32)
            return x
        """)  # fmt: skip
    result = _cli("report", f"{spec}:g", "--latent-dim", "4", "-o", str(tmp_path / "r"))
    assert result.exit_code == 1 and "Traceback" not in result.output
    errors = [ln for ln in result.output.splitlines() if ln.startswith("Error:")]
    assert len(errors) == 1 and "has 3 channels that differ" in errors[0], result.output


# -- discriminators of another input size -------------------------------------------------------


class Dcgan64D(nn.Module):
    """A 64x64 DCGAN-style D (small) that refuses any other input shape."""

    def __init__(self) -> None:
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv2d(1, 4, 4, 2, 1), nn.LeakyReLU(0.2), nn.Conv2d(4, 8, 4, 2, 1),
            nn.LeakyReLU(0.2), nn.Conv2d(8, 8, 4, 2, 1), nn.LeakyReLU(0.2),
            nn.Conv2d(8, 8, 4, 2, 1), nn.LeakyReLU(0.2), nn.Conv2d(8, 1, 4, 1, 0),
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != 1 or x.shape[2] != 64 or x.shape[3] != 64:
            raise ValueError("expected input of shape (n, 1, 64, 64), got " + str(x.shape))
        return self.main(x).view(-1)


@pytest.fixture(scope="module")
def d64(tmp_path_factory):
    torch.manual_seed(1)
    path = tmp_path_factory.mktemp("d") / "d64.pt"
    torch.jit.script(Dcgan64D().eval()).save(str(path))
    return path


def test_a_64x64_d_is_found_by_a_probe_or_given_its_shape(reference_g, d64) -> None:
    gen = load_generator(reference_g, discriminator=d64)  # G emits (n, 784)
    d = gen.discriminator
    assert d.input_shape == (1, 64, 64) and d.conversion == "resize"
    assert d.shape_source == "probe: it rejected (784,), took (1, 64, 64)"
    x = gen.sample(20, seed=0)[1]
    scores = d.scores(x)
    assert scores.shape == (20,) and bool(torch.isfinite(scores).all())
    given = load_generator(reference_g, LoadOptions(discriminator=d64, d_input_shape="1,64,64"))
    assert (given.discriminator.input_shape, given.discriminator.shape_source) == (
        (1, 64, 64), "--d-input-shape")  # fmt: skip
    torch.testing.assert_close(given.discriminator.scores(x), scores)
    # a shape D does not take: PyTorch's (here D's own) message, one clean error
    wrong = load_generator(reference_g, LoadOptions(discriminator=d64, d_input_shape="1,32,32"))
    with pytest.raises(InputError, match=r"expected input of shape \(n, 1, 64, 64\), got \[20, 1"):
        wrong.discriminator.scores(x)


def test_a_d_of_the_reference_mlp_keeps_its_flat_input(reference_g, tmp_path) -> None:
    torch.save(make_discriminator().state_dict(), tmp_path / "D.pt")
    d = load_generator(reference_g, discriminator=tmp_path / "D.pt").discriminator
    assert (d.input_shape, d.shape_source, d.conversion) == ((784,), "G's native shape", "none")


# -- planted truth on MNIST ---------------------------------------------------------------------

_COPIER_64 = """
import torch
import torch.nn.functional as F
from ganalyze.data import load_mnist

TRAIN = load_mnist(True, {data!r}).images


def g(z):
    '''A copier of MNIST train: the training digit z points at, 64x64 in [-1, 1].'''
    idx = (z[:, :4].abs() * 1e6).long().sum(1) % len(TRAIN)
    x = TRAIN[idx][:, None].float() / 255
    x = F.interpolate(x, size=(64, 64), mode="bilinear", align_corners=False).clamp(0, 1)
    return x * 2 - 1
"""


class Copier32(nn.Module):
    """Training digits zero-padded to 32x32 in [0, 1] (as for LeNet), one per latent."""

    def __init__(self, digits: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("digits", F.pad(digits, (2, 2, 2, 2))[:, None])

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        idx = (z[:, :4].abs() * 1e6).long().sum(1) % self.digits.shape[0]
        return self.digits[idx].float() / 255


def _memorization(report) -> dict:
    res = report.result("memorization")
    return {m.name: m.value for m in res.metrics if m.feature_space == "pixel"}


def _flagged(report, analysis: str, metric: str) -> bool:
    return any(name == analysis and metric in flag.metrics for name, flag in report.flags)


def _copier_flagged(report) -> bool:
    return _flagged(report, "memorization", "copy_rate_adjusted")


def test_a_64x64_copier_in_minus_one_to_one_is_flagged(reference, mnist_dir, tmp_path) -> None:
    spec = _write(tmp_path, "copier64.py", _COPIER_64.format(data=str(mnist_dir)))
    rep = audit(f"{spec}:g", n_samples=1000, latent_dim=8, analyses="memorization",
                reference=reference)  # fmt: skip
    assert rep.meta["output_range"] == "-1,1"
    assert rep.meta["image_conversion"]["conversion"] == "resize"
    rows = dict(header_rows(rep.meta))
    assert rows["image size"] == (
        "64x64 resized to 28x28 (least-squares inverse of bilinear; auto: 64x64 is not 28x28)"
    )
    pixel = _memorization(rep)
    print(f"64x64 copier: copy_rate {pixel['copy_rate']:.4f}")
    assert pixel["copy_rate"] > 0.99  # the reduction inverts the copier's enlargement
    assert _copier_flagged(rep)


def test_a_32x32_padded_copier_is_cropped_and_flagged(reference, tmp_path) -> None:
    digits = reference.train.images[:3000]  # uint8 (n, 28, 28)
    path = tmp_path / "copier32.pt"
    torch.jit.script(Copier32(digits)).save(str(path))
    rep = audit(path, n_samples=1000, latent_dim=8, analyses="memorization", reference=reference)
    conv = rep.meta["image_conversion"]
    assert (conv["native_size"], conv["conversion"]) == ([32, 32], "crop")
    assert dict(header_rows(rep.meta))["image size"] == (
        "32x32 centre-cropped to 28x28 (auto: 32x32 with an empty 2-pixel border (MNIST padded "
        "for LeNet))"
    )
    pixel = _memorization(rep)
    print(f"32x32 padded copier: copy_rate {pixel['copy_rate']:.4f}")
    assert pixel["copy_rate"] > 0.99  # the crop is exact: every sample is a training digit
    assert _copier_flagged(rep)


def _upsampled_test(reference) -> torch.Tensor:
    """MNIST test as 64x64 images in [0, 1], upsampled bilinearly (torchvision's Resize(64))."""
    x = reference.test_images
    return F.interpolate(x, size=(64, 64), mode="bilinear", align_corners=False).clamp(0, 1)


def test_mnist_test_taken_to_64x64_and_back_looks_like_mnist_test(reference, tmp_path) -> None:
    path = tmp_path / "test64.npy"
    np.save(path, _upsampled_test(reference).numpy())
    rep = audit(path, analyses="modes,memorization", reference=reference)
    assert rep.meta["n_samples"] == 10_000
    assert rep.meta["image_conversion"]["conversion"] == "resize"
    modes = {m.name: m.value for m in rep.result("modes").metrics}
    pixel = _memorization(rep)
    print(f"MNIST test via 64x64: modes_covered {modes['modes_covered']}, copy_rate "
          f"{pixel['copy_rate']:.4f}")  # fmt: skip
    assert modes["modes_covered"] == 10
    assert 0.003 <= pixel["copy_rate"] <= 0.02  # MNIST test's own rate is 0.01 by construction
    assert not _copier_flagged(rep)


def test_the_round_trip_keeps_the_classifier_accuracy(reference, tmp_path) -> None:
    path = tmp_path / "test64.npy"
    np.save(path, _upsampled_test(reference).numpy())
    _, back = load_generator(path).sample(10_000)
    labels = reference.test.labels.numpy()
    before = float((reference.probs("test").argmax(1) == labels).mean())
    after = float((classify(back)[0].argmax(1) == labels).mean())
    print(f"classifier accuracy: MNIST test {before:.4f}, via 64x64 {after:.4f}")
    assert abs(after - before) <= 0.003


_DCGAN_COPIER = """
import torch
import torch.nn.functional as F
from torch import nn
from ganalyze.data import load_mnist

TEST = load_mnist(False, {data!r}).images


class D(nn.Module):
    '''A 64x64 D: refuses any other shape; scores the ink in the centre against the border.'''

    def forward(self, x):
        if x.shape[1:] != (1, 64, 64):
            raise ValueError(f"expected (n, 1, 64, 64), got {{tuple(x.shape)}}")
        return x[:, 0, 16:48, 16:48].mean((1, 2)) - x[:, 0].mean((1, 2))


class G(nn.Module):
    '''DCGAN-shaped: (n, 100, 1, 1) -> (n, 1, 64, 64) in [-1, 1]; returns held-out digits.'''

    def __init__(self):
        super().__init__()
        self.project = nn.ConvTranspose2d(100, 1, 4)  # DCGAN's first layer: fails on (n, 100)
        self.discriminator = D()

    def forward(self, z):
        h = self.project(z)
        idx = (z.flatten(1)[:, :4].abs() * 1e6).long().sum(1) % len(TEST)
        x = TEST[idx][:, None].float() / 255
        x = F.interpolate(x, size=(64, 64), mode="bilinear", align_corners=False).clamp(0, 1)
        return x * 2 - 1 + 0 * h.mean((1, 2, 3), keepdim=True)
"""


def test_a_dcgan_shaped_generator_runs_every_analysis(
    reference, mnist_dir, tmp_path, monkeypatch
) -> None:
    spec = _write(tmp_path, "dcgan_copier.py", _DCGAN_COPIER.format(data=str(mnist_dir)))
    # every analysis that takes samples and a generator runs; the sizes that only set their run
    # time are small (conditional needs a G(z, y), training a checkpoint's history)
    monkeypatch.setattr("ganalyze.analyses.interpolation.PPL_TRIPLES", 500)
    monkeypatch.setattr("ganalyze.analyses.latent_map.N_EPOCHS", 20)
    monkeypatch.setattr("ganalyze.analyses.latent_map.N_STABILITY", 200)
    analyses = "modes,memorization,privacy,dscores,distribution,interpolation,latent_map"
    params = {"interpolation": {"pairs": 8, "frames": 8}, "memorization": {"ct_cells": 10},
              "privacy": {"n_members": 500, "n_reference": 500, "bootstrap": 100}}  # fmt: skip
    rep = audit(f"{spec}:G", n_samples=300, analyses=analyses, reference=reference,
                params=params)  # fmt: skip
    assert sorted(r.name for r in rep.results) == sorted(analyses.split(",")), rep.skipped
    rows = dict(header_rows(rep.meta))
    assert rows["latent shape"] == "(n, 100, 1, 1): first layer ConvTranspose2d with 100 input " \
        "channels"  # fmt: skip
    assert rows["latent size / prior"] == "100 / normal"
    assert rows["image size"].startswith("64x64 resized to 28x28 (least-squares inverse")
    assert "shape (1, 64, 64) (28x28 digits resized to 64x64 (the inverse of G's resize))" in \
        rows["discriminator"]  # fmt: skip
    modes = {m.name: m.value for m in rep.result("modes").metrics}
    pixel = _memorization(rep)
    scores = rep.result("dscores").arrays["scores"]
    print(f"DCGAN-shaped: modes_covered {modes['modes_covered']}, copy_rate "
          f"{pixel['copy_rate']:.4f}, D mean on test {scores['test'].mean():.3f}")  # fmt: skip
    assert modes["modes_covered"] == 10
    assert pixel["copy_rate"] < 0.03  # held-out digits: no copier
    assert all(np.isfinite(s).all() and len(s) for s in scores.values())
