"""Typed inputs (issue 13, section 3): LoadOptions, a generator settled at load, one D-output
decision, one out-of-distribution rule."""

from __future__ import annotations

import dataclasses
import textwrap

import numpy as np
import pytest
import torch
from torch import nn

import ganalyze
from ganalyze import ood
from ganalyze.analyses import modes
from ganalyze.context import Context
from ganalyze.errors import InputError
from ganalyze.generators import Discriminator, Generator, LoadOptions, load_generator
from ganalyze.pipeline import audit
from ganalyze.reference import ReferenceData
from reference_gan.model import make_discriminator, make_generator

# LoadOptions: values checked where declared, names checked at the call


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("prior", "gaussian", r"Unknown prior 'gaussian'; expected normal or uniform"),
        ("output_range", "0,2", r"Unknown range '0,2'; expected one of auto, -1,1, 0,1 or 0,255"),
        ("d_input_range", "1,2", r"Unknown range '1,2'"),
        ("d_output", "prob", r"Unknown --d-output 'prob'; expected probs or logits"),
        ("latent_dim", 0, r"--latent-dim must be a positive integer.*got 0"),
        ("latent_dim", 2.5, r"--latent-dim must be a positive integer.*got 2.5"),
        ("timeout", -1, r"--timeout must be a number of seconds >= 0"),
    ],
)
def test_load_options_refuse_bad_values(field, value, message) -> None:
    with pytest.raises(InputError, match=message):
        LoadOptions(**{field: value})


def test_load_options_normalise_and_are_frozen() -> None:
    opts = LoadOptions(output_range="[-1, 1]", d_input_range="0-255", d_output="auto")
    assert (opts.output_range, opts.d_input_range, opts.d_output) == ("-1,1", "0,255", None)
    assert LoadOptions(output_range="auto").output_range is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        opts.prior = "uniform"
    assert ganalyze.LoadOptions is LoadOptions


def test_misspelt_options_fail_at_the_call(tmp_path) -> None:
    with pytest.raises(TypeError, match="discrimnator"):
        LoadOptions(discrimnator="d.pt")
    with pytest.raises(TypeError, match="discrimnator"):
        load_generator(tmp_path / "nothing.pt", discrimnator="d.pt")
    with pytest.raises(TypeError, match="discrimnator"):  # before anything is loaded
        audit(tmp_path / "nothing.pt", discrimnator="d.pt")


def test_keywords_and_options_build_the_same_generator(tmp_path) -> None:
    torch.manual_seed(0)
    path = tmp_path / "G.pt"
    torch.save(make_generator().state_dict(), path)
    by_kw = load_generator(path, prior="uniform", latent_dim=64)
    by_obj = load_generator(path, LoadOptions(prior="uniform", latent_dim=64))
    assert (by_kw.prior, by_kw.output_range) == (by_obj.prior, by_obj.output_range)
    assert torch.equal(by_kw.sample(20, seed=1)[1], by_obj.sample(20, seed=1)[1])
    load_generator(path, LoadOptions(prior="uniform"), prior="uniform")  # agreeing: fine
    with pytest.raises(TypeError, match="given twice.*prior='normal'"):
        load_generator(path, LoadOptions(prior="uniform"), prior="normal")


# Settled at load: range and native shape from a probe batch, before any sample


def _entry(tmp_path, body: str) -> str:
    path = tmp_path / "user.py"
    path.write_text("import torch\nCALLS = []\n" + textwrap.dedent(body))
    return f"{path}:g"


def test_range_and_native_shape_are_settled_at_load(tmp_path) -> None:
    spec = _entry(
        tmp_path,
        """
        def g(z):
            CALLS.append(z.clone())
            return (torch.sigmoid(z[:, :1].repeat(1, 784)) * 255).reshape(-1, 28, 28)
        """,
    )
    gen = load_generator(spec, latent_dim=7, seed=5)
    calls = gen.fn.__globals__["CALLS"]
    assert gen.output_range == "0,255" and gen.range_source == "auto"
    assert gen.native_shape == (28, 28) and gen.settled
    assert len(calls) == 1 and calls[0].shape == (1000, 7)  # one probe batch, no sample
    # the probe's latents are the audit's first 1,000 (an odd latent size included)
    z, _ = gen.sample(2000, seed=5)
    assert torch.equal(calls[0], z[:1000])


def test_a_state_dict_is_settled_before_sampling(tmp_path) -> None:
    torch.manual_seed(0)
    g_path, d_path = tmp_path / "G.pt", tmp_path / "D.pt"
    torch.save(make_generator().state_dict(), g_path)
    torch.save(make_discriminator().state_dict(), d_path)
    gen = load_generator(g_path, discriminator=d_path)
    assert (gen.output_range, gen.native_shape) == ("-1,1", (784,))  # Tanh, flat
    d = gen.discriminator  # bound at load to G's native form
    assert (d.input_range, d.input_shape) == ("-1,1", (784,))


def test_a_checkpoint_with_its_range_needs_no_probe(tiny_checkpoint) -> None:
    gen = load_generator(tiny_checkpoint)
    assert gen.range_source == "checkpoint" and gen.native_shape == (784,)


# D's output kind: decided in one place


def _logit_d() -> nn.Module:
    d = nn.Sequential(nn.Flatten(), nn.Linear(784, 1))
    nn.init.constant_(d[1].weight, 0.05)
    nn.init.constant_(d[1].bias, -3.0)
    return d


def test_d_ending_in_sigmoid_is_read_as_probabilities() -> None:
    calls = []
    module = nn.Sequential(nn.Flatten(), nn.Linear(784, 1), nn.Sigmoid())
    module.register_forward_hook(lambda *a: calls.append(1))
    d = Discriminator(module, "0,1", (1, 28, 28))
    assert d.output is None  # nothing decided before decide_output
    assert d.decide_output(torch.rand(50, 1, 28, 28)) == "probability"
    assert d.output_rule == "ends in a Sigmoid" and not calls  # decided without calling D


def test_d_returning_logits_is_read_as_logits() -> None:
    d = Discriminator(_logit_d(), "0,1", (1, 28, 28))
    real = torch.rand(50, 1, 28, 28)
    assert d.decide_output(real) == "logits"
    raw = d.raw(real)
    assert bool((raw < 0).any() | (raw > 1).any())
    torch.testing.assert_close(d.scores(real), torch.sigmoid(raw))


def test_d_output_option_forces_the_reading(tmp_path) -> None:
    torch.manual_seed(0)
    g_path, d_path = tmp_path / "G.pt", tmp_path / "D.pt"
    torch.save(make_generator().state_dict(), g_path)
    torch.save(make_discriminator().state_dict(), d_path)  # ends in a Sigmoid
    gen = load_generator(g_path, discriminator=d_path, d_output="logits")
    d = gen.discriminator
    x = torch.rand(20, 1, 28, 28)
    assert d.decide_output(x) == "logits" and d.output_rule == "--d-output"
    torch.testing.assert_close(d.scores(x), torch.sigmoid(d.raw(x)))
    auto = load_generator(g_path, discriminator=d_path).discriminator
    assert auto.decide_output(x) == "probability"


# The out-of-distribution rule: one function, used by the context and by modes


@pytest.fixture
def small_context(tmp_path, monkeypatch):
    monkeypatch.setenv("GANALYZE_CACHE", str(tmp_path / "cache"))
    rng = np.random.default_rng(0)
    blobs = (rng.random((10, 28, 28)) > 0.7).astype(np.uint8) * 255

    def digits(n: int) -> tuple[np.ndarray, np.ndarray]:
        labels = rng.integers(0, 10, n)
        noise = rng.integers(0, 40, (n, 28, 28))
        return np.clip(blobs[labels] + noise, 0, 255).astype(np.uint8), labels

    ref = ReferenceData.from_arrays(*digits(400), *digits(200))
    real = torch.from_numpy(digits(60)[0]).float().div(255).reshape(60, 1, 28, 28)
    noise = torch.rand(60, 1, 28, 28)
    images = torch.cat([real, noise])
    gen = Generator("planted", "planted", images=images, output_range="0,1", native_shape=(784,))
    return Context(gen, n_samples=120, reference=ref, progress=False)


def test_ood_rule_is_one_function_used_by_context_and_modes(small_context, monkeypatch) -> None:
    assert modes.unrecognizable is ood.unrecognizable
    assert modes.ood_thresholds is ood.ood_thresholds
    calls = []
    rule = ood.unrecognizable

    def spy(**kwargs):
        calls.append(len(kwargs["probs"]))
        return rule(**kwargs)

    monkeypatch.setattr(ood, "unrecognizable", spy)
    ctx = small_context
    result = modes.Modes().run(ctx)
    labels = ctx.sample_labels
    assert calls == [120, 120]  # modes' masks, then the context's labels: both by the rule
    table = result.tables["samples"]
    np.testing.assert_array_equal(table["unrecognizable"].to_numpy(), labels == ood.UNRECOGNIZABLE)
    assert result.metric("unrecognizable_rate").value == pytest.approx(np.mean(labels == 10))
    assert table["unrecognizable"].to_numpy()[60:].all()  # noise is no digit
    calls.clear()
    lazy = ood.unrecognizable_cheapest_first

    def lazy_spy(**kwargs):
        calls.append(len(kwargs["probs"]))
        return lazy(**kwargs)

    monkeypatch.setattr(ood, "unrecognizable_cheapest_first", lazy_spy)
    other = ctx.labels_of(ctx.images[:5])  # any other images: the same rule, cheapest first
    assert calls == [5]
    np.testing.assert_array_equal(other, labels[:5])
