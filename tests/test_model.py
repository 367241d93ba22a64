"""The reference architecture: shapes, ranges and state_dict compatibility."""

from __future__ import annotations

import pickle

import pytest
import torch
from torch import nn

from reference_gan.model import make_discriminator, make_generator


def test_generator_maps_prior_to_784_pixels_in_tanh_range() -> None:
    torch.manual_seed(0)
    G = make_generator()
    x = G(torch.randn(16, 64) * 10)  # large latents push Tanh to its limits
    assert x.shape == (16, 784)
    assert x.min() >= -1 and x.max() <= 1
    assert x.abs().max() > 0.99


def test_discriminator_outputs_probabilities() -> None:
    torch.manual_seed(0)
    D = make_discriminator()
    p = D(torch.rand(8, 784) * 2 - 1)
    assert p.shape == (8, 1)
    assert ((p > 0) & (p < 1)).all()


def test_layer_order_matches_the_study() -> None:
    G, D = make_generator(), make_discriminator()
    assert [type(m) for m in G] == [nn.Linear, nn.ReLU, nn.Linear, nn.ReLU, nn.Linear, nn.Tanh]
    assert [(m.in_features, m.out_features) for m in G if isinstance(m, nn.Linear)] == [
        (64, 256),
        (256, 256),
        (256, 784),
    ]
    assert [type(m) for m in D] == [
        nn.Linear,
        nn.LeakyReLU,
        nn.Linear,
        nn.LeakyReLU,
        nn.Linear,
        nn.Sigmoid,
    ]
    assert D[1].negative_slope == 0.2 and D[3].negative_slope == 0.2
    assert [(m.in_features, m.out_features) for m in D if isinstance(m, nn.Linear)] == [
        (784, 256),
        (256, 256),
        (256, 1),
    ]


def _script_style_models() -> tuple[nn.Module, nn.Module]:
    """G and D as simple MNIST GAN scripts write them (the keys the study's files have)."""
    G = nn.Sequential(
        nn.Linear(64, 256),
        nn.ReLU(),
        nn.Linear(256, 256),
        nn.ReLU(),
        nn.Linear(256, 784),
        nn.Tanh(),
    )
    D = nn.Sequential(
        nn.Linear(784, 256),
        nn.LeakyReLU(0.2),
        nn.Linear(256, 256),
        nn.LeakyReLU(0.2),
        nn.Linear(256, 1),
        nn.Sigmoid(),
    )
    return G, D


@pytest.mark.parametrize("legacy", [False, True], ids=["zipfile", "legacy-pre-1.6"])
def test_bare_state_dicts_load_with_weights_only(tmp_path, legacy: bool) -> None:
    torch.manual_seed(1)
    G_src, D_src = _script_style_models()
    for name, src, make in (("G", G_src, make_generator), ("D", D_src, make_discriminator)):
        path = tmp_path / f"{name}.ckpt"
        torch.save(src.state_dict(), path, _use_new_zipfile_serialization=not legacy)
        state = torch.load(path, weights_only=True)
        assert sorted(state) == ["0.bias", "0.weight", "2.bias", "2.weight", "4.bias", "4.weight"]
        model = make()
        model.load_state_dict(state)  # strict: same keys, same shapes
        x = torch.randn(4, 64) if name == "G" else torch.rand(4, 784)
        torch.testing.assert_close(model(x), src(x), rtol=0, atol=0)


def test_whole_pickled_module_is_refused_by_weights_only(tmp_path) -> None:
    path = tmp_path / "G.pt"
    torch.save(make_generator(), path)
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path, weights_only=True)
