"""audit(): the seconds of each step in meta.json, and progress only when someone watches."""

from __future__ import annotations

import io
import json
import logging

import numpy as np
import pytest

import ganalyze
from ganalyze import pipeline


@pytest.fixture(scope="module")
def digits_file(reference, tmp_path_factory):
    """60 MNIST test digits as a samples file."""
    path = tmp_path_factory.mktemp("samples") / "digits.npy"
    np.save(path, reference.test.images.numpy()[:60])
    return path


def test_timings_per_step_in_meta(reference, digits_file, tmp_path) -> None:
    report = ganalyze.audit(digits_file, analyses="modes,memorization", reference=reference)
    timings = report.meta["timings_s"]
    assert list(timings) == ["load", "sampling", "modes", "memorization", "total"]
    assert all(v >= 0 for v in timings.values())
    assert timings["total"] >= sum(v for k, v in timings.items() if k != "total")
    report.save(tmp_path / "r")
    saved = json.loads((tmp_path / "r" / "meta.json").read_text(encoding="utf-8"))
    assert saved["timings_s"] == pytest.approx(timings)


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_when_interactive_and_on_request(
    reference, digits_file, monkeypatch, request
) -> None:
    run = {"analyses": "modes", "reference": reference}
    for name in ("ganalyze", "reference_gan"):  # as in a fresh process, whatever ran before
        log = logging.getLogger(name)
        monkeypatch.setattr(log, "handlers", [])
        monkeypatch.setattr(log, "propagate", True)
        request.addfinalizer(lambda log=log, level=log.level: log.setLevel(level))
        log.setLevel(logging.NOTSET)
    quiet, shown = io.StringIO(), _Terminal()
    monkeypatch.setattr("sys.stderr", quiet)  # a pipe or a log file: silent by default
    assert not pipeline.interactive()
    ganalyze.audit(digits_file, **run)
    assert "analyses" not in quiet.getvalue()
    ganalyze.audit(digits_file, progress=True, **run)  # asked for: shown
    assert "analyses" in quiet.getvalue()
    monkeypatch.setattr("sys.stderr", shown)  # a terminal: shown by default
    assert pipeline.interactive()
    ganalyze.audit(digits_file, **run)
    assert "analyses" in shown.getvalue()
    shown.seek(0), shown.truncate()
    ganalyze.audit(digits_file, progress=False, **run)  # turned off
    assert shown.getvalue() == ""
