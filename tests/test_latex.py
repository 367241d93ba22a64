"""Tables for papers: metrics.tex of a report and of a comparison is well-formed LaTeX (checked
without compiling), escaped, with one number format per metric and the best of each column of a
comparison in bold."""

from __future__ import annotations

import math
import re

import pandas as pd
import pytest

from ganalyze.analyses.base import AnalysisResult, Metric
from ganalyze.comparison.entries import Entry
from ganalyze.comparison.result import Comparison
from ganalyze.comparison.view import write_outputs
from ganalyze.report import Report
from ganalyze.report.latex import comparison_latex, escape

SPEC = "runs/my_gan/50%_#1&{x}~^.pt"


def well_formed(tex: str) -> list[str]:
    """What is wrong with ``tex`` (empty when nothing): unbalanced or crossed environments,
    unbalanced braces, special characters not escaped, booktabs rules missing, rows whose
    number of cells differs from the column format."""
    problems = []
    stack: list[str] = []
    for kind, name in re.findall(r"\\(begin|end)\{([^}]*)\}", tex):
        if kind == "begin":
            stack.append(name)
        elif not stack or stack.pop() != name:
            problems.append(f"\\end{{{name}}} does not close the open environment")
    problems += [f"\\begin{{{name}}} never closed" for name in stack]
    plain = re.sub(r"\\[{}]", "", tex)  # escaped braces are text
    if plain.count("{") != plain.count("}"):
        problems.append(f"{plain.count('{')} '{{' against {plain.count('}')} '}}'")
    for char in "_%#$":
        bare = re.findall(rf"(?<!\\){re.escape(char)}", tex)
        if char == "$" and len(bare) % 2:  # math delimiters, in pairs
            problems.append(f"an odd number of unescaped $ ({len(bare)})")
        elif char != "$" and bare:
            problems.append(f"unescaped {char!r} ({len(bare)}x)")
    for rule in ("\\toprule", "\\midrule", "\\bottomrule"):
        if tex.count(rule) != 1:
            problems.append(f"{rule} appears {tex.count(rule)} times")
    spec = re.search(r"\\begin\{tabular\}\{([a-z|]+)\}", tex)
    if not spec:
        return [*problems, "no tabular"]
    ncols = len(spec.group(1).replace("|", ""))
    body = tex[tex.index("\\toprule") : tex.index("\\bottomrule")]
    for line in body.splitlines():
        if line.endswith("\\\\"):
            cells = len(re.findall(r"(?<!\\)&", line)) + 1
            if cells != ncols:
                problems.append(f"row with {cells} cells, not {ncols}: {line}")
    return problems


def rows(tex: str) -> list[list[str]]:
    body = tex[tex.index("\\midrule") + len("\\midrule") : tex.index("\\bottomrule")]
    return [[c.strip() for c in re.split(r"(?<!\\)&", line[:-2])]
            for line in body.strip().splitlines()]  # fmt: skip


def test_the_checker_finds_what_a_compiler_would_choke_on() -> None:
    good = ("\\begin{table}\n\\begin{tabular}{lr}\n\\toprule\na & b \\\\\n\\midrule\n"
            "x\\_y & 1 \\\\\n\\bottomrule\n\\end{tabular}\n\\end{table}\n")  # fmt: skip
    assert well_formed(good) == []
    assert any("never closed" in p for p in well_formed(good.replace("\\end{table}\n", "")))
    assert any("unescaped '_'" in p for p in well_formed(good.replace("x\\_y", "x_y")))
    assert any("unescaped '%'" in p for p in well_formed(good.replace("x\\_y", "50%")))
    assert any("odd number" in p for p in well_formed(good.replace("x\\_y", "$x")))
    assert any("row with 1 cells, not 2" in p for p in well_formed(good.replace("& 1", "1")))
    crossed = good.replace("\\end{tabular}\n\\end{table}", "\\end{table}\n\\end{tabular}")
    assert any("does not close" in p for p in well_formed(crossed))


def _report() -> Report:
    modes = AnalysisResult("modes", "Digit modes", "digits")
    modes.metrics = [
        Metric("unrecognizable_rate", 0.0595, "not digits", higher_is_better=False,
               ci_low=0.05503, ci_high=0.06431),
        Metric("modes_covered", 10, "digits covered", higher_is_better=True),
        Metric("share_1", 0.3, "ones", target=0.1124, ci_low=0.27, ci_high=0.33),
    ]  # fmt: skip
    mem = AnalysisResult("memorization", "Memorization", "copies")
    mem.metrics = [
        Metric("copy_rate", 0.0, "raw", higher_is_better=False, ci_low=0.0, ci_high=0.0061,
               feature_space="pixel"),
        Metric("copy_rate_adjusted", 0.0035, "adjusted", higher_is_better=False,
               ci_low=0.0012, ci_high=0.0089, feature_space="pixel"),
        Metric("ct_statistic", -3.217, "C_T", target=0.0, feature_space="mnist_cnn"),
    ]  # fmt: skip
    dist = AnalysisResult("distribution", "Distribution", "fd")
    dist.metrics = [Metric("fd", math.nan, "not computed", higher_is_better=False,
                           feature_space="mnist_cnn")]  # fmt: skip
    meta = {"spec": SPEC, "n_samples": 1000, "seed": 7, "versions": {"ganalyze": "test"}}
    return Report(meta, [modes, mem, dist])


def test_report_table_is_well_formed_escaped_and_formatted_once_per_metric() -> None:
    tex = _report().to_latex()
    assert well_formed(tex) == [], tex
    assert "\\begin{tabular}{lllrrl}" in tex and "\\label{tab:ganalyze-metrics}" in tex
    # the caption names the spec, every special character escaped
    assert "runs/my\\_gan/50\\%\\_\\#1\\&\\{x\\}\\textasciitilde{}\\textasciicircum{}.pt" in tex
    table = {(r[0], r[1], r[2]): r[3:] for r in rows(tex)}
    # value and interval with the same decimals; shares in fixed point, never 3.5e-03
    assert table["modes", "unrecognizable\\_rate", ""] == ["0.0595", "[0.0550, 0.0643]", "lower"]
    assert table["memorization", "copy\\_rate\\_adjusted", "pixel"] == [
        "0.00350", "[0.00120, 0.00890]", "lower"]  # fmt: skip
    assert table["memorization", "copy\\_rate", "pixel"][0] == "0.00000"
    assert table["modes", "modes\\_covered", ""] == ["10", "", "higher"]
    assert table["memorization", "ct\\_statistic", "mnist\\_cnn"] == ["-3.22", "", "target 0"]
    assert table["distribution", "fd", "mnist\\_cnn"][0] == "--"  # NaN
    assert ("modes", "share\\_1", "") not in table  # not a headline metric
    assert "e-0" not in tex


def test_save_writes_the_same_table(tmp_path) -> None:
    report = _report()
    folder = report.save(tmp_path / "r").parent
    assert (folder / "metrics.tex").read_text(encoding="utf-8") == report.to_latex()
    assert Report.load(folder).to_latex() == report.to_latex()


def _comparison() -> Comparison:
    """Three models: b has the lowest fd and the closest nn_dist_ratio, c the lowest copy rate;
    d failed."""
    values = {"a_1": (6.0, 0.02, 1.3), "b&2": (2.0, 0.01, 0.95), "c": (2.5, 0.005, 1.2)}
    reports = {}
    for label, (fd, copy, ratio) in values.items():
        mem = AnalysisResult("memorization", "Memorization", "copies")
        mem.metrics = [
            Metric("copy_rate", copy, "copies", higher_is_better=False, ci_low=copy / 2,
                   ci_high=copy * 2, feature_space="pixel"),
            Metric("nn_dist_ratio", ratio, "ratio", target=1.0, feature_space="pixel"),
        ]  # fmt: skip
        dist = AnalysisResult("distribution", "Distribution", "fd")
        dist.metrics = [Metric("fd", fd, "FD", higher_is_better=False, ci_low=fd - 0.5,
                               ci_high=fd + 0.5, feature_space="mnist_cnn")]  # fmt: skip
        reports[label] = Report({"label": label, "spec": f"/m/{label}.pt"}, [mem, dist])
    entries = [Entry(lab, f"/m/{lab}.pt") for lab in [*values, "d"]]
    frames = [r.metrics.assign(label=lab, step=None, spec=f"/m/{lab}.pt")
              for lab, r in reports.items()]  # fmt: skip
    return Comparison(entries, reports, {"d": "out of memory"}, pd.concat(frames),
                      meta={"seed": 0})  # fmt: skip


def test_comparison_table_bolds_the_best_of_each_column(tmp_path) -> None:
    comparison = _comparison()
    tex = comparison_latex(comparison)
    assert well_formed(tex) == [], tex
    header = tex[tex.index("\\toprule") : tex.index("\\midrule")]
    assert "copy\\_rate (pixel) $\\downarrow$" in header and "fd (mnist\\_cnn)" in header
    assert "nn\\_dist\\_ratio (pixel) (target 1)" in header
    table = {r[0]: r[1:] for r in rows(tex)}
    assert list(table) == ["a\\_1", "b\\&2", "c", "d"]
    # columns: copy_rate, nn_dist_ratio, fd; one format per column
    assert table["c"][0] == "\\textbf{0.00500 [0.00250, 0.01000]}"
    assert table["a\\_1"][0] == "0.02000 [0.01000, 0.04000]"
    assert table["b\\&2"][1] == "\\textbf{0.950}" and table["b\\&2"][2].startswith("\\textbf{2.00")
    assert table["a\\_1"][2] == "6.00 [5.50, 6.50]" and not table["a\\_1"][0].startswith("\\textbf")
    assert table["d"] == ["--", "--", "--"]  # the failed audit keeps its row
    assert sum(cell.startswith("\\textbf") for r in table.values() for cell in r) == 3
    write_outputs(comparison, tmp_path)
    assert (tmp_path / "metrics.tex").read_text(encoding="utf-8") == tex


@pytest.mark.parametrize("text, expected", [
    ("a_b", "a\\_b"), ("50%", "50\\%"), ("0.1 – 0.2", "0.1 -- 0.2"),
    ("\\", "\\textbackslash{}")])  # fmt: skip
def test_escape(text, expected) -> None:
    assert escape(text) == expected
