"""`ganalyze compare` on planted truth: a copier against MNIST test halves, checkpoints of one
run on the same latents, reuse of cached audits, and a Dask cluster that equals the serial run."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from ganalyze.cli import main
from ganalyze.comparison import compare
from ganalyze.report import read_metrics

QUICK = {"n_samples": 300, "analyses": "memorization,dscores"}


@pytest.fixture(scope="module")
def sample_files(reference, test_split, tmp_path_factory) -> dict[str, Path]:
    """A copier of 1,000 MNIST-train digits, and MNIST test's two halves, as samples files."""
    folder = tmp_path_factory.mktemp("samples")
    half_a, half_b = test_split
    rng = np.random.default_rng(7)
    files = {
        "copier": reference.train.images.numpy()[rng.choice(60000, 1000, replace=False)],
        "half_a": reference.test.images.numpy()[half_a[:1000]],
        "half_b": reference.test.images.numpy()[half_b[:1000]],
    }
    paths = {}
    for name, images in files.items():
        paths[name] = folder / f"{name}.npy"
        np.save(paths[name], images)
    return paths


def _row(comparisons: pd.DataFrame, a: str, b: str, metric: str, space: str = "pixel"):
    rows = comparisons[(comparisons.metric == metric) & (comparisons.feature_space == space)
                       & (comparisons.label_a == a) & (comparisons.label_b == b)]  # fmt: skip
    assert len(rows) == 1, comparisons[["label_a", "label_b", "metric"]]
    return rows.iloc[0]


def test_copier_differs_from_mnist_test_and_the_halves_do_not(sample_files, tmp_path):
    out = tmp_path / "cmp"
    c = compare([sample_files[k] for k in ("copier", "half_a", "half_b")], out=out,
                analyses="modes,memorization", n_samples=600)  # fmt: skip
    assert c.mode == "models" and not c.failures
    copier = _row(c.comparisons, "copier", "half_a", "copy_rate")
    assert copier.excludes_zero and copier.better == "half_a"
    assert copier.difference < -0.5  # the copier copies nearly every sample, MNIST test ~1%
    assert "bootstrap" in copier.method and not copier.paired  # samples files: not paired
    halves = _row(c.comparisons, "half_a", "half_b", "copy_rate")
    assert not halves.excludes_zero and halves.ci_low < 0 < halves.ci_high
    # a metric without a per-sample form says how its interval was formed
    auc_free = c.comparisons[c.comparisons.metric == "share_1"]
    assert auc_free.method.str.contains("MOVER").all()
    # metrics.csv is the reports' metrics.csv concatenated, label, step and spec added
    written = pd.read_csv(out / "metrics.csv", keep_default_na=False, na_values={
        c: [""] for c in ("value", "ci_low", "ci_high", "target", "step", "n_real", "n_fake",
                          "higher_is_better")})  # fmt: skip
    parts = []
    for e in c.entries:
        part = pd.read_csv(
            out / "runs" / e.folder / "metrics.csv",
            keep_default_na=False,
            na_values={
                col: [""]
                for col in written.columns
                if col not in ("feature_space", "spec", "label")
            },
        )
        part.insert(0, "spec", e.spec)
        part.insert(0, "step", np.nan)
        part.insert(0, "label", e.label)
        parts.append(part)
    pd.testing.assert_frame_equal(written, pd.concat(parts, ignore_index=True),
                                  check_dtype=False)  # fmt: skip
    assert (out / "comparisons.csv").is_file() and (out / "metrics.parquet").is_file()
    assert json.loads((out / "metrics.json").read_text())[0]["label"] == "copier"
    assert (out / "index.html").is_file()
    for e in c.entries:  # each generator's own report, as `ganalyze report` writes it
        assert (out / "runs" / e.folder / "index.html").is_file()
        assert read_metrics(out / "runs" / e.folder / "metrics.csv").shape[0] > 10


def _run_copy(tiny_checkpoint: Path, tmp_path: Path, epochs: int) -> Path:
    """A run folder holding ``epochs`` checkpoints of one run (copies, renamed by epoch)."""
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True, exist_ok=True)
    source = sorted(Path(tiny_checkpoint).parent.glob("epoch_*.pt"))
    for e in range(1, epochs + 1):
        target = run / "checkpoints" / f"epoch_{e:04d}.pt"
        if not target.exists():
            shutil.copyfile(source[(e - 1) % len(source)], target)
            with open(target, "ab") as fh:  # a distinct file (zip archives allow trailing bytes)
                fh.write(bytes([e]))
    return run


def test_checkpoints_share_latents_and_reruns_audit_only_new_ones(tiny_checkpoint, tmp_path):
    run = _run_copy(tiny_checkpoint, tmp_path, 2)
    first = compare(run, out=tmp_path / "cmp", **QUICK)
    assert first.mode == "trajectory" and first.meta["audited"] == ["epoch_0001", "epoch_0002"]
    z = {label: r.meta["latents_sha256"] for label, r in first.reports.items()}
    assert z["epoch_0001"] == z["epoch_0002"] is not None  # paired: the same latents
    assert first.comparisons[first.comparisons.metric == "copy_rate"].paired.all()
    _run_copy(tiny_checkpoint, tmp_path, 3)  # training went on: one more checkpoint
    result = CliRunner().invoke(main, ["compare", str(run), "-o", str(tmp_path / "cmp"),
                                       "--n-samples", "300", "--analyses", QUICK["analyses"],
                                       "--quiet"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "Audited 1, reused 2 from the cache." in result.output
    meta = json.loads((tmp_path / "cmp" / "meta.json").read_text())
    assert meta["audited"] == ["epoch_0003"] and meta["reused"] == ["epoch_0001", "epoch_0002"]
    steps = pd.read_csv(tmp_path / "cmp" / "metrics.csv").groupby("label").step.first()
    assert steps.to_dict() == {"epoch_0001": 1, "epoch_0002": 2, "epoch_0003": 3}


def test_a_failing_generator_is_reported_and_the_rest_completes(tiny_checkpoint, tmp_path):
    bad = tmp_path / "broken.pt"
    bad.write_bytes(b"PK\x03\x04 not a checkpoint")
    c = compare([tiny_checkpoint, bad], out=tmp_path / "cmp", **QUICK)
    assert list(c.reports) == [Path(tiny_checkpoint).stem]
    assert "broken" in c.failures and c.failures["broken"]
    assert "broken" in (tmp_path / "cmp" / "index.html").read_text()


def test_a_serial_comparison_lets_go_of_its_reference_data(tiny_checkpoint, tmp_path,
                                                           monkeypatch):  # fmt: skip
    """MNIST and its neighbour indexes (about 500 MB) live as long as a serial comparison, not
    as long as the process that ran it."""
    import gc
    import weakref

    from ganalyze import reference as reference_module
    from ganalyze.comparison import runner

    made = []

    class Tracked(reference_module.ReferenceData):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            made.append(weakref.ref(self))

    monkeypatch.setattr(reference_module, "ReferenceData", Tracked)
    monkeypatch.setattr(runner, "_REFERENCES", {})
    c = compare(_run_copy(tiny_checkpoint, tmp_path, 2), out=tmp_path / "cmp", cache=False,
                **QUICK)  # fmt: skip
    assert len(c.reports) == 2 and not c.failures
    gc.collect()
    assert len(made) == 1, "one reference for the whole comparison"
    assert made[0]() is None and runner._REFERENCES == {}


def test_unreadable_mnist_is_each_audits_error(tmp_path, monkeypatch):
    """A serial comparison without MNIST (offline, no copy) reports it for every generator, as
    worker processes do, and writes nothing."""
    import ganalyze.data as data_mod
    from ganalyze.errors import InputError

    def offline(root):
        raise OSError("Temporary failure in name resolution")

    monkeypatch.setattr(data_mod, "_download", offline)
    for name in ("a", "b"):
        np.save(tmp_path / f"{name}.npy", np.zeros((20, 28, 28), np.uint8))
    with pytest.raises(InputError) as err:
        compare([tmp_path / "a.npy", tmp_path / "b.npy"], out=tmp_path / "cmp", n_samples=20,
                analyses="modes", data_dir=tmp_path / "nodata")  # fmt: skip
    message = str(err.value)
    assert message.startswith("No audit completed: all 2 generators (a, b) failed with MNIST not")
    assert message.count("MNIST not found in") == 1  # one cause, said once
    assert not (tmp_path / "cmp").exists()


KILLER = "import os\n\n\ndef make():\n    os._exit(3)  # the worker process dies\n"


def test_local_processes_and_dask_equal_the_serial_run(tiny_checkpoint, tmp_path):
    """--workers 2 and a Dask LocalCluster of 2 workers give the serial run's rows; a task that
    raises (a broken file) or kills its worker (os._exit in the factory) is reported for its
    generator while the rest completes."""
    distributed = pytest.importorskip("distributed")
    import dask

    run = _run_copy(tiny_checkpoint, tmp_path, 2)
    bad = tmp_path / "broken.pt"
    bad.write_bytes(b"garbage")
    (tmp_path / "killer.py").write_text(KILLER)
    killer = f"{tmp_path / 'killer.py'}:make"
    serial = compare([run, bad], out=tmp_path / "serial", cache=False, **QUICK)
    assert set(serial.failures) == {"broken"}
    local = compare([run, bad, killer], out=tmp_path / "local", cache=False, workers=2, **QUICK)
    assert local.meta["executor"] == "processes"
    cluster_options = {"n_workers": 2, "threads_per_worker": 1, "processes": True,
                       "host": "127.0.0.1", "dashboard_address": None}  # fmt: skip
    with (dask.config.set({"distributed.scheduler.allowed-failures": 0,
                          # one task at a time per worker: a death suspects its task alone
                          "distributed.scheduler.worker-saturation": 1.0}),
          distributed.LocalCluster(**cluster_options) as cluster):  # fmt: skip
        remote = compare([run, bad, killer], out=tmp_path / "dask", cache=False,
                         scheduler=cluster.scheduler_address, **QUICK)  # fmt: skip
    assert remote.meta["executor"] == "dask"
    for other in (local, remote):
        assert set(other.failures) == {"broken", "killer:make"}
        assert other.failures["broken"] == serial.failures["broken"]  # the loader's message
        assert "died" in other.failures["killer:make"] or "Killed" in other.failures["killer:make"]
        pd.testing.assert_frame_equal(other.metrics, serial.metrics)
        pd.testing.assert_frame_equal(other.comparisons, serial.comparisons)
    for e in remote.entries[:2]:
        assert (tmp_path / "dask" / "runs" / e.folder / "index.html").is_file()


def test_a_trajectory_needs_one_latent_size(tmp_path):
    """Two entry points with latent sizes 8 and 16 given steps: one Error line, nothing written."""
    (tmp_path / "nets.py").write_text(
        "import torch\n\n\ndef make(d):\n    net = torch.nn.Sequential(torch.nn.Linear(d, 784),"
        " torch.nn.Sigmoid())\n    net.latent_dim = d\n    return net\n\n\n"
        "def small():\n    return make(8)\n\n\ndef large():\n    return make(16)\n"
    )
    (tmp_path / "m.csv").write_text("spec,step,latent_dim\nnets.py:small,1,8\nnets.py:large,2,16\n")
    out = tmp_path / "out"
    result = CliRunner().invoke(
        main,
        [
            "compare",
            str(tmp_path / "m.csv"),
            "-o",
            str(out),
            "--n-samples",
            "50",
            "--analyses",
            "modes",
            "--quiet",
        ],
    )
    assert result.exit_code != 0
    (line,) = result.output.strip().splitlines()
    assert line.startswith("Error: A trajectory compares the same latents") and "small: 8" in line
    assert not out.exists()
    # without steps it is a model comparison, unpaired
    (tmp_path / "m.csv").write_text("spec,latent_dim\nnets.py:small,8\nnets.py:large,16\n")
    c = compare(tmp_path / "m.csv", n_samples=50, analyses="modes")
    assert c.mode == "models" and not c.comparisons.paired.any()


def _overfitting_run(tiny_checkpoint: Path, folder: Path, mnist_dir) -> Path:
    """Checkpoints of a discriminator that comes to know its 512 members, epochs 0-40.

    G stays that of the tiny run; D trains on the GAN's discriminator objective with "fakes"
    that are real, non-member MNIST-train digits: the limit of a generator as good as the data,
    where the only way left to call a digit real is to remember it. Its members are the 512
    digits recorded in the checkpoint, so membership leaks more with every epoch.
    """
    import torch

    from ganalyze.data import load_mnist
    from ganalyze.generators.files import safe_load
    from reference_gan.model import make_discriminator

    torch.manual_seed(0)
    ckpt = safe_load(Path(tiny_checkpoint), what="checkpoint")
    members = np.random.default_rng(0).choice(60000, 512, replace=False)
    ckpt["config"]["train_indices"] = torch.as_tensor(members, dtype=torch.int64)
    ckpt["config"]["n_train"] = 512
    x = load_mnist(True, mnist_dir).to_tanh_range()
    others = x[np.setdiff1d(np.arange(60000), members)[:20000]]
    d = make_discriminator()
    d.load_state_dict(ckpt["discriminator"])
    opt = torch.optim.Adam(d.parameters(), lr=2e-4)
    (folder / "checkpoints").mkdir(parents=True)
    for epoch in range(0, 41):
        if epoch:
            perm = torch.randperm(512)
            for i in range(0, 512, 32):
                real, fake = x[members[perm[i : i + 32]]], others[torch.randint(0, 20000, (32,))]
                p = d(torch.cat([real, fake])).squeeze(1)
                target = torch.cat([torch.ones(len(real)), torch.zeros(len(fake))])
                loss = torch.nn.functional.binary_cross_entropy(p, target)
                opt.zero_grad()
                loss.backward()
                opt.step()
        if epoch % 10 == 0:
            ckpt.update(epoch=epoch, discriminator={k: v.clone() for k, v in
                                                    d.state_dict().items()})  # fmt: skip
            torch.save(ckpt, folder / "checkpoints" / f"epoch_{epoch:04d}.pt")
    return folder


def test_a_trajectory_shows_when_d_starts_to_know_its_members(tiny_checkpoint, mnist_dir,
                                                             tmp_path):  # fmt: skip
    from ganalyze.comparison.tables import first_flags

    run = _overfitting_run(tiny_checkpoint, tmp_path / "run", mnist_dir)
    c = compare(run, out=tmp_path / "cmp", n_samples=300, analyses="dscores")
    assert c.mode == "trajectory" and list(c.steps.values()) == [0, 10, 20, 30, 40]
    auc = c.metrics[c.metrics.metric == "d_membership_auc"].set_index("step")
    assert auc.value.is_monotonic_increasing or np.corrcoef(auc.index, auc.value)[0, 1] > 0.9
    assert auc.value.iloc[0] < 0.56 and auc.value.iloc[-1] > 0.7
    flagged = [s for s in auc.index if auc.ci_low[s] > 0.55]
    (first,) = [f for f in first_flags(c) if f["analysis"] == "dscores"]
    assert first["first_step"] == flagged[0] and 0 < flagged[0] <= 40
    html = (tmp_path / "cmp" / "index.html").read_text()
    assert f"from step {flagged[0]} on" in html.lower() or f"step {flagged[0]}" in html
    later = c.comparisons[(c.comparisons.metric == "d_membership_auc")
                          & (c.comparisons.label_a == "epoch_0000")
                          & (c.comparisons.label_b == "epoch_0040")]  # fmt: skip
    assert later.excludes_zero.all() and (later.difference > 0.15).all()
