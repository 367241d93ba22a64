"""The report: every registered analysis renders, the files it writes, the CLI end to end."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from ganalyze import audit
from ganalyze.analyses import METRIC_COLUMNS, REGISTRY
from ganalyze.cli import main


@pytest.fixture(scope="module")
def ckpt_report(tiny_checkpoint, mnist_dir):
    return audit(tiny_checkpoint, n_samples=600, seed=1, data_dir=mnist_dir)


@pytest.mark.parametrize("name", list(REGISTRY))
def test_every_registered_analysis_runs_and_renders(ckpt_report, name, tmp_path) -> None:
    if name in dict(ckpt_report.skipped):  # conditional: the checkpoint is unconditional
        pytest.skip(f"{name} skipped: {dict(ckpt_report.skipped)[name]}")
    result = ckpt_report.result(name)
    frame = result.metrics_frame()
    assert list(frame.columns) == METRIC_COLUMNS and len(frame) > 0
    assert not frame.duplicated(["metric", "feature_space"]).any()
    assert result.figures, "every analysis draws at least one figure"
    assert all(m.description for m in result.metrics)
    html = ckpt_report.to_html()
    assert f'id="{name}"' in html and f'href="#{name}"' in html  # a section, in the contents
    for metric in frame.metric:
        assert f"<code>{metric}</code>" in html


def test_report_files(ckpt_report, tmp_path) -> None:
    index = ckpt_report.save(tmp_path / "rep")
    out = index.parent
    html = index.read_text()
    assert "<script" not in html.lower() and "http://" not in html and "https://" not in html
    assert html.count("data:image/png;base64,") == sum(len(r.figures) for r in ckpt_report.results)
    metrics = pd.read_csv(out / "metrics.csv")
    assert list(metrics.columns) == METRIC_COLUMNS
    pd.testing.assert_series_equal(
        metrics["value"], ckpt_report.metrics["value"], check_names=False
    )
    records = json.loads((out / "metrics.json").read_text())
    assert len(records) == len(metrics)
    share = next(r for r in records if r["metric"] == "share_1")
    assert share["higher_is_better"] is None and share["target"] > 0.1  # NaN/NA -> null
    meta = json.loads((out / "meta.json").read_text())
    assert meta["n_samples"] == 600 and meta["seed"] == 1 and meta["output_range"] == "-1,1"
    for r in ckpt_report.results:
        for name in r.figures:
            assert (out / "figures" / f"{r.name}_{name}.png").stat().st_size > 0
            assert (out / "figures" / f"{r.name}_{name}.pdf").read_bytes()[:4] == b"%PDF"
        for name in r.tables:
            assert (
                pd.read_parquet(out / "tables" / f"{r.name}_{name}.parquet").shape
                == r.tables[name].shape
            )


def test_wide_frames_of_two_reports_concatenate(ckpt_report, tiny_checkpoint, mnist_dir):
    other = audit(tiny_checkpoint, n_samples=300, seed=2, data_dir=mnist_dir, analyses="modes")
    wide = pd.concat([ckpt_report.to_frame(wide=True), other.to_frame(wide=True)])
    assert len(wide) == 2 and "modes/share_3" in wide.columns
    assert wide["training/epochs_trained"].isna().tolist() == [False, True]
    assert "<table" in ckpt_report._repr_html_()


def test_training_section_reads_the_history(ckpt_report) -> None:
    t = ckpt_report.result("training")
    assert t.metric("epochs_trained").value == 2
    assert 0 < t.metric("d_test_final").value < 1
    assert "sample_grids" in t.figures  # the grids written during training were found


def test_samples_file_skips_what_needs_a_generator(tmp_path, reference, mnist_dir) -> None:
    name = "<script>alert(1)</script>"
    spec = tmp_path / f"{name.replace('/', '_')}.npy"
    np.save(spec, reference.test.images[:300].numpy())
    rep = audit(spec, data_dir=mnist_dir, analyses="modes,training")
    assert [r.name for r in rep.results] == ["modes"]
    assert rep.skipped and rep.skipped[0][0] == "training"
    assert "training history" in rep.skipped[0][1]
    html = rep.to_html()
    assert "<script>alert" not in html and "&lt;script&gt;alert" in html
    assert rep.result("modes").metric("modes_covered").value == 10


def test_cli_report_end_to_end(tiny_checkpoint, mnist_dir, tmp_path) -> None:
    out = tmp_path / "r"
    indices = tmp_path / "members.txt"
    indices.write_text("\n".join(str(i) for i in range(0, 1000, 2)))
    result = CliRunner().invoke(
        main,
        [
            "report",
            str(tiny_checkpoint),
            "-o",
            str(out),
            "--n-samples",
            "400",
            "--data-dir",
            str(mnist_dir),
            "--quiet",
            "--analyses",
            "distribution,dscores,memorization",
            "--bootstrap",
            "5",
            "--nn-index",
            "exact",
            "--d-output",
            "probs",
            "--train-indices",
            str(indices),
        ],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    assert f"Report: {out / 'index.html'}" in result.output
    metrics = pd.read_csv(out / "metrics.csv")
    fd = metrics[(metrics.metric == "fd")].iloc[0]
    assert fd.ci_low < fd.ci_high  # --bootstrap reached the distribution analysis
    meta = json.loads((out / "meta.json").read_text())
    assert "500 MNIST training images (--train-indices)" in json.dumps(meta)


@pytest.mark.parametrize(
    ("args", "message", "code"),
    [
        (["report", "nope.pt"], "does not exist", 1),
        (["report", "x.pt", "--analyses", "bogus"], "Unknown analyses", 1),
        (["report", "x.pt", "--n-samples", "0"], "--n-samples", 2),
        (["report", "x.pt", "--bootstrap", "-1"], "--bootstrap", 2),
        (["report", "x.pt", "--nn-index", "kd"], "--nn-index", 2),
        (["report", "x.pt", "--d-output", "odds"], "--d-output", 2),
        (["report", "x.pt", "--train-indices", "none.txt"], "--train-indices", 2),
    ],
)
def test_cli_report_errors(tmp_path, monkeypatch, args, message, code) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "x.pt").write_bytes(b"")
    result = CliRunner().invoke(main, args)
    assert result.exit_code == code, result.output
    assert message in result.output and "Traceback" not in result.output


def test_cli_lists_analyses() -> None:
    result = CliRunner().invoke(main, ["analyses"])
    assert result.exit_code == 0
    for name in REGISTRY:
        assert name in result.output


def test_approximate_neighbour_search_is_stated(reference, mnist_dir, tmp_path) -> None:
    spec = tmp_path / "digits.npy"
    np.save(spec, reference.test.images[:500].numpy())
    rep = audit(spec, data_dir=mnist_dir, analyses="modes", nn_index="ivf")
    recall = rep.meta["nn_index"]["recall_at_1"]
    assert set(recall) == {"pixel", "mnist_cnn"} and min(recall.values()) > 0.5
    assert "approximate (ivf): recall@1" in rep.to_html()
