"""Render a Report as one self-contained HTML file (Jinja2, autoescape on, StrictUndefined)."""

from __future__ import annotations

import base64
import math
from typing import Any

import jinja2

from ganalyze.report.captions import caption
from ganalyze.report.numbers import metric_text

_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("ganalyze", "report/templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def fmt(value: Any, digits: int = 4) -> str:
    """Numbers for people: 4 significant digits, integers as integers, NaN as an en dash."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int) or (
        isinstance(value, float) and value.is_integer() and abs(value) < 1e9
    ):
        return f"{int(value):d}"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


_ENV.filters["fmt"] = fmt


def legends_outside(fig: Any) -> Any:
    """Move each legend drawn inside its axes to the right of them, where it covers no data (a
    legend anchored outside its axes already, or a figure legend, is left alone)."""
    for ax in fig.axes:
        legend = ax.get_legend()
        if legend is not None and not _outside(legend.get_bbox_to_anchor(), ax.bbox):
            legend.set_loc("upper left")
            legend.set_bbox_to_anchor((1.01, 1.0), transform=ax.transAxes)
    return fig


def _outside(box: Any, axes: Any) -> bool:
    """Whether a legend's anchor box lies beyond its axes on some side (not at their corners:
    the default anchor is the axes' own box)."""
    return (box.x0 >= axes.x1 - 1 or box.x1 <= axes.x0 + 1 or box.y0 >= axes.y1 - 1
            or box.y1 <= axes.y0 + 1)  # fmt: skip


def draw(result, name: str) -> Any:
    """Figure ``name`` of ``result``, drawn, with its legends clear of the data."""
    return legends_outside(result.draw(name))


def figure_png(report, result, name: str) -> bytes:
    """Figure ``name`` of ``result`` as PNG, rendered once per report
    (:func:`ganalyze.report.figures.figure_files`): the file and the inlined copy agree."""
    from ganalyze.report.figures import figure_files

    return figure_files(report, result, name).png


_RANGES = {"-1,1": "[-1, 1]", "0,1": "[0, 1]", "0,255": "0-255"}


def header_rows(meta: dict) -> list[tuple[str, str]]:
    """The header of a report, (label, text) rows formatted from its ``meta``; a row whose
    facts ``meta`` lacks is left out."""
    from ganalyze.analyses.base import format_value

    rows: list[tuple[str, str]] = []
    if "kind" in meta:
        rows.append(("kind", str(meta["kind"]).replace("_", " ")))
    if meta.get("checkpoint_epoch") is not None:
        rows.append(("checkpoint epoch", str(meta["checkpoint_epoch"])))
    if "sha256" in meta:
        rows.append(("file sha256", meta["sha256"] or "–"))
    for role, info in (meta.get("files") or {}).items():
        if role not in ("generator", "entry_point") or info.get("sha256") != meta.get("sha256"):
            rows.append((f"{role.replace('_', ' ')} file",
                         f"{info.get('path')} (sha256 {info.get('sha256') or '–'})"))  # fmt: skip
    if "latent_dim" in meta:
        rows.append(("latent size / prior", f"{meta['latent_dim']} / {meta['prior']}"
                     if meta.get("has_generator", True) else "– (samples file)"))  # fmt: skip
    if meta.get("latent_shape"):
        shape = ", ".join(map(str, meta["latent_shape"]))
        how = meta.get("latent_shape_source")
        rows.append(("latent shape", f"(n, {shape})" + (f": {how}" if how else "")))
    if "n_samples" in meta and "seed" in meta:
        rows.append(("samples", f"{meta['n_samples']} (seed {meta['seed']})"))
    if "output_range" in meta:
        out = meta["output_range"]
        rows.append(("output range", f"{_RANGES.get(out, out)} ({meta.get('output_range_source')}"
                     f"), native shape {tuple(meta.get('native_shape') or ())}"))  # fmt: skip
    if meta.get("image_conversion"):
        rows.append(("image size", _image_text(meta["image_conversion"])))
    if meta.get("conditional"):
        rows.append(("conditioning", _conditioning_text(meta["conditional"])))
    if "discriminator" in meta:
        d = meta["discriminator"]
        text = "none" if d is None else (f"input {_RANGES.get(d['input_range'])}"
                                         f"{_d_range_text(d)}, shape "
                                         f"{tuple(d['input_shape'] or ())}"
                                         f"{_d_shape_text(d)}, output "
                                         f"{d['output'] or 'auto'}")  # fmt: skip
        rows.append(("discriminator", text))
        if d is not None and d.get("conditional"):
            rows.append(("discriminator labels", _d_labels_text(d, meta)))
    if "member_set" in meta:
        rows.append(("member set", meta["member_set"]))
    if "analyses" in meta:
        rows.append(("analyses", ", ".join(meta["analyses"])))
    if "date" in meta:
        rows.append(("date (UTC)", meta["date"]))
    if "versions" in meta:
        rows.append(("versions", ", ".join(f"{k} {v}" for k, v in meta["versions"].items())))
    if "params_changed" in meta:
        changed = [f"{name}.{field}={format_value(tuple(v) if isinstance(v, list) else v)}"
                   for name, fields in meta["params_changed"].items()
                   for field, v in fields.items()]  # fmt: skip
        rows.append(("parameters", ", ".join(changed) or
                     "defaults (see `ganalyze analyses --params`)"))  # fmt: skip
    if "nn_index" in meta:
        rows.append(("neighbour search", _nn_text(meta["nn_index"])))
    return rows


def _image_text(conv: dict) -> str:
    """'64x64 resized to 28x28 (least-squares inverse of bilinear; auto: 64x64 is not 28x28)'."""
    h, w = conv["native_size"]
    size = f"{h}x{h}" if h == w else f"{w}x{h}"
    gray = ", 3 equal channels averaged" if conv.get("channels") == 3 else ""
    rule = conv.get("rule")
    if conv["conversion"] == "crop":
        return f"{size} centre-cropped to 28x28 ({rule}){gray}"
    if conv["conversion"] == "resize":
        return f"{size} resized to 28x28 ({conv.get('method')}; {rule}){gray}"
    return f"{size}, not converted{gray}"


_LABEL_FORMS = {"index": "class indices", "onehot": "one-hot rows"}
_LABEL_DRAWS = {"uniform": "uniformly", "train": "by MNIST train's digit shares"}


def _label_form(how: str | None, source: str | None) -> str:
    """'one-hot rows (auto: index failed, onehot worked)'."""
    text = _LABEL_FORMS.get(how or "", str(how) if how else "undecided")
    return text + (f" ({source})" if source else "")


def _conditioning_text(c: dict) -> str:
    """'10 classes, labels drawn uniformly, fed as one-hot rows (auto: index failed, onehot
    worked)'."""
    draw = _LABEL_DRAWS.get(c.get("labels") or "", f"by {c.get('labels')}")
    form = _label_form(c.get("label_input"), c.get("label_input_source"))
    return f"{c.get('num_classes')} classes, labels drawn {draw}, fed as {form}"


def _d_labels_text(d: dict, meta: dict) -> str:
    """A conditional D(x, y): which labels it gets and how they are fed (and how that was
    found)."""
    form = _label_form(d.get("label_input"), d.get("label_input_source"))
    if meta.get("conditional"):
        given = "real digits their own labels, samples their conditioning labels"
    elif meta.get("kind") != "discriminator":  # a discriminator alone scores no samples
        given = "real digits their own labels, samples the digit the classifier reads"
    else:
        given = "real digits their own labels"
    return f"conditional, D(x, y): {given}; fed as {form}"


def _d_range_text(d: dict) -> str:
    """' (G's native range)': how D's input range was found; empty when it was given with D
    (a checkpoint's record) or meta lacks the fact."""
    source = d.get("input_range_source")
    return f" ({source})" if source not in (None, "given") else ""


def _d_shape_text(d: dict) -> str:
    """' (probe: ...; 28x28 digits resized to 64x64, ...)': how D's shape was found and how
    digits reach it; empty for a 28x28 D of known shape (and for meta without these facts)."""
    parts = []
    if d.get("input_shape_source") not in (None, "given", "G's native shape"):
        parts.append(str(d["input_shape_source"]))
    conversion = {"pad": "28x28 digits padded", "resize": "28x28 digits resized"}.get(
        d.get("conversion") or ""
    )
    if conversion:
        shape = d["input_shape"] or ()
        h, w = shape[-2:] if len(shape) >= 2 else (math.isqrt(shape[0]),) * 2
        side = f"{h}x{h}" if h == w else f"{w}x{h}"
        parts.append(f"{conversion} to {side} ({d.get('conversion_rule')})")
    return f" ({'; '.join(parts)})" if parts else ""


def _nn_text(nn: dict) -> str:
    if nn["kind"] == "exact":
        return "exact"
    recall = ", ".join(f"{s} {v:.3f}" for s, v in nn["recall_at_1"].items())
    return (f"approximate ({nn['kind']}): recall@1 on {nn['recall_queries']} samples "
            f"{recall or 'not used'}")  # fmt: skip


def _ideal(row: dict) -> str:
    if row["target"] is not None and not (
        isinstance(row["target"], float) and math.isnan(row["target"])
    ):
        return f"target {fmt(row['target'])}"
    hib = row["higher_is_better"]
    if hib is True:
        return "higher"
    if hib is False:
        return "lower"
    return "–"


def _row(m) -> dict:
    value, interval = metric_text(m.name, m.value, m.ci_low, m.ci_high)
    ideal = _ideal({"target": m.target, "higher_is_better": m.higher_is_better})
    return {"name": m.name, "space": m.feature_space, "value": value, "ci": interval,
            "description": m.description, "ideal": ideal}  # fmt: skip


def _context(report, figures: bool = True) -> dict:
    from ganalyze.report.verdicts import verdicts

    sections = []
    for r in report.results:
        shown = [
            {"name": name, "caption": caption(r, name),
             "png": base64.b64encode(figure_png(report, r, name)).decode("ascii")}
            for name in (r.figures if figures else ())
        ]  # fmt: skip
        tables = [
            {
                "name": name,
                "rows": len(t),
                "preview": t.head(10).to_html(
                    index=False, float_format=lambda v: fmt(float(v)), border=0, classes="data"
                ),
            }
            for name, t in r.tables.items()
        ]
        rows = [_row(m) for m in r.metrics]
        sections.append({"r": r, "rows": rows, "figures": shown, "tables": tables})
    toc = [("verdicts", "Verdicts"), ("findings", "Findings"), ("audited", "What was audited")]
    toc += [(s["r"].name, s["r"].title) for s in sections]
    toc += [("all-metrics", "All metrics")] + ([("skipped", "Skipped analyses")]
                                               if report.skipped else [])  # fmt: skip
    return {
        "meta": report.meta,
        "header": header_rows(report.meta),
        "sections": sections,
        "skipped": report.skipped,
        "flags": report.flags,
        "verdicts": verdicts(report),
        "toc": toc,
        "n_metrics": sum(len(s["rows"]) for s in sections),
        "ran": {r.name for r in report.results},
    }


def render(report) -> str:
    """The full report page."""
    return _ENV.get_template("report.html.j2").render(**_context(report))


def render_summary(report) -> str:
    """A compact notebook view: findings and the metrics table."""
    return _ENV.get_template("summary.html.j2").render(**_context(report, figures=False))
