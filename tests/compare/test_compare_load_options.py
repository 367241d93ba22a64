"""Loading options in `ganalyze compare`: every load option as a manifest column (checked as
LoadOptions checks it, errors naming the row), and --num-classes / --label-input / --labels for
every generator, part of each audit's cache key."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

import ganalyze
from ganalyze.cli import main
from ganalyze.comparison import _with_defaults
from ganalyze.comparison.runner import Settings, cache_key
from ganalyze.comparison.specs import expand_specs
from ganalyze.errors import InputError

STRIPES = '''
import torch


def g(z, y):
    """Row 2 + 2y lit: the label G was given can be read back from the image."""
    x = torch.zeros(z.shape[0], 1, 28, 28) + 0 * z[:, :1, None, None]
    x[torch.arange(len(y)), 0, 2 + 2 * y.long()] = 1.0
    return x
'''


def _files(root: Path) -> None:
    (root / "gen.py").write_text(textwrap.dedent(STRIPES))
    (root / "d.pth").write_bytes(b"not read while parsing")
    (root / "w.pth").write_bytes(b"not read while parsing")


def test_csv_columns_carry_every_load_option(tmp_path) -> None:
    _files(tmp_path)
    (tmp_path / "m.csv").write_text(
        "spec,label,num_classes,label_input,labels,latent_shape,resize,init_kwargs\n"
        'gen.py:g,a,10,onehot,train,"64,1,1",crop,"{""hidden"": 8}"\n'
        "gen.py:g,b,,,,,,\n"
    )
    a, b = expand_specs([tmp_path / "m.csv"])
    assert a.load == {"num_classes": 10, "label_input": "onehot", "labels": "train",
                      "latent_shape": "64,1,1", "resize": "crop",
                      "init_kwargs": '{"hidden": 8}'}  # fmt: skip
    assert b.load == {}  # empty cells: the defaults


def test_toml_arrays_and_tables_are_shapes_and_kwargs(tmp_path) -> None:
    _files(tmp_path)
    (tmp_path / "m.toml").write_text(
        textwrap.dedent("""
        [[generator]]
        spec = "gen.py:g"
        discriminator = "gen.py"
        d_weights = "d.pth"
        latent_shape = [100, 1, 1]
        d_input_shape = [1, 64, 64]
        init_kwargs = { hidden = 8, name = "x" }
    """)
    )
    (entry,) = expand_specs([tmp_path / "m.toml"])
    assert entry.load["latent_shape"] == "100,1,1" and entry.load["d_input_shape"] == "1,64,64"
    assert entry.load["init_kwargs"] == {"hidden": 8, "name": "x"}
    assert entry.load["d_weights"] == str((tmp_path / "d.pth").resolve())


@pytest.mark.parametrize(
    ("row", "words"),
    [
        ("gen.py:g,bogus,,", ["row 2", "label_input", "auto, index, onehot", "bogus"]),
        ("gen.py:g,,0,", ["row 2", "num_classes"]),
        ("gen.py:g,,,0", ["row 2", "latent-shape"]),
    ],
)
def test_a_bad_option_names_its_row(tmp_path, row, words) -> None:
    _files(tmp_path)
    (tmp_path / "m.csv").write_text(f"spec,label_input,num_classes,latent_shape\n{row}\n")
    with pytest.raises(InputError) as err:
        expand_specs([tmp_path / "m.csv"])
    for word in words:
        assert word in str(err.value)


def test_d_weights_without_a_discriminator_names_its_row(tmp_path) -> None:
    _files(tmp_path)
    (tmp_path / "m.csv").write_text("spec,d_weights\ngen.py:g,d.pth\n")
    with pytest.raises(InputError, match="row 2: --d-weights"):
        expand_specs([tmp_path / "m.csv"])


def test_defaults_apply_to_every_row_that_does_not_set_its_own(tmp_path) -> None:
    _files(tmp_path)
    (tmp_path / "m.csv").write_text("spec,label,labels\ngen.py:g,a,train\ngen.py:g,b,\n")
    a, b = _with_defaults(expand_specs([tmp_path / "m.csv"]),
                          {"num_classes": 10, "labels": "uniform"})  # fmt: skip
    assert a.load == {"num_classes": 10, "labels": "train"}
    assert b.load == {"num_classes": 10, "labels": "uniform"}
    with pytest.raises(TypeError):
        _with_defaults([a], {"num_clases": 10})
    with pytest.raises(InputError, match="label"):
        _with_defaults([a], {"num_classes": 10, "label_input": "bits"})
    # part of the cache key: a conditional audit is never reused as another
    keys = {cache_key(e, Settings(), "ref") for e in
            (a, b, *_with_defaults([b], {"label_input": "onehot"}))}  # fmt: skip
    assert len(keys) == 3


@pytest.mark.mnist
def test_compare_audits_conditional_generators_with_their_labels(tmp_path, mnist_dir) -> None:
    _files(tmp_path)
    spec = f"{tmp_path / 'gen.py'}:g"
    c = ganalyze.compare([spec], n_samples=200, analyses="modes", data_dir=mnist_dir,
                         load={"num_classes": 10, "labels": "train", "latent_dim": 64},
                         cache=False)  # fmt: skip
    (report,) = c.reports.values()
    assert report.meta["conditional"]["num_classes"] == 10
    (tmp_path / "m.csv").write_text("spec,label,latent_dim\ngen.py:g,stripes,64\n")
    args = [
        "compare",
        str(tmp_path / "m.csv"),
        "--n-samples",
        "100",
        "--analyses",
        "modes",
        "--quiet",
        "--no-cache",
        "--data-dir",
        str(mnist_dir),
        "--num-classes",
        "10",
    ]
    result = CliRunner().invoke(main, [*args, "-o", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    meta = ganalyze.Comparison.load(tmp_path / "out").reports["stripes"].meta \
        if hasattr(ganalyze.Comparison, "load") else None  # fmt: skip
    if meta is None:
        import json

        meta = json.loads((tmp_path / "out" / "runs" / "stripes" / "meta.json").read_text())
    assert meta["conditional"]["num_classes"] == 10
    # the same manifest without --num-classes: the generator needs a label, one clear error
    result = CliRunner().invoke(main, [*args[:-2], "-o", str(tmp_path / "out2")])
    lines = result.output.strip().splitlines()
    assert result.exit_code != 0 and len(lines) == 1 and lines[0].startswith("Error:"), lines
    assert "--num-classes" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "out2").exists()
