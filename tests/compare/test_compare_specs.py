"""What `ganalyze compare` audits: specs, run folders and manifests expanded into entries, and
the one-line errors (naming the row or file) of bad ones, with nothing written."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from ganalyze.cli import main
from ganalyze.comparison.specs import expand_specs, folder_name
from ganalyze.errors import InputError


def _run_folder(root: Path, epochs=(1, 2, 3), latest_of: int | None = 3) -> Path:
    (root / "checkpoints").mkdir(parents=True)
    for e in epochs:
        (root / "checkpoints" / f"epoch_{e:04d}.pt").write_bytes(f"weights of epoch {e}".encode())
    if latest_of is not None:
        shutil.copyfile(root / "checkpoints" / f"epoch_{latest_of:04d}.pt", root / "latest.pt")
    (root / "config.json").write_text("{}")
    return root


def test_run_folder_by_epoch_latest_not_twice(tmp_path):
    run = _run_folder(tmp_path / "run", epochs=(10, 2, 1), latest_of=None)
    (run / "checkpoints" / "epoch_0010.pt").rename(run / "checkpoints" / "epoch_0003.pt")
    shutil.copyfile(run / "checkpoints" / "epoch_0003.pt", run / "latest.pt")
    (run / "checkpoints" / "notes.txt").write_text("not a checkpoint")
    entries = expand_specs([run])
    assert [(e.label, e.step) for e in entries] == [("epoch_0001", 1), ("epoch_0002", 2),
                                                    ("epoch_0003", 3)]  # fmt: skip
    assert all(Path(e.spec).is_absolute() for e in entries)


def test_mid_epoch_checkpoints_order_after_their_epoch(tmp_path):
    run = _run_folder(tmp_path / "run", epochs=(1, 2), latest_of=None)
    (run / "checkpoints" / "epoch_0001_step_00010.pt").write_bytes(b"mid")
    labels = [e.label for e in expand_specs([run])]
    assert labels == ["epoch_0001", "epoch_0001_step_00010", "epoch_0002"]


def test_run_folder_without_checkpoints_is_an_error(tmp_path):
    run = tmp_path / "empty_run"
    (run / "checkpoints").mkdir(parents=True)
    with pytest.raises(InputError, match="holds no checkpoints"):
        expand_specs([run])


def test_two_runs_get_distinct_labels(tmp_path):
    a, b = _run_folder(tmp_path / "a", (1,), 1), _run_folder(tmp_path / "b", (1,), 1)
    assert [e.label for e in expand_specs([a, b])] == ["a-epoch_0001", "b-epoch_0001"]


def _files(tmp_path: Path) -> Path:
    models = tmp_path / "models"
    models.mkdir()
    for name in ("G--1--10.ckpt", "D--1--10.ckpt", "G--1--20.ckpt", "D--1--20.ckpt"):
        (models / name).write_bytes(b"x")
    (models / "members.txt").write_text("1\n2\n3\n")
    return models


def test_csv_manifest_resolves_paths_against_its_folder(tmp_path):
    models = _files(tmp_path)
    manifest = models / "m.csv"
    manifest.write_text("spec,discriminator,step,latent_dim,output_range,train_indices\n"
                        "G--1--10.ckpt,D--1--10.ckpt,10,100,-1,1,members.txt\n"
                        .replace("-1,1,members", '"-1,1",members') +
                        "G--1--20.ckpt,D--1--20.ckpt,20,100,,\n")  # fmt: skip
    entries = expand_specs([manifest])
    assert [(e.label, e.step) for e in entries] == [("G--1--10", 10), ("G--1--20", 20)]
    first = entries[0]
    assert first.spec == str((models / "G--1--10.ckpt").resolve())
    assert first.load == {"discriminator": str((models / "D--1--10.ckpt").resolve()),
                          "latent_dim": 100, "output_range": "-1,1"}  # fmt: skip
    assert first.train_indices == str((models / "members.txt").resolve())
    assert entries[1].load == {"discriminator": str((models / "D--1--20.ckpt").resolve()),
                               "latent_dim": 100}  # fmt: skip


def test_toml_manifest(tmp_path):
    models = _files(tmp_path)
    manifest = models / "m.toml"
    manifest.write_text('[[generator]]\nspec = "G--1--10.ckpt"\nlabel = "early"\nstep = 10\n'
                        'discriminator = "D--1--10.ckpt"\n\n[[generator]]\n'
                        'spec = "G--1--20.ckpt"\nlabel = "late"\nstep = 20\n')  # fmt: skip
    entries = expand_specs([manifest])
    assert [(e.label, e.step, e.labelled) for e in entries] == [("early", 10, True),
                                                                ("late", 20, True)]  # fmt: skip


def test_entry_point_with_weights_is_labelled_by_its_weights(tmp_path):
    (tmp_path / "net.py").write_text("def make(): pass\n")
    (tmp_path / "a.pt").write_bytes(b"x")
    (tmp_path / "b.pt").write_bytes(b"x")
    manifest = tmp_path / "m.csv"
    manifest.write_text("spec,weights\nnet.py:make,a.pt\nnet.py:make,b.pt\n")
    labels = [e.label for e in expand_specs([manifest])]
    assert labels == ["net:make+a", "net:make+b"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("label,step\nx,1\n", r"m\.csv has no column spec"),
        ("spec,colour\nG--1--10.ckpt,red\n", r"m\.csv, row 2: unknown column\(s\) 'colour'"),
        ("spec\nG--1--10.ckpt\nmissing.ckpt\n", r"m\.csv, row 3: spec 'missing.ckpt' does not"),
        ("spec,discriminator\nG--1--10.ckpt,nope.ckpt\n", r"row 2: discriminator 'nope.ckpt'"),
        ("spec,step\nG--1--10.ckpt,ten\n", r"row 2: step must be an integer"),
        ("spec,latent_dim\nG--1--10.ckpt,0\n", r"row 2: latent_dim must be an integer of at"),
        ("spec,prior\nG--1--10.ckpt,cauchy\n", r"row 2: prior must be one of normal, uniform"),
        ("spec,label\nG--1--10.ckpt,same\nG--1--20.ckpt,same\n", r"Duplicate label 'same'"),
        ("spec\n,\n", r"row 2: more values than|row 2: no spec"),
        ("spec\n", r"lists no generators"),
    ],
)
def test_bad_manifests_name_their_row(tmp_path, text, message):
    models = _files(tmp_path)
    (models / "m.csv").write_text(text)
    with pytest.raises(InputError, match=message):
        expand_specs([models / "m.csv"])


def test_bad_toml_manifest(tmp_path):
    (tmp_path / "m.toml").write_text("[generator\nspec=1")
    with pytest.raises(InputError, match="cannot be read as TOML"):
        expand_specs([tmp_path / "m.toml"])
    (tmp_path / "m.toml").write_text('title = "x"\n')
    with pytest.raises(InputError, match=r"expected only \[\[generator\]\] tables"):
        expand_specs([tmp_path / "m.toml"])


def test_missing_spec_and_no_spec(tmp_path):
    with pytest.raises(InputError, match="argument 2: spec .*does not exist"):
        expand_specs([tmp_path, tmp_path / "nothing.pt"])
    with pytest.raises(InputError, match="Nothing to compare"):
        expand_specs([])


def test_folder_names_are_safe():
    assert folder_name("../../etc/passwd") == "etc_passwd"
    assert folder_name("DCGAN (ours)") == "DCGAN_ours"
    assert folder_name("...") == "generator"


def test_cli_bad_manifest_is_one_error_line_and_writes_nothing(tmp_path):
    models = _files(tmp_path)
    (models / "m.csv").write_text("spec,discriminator\nG--1--10.ckpt,D--1--10.ckpt\n"
                                  "G--1--20.ckpt,D--9.ckpt\n")  # fmt: skip
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["compare", str(models / "m.csv"), "-o", str(out)])
    assert result.exit_code != 0
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error:") and "row 3" in lines[0]
    assert "Traceback" not in result.output
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["models"]
