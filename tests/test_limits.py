"""Limits of an audit: too few samples or members skip the analyses that need more, with the
reason; options beyond what the machine or the maths can take are clean errors.

Real MNIST (``mnist_dir``); samples files are MNIST test digits saved as uint8, a generator is
a small entry point. latent_map (UMAP) and interpolation (10,000 triples) stay out: they are
slow and their small-n handling is exercised by their own tests and the smoke run.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from ganalyze import _guard
from ganalyze.cli import main
from ganalyze.errors import InputError
from ganalyze.pipeline import MAX_BOOTSTRAP, SEED_MAX, audit, estimate_memory
from ganalyze.stats import NotEnoughData

FAST = "modes,memorization,distribution"


@pytest.fixture(scope="module")
def test_digits(mnist_dir) -> np.ndarray:
    from ganalyze.data import load_mnist

    return load_mnist(False, mnist_dir).images.numpy()[:200]


@pytest.fixture(scope="module")
def samples_dir(tmp_path_factory, test_digits):
    folder = tmp_path_factory.mktemp("samples")
    for n in (1, 2, 3, 10, 40):
        np.save(folder / f"s{n}.npy", test_digits[:n])
    np.save(folder / "members.npy", np.arange(1000, 1100))
    return folder


@pytest.fixture(scope="module")
def entry_point(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("gen") / "gen.py"
    path.write_text(
        "import torch\n"
        "torch.manual_seed(0)\n"
        "G = torch.nn.Sequential(torch.nn.Linear(8, 784), torch.nn.Sigmoid())\n"
    )
    return f"{path}:G"


def _run(samples_dir, name: str, members: str = "members.npy", analyses: str = FAST, **kw):
    return audit(samples_dir / name, analyses=analyses, train_indices=samples_dir / members, **kw)


def _values(report, analysis: str) -> dict[tuple[str, str], float]:
    frame = report.metrics
    rows = frame[frame.analysis == analysis]
    return {(r.metric, r.feature_space): r.value for r in rows.itertuples()}


@pytest.mark.parametrize(("name", "n_samples", "n"), [("s2.npy", None, 2), ("s10.npy", 1, 1),
                                                      ("s3.npy", None, 3)])  # fmt: skip
def test_tiny_n_skips_distribution_and_runs_the_rest(samples_dir, name, n_samples, n) -> None:
    report = _run(samples_dir, name, n_samples=n_samples)
    skipped = dict(report.skipped)
    assert list(skipped) == ["distribution"]
    assert skipped["distribution"].startswith("The distribution analysis (precision, recall, ")
    assert f"needs at least 10 samples; got {n}. Audit more samples" in skipped["distribution"]
    modes, memo = _values(report, "modes"), _values(report, "memorization")
    assert modes[("unrecognizable_rate", "")] == 0 and len(modes) == 18  # MNIST test digits
    assert sum(modes[(f"share_{d}", "")] for d in range(10)) == pytest.approx(1)
    assert not math.isnan(memo[("copy_rate", "pixel")])
    assert math.isnan(memo[("ct_statistic", "mnist_cnn")])
    notes = report.result("memorization").notes
    text = (f"ct_statistic not computed (NaN): C_T (more than 20 samples in a k-means cell) "
            f"needs at least 21 generated samples; got {n}.")  # fmt: skip
    assert any(text in note for note in notes)
    assert report.meta["n_samples"] == n


def test_ten_samples_run_every_fast_analysis(samples_dir) -> None:
    report = _run(samples_dir, "s10.npy")
    assert report.skipped == []
    dist = _values(report, "distribution")
    assert 0 <= dist[("precision", "mnist_cnn")] <= 1 and dist[("fd", "mnist_cnn")] > 0


@pytest.mark.parametrize("size", [20, 49])
def test_member_set_below_ct_cells_leaves_ct_nan_with_reason(samples_dir, size) -> None:
    np.save(samples_dir / f"m{size}.npy", np.arange(size) * 7)
    report = _run(samples_dir, "s40.npy", members=f"m{size}.npy", analyses="memorization")
    assert report.skipped == []
    memo = _values(report, "memorization")
    assert math.isnan(memo[("ct_statistic", "mnist_cnn")])
    assert not math.isnan(memo[("authenticity", "mnist_cnn")])
    notes = " ".join(report.result("memorization").notes)
    assert (f"C_T (50 k-means cells) needs at least 50 member images; got {size}. Give a larger "
            "member set with --train-indices." in notes)  # fmt: skip
    assert f"Member set: {size} MNIST training images (--train-indices)." in notes


def test_member_set_of_one_skips_memorization(samples_dir) -> None:
    np.save(samples_dir / "m1.npy", np.array([5]))
    report = _run(samples_dir, "s10.npy", members="m1.npy", analyses="modes,memorization")
    assert [r.name for r in report.results] == ["modes"]
    reason = ("Memorization (authenticity compares each member with its nearest other member) "
              "needs at least 2 member images; got 1. Give a larger member set with "
              "--train-indices.")  # fmt: skip
    assert report.skipped == [("memorization", reason)]


@pytest.mark.parametrize(("indices", "match"), [
    ([0, -1, 5], r"1 of its 3 indices lie outside \(e.g. -1\)"),
    ([3, 60000, 70001], r"2 of its 3 indices lie outside \(e.g. 60000, 70001\)"),
    ([1.5, 2.0], "integer MNIST-train indices.*dtype float64"),
    ([], "non-empty"),
])  # fmt: skip
def test_bad_member_sets_are_clean_errors(samples_dir, indices, match) -> None:
    with pytest.raises(InputError, match=match):
        audit(samples_dir / "s3.npy", analyses="memorization", train_indices=np.array(indices))


def test_repeated_member_indices_count_once(samples_dir) -> None:
    members = np.concatenate([np.arange(60), np.arange(10)])
    report = audit(samples_dir / "s3.npy", analyses="modes", train_indices=members)
    assert ("member set", "60 MNIST training images (--train-indices, 10 repeated indices "
            "counted once)") in report.header  # fmt: skip


def test_maths_raise_not_enough_data() -> None:
    from ganalyze.metrics import classifier_score, frechet_distance, knn_radii

    x = np.random.default_rng(0).normal(size=(4, 3))
    with pytest.raises(NotEnoughData, match="needs at least 6 points; got 4"):
        knn_radii(x, 5)
    with pytest.raises(NotEnoughData, match="needs at least 2 generated points; got 1"):
        frechet_distance(real=x, fake=x[:1])
    with pytest.raises(NotEnoughData, match=r"classifier score \(10 splits\).*got 4"):
        classifier_score(probs=np.full((4, 10), 0.1))


# options and the machine


def test_seed_bounds(mnist_dir, samples_dir, tmp_path) -> None:
    runner = CliRunner()
    for args in (["report", str(samples_dir / "s3.npy")], ["train"]):
        result = runner.invoke(main, [*args, "--seed", str(2**64), "--out", str(tmp_path / "o")])
        assert result.exit_code == 2
        assert "'--seed': 18446744073709551616 is not in the range 0<=x<=4294967295" in (
            result.output
        )
    with pytest.raises(InputError, match=rf"seed must be an integer from 0 to {SEED_MAX}; got"):
        audit(samples_dir / "s3.npy", seed=2**64)
    with pytest.raises(InputError, match="seed must be an integer"):
        audit(samples_dir / "s3.npy", seed=1.5)


def test_largest_seed_runs(samples_dir) -> None:
    report = audit(samples_dir / "s10.npy", seed=SEED_MAX, n_samples=5, analyses="modes")
    assert report.meta["seed"] == SEED_MAX


def test_bootstrap_bound(samples_dir) -> None:
    result = CliRunner().invoke(main, ["report", str(samples_dir / "s3.npy"), "--bootstrap",
                                       str(MAX_BOOTSTRAP + 1)])  # fmt: skip
    assert result.exit_code == 2 and "0<=x<=10000" in result.output
    with pytest.raises(InputError, match=r"bootstrap must be an integer from 0 to 10000; got "
                       r"10001\. Use 0 \(no intervals\) to 10,000"):  # fmt: skip
        audit(samples_dir / "s3.npy", bootstrap=MAX_BOOTSTRAP + 1)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
def test_cuda_without_a_gpu(samples_dir, entry_point) -> None:
    result = CliRunner().invoke(main, ["report", entry_point, "--device", "cuda"])
    assert result.exit_code == 2
    assert "no CUDA device is available on this machine" in result.output
    assert "Use --device cpu, or --device auto" in result.output
    assert "Traceback" not in result.output
    with pytest.raises(InputError, match="no CUDA device is available"):
        audit(entry_point, device="cuda:0")
    with pytest.raises(InputError, match="Unknown device 'gpu'"):
        audit(entry_point, device="gpu")


def test_too_many_samples_is_refused_before_sampling(entry_point, monkeypatch) -> None:
    monkeypatch.setattr(_guard, "available_memory", lambda: 16 * 2**30)
    called = []
    monkeypatch.setattr("ganalyze.generators.base.Generator.sample",
                        lambda *a, **k: called.append(1))  # fmt: skip
    result = CliRunner().invoke(main, ["report", entry_point, "--n-samples", "50000000"])
    assert result.exit_code == 1 and not called
    errors = [ln for ln in result.output.splitlines() if ln.startswith("Error:")]
    assert len(errors) == 1
    line = errors[0]
    assert line.startswith("Error: An audit of 50,000,000 samples with latent size 8 would need "
                           "about ") and "\n" not in line  # fmt: skip
    assert "this machine has 16.0 GB available (ganalyze uses at most half). Use --n-samples " in (
        line
    )
    fits = int(line.split("Use --n-samples ")[1].split(" ")[0].replace(",", ""))
    names = ["modes", "memorization", "dscores", "distribution", "interpolation", "latent_map",
             "training"]  # fmt: skip
    assert estimate_memory(fits, 8, names) <= 8 * 2**30 < estimate_memory(fits + 1, 8, names)


def test_huge_latent_size_is_refused(entry_point, monkeypatch) -> None:
    monkeypatch.setattr(_guard, "available_memory", lambda: 16 * 2**30)
    with pytest.raises(InputError, match=r"latent size 100000000 would need about .* GB"):
        audit(entry_point, latent_dim=10**8, n_samples=100, analyses="modes")


def test_few_member_digits_leave_d_membership_auc_nan(tiny_checkpoint) -> None:
    report = audit(tiny_checkpoint, n_samples=1, analyses="dscores", train_indices=np.arange(5))
    d = _values(report, "dscores")
    assert math.isnan(d[("d_membership_auc", "")]) and report.result("dscores").flags == []
    assert 0 <= d[("d_gen_mean", "")] <= 1 and 0 <= d[("d_train_mean", "")] <= 1
    note = ("d_membership_auc not computed (NaN): it needs at least 10 member digits; got 5. "
            "Give a larger member set with --train-indices.")  # fmt: skip
    assert note in report.result("dscores").notes
