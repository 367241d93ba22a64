"""Conditional generators G(z, y): loading (--num-classes, --label-input, --labels), the messages
for a generator that needs a label, and the conditional analysis on planted truth.

The planted generators return held-out digits (MNIST test) chosen by z: of the class y asked
for (faithful), of a class z chooses (label-blind, taking y as indices or one-hot rows), or one
single image for every y = 3 (collapsed within a class).
"""

from __future__ import annotations

import json
import textwrap
import warnings

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from torch import nn

from ganalyze import audit
from ganalyze.analyses import REGISTRY
from ganalyze.cli import main
from ganalyze.errors import InputError, LoaderError
from ganalyze.generators import LoadOptions, load_generator
from ganalyze.generators.labels import MNIST_TRAIN_COUNTS, draw_labels

# -- loading, without MNIST ---------------------------------------------------------------------


def _write(folder, name: str, text: str) -> str:
    path = folder / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return str(path)


class Stripes(nn.Module):
    """G(z, y) -> (n, 1, 28, 28): row 2 + 2y lit, so the label G got can be read back."""

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if y.dim() == 2:  # one-hot rows
            y = y.argmax(1)
        rows = (torch.arange(28)[None] == 2 + 2 * y[:, None]).float() + 0 * z[:, :1]
        return rows[:, None, :, None].expand(-1, 1, 28, 28)


class OneHotStripes(nn.Module):
    """Stripes that take one-hot labels only (TorchScript-able)."""

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if y.dim() != 2:
            raise ValueError("expected one-hot labels (n, 10)")
        x = torch.zeros(z.shape[0], 1, 28, 28) + 0 * z[:, :1, None, None]
        x[torch.arange(y.shape[0]), 0, 2 + 2 * y.argmax(1)] = 1.0
        return x


def _read_back(images: torch.Tensor) -> torch.Tensor:
    return (images[:, 0].sum(2).argmax(1) - 2) // 2


_STRIPES = """
import torch
from torch import nn


def g(z, y):
    x = torch.zeros(z.shape[0], 1, 28, 28)
    x[torch.arange(len(y)), 0, 2 + 2 * y.long()] = 1.0
    return x


def onehot(z, y):
    x = torch.zeros(z.shape[0], 1, 28, 28)
    x[torch.arange(len(y)), 0, 2 + 2 * y.argmax(1)] = 1.0
    return x


class Concat(nn.Module):
    '''z (64) and a one-hot label (10) concatenated: a first layer of 74 inputs.'''

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(74, 784), nn.Sigmoid())

    def forward(self, x):
        return self.net(x)
"""


@pytest.fixture(scope="module")
def stripes(tmp_path_factory) -> str:
    return _write(tmp_path_factory.mktemp("cg"), "stripes.py", _STRIPES)


@pytest.mark.parametrize("form", ["entry", "entry_onehot", "torchscript", "export_index",
                                  "export_onehot"])  # fmt: skip
def test_each_source_form_gets_the_labels_it_takes(form, stripes, tmp_path) -> None:
    if form == "entry":
        spec, how = f"{stripes}:g", ("index", "auto: index worked")
    elif form == "entry_onehot":
        spec, how = f"{stripes}:onehot", ("onehot", "auto: index failed, onehot worked")
    elif form == "torchscript":
        spec, how = str(tmp_path / "g.pt"), ("onehot", "auto: index failed, onehot worked")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.jit.script(OneHotStripes()).save(spec)
    else:
        onehot = form == "export_onehot"
        y = torch.eye(10)[:4] if onehot else torch.arange(4)
        batch = torch.export.Dim("batch", min=2)
        program = torch.export.export(Stripes(), (torch.randn(4, 8), y),
                                      dynamic_shapes=({0: batch}, {0: batch}))  # fmt: skip
        spec = str(tmp_path / "g.pt2")
        torch.export.save(program, spec)
        how = ("onehot" if onehot else "index", "the program's input signature")
    gen = load_generator(spec, LoadOptions(num_classes=10, latent_dim=8), seed=3)
    assert (gen.label_input, gen.label_source) == how
    code, images = gen.sample(60, seed=3)
    z, y = gen.split(code)
    assert code.shape == (60, 18) and z.shape == (60, 8)
    assert torch.equal(_read_back(images), y)  # G got each sample's own label
    assert torch.equal(gen.generate(gen.code(z, torch.full((60,), 7))), _stripes(7, 60))


def _stripes(label: int, n: int) -> torch.Tensor:
    x = torch.zeros(n, 1, 28, 28)
    x[:, 0, 2 + 2 * label] = 1.0
    return x


def test_labels_are_seeded_prefix_stable_and_drawn_as_asked(stripes) -> None:
    gen = load_generator(f"{stripes}:g", LoadOptions(num_classes=10, latent_dim=8))
    first = gen.sample(1100, seed=5)[0]
    torch.testing.assert_close(gen.sample(3000, seed=5)[0][:1100], first)
    assert not torch.equal(gen.sample(1100, seed=6)[0], first)
    uniform = np.bincount(draw_labels(60_000, 10, "uniform", 0).numpy(), minlength=10)
    train = np.bincount(draw_labels(60_000, 10, "train", 0).numpy(), minlength=10)
    assert np.abs(uniform / 60_000 - 0.1).max() < 0.005
    assert np.abs(train / 60_000 - np.array(MNIST_TRAIN_COUNTS) / 60_000).max() < 0.005
    trained = load_generator(f"{stripes}:g", LoadOptions(num_classes=10, latent_dim=8,
                                                         labels="train"))  # fmt: skip
    assert trained.labels == "train"


def test_a_generator_that_needs_a_label_says_so(stripes, tmp_path) -> None:
    with pytest.raises(LoaderError, match=r"looks conditional.*--num-classes 10") as info:
        load_generator(f"{stripes}:g", latent_dim=8)
    assert "--latent-dim" not in str(info.value)
    program = torch.export.export(Stripes(), (torch.randn(4, 8), torch.arange(4)))
    torch.export.save(program, tmp_path / "g.pt2")
    with pytest.raises(InputError, match=r"second input, labels as class indices.*--num-classes"):
        load_generator(tmp_path / "g.pt2")
    # one input of 74 = 64 + 10 (a one-hot label concatenated to z), given --latent-dim 64
    with pytest.raises(LoaderError, match=r"74 = 64 \+ 10 inputs: if it is conditional"):
        load_generator(f"{stripes}:Concat", latent_dim=64)
    with pytest.raises(InputError, match="takes one input .* not conditional. Drop --num-cl"):
        load_generator(f"{stripes}:Concat", LoadOptions(num_classes=10))
    with pytest.raises(InputError, match="--labels applies to a conditional generator"):
        load_generator(f"{stripes}:Concat", LoadOptions(labels="train"))


def test_the_command_line_gives_one_error_line(stripes, tmp_path) -> None:
    result = CliRunner().invoke(main, ["report", f"{stripes}:g", "--latent-dim", "8",
                                       "-o", str(tmp_path / "r")])  # fmt: skip
    errors = [ln for ln in result.output.splitlines() if ln.startswith("Error:")]
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    assert len(errors) == 1 and "looks conditional" in errors[0], result.output
    bad = CliRunner().invoke(main, ["report", f"{stripes}:g", "--num-classes", "1"])
    assert bad.exit_code == 2 and "--num-classes" in bad.output


@pytest.mark.parametrize(("options", "message"), [
    ({"num_classes": 0}, "--num-classes must be an integer from 2"),
    ({"num_classes": 10, "label_input": "bits"}, "Unknown --label-input 'bits'"),
    ({"num_classes": 10, "labels": "zipf"}, "Unknown --labels 'zipf'"),
    ({"num_classes": 5, "labels": "train"}, "--labels train draws MNIST train's shares"),
])  # fmt: skip
def test_bad_label_options(options, message) -> None:
    with pytest.raises(InputError, match=message):
        LoadOptions(**options)


# -- planted truth on MNIST ---------------------------------------------------------------------

_CGAN = """
import torch
from torch import nn
from ganalyze.data import load_mnist

TEST = load_mnist(False, {data!r})
BY_CLASS = [TEST.images[TEST.labels == c] for c in range(10)]


def _pick(z, y):
    '''The held-out digit of class y that z points at.'''
    idx = (z[:, :4].abs() * 1e6).long().sum(1)
    rows = [BY_CLASS[int(c)][int(i) % len(BY_CLASS[int(c)])] for i, c in zip(idx, y)]
    return torch.stack(rows).float() / 255


def faithful(z, y):
    return _pick(z, y)


def blind(z, y):
    '''Ignores y: the class comes from z.'''
    return _pick(z, (z[:, 4].abs() * 1e6).long() % 10)


def blind_onehot(z, y):
    if y.dim() != 2:
        raise ValueError("expected one-hot labels (n, 10)")
    return _pick(z, (z[:, 4].abs() * 1e6).long() % 10)


def collapsed3(z, y):
    '''Faithful, except that every y = 3 gets one and the same 3.'''
    x = _pick(z, y)
    x[y == 3] = BY_CLASS[3][1].float() / 255
    return x


class ConditionalD(nn.Module):
    '''D(x, y): its score depends on the label it is fed, so the labels can be checked.'''

    def forward(self, x, y):
        if y.dim() == 2:
            y = y.argmax(1)
        return torch.sigmoid(y.float() - 4.5) + 0 * x.flatten(1)[:, 0]


faithful.discriminator = ConditionalD()
"""
SMALL = {"conditional": {"pairs": 10, "frames": 8}}


@pytest.fixture(scope="module")
def cgan(mnist_dir, tmp_path_factory) -> str:
    return _write(tmp_path_factory.mktemp("cgan"), "cgan.py", _CGAN.format(data=str(mnist_dir)))


def _values(report, analysis: str) -> dict[str, float]:
    return {m.name: m.value for m in report.result(analysis).metrics}


def _flagged(report, metric: str) -> bool:
    return any(metric in flag.metrics for _, flag in report.flags)


def test_a_faithful_conditional_generator(cgan, reference) -> None:
    rep = audit(f"{cgan}:faithful", n_samples=2000, num_classes=10, latent_dim=8,
                analyses="modes,conditional,dscores", reference=reference,
                params=SMALL)  # fmt: skip
    cond, modes = _values(rep, "conditional"), _values(rep, "modes")
    shares = np.array([modes[f"share_{c}"] for c in range(10)])
    print(f"faithful: class_consistency {cond['class_consistency']:.4f}, modes_covered "
          f"{modes['modes_covered']:.0f}, shares {shares.min():.3f}-{shares.max():.3f}, "
          f"label_changes_fixed_y {cond['label_changes_fixed_y']:.3f} (baseline "
          f"{cond['label_changes_fixed_y_baseline']:.3f})")  # fmt: skip
    assert cond["class_consistency"] >= 0.97
    assert modes["modes_covered"] == 10 and np.abs(shares - 0.1).max() < 0.035
    assert not any(name == "conditional" for name, _ in rep.flags)
    assert {m.name for m in rep.result("conditional").metrics} == set(
        REGISTRY["conditional"].metric_names)  # fmt: skip
    assert rep.meta["conditional"] == {"num_classes": 10, "label_input": "index",
                                       "label_input_source": "auto: index worked",
                                       "labels": "uniform"}  # fmt: skip
    # a conditional D is fed real digits' own labels and the samples' conditioning labels
    d = _values(rep, "dscores")
    expected_test = torch.sigmoid(reference.test.labels.float() - 4.5).mean()
    assert d["d_test_mean"] == pytest.approx(float(expected_test), abs=1e-6)
    y = rep.result("conditional").tables["conditional_samples"]["label"].to_numpy()
    assert d["d_gen_mean"] == pytest.approx(float(torch.sigmoid(torch.tensor(y) - 4.5).mean()),
                                            abs=1e-6)  # fmt: skip
    assert rep.meta["discriminator"]["conditional"] is True
    grid = rep.result("conditional").arrays["grid"]
    assert grid.shape == (10, 8, 28, 28)


@pytest.mark.parametrize(("name", "how"), [("blind", "index"), ("blind_onehot", "onehot")])
def test_a_label_blind_generator_is_flagged(cgan, reference, name, how) -> None:
    rep = audit(f"{cgan}:{name}", n_samples=300, num_classes=10, latent_dim=8,
                analyses="conditional", reference=reference, params=SMALL)  # fmt: skip
    cond = _values(rep, "conditional")
    print(f"{name}: class_consistency {cond['class_consistency']:.4f}, label_changes_fixed_y "
          f"{cond['label_changes_fixed_y']:.3f}")  # fmt: skip
    assert 0.04 <= cond["class_consistency"] <= 0.17
    assert _flagged(rep, "class_consistency")
    assert rep.meta["conditional"]["label_input"] == how
    assert cond["label_changes_fixed_y"] > 2 * cond["label_changes_fixed_y_baseline"]


def test_a_class_collapsed_to_one_image_is_flagged(cgan, reference) -> None:
    rep = audit(f"{cgan}:collapsed3", n_samples=500, num_classes=10, latent_dim=8,
                analyses="conditional", reference=reference, params=SMALL)  # fmt: skip
    cond = _values(rep, "conditional")
    print(f"collapsed 3: class_recall_3 {cond['class_recall_3']:.4f}, class_recall_mean "
          f"{cond['class_recall_mean']:.4f}, class_vendi_3 {cond['class_vendi_3']:.3f} "
          f"(baseline {cond['class_vendi_3_baseline']:.3f})")  # fmt: skip
    flagged = [c for c in range(10) if _flagged(rep, f"class_recall_{c}")]
    assert flagged == [3]
    assert cond["class_vendi_3"] < 1.01 < cond["class_vendi_3_baseline"]


def test_the_command_line_writes_the_conditional_report(cgan, mnist_dir, tmp_path) -> None:
    out = tmp_path / "r"
    result = CliRunner().invoke(main, [
        "report", f"{cgan}:blind_onehot", "--num-classes", "10", "--label-input", "onehot",
        "--labels", "train", "--latent-dim", "8", "--n-samples", "120", "--analyses",
        "conditional", "--param", "conditional.pairs=4", "--param", "conditional.frames=4",
        "--data-dir", str(mnist_dir), "--quiet", "-o", str(out)])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "[conditional] The label does not set the digit" in result.output
    meta = json.loads((out / "meta.json").read_text())
    assert meta["conditional"]["label_input_source"] == "--label-input"
    assert meta["conditional"]["labels"] == "train"
    assert {"conditional_confusion.png", "conditional_class_grid.png"} <= {
        p.name for p in (out / "figures").iterdir()}  # fmt: skip


def test_an_unconditional_generator_skips_the_analysis(reference, tmp_path) -> None:
    from reference_gan.model import make_generator

    torch.save(make_generator().state_dict(), tmp_path / "G.pt")
    rep = audit(tmp_path / "G.pt", n_samples=20, analyses="conditional", reference=reference)
    assert "not conditional" in dict(rep.skipped)["conditional"]
