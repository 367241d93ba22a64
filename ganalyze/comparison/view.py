"""The comparison page: one self-contained HTML file (Jinja2, autoescape on, StrictUndefined)
with the rows of :mod:`ganalyze.comparison.tables` and the figures of
:mod:`ganalyze.comparison.figures` inlined; :func:`write_outputs` writes it and the figures."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

from ganalyze._io import atomic_path
from ganalyze.comparison.figures import figures, preview_rows
from ganalyze.comparison.result import Comparison
from ganalyze.comparison.tables import (
    best_steps,
    fired_rules,
    first_flags,
    headline_columns,
    ordered_labels,
    ranking,
    run_link,
    summary_rows,
)
from ganalyze.report.figures import render as render_figure
from ganalyze.report.html import (
    _ENV,  # the report's templates, autoescape and filters
    legends_outside,
)
from ganalyze.report.latex import comparison_latex


def _plain(value: Any) -> str:
    return ", ".join(map(str, value)) if isinstance(value, list | tuple) else str(value)


def _option(comparison: Comparison, key: str) -> str:
    """An audit setting for the header: from the comparison's meta (its ``settings``), else
    the distinct values in its reports' meta."""
    meta = comparison.meta
    for source in (meta.get("settings"), meta.get("options"), meta):
        if isinstance(source, dict) and source.get(key) is not None:
            return _plain(source[key])
    seen = {_plain(r.meta[key]): None for r in comparison.reports.values()
            if r.meta.get(key) is not None}  # fmt: skip
    return "; ".join(seen) or "–"


def _header(comparison: Comparison) -> list[tuple[str, str]]:
    n, failed, meta = len(comparison.entries), len(comparison.failures), comparison.meta
    mode = (
        "trajectory: checkpoints of one training run, by step"
        if comparison.mode == "trajectory"
        else "models: several generators side by side"
    )
    rows = comparison.comparisons
    methods = []
    if rows is not None and "method" in rows.columns:
        methods = list(dict.fromkeys(str(m) for m in rows["method"].dropna() if str(m)))
    header = [("generators", f"{n} ({n - failed} audited, {failed} failed)"), ("mode", mode),
              ("samples", f"{_option(comparison, 'n_samples')} per generator "
                          f"(seed {_option(comparison, 'seed')})"),
              ("analyses", _option(comparison, "analyses")),
              ("intervals of differences", "; ".join(methods) or "none computed")]  # fmt: skip
    if isinstance(meta.get("reused"), list):
        header.append(("audits", f"{len(meta['reused'])} reused from the cache, "
                                 f"{len(meta.get('audited') or [])} run"))  # fmt: skip
    if meta.get("executor"):
        header.append(("executor", _plain(meta["executor"])))
    if meta.get("date"):
        header.append(("date (UTC)", str(meta["date"])))
    if isinstance(meta.get("versions"), dict):
        header.append(("versions", ", ".join(f"{k} {v}" for k, v in meta["versions"].items())))
    return header


_CAPTIONS = {
    "_by_step": "{analysis}: its headline metrics at each step. Shaded: the 95% interval where "
    "the analysis reports one; dashed: the target value; red dotted lines: steps whose audit "
    "failed.",
    "d_scores_by_step": "The discriminator's mean score on the digits it trained on (members), "
    "on held-out test digits and on generated samples, at each step. Members pulling away from "
    "held-out digits means D is memorizing its training set; samples close to real digits mean "
    "G fools D.",
    "headline_metrics": "Each headline metric per model: dot = value, line = 95% interval, "
    "orange = best value (by the metric's direction or closest to its target); dashed: target.",
    "samples_by_step": "The first samples of each step, from the same seed: each column follows "
    "one latent through training.",
    "samples_by_model": "The first samples of each model, from the same seed (the same latents "
    "where the models' latent spaces agree).",
}


def _caption(comparison: Comparison, name: str) -> str:
    if name.startswith("samples_by_"):
        n = len(preview_rows(comparison, thin=False))
        shown = len(preview_rows(comparison))
        note = f" {shown} of {n} rows shown, evenly spaced." if shown < n else ""
        return _CAPTIONS.get(name, "") + note
    if name in _CAPTIONS:
        return _CAPTIONS[name]
    if name.endswith("_by_step"):
        return _CAPTIONS["_by_step"].format(analysis=name[: -len("_by_step")])
    return ""


def _model_flags(comparison: Comparison) -> list[dict[str, Any]]:
    return [{"analysis": a, "rule": rule, "labels": [lab for lab, _ in hits],
             "message": hits[0][1], "first_label": hits[0][0]}
            for (a, rule), hits in fired_rules(comparison).items()]  # fmt: skip


def _context(comparison: Comparison, pngs: dict[str, bytes] | None) -> dict[str, Any]:
    compact, pngs = pngs is None, pngs or {}
    names = [n for n in figures(comparison) if n in pngs] if pngs else []
    names += [n for n in pngs if n not in names]
    shown = [{"name": n, "caption": _caption(comparison, n),
              "png": base64.b64encode(pngs[n]).decode("ascii")} for n in names]  # fmt: skip
    trajectory = comparison.mode == "trajectory"
    return {
        "compact": compact, "trajectory": trajectory, "header": _header(comparison),
        "n": len(comparison.entries), "columns": headline_columns(comparison),
        "rows": summary_rows(comparison), "failures": list(comparison.failures.items()),
        "first_flags": first_flags(comparison), "best_steps": best_steps(comparison),
        "ranking": ranking(comparison),
        "model_flags": [] if trajectory else _model_flags(comparison),
        "figures": shown,
        "runs": [(lab, run_link(comparison, lab)) for lab in ordered_labels(comparison)
                 if lab in comparison.reports],
    }  # fmt: skip


def render(comparison: Comparison, pngs: dict[str, bytes]) -> str:
    """The comparison page (index.html): header, summary table, the trajectory or models
    section, the figures in ``pngs`` (name -> PNG bytes) inlined, links to every report."""
    return _ENV.get_template("compare.html.j2").render(**_context(comparison, pngs))


def render_summary(comparison: Comparison) -> str:
    """A compact notebook view: the summary table only, no figures."""
    return _ENV.get_template("compare.html.j2").render(**_context(comparison, None))


def write_outputs(comparison: Comparison, out: str | Path) -> None:
    """Draw every figure once, write ``out/figures/<name>.png`` (dpi 100) and ``.pdf`` (vector,
    TrueType fonts), ``out/index.html``, whose inlined images are the PNG files' bytes, and
    ``out/metrics.tex`` (the model-by-metric table, best per column in bold). Each file is
    written atomically."""
    out = Path(out)
    folder = out / "figures"
    folder.mkdir(parents=True, exist_ok=True)
    pngs: dict[str, bytes] = {}
    for name, draw in figures(comparison).items():
        fig = legends_outside(draw())
        try:
            files = render_figure(fig)
        finally:
            fig.clear()
        pngs[name] = files.png
        with atomic_path(folder / f"{name}.png") as tmp:
            tmp.write_bytes(files.png)
        with atomic_path(folder / f"{name}.pdf") as tmp:
            tmp.write_bytes(files.pdf)
    with atomic_path(out / "index.html") as tmp:
        tmp.write_text(render(comparison, pngs), encoding="utf-8")
    with atomic_path(out / "metrics.tex") as tmp:
        tmp.write_text(comparison_latex(comparison), encoding="utf-8")
