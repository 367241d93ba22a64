"""The whole pipeline without MNIST: a checkpoint trained on synthetic digits, audited against
the same synthetic reference (load -> context -> every registered analysis -> HTML/CSV/JSON).

This is the core suite's end-to-end test: it runs for a contributor without the MNIST files.
GANALYZE_DATA points at an empty folder and every function that would find or read MNIST fails
the test if called.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ganalyze import audit, ood
from ganalyze.analyses import METRIC_COLUMNS, REGISTRY
from ganalyze.analyses.base import registered
from ganalyze.data import MNISTSplit
from ganalyze.errors import InputError
from ganalyze.reference import ReferenceData
from ganalyze.report.figures import BackgroundRenderer

N_SAMPLES, N_MEMBERS, SEED = 200, 300, 3
NO_DIGITS = {"kl_to_train", "kl_to_uniform", "entropy"}  # of the recognizable samples' digits
NOT_MEANINGFUL = {"latent_label_stability", "label_changes", "excess_label_changes",
                  "label_changes_slerp", "excess_label_changes_slerp", "authenticity"}  # fmt: skip


HELPED: dict = {}  # (analysis, figure) -> the helper process's answer


def _no_mnist(*args, **kwargs):
    raise AssertionError("the synthetic smoke test looked for MNIST")


@pytest.fixture(scope="module")
def smoke(synthetic_reference, tmp_path_factory) -> tuple:
    """A 2-epoch checkpoint trained on the first N_MEMBERS synthetic train digits, its audit
    with every analysis, and the saved report's folder; MNIST unreachable throughout."""
    import ganalyze.data
    import reference_gan.train
    from reference_gan.train import TrainConfig, train

    ref = synthetic_reference
    empty = tmp_path_factory.mktemp("no-mnist")
    splits = {True: ref.train, False: ref.test}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GANALYZE_DATA", str(empty))
        mp.delenv("GANALYZE_REQUIRE_DATA", raising=False)
        for name in ("ensure_mnist", "resolve_data_dir", "load_mnist", "_read_with_torchvision"):
            mp.setattr(ganalyze.data, name, _no_mnist)
        mp.setattr("ganalyze.reference.load_mnist", _no_mnist)
        mp.setattr(reference_gan.train, "load_mnist", lambda train, data_dir=None: splits[train])
        # fixed sizes that set the analyses' run time, not what is tested here
        mp.setattr("ganalyze.analyses.interpolation.PPL_TRIPLES", 500)
        mp.setattr("ganalyze.analyses.latent_map.N_EPOCHS", 20)
        mp.setattr("ganalyze.analyses.latent_map.N_STABILITY", 200)
        out = tmp_path_factory.mktemp("synthetic_run")
        cfg = TrainConfig(epochs=2, limit=N_MEMBERS, out=str(out), quiet=True, device="cpu",
                          sample_every=1, seed=SEED)  # fmt: skip
        ckpt = train(cfg)
        params = {"interpolation": {"pairs": 8, "frames": 8}}
        with BackgroundRenderer() as renderer:  # as `ganalyze report` renders figures
            report = audit(ckpt, n_samples=N_SAMPLES, seed=SEED, reference=ref, params=params,
                           renderer=renderer)  # fmt: skip
            HELPED.update(report.__dict__["_figure_files"])
            for future in HELPED.values():  # each answered before save() could render it here
                future.exception(timeout=600)
            folder = report.save(tmp_path_factory.mktemp("report") / "synthetic").parent
    assert not any(empty.iterdir()), "nothing may be downloaded into GANALYZE_DATA"
    return report, folder


def test_every_registered_analysis_runs_or_says_why_not(smoke) -> None:
    report, _ = smoke
    ran = [r.name for r in report.results]
    skipped = dict(report.skipped)
    assert sorted(ran + list(skipped)) == sorted(registered()), "each analysis exactly once"
    assert all(reason.strip() for reason in skipped.values())
    # a trained checkpoint provides every need (samples, latents, G, D, history) but labels:
    # only too few samples or members may skip another analysis, and none does at this size
    assert set(skipped) == {"conditional"}, skipped
    assert "not conditional" in skipped["conditional"]


@pytest.mark.parametrize("name", registered())
def test_analysis_metrics_reach_the_files(smoke, name) -> None:
    report, folder = smoke
    if name in dict(report.skipped):
        pytest.skip(f"{name} skipped: {dict(report.skipped)[name]}")
    result = report.result(name)
    csv = pd.read_csv(folder / "metrics.csv")
    rows = csv[csv.analysis == name]
    assert len(rows) == len(result.metrics) > 0
    assert set(rows.metric) == {m.name for m in result.metrics}
    html = (folder / "index.html").read_text(encoding="utf-8")
    assert f'id="{name}"' in html and result.title in html
    for metric in rows.metric:
        assert f"<code>{metric}</code>" in html
    # a NaN only where no value can exist (said in the notes, or no recognizable sample to
    # take a digit distribution of); every other value is finite
    notes = " ".join(result.notes)
    none_recognized = name == "modes" and result.metric("unrecognizable_rate").value == 1
    # label-based metrics of mostly unrecognizable samples: NaN by ganalyze.ood's rule
    rate = report.result("modes").metric("unrecognizable_rate").value
    label_based = rate > ood.MEANINGFUL_MAX_UNRECOGNIZABLE
    for m in result.metrics:
        undefined = (f"{m.name} not computed" in notes or (none_recognized and m.name in NO_DIGITS)
                     or (m.name in notes and "not meaningful" in notes)
                     or (label_based and m.name in NOT_MEANINGFUL))  # fmt: skip
        assert math.isfinite(m.value) or undefined, (m.name, m.value, rate, result.notes)
    for fig in result.figures:
        assert (folder / "figures" / f"{name}_{fig}.png").stat().st_size > 0


def test_every_figure_of_every_analysis_renders_in_the_helper(smoke) -> None:
    report, folder = smoke
    expected = {(r.name, name) for r in report.results for name in r.figures}
    assert set(HELPED) == expected and len(expected) >= 15
    failed = {key: f.exception() for key, f in HELPED.items() if f.exception() is not None}
    assert not failed
    for (analysis, name), future in HELPED.items():
        assert (folder / "figures" / f"{analysis}_{name}.png").read_bytes() == future.result().png


def test_report_files_agree(smoke) -> None:
    report, folder = smoke
    csv = pd.read_csv(folder / "metrics.csv")
    assert list(csv.columns) == METRIC_COLUMNS
    assert len(csv) == sum(len(r.metrics) for r in report.results)
    np.testing.assert_array_equal(csv["value"].to_numpy(), report.metrics["value"].to_numpy())
    records = json.loads((folder / "metrics.json").read_text())
    assert [(r["analysis"], r["metric"]) for r in records] == list(
        zip(csv.analysis, csv.metric, strict=True)
    )
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["n_samples"] == N_SAMPLES and meta["seed"] == SEED
    assert meta["analyses"] == registered()
    header = dict(report.header)
    assert header["member set"].startswith(f"{N_MEMBERS} MNIST training images")


def test_planted_facts_of_the_synthetic_run(smoke, synthetic_reference) -> None:
    """Numbers that follow from how the run was built, not from what the analyses compute."""
    report, _ = smoke
    training = report.result("training")
    assert training.metric("epochs_trained").value == 2
    dscores = report.result("dscores")
    assert dscores.metric("d_train_mean").n_fake == N_SAMPLES
    assert dscores.metric("d_test_mean").n_real == len(synthetic_reference.test)
    assert f"{N_MEMBERS} drawn" in dscores.notes[-1]
    shares = [m for m in report.result("modes").metrics if m.name.startswith("share_")]
    assert shares and all(0 <= m.value <= 1 for m in shares)


def test_reference_from_arrays_checks_its_input() -> None:
    images = np.zeros((4, 28, 28), np.uint8)
    with pytest.raises(InputError, match=r"uint8 array of shape \(n, 28, 28\).*float64"):
        MNISTSplit.from_arrays(images.astype(float), np.arange(4), train=True)
    with pytest.raises(InputError, match=r"test labels must be 4 integers in 0-9.*\(3,\)"):
        ReferenceData.from_arrays(images, np.arange(4), images, np.arange(3))
    with pytest.raises(InputError, match="train labels must be 4 integers in 0-9"):
        ReferenceData.from_arrays(images, np.array([0, 1, 2, 10]), images, np.arange(4))
    same = ReferenceData.from_arrays(images, np.arange(4), images[:, None], np.arange(4))
    assert same.train_images.shape == (4, 1, 28, 28) and same.test.train is False
    other = ReferenceData.from_arrays(images + 1, np.arange(4), images, np.arange(4))
    assert other.key != same.key, "the cache key follows the content"


def test_no_module_reads_mnist_here(smoke) -> None:
    """The fixture ran with GANALYZE_DATA empty; the report is a real one, not an empty shell."""
    report, folder = smoke
    assert Path(folder / "index.html").stat().st_size > 10_000
    assert set(REGISTRY) == set(registered())
