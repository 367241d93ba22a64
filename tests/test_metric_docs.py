"""Metric names are public API: every metric an analysis emits is declared by its module
(``metric_names``, built from its constants) and documented in README.md, and README documents
no metric that does not exist.

README's documentation of an analysis is the first column of the tables under its heading
"### Analysis `name`": one backticked name each, or a range "`share_0` ... `share_9`".
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from test_smoke_synthetic import smoke  # noqa: F401  (the audit of a synthetic run, no MNIST)

from ganalyze.analyses import PLUGINS, REGISTRY

README = Path(__file__).resolve().parents[1] / "README.md"
BUILTINS = sorted(name for name in REGISTRY if name not in PLUGINS)
_SECTION = re.compile(r"^#{1,6} Analysis `(\w+)`")
_RANGE = re.compile(r"`([a-z_]+?)(\d+)` \.\.\. `\1(\d+)`")


def documented_metrics(text: str) -> dict[str, list[str]]:
    """{analysis: metric names} from the first column of the tables of each analysis's section."""
    found: dict[str, list[str]] = {}
    section = None
    for line in text.splitlines():
        if line.startswith("#"):
            match = _SECTION.match(line)
            section = match.group(1) if match else None
            if section:
                found.setdefault(section, [])
            continue
        if section is None or not line.startswith("|") or line.startswith("|---"):
            continue
        cell = line.split("|")[1]
        if cell.strip() == "metric":
            continue
        for prefix, lo, hi in _RANGE.findall(cell):
            found[section] += [f"{prefix}{i}" for i in range(int(lo), int(hi) + 1)]
        found[section] += re.findall(r"`([a-z0-9_]+)`", _RANGE.sub("", cell))
    return found


DOCS = documented_metrics(README.read_text(encoding="utf-8"))


def test_the_parser_reads_ranges_suffixes_and_annotations() -> None:
    text = (
        "### Analysis `a`\n\n| metric | meaning | ideal |\n|---|---|---|\n"
        "| `share_0` ... `share_2` | x | y |\n| `fd`, `fd_train` | `not_a_metric` | |\n"
        "| `ct` (mnist_cnn, one row) | z | 0 |\n\n## Other\n\n| `outside` | x |\n"
    )
    assert documented_metrics(text) == {"a": ["share_0", "share_1", "share_2", "fd", "fd_train",
                                              "ct"]}  # fmt: skip


def test_every_documented_analysis_exists_and_every_builtin_is_documented() -> None:
    assert set(DOCS) == set(BUILTINS)


@pytest.mark.parametrize("name", BUILTINS)
def test_declared_metrics_match_the_readme(name) -> None:
    declared = REGISTRY[name].metric_names
    assert declared, f"{name} declares no metric_names"
    assert len(set(declared)) == len(declared), f"{name} declares a name twice"
    docs = DOCS[name]
    assert len(set(docs)) == len(docs), f"README documents a metric of {name} twice"
    undocumented = sorted(set(declared) - set(docs))
    unknown = sorted(set(docs) - set(declared))
    assert not undocumented, f"{name} metrics missing from README: {undocumented}"
    assert not unknown, f"README documents metrics {name} does not have: {unknown}"


@pytest.mark.parametrize("name", BUILTINS)
def test_emitted_metrics_are_exactly_the_declared_ones(smoke, name) -> None:  # noqa: F811
    report, _ = smoke
    if name == "conditional":  # an unconditional checkpoint: tests/test_conditional.py checks it
        pytest.skip("the synthetic checkpoint is not a conditional generator")
    emitted = {m.name for m in report.result(name).metrics}
    declared = set(REGISTRY[name].metric_names)
    # the synthetic run is a checkpoint with G, D and history: every metric has its row
    assert emitted == declared, (sorted(emitted - declared), sorted(declared - emitted))
    assert emitted <= set(DOCS[name])
