"""Analyses found without an import list, and third-party analyses through entry points.
The recipe of docs/writing-an-analysis.md runs as written; a broken plugin is one warning, never
a crash."""

from __future__ import annotations

import importlib
import json
import re
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import ganalyze
from ganalyze.analyses import PLUGINS, REGISTRY, PluginWarning, load_plugins, registered
from ganalyze.cli import main
from ganalyze.pipeline import select_analyses

RECIPE = Path(__file__).resolve().parents[1] / "docs" / "writing-an-analysis.md"


def _builtin_modules() -> list[str]:
    """The analysis modules shipped in ganalyze/analyses/ (found on disk, not by registry)."""
    folder = Path(ganalyze.__file__).parent / "analyses"
    return sorted(p.stem for p in folder.glob("*.py") if not p.stem.startswith("_")
                  and p.stem != "base")  # fmt: skip


# Report order: built-ins by their ``order``, ties by name; a new analysis module needs no edit
# here (the one-module recipe).
BUILTIN_ORDER = sorted((name for name, cls in REGISTRY.items()
                        if cls.__module__.rpartition(".")[0] == "ganalyze.analyses"),
                       key=lambda name: (REGISTRY[name].order, name))  # fmt: skip


def _recipe() -> tuple[str, str, str]:
    """The recipe's plugin module, and the entry point its pyproject block registers."""
    text = RECIPE.read_text(encoding="utf-8")
    section = text.split("# Writing an analysis", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    toml = re.search(r"```toml\n(.*?)```", section, re.S).group(1)
    assert '[project.entry-points."ganalyze.analyses"]' in toml
    name, value = re.search(r'^(\w+) = "([\w.]+:\w+)"$', toml, re.M).groups()
    return code, name, value


def _install(root: Path, modules: dict[str, str], entry_points: dict[str, str]) -> None:
    """A fake installed distribution on ``root``: modules and an entry_points.txt that
    importlib.metadata reads as it would a pip-installed package's."""
    for module, source in modules.items():
        (root / f"{module}.py").write_text(source, encoding="utf-8")
    info = root / "ganalyze_test_plugins-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: ganalyze-test-plugins\nVersion: 0.1\n", encoding="utf-8"
    )
    lines = [f"{k} = {v}" for k, v in entry_points.items()]
    (info / "entry_points.txt").write_text(
        "[ganalyze.analyses]\n" + "\n".join(lines) + "\n", encoding="utf-8"
    )


@pytest.fixture
def plugin_root(tmp_path):
    """A folder on sys.path for fake distributions; afterwards the plugins are forgotten."""
    root = tmp_path / "site"
    root.mkdir()
    sys.path.insert(0, str(root))
    before = set(sys.modules)
    yield root
    sys.path.remove(str(root))
    for module in set(sys.modules) - before:
        if getattr(sys.modules[module], "__file__", None) and str(root) in (
            sys.modules[module].__file__ or ""
        ):
            del sys.modules[module]
    importlib.invalidate_caches()
    load_plugins(reload=True)
    assert not PLUGINS


def _load() -> list[warnings.WarningMessage]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        load_plugins(reload=True)
    return [w for w in caught if issubclass(w.category, PluginWarning)]


def test_builtins_are_discovered_in_report_order() -> None:
    assert registered() == BUILTIN_ORDER
    assert sorted(REGISTRY[n].__module__.rpartition(".")[2] for n in BUILTIN_ORDER) == (
        _builtin_modules()
    )  # every module registered its analysis
    known = ["modes", "memorization", "dscores", "distribution", "interpolation", "latent_map",
             "training"]  # fmt: skip
    assert [n for n in BUILTIN_ORDER if n in known] == known
    assert set(REGISTRY) == set(BUILTIN_ORDER)
    assert not PLUGINS
    assert {"Analysis", "AnalysisResult", "Metric"} <= set(ganalyze.__all__)
    result = ganalyze.AnalysisResult("x", "X", "about x")
    result.metrics.append(ganalyze.Metric(name="m", value=1.0, description="one"))
    assert result.metrics_frame().value.tolist() == [1.0]


def test_readme_recipe_is_a_working_plugin(plugin_root, mnist_dir, tmp_path) -> None:
    code, name, value = _recipe()
    module = value.split(":")[0]
    _install(plugin_root, {module: code}, {name: value})
    assert not _load()
    assert registered() == [*BUILTIN_ORDER, "ink"]
    assert dict(PLUGINS) == {"ink": f"ink = {value}"}
    assert select_analyses(None)[-1] == "ink" and select_analyses("ink") == ["ink"]

    runner = CliRunner()
    listed = runner.invoke(main, ["analyses", "--params"])
    assert listed.exit_code == 0, listed.output
    assert re.search(r"^ink +Ink: How much of each 28x28 canvas.*\[plugin: ink = ", listed.output,
                     re.M)  # fmt: skip
    assert "ink.threshold=0.5 (float)  A pixel is ink above this." in listed.output

    rng = np.random.default_rng(0)
    images = (rng.random((40, 28, 28)) > 0.7).astype(np.float32)
    spec, out = tmp_path / "samples.npy", tmp_path / "report"
    np.save(spec, images)
    args = ["report", str(spec), "-o", str(out), "--data-dir", str(mnist_dir), "--quiet",
            "--analyses", "ink", "--param", "ink.threshold=0.5"]  # fmt: skip
    result = runner.invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    metrics = pd.read_csv(out / "metrics.csv")
    row = metrics[(metrics.analysis == "ink") & (metrics.metric == "ink_share")]
    assert row.value.tolist() == pytest.approx([float(images.mean())])
    assert row.n_fake.tolist() == [40]
    html = (out / "index.html").read_text(encoding="utf-8")
    assert "How much of each 28x28 canvas" in html and "ink_share" in html
    meta = json.loads((out / "meta.json").read_text(encoding="utf-8"))
    assert meta["analyses"] == ["ink"] and meta["params"] == {"ink": {"threshold": 0.5}}

    bad = runner.invoke(main, ["report", str(spec), "--param", "ink.threshold=2"])
    assert bad.exit_code == 2 and "ink.threshold must lie in [0, 1); got 2.0." in bad.output


BROKEN = """
from ganalyze import Analysis, AnalysisResult


class Duplicate(Analysis):
    name, title, description = "modes", "Modes again", "A second analysis called modes."

    def run(self, context):
        return self.result()


class BadName(Analysis):
    name, title, description = "Bad-Name", "Bad", "Not snake_case."


class NotAnAnalysis:
    name = "plain"
"""

GOOD = """
from ganalyze import Analysis, AnalysisResult, Metric


class Count(Analysis):
    name, title, description = "count", "Count", "How many samples there are."

    def run(self, context):
        result = AnalysisResult(self.name, self.title, self.description)
        result.metrics.append(Metric(name="n", value=len(context.images), description="n"))
        return result
"""


def test_a_broken_plugin_is_one_warning_and_the_report_runs(plugin_root, mnist_dir,
                                                            tmp_path) -> None:  # fmt: skip
    entry_points = {
        "missing": "ganalyze_no_such_module:Thing",
        "raises": "plugin_raises:Thing",
        "duplicate": "plugin_broken:Duplicate",
        "bad_name": "plugin_broken:BadName",
        "not_analysis": "plugin_broken:NotAnAnalysis",
        "no_class": "plugin_broken:Nothing",
        "count": "plugin_good:Count",
    }
    modules = {"plugin_broken": BROKEN, "plugin_good": GOOD,
               "plugin_raises": "raise RuntimeError('broken at import')\n"}  # fmt: skip
    _install(plugin_root, modules, entry_points)
    caught = _load()
    broken = [name for name in entry_points if name != "count"]
    assert len(caught) == len(broken), [str(w.message) for w in caught]
    for name in broken:
        named = [str(w.message) for w in caught if f"'{name} = " in str(w.message)]
        assert len(named) == 1, (name, named)
        assert "left out" in named[0]
    assert "broken at import" in " ".join(str(w.message) for w in caught)
    assert registered() == [*BUILTIN_ORDER, "count"]
    assert REGISTRY["modes"].__module__ == "ganalyze.analyses.modes"

    spec, out = tmp_path / "samples.npy", tmp_path / "report"
    np.save(spec, np.random.default_rng(1).random((12, 28, 28), dtype=np.float32))
    args = ["report", str(spec), "-o", str(out), "--quiet", "--data-dir", str(mnist_dir),
            "--analyses", "count"]  # fmt: skip
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    metrics = pd.read_csv(out / "metrics.csv")
    assert metrics[metrics.analysis == "count"].value.tolist() == [12.0]
