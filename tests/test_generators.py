"""One loader for every kind of source, and its messages for bad ones."""

from __future__ import annotations

import logging
import textwrap

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from ganalyze.errors import InputError, LoaderError
from ganalyze.generators import LoadOptions, load_generator
from reference_gan.model import make_discriminator, make_generator


def _check_canonical(gen, n=50, latent=64):
    z, x = gen.sample(n, seed=3)
    assert x.dtype == torch.float32 and x.shape == (n, 1, 28, 28)
    assert float(x.min()) >= 0 and float(x.max()) <= 1
    if z is not None:
        assert z.shape == (n, latent)
        z2, x2 = gen.sample(n, seed=3)
        assert torch.equal(z, z2) and torch.equal(x, x2)  # deterministic per seed
    return z, x


@pytest.fixture
def reference_g():
    torch.manual_seed(0)
    return make_generator().eval()


def test_ganalyze_checkpoint_carries_g_d_and_history(tiny_checkpoint) -> None:
    gen = load_generator(tiny_checkpoint)
    assert gen.kind == "ganalyze_checkpoint"
    assert gen.latent_dim == 64 and gen.output_range == "-1,1"
    z, x = _check_canonical(gen)
    assert len(gen.info["history"]) == 2
    assert torch.equal(gen.info["train_indices"], torch.arange(2048))
    d = gen.bound_discriminator()
    assert d.input_range == "-1,1" and d.input_shape == (784,)
    assert gen.info["sha256"] and len(gen.info["sha256"]) == 64


@pytest.mark.parametrize("legacy", [True, False])
def test_bare_state_dict_with_discriminator_file(tmp_path, reference_g, legacy) -> None:
    g_path, d_path = tmp_path / "G.ckpt", tmp_path / "D.ckpt"
    torch.save(reference_g.state_dict(), g_path, _use_new_zipfile_serialization=not legacy)
    torch.save(make_discriminator().state_dict(), d_path, _use_new_zipfile_serialization=not legacy)
    gen = load_generator(g_path, discriminator=d_path)
    assert gen.kind == "state_dict" and gen.latent_dim == 64
    z, x = _check_canonical(gen)
    assert gen.output_range == "-1,1"  # detected from Tanh outputs
    expected = (reference_g(z).reshape(-1, 1, 28, 28) + 1) / 2
    torch.testing.assert_close(x, expected.clamp(0, 1))
    assert gen.bound_discriminator().input_range == "-1,1"


class _Recorder(nn.Module):
    """A D that remembers the range and shape it was fed."""

    def __init__(self):
        super().__init__()
        self.seen = None

    def forward(self, x):
        self.seen = (tuple(x.shape[1:]), float(x.min()), float(x.max()))
        return torch.full((x.shape[0], 1), 0.5)


def test_discriminator_is_fed_its_native_range(tmp_path, reference_g) -> None:
    path = tmp_path / "G.pt"
    torch.save(reference_g.state_dict(), path)
    gen = load_generator(path)
    rec = _Recorder()
    from ganalyze.generators import Discriminator

    gen.discriminator = Discriminator(rec, None, None)
    _, x = gen.sample(100, seed=0)
    d = gen.bound_discriminator()
    d.scores(x)
    shape, lo, hi = rec.seen
    assert shape == (784,) and lo < -0.2 and hi <= 1.0  # [-1, 1]: a [0, 1] feed is never < 0
    d.input_range = "0,255"
    d.scores(x)
    assert rec.seen[2] > 100


@pytest.mark.filterwarnings("ignore:`torch.jit:FutureWarning")
def test_torchscript_and_torch_export(tmp_path, reference_g) -> None:
    ts = tmp_path / "g.ts"
    torch.jit.save(torch.jit.script(reference_g), ts)
    gen = load_generator(ts)
    assert gen.kind == "torchscript" and gen.latent_dim == 64
    _check_canonical(gen)
    pt2 = tmp_path / "g.pt2"
    torch.export.save(torch.export.export(reference_g, (torch.randn(16, 64),)), pt2)
    gen = load_generator(pt2)
    assert gen.kind == "torch_export" and gen.latent_dim == 64
    z, x = _check_canonical(gen, n=50)  # exported with a static batch of 16: padded calls
    torch.testing.assert_close(x, ((reference_g(z) + 1) / 2).reshape(-1, 1, 28, 28).clamp(0, 1))


ENTRY = textwrap.dedent("""
    import torch
    from torch import nn

    class Net(nn.Module):
        latent_dim = 8
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(8, 784)
        def forward(self, z):
            return torch.sigmoid(self.lin(z)).reshape(-1, 28, 28)

    net = Net()

    def make():
        return Net()

    def draw(z):
        return (z[:, :1] > 0).float().expand(-1, 784) * 255.0
""")


@pytest.mark.parametrize(("name", "latent"), [("Net", 8), ("net", 8), ("make", 8), ("draw", None)])
def test_entry_points(tmp_path, name, latent) -> None:
    (tmp_path / "mygen.py").write_text(ENTRY)
    gen = load_generator(f"{tmp_path / 'mygen.py'}:{name}", latent_dim=None if latent else 4)
    assert gen.kind == "entry_point"
    _check_canonical(gen, latent=latent or 4)
    if name == "draw":
        assert gen.output_range == "0,255"


def test_entry_point_with_weights(tmp_path) -> None:
    (tmp_path / "mygen.py").write_text(ENTRY)
    torch.manual_seed(5)
    lin = nn.Linear(8, 784)
    torch.save(
        {"lin.weight": lin.weight.detach(), "lin.bias": torch.full((784,), 9.0)}, tmp_path / "w.pt"
    )
    gen = load_generator(f"{tmp_path / 'mygen.py'}:Net", weights=tmp_path / "w.pt")
    _, x = gen.sample(20, seed=0)
    assert float(x.mean()) > 0.95  # bias 9 through a sigmoid: the weights were loaded
    with pytest.raises(LoaderError, match="does not fit"):
        torch.save({"other": torch.zeros(1)}, tmp_path / "bad.pt")
        load_generator(f"{tmp_path / 'mygen.py'}:Net", weights=tmp_path / "bad.pt")


def test_module_entry_point() -> None:
    gen = load_generator("reference_gan.model:make_generator")
    assert gen.latent_dim == 64
    _check_canonical(gen)


def test_samples_npz_npy_and_png_folder(tmp_path) -> None:
    rng = np.random.default_rng(0)
    imgs = (rng.random((30, 28, 28)) * 255).astype(np.uint8)
    np.savez(tmp_path / "a.npz", images=imgs, labels=np.zeros(30))
    np.savez(tmp_path / "b.npz", x=imgs.reshape(30, 784).astype(np.float32) / 255)
    np.save(tmp_path / "c.npy", imgs[:, None])
    folder = tmp_path / "pngs"
    folder.mkdir()
    for i in range(5):
        Image.fromarray(imgs[i]).save(folder / f"{i:03d}.png")
    for spec, n in (
        (tmp_path / "a.npz", 30),
        (tmp_path / "b.npz", 30),
        (tmp_path / "c.npy", 30),
        (folder, 5),
    ):
        gen = load_generator(spec)
        assert gen.kind == "samples" and not gen.has_generator
        z, x = gen.sample(n, seed=0)
        assert z is None and x.shape == (n, 1, 28, 28)
        np.testing.assert_allclose(x[:5, 0].numpy(), imgs[:5] / 255, atol=1e-6)
    sub = load_generator(tmp_path / "a.npz").sample(10, seed=1)[1]
    assert sub.shape == (10, 1, 28, 28)
    with pytest.raises(InputError, match="more than the 30 images"):
        load_generator(tmp_path / "a.npz").sample(31, seed=0)
    np.savez(tmp_path / "two.npz", x=imgs, y=imgs)
    with pytest.raises(LoaderError, match=r"\['x', 'y'\].*'images'"):
        load_generator(tmp_path / "two.npz")


def test_wrong_shape_names_the_accepted_shapes(tmp_path) -> None:
    np.save(tmp_path / "two.npy", np.zeros((16, 2, 32, 32), np.float32))
    with pytest.raises(InputError, match=r"\(16, 2, 32, 32\); expected \(n, 784\), \(n, H, W\)"):
        load_generator(tmp_path / "two.npy")
    np.save(tmp_path / "rgb.npy", np.zeros((16, 3, 32, 32), np.float32))
    with pytest.raises(InputError, match=r"\(16, 3, 32, 32\); expected \(n, 784\), \(n, 28, 28\)"):
        load_generator(tmp_path / "rgb.npy", LoadOptions(resize="none"))


def _entry(tmp_path, body: str, name: str = "g") -> str:
    (tmp_path / "bad.py").write_text("import torch\n" + textwrap.dedent(body))
    return f"{tmp_path / 'bad.py'}:{name}"


def test_nan_outputs_are_counted(tmp_path) -> None:
    spec = _entry(
        tmp_path,
        """
        def g(z):
            x = torch.zeros(len(z), 784)
            x[:, :3] = float('nan')
            return x
    """,
    )
    with pytest.raises(InputError, match="contains 30 NaN or Inf values"):
        load_generator(spec, latent_dim=4).sample(10, seed=0)


def test_out_of_range_values_are_clipped_with_a_count(tmp_path, caplog) -> None:
    spec = _entry(
        tmp_path,
        """
        def g(z):
            x = torch.full((len(z), 784), 0.5)
            x[:, 0] = 1.2
            return x
    """,
    )
    with caplog.at_level(logging.WARNING):
        _, x = load_generator(spec, latent_dim=4).sample(10, seed=0)
    assert float(x.max()) == 1.0
    assert "10 values (of 7840) fell outside the 0,1 range and were clipped" in caplog.text


def test_wrong_latent_size_says_what_was_tried(tmp_path, reference_g) -> None:
    path = tmp_path / "G.pt"
    torch.save(reference_g.state_dict(), path)
    # the probe batch of 1,000 latents that settles the output range fails at load
    with pytest.raises(LoaderError, match=r"latents of shape \(1000, 32\).*--latent-dim"):
        load_generator(path, latent_dim=32)


def test_unreadable_file_lists_every_accepted_form(tmp_path) -> None:
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"\x00\x01not a model")
    with pytest.raises(LoaderError, match="TorchScript.*torch.export.*entry.*npz.*PNG"):
        load_generator(junk)
    with pytest.raises(LoaderError, match="does not exist.*accepts"):
        load_generator(tmp_path / "missing.pt")


def test_pickled_module_is_refused_unless_trusted(tmp_path, reference_g) -> None:
    path = tmp_path / "whole.pt"
    torch.save(reference_g, path)
    with pytest.raises(
        LoaderError,
        match=r"module:Class --weights FILE.*TorchScript.*torch\.export.*--trust-pickle",
    ):
        load_generator(path)
    gen = load_generator(path, trust_pickle=True)
    _check_canonical(gen)


def test_output_range_option_overrides_detection(tmp_path) -> None:
    x = np.full((10, 784), 0.2, np.float32)
    np.save(tmp_path / "s.npy", x)
    gen = load_generator(tmp_path / "s.npy", output_range="-1,1")
    assert gen.output_range == "-1,1" and gen.range_source == "option"
    np.testing.assert_allclose(gen.sample(10)[1].numpy(), 0.6, rtol=1e-6)
