"""Results are data; rendering comes last: the header is formatted from plain meta, figures are
drawn from a result's data when the report is saved or rendered, and a result keeps only what
its figures show."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import numpy as np
import pytest
from matplotlib.figure import Figure
from test_smoke_synthetic import N_SAMPLES, smoke  # noqa: F401  (a synthetic audit, no MNIST)

import ganalyze.analyses
from ganalyze.analyses.base import AnalysisResult, Metric
from ganalyze.report import Report
from ganalyze.report.html import header_rows

META = {
    "spec": "runs/a/latest.pt",
    "kind": "ganalyze_checkpoint",
    "checkpoint_epoch": 2,
    "sha256": "ab12",
    "has_generator": True,
    "latent_dim": 64,
    "prior": "normal",
    "n_samples": 600,
    "seed": 1,
    "output_range": "-1,1",
    "output_range_source": "Tanh",
    "native_shape": [1, 28, 28],
    "discriminator": {"input_range": "-1,1", "input_shape": [1, 28, 28], "output": None},
    "member_set": "2048 MNIST training images (recorded in the checkpoint)",
    "analyses": ["modes", "dscores"],
    "date": "2025-01-01T00:00:00+00:00",
    "versions": {"ganalyze": "0.1", "torch": "2.0"},
    "params": {"interpolation": {"digits": (4, 2)}},
    "params_changed": {"interpolation": {"digits": (4, 2)}},
    "nn_index": {"kind": "exact", "recall_at_1": {}, "recall_queries": 500},
}


def test_header_rows_are_formatted_from_plain_meta() -> None:
    assert header_rows(META) == [
        ("kind", "ganalyze checkpoint"),
        ("checkpoint epoch", "2"),
        ("file sha256", "ab12"),
        ("latent size / prior", "64 / normal"),
        ("samples", "600 (seed 1)"),
        ("output range", "[-1, 1] (Tanh), native shape (1, 28, 28)"),
        ("discriminator", "input [-1, 1], shape (1, 28, 28), output auto"),
        ("member set", "2048 MNIST training images (recorded in the checkpoint)"),
        ("analyses", "modes, dscores"),
        ("date (UTC)", "2025-01-01T00:00:00+00:00"),
        ("versions", "ganalyze 0.1, torch 2.0"),
        ("parameters", "interpolation.digits=4,2"),
        ("neighbour search", "exact"),
    ]


def test_header_of_a_samples_file_with_an_approximate_index() -> None:
    meta = {**META, "has_generator": False, "discriminator": None, "params_changed": {},
            "nn_index": {"kind": "hnsw", "recall_at_1": {"pixel": 0.9876, "mnist_cnn": 1.0},
                         "recall_queries": 500}}  # fmt: skip
    rows = dict(header_rows(meta))
    assert rows["latent size / prior"] == "– (samples file)"
    assert rows["discriminator"] == "none"
    assert rows["parameters"] == "defaults (see `ganalyze analyses --params`)"
    assert rows["neighbour search"] == (
        "approximate (hnsw): recall@1 on 500 samples pixel 0.988, mnist_cnn 1.000"
    )
    unused = {**meta, "nn_index": {**meta["nn_index"], "recall_at_1": {}}}
    assert dict(header_rows(unused))["neighbour search"].endswith("samples not used")


def test_header_states_the_conditioning_of_g_and_d() -> None:
    g = {"num_classes": 10, "label_input": "onehot", "labels": "uniform",
         "label_input_source": "auto: index failed, onehot worked"}  # fmt: skip
    d = {**META["discriminator"], "input_range_source": "G's native range", "conditional": True,
         "label_input": "index", "label_input_source": "probe: it takes class indices"}  # fmt: skip
    conditional = {**META, "conditional": g, "discriminator": d}
    rows = header_rows(conditional)
    names = [name for name, _ in rows]
    order = ("output range", "conditioning", "discriminator", "discriminator labels", "member set")
    assert [names.index(name) for name in order] == sorted(names.index(name) for name in order)
    rows = dict(rows)
    assert rows["conditioning"] == (
        "10 classes, labels drawn uniformly, fed as one-hot rows (auto: index failed, onehot "
        "worked)"
    )
    assert rows["discriminator"] == (
        "input [-1, 1] (G's native range), shape (1, 28, 28), output auto"
    )
    assert rows["discriminator labels"] == (
        "conditional, D(x, y): real digits their own labels, samples their conditioning "
        "labels; fed as class indices (probe: it takes class indices)"
    )
    by_train = {**conditional["conditional"], "labels": "train", "label_input": "index",
                "label_input_source": "--label-input"}  # fmt: skip
    assert dict(header_rows({**conditional, "conditional": by_train}))["conditioning"] == (
        "10 classes, labels drawn by MNIST train's digit shares, fed as class indices "
        "(--label-input)"
    )
    # a conditional D of an unconditional G, and one audited alone
    blind = {**conditional, "conditional": None}
    assert "conditioning" not in dict(header_rows(blind))
    assert dict(header_rows(blind))["discriminator labels"].startswith(
        "conditional, D(x, y): real digits their own labels, samples the digit the classifier "
        "reads; fed as class indices"
    )
    alone = {**blind, "kind": "discriminator", "has_generator": False}
    assert dict(header_rows(alone))["discriminator labels"].startswith(
        "conditional, D(x, y): real digits their own labels; fed as"
    )
    # an unconditional G and D, as meta.json records them: no such rows
    plain = {**META, "conditional": None,
             "discriminator": {**META["discriminator"], "input_range_source": "given",
                               "conditional": False, "label_input": None,
                               "label_input_source": None}}  # fmt: skip
    assert header_rows(plain) == header_rows(META)
    assert not {"conditioning", "discriminator labels"} & set(dict(header_rows(plain)))


def test_meta_holds_values_not_text(smoke) -> None:  # noqa: F811
    report, _ = smoke
    meta = report.meta
    assert "header" not in meta
    assert meta["nn_index"] == {"kind": "exact", "recall_at_1": {}, "recall_queries": 500}
    assert meta["n_samples"] == N_SAMPLES and isinstance(meta["latent_dim"], int)
    assert meta["params"]["interpolation"]["pairs"] == 8
    assert meta["params_changed"] == {"interpolation": {"pairs": 8, "frames": 8}}
    assert dict(report.header)["parameters"] == "interpolation.pairs=8, interpolation.frames=8"


def _counting_result(calls: list) -> AnalysisResult:
    def draw(res: AnalysisResult, ax=None) -> Figure:
        calls.append(res.name)
        if ax is None:
            ax = Figure(figsize=(2, 2)).subplots()
        ax.plot([0, 1], [res.metric("x").value] * 2)
        return ax.figure

    res = AnalysisResult("lazy", "Lazy", "drawn when rendered")
    res.metrics.append(Metric(name="x", value=0.5, description="a number"))
    res.figures = {"line": draw}
    return res


def test_figures_are_drawn_once_when_the_report_is_saved(tmp_path) -> None:
    calls: list[str] = []
    report = Report(dict(META), [_counting_result(calls)])
    assert calls == [], "building a report draws nothing"
    assert "<table" in report._repr_html_() and calls == [], "the summary draws nothing"
    index = report.save(tmp_path / "r")
    assert calls == ["lazy"], "one drawing gives the PNG, the PDF and the inlined copy"
    png = (index.parent / "figures" / "lazy_line.png").read_bytes()
    assert (index.parent / "figures" / "lazy_line.pdf").read_bytes()[:4] == b"%PDF"
    import base64

    assert base64.b64encode(png).decode() in index.read_text()


def _plot_functions():
    package = ganalyze.analyses
    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        for name, fn in inspect.getmembers(module, inspect.isfunction):
            if name.startswith("plot_") and fn.__module__ == module.__name__:
                yield f"{info.name}.{name}", fn


@pytest.mark.parametrize("name, fn", list(_plot_functions()), ids=lambda v: str(v))
def test_every_plot_function_takes_a_result_and_ax_none(name, fn) -> None:
    params = list(inspect.signature(fn).parameters.values())
    assert params[0].name == "res", name
    assert params[1].name == "ax" and params[1].default is None, name


def _leaves(value):
    if isinstance(value, dict):
        for v in value.values():
            yield from _leaves(v)
    elif isinstance(value, list | tuple):
        for v in value:
            yield from _leaves(v)
    else:
        yield value


def test_results_keep_figure_specs_and_only_the_shown_data(smoke, synthetic_reference) -> None:  # noqa: F811
    report, _ = smoke
    n_train = len(synthetic_reference.train)
    for r in report.results:
        assert r.figures and all(callable(s) and not isinstance(s, Figure)
                                 for s in r.figures.values()), r.name  # fmt: skip
        for leaf in _leaves(r.arrays):
            assert not hasattr(leaf, "numpy") or isinstance(leaf, np.ndarray | np.generic), (
                r.name,
                type(leaf),
            )  # numpy only: no tensors kept alive
            if not isinstance(leaf, np.ndarray):
                continue
            # images shown, never all samples or the train set; per-sample data only as a
            # value or a 2-D position per sample (histograms, scatter plots), never features
            if leaf.ndim >= 3 and leaf.shape[-2:] == (28, 28):
                count = int(np.prod(leaf.shape[:-2]))
                assert count != N_SAMPLES and n_train not in leaf.shape, (r.name, leaf.shape)
            if leaf.ndim and len(leaf) in (N_SAMPLES, n_train):
                assert leaf.ndim == 1 or leaf.shape[1:] == (2,), (r.name, leaf.shape)
        # drawn on demand, from the result alone
        fig = r.draw(next(iter(r.figures)))
        assert isinstance(fig, Figure) and fig.axes


def _covered(fig: Figure) -> list[str]:
    """What each legend of ``fig`` covers, as drawn: points along every line and error bar
    (their segments included) and along unfilled outlines (step histograms), scatter points,
    and the boxes of bars, bands and images; [] when every legend lies clear."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.collections import LineCollection
    from matplotlib.transforms import IdentityTransform

    FigureCanvasAgg(fig).draw()
    renderer = fig.canvas.get_renderer()
    hits = []
    for ax in fig.axes:
        legend = ax.get_legend()
        if legend is None:
            continue
        box = legend.get_window_extent(renderer)
        for line in ax.get_lines():
            if _inside(box, _along(line.get_transform().transform(line.get_xydata()))):
                hits.append(f"line {line.get_label()!r}")
        for coll in ax.collections:
            offsets, where = coll.get_offsets(), coll.get_offset_transform()
            if len(offsets) and not isinstance(where, IdentityTransform):  # scatter, hexbin
                if _inside(box, where.transform(offsets)):
                    hits.append(f"points {coll.get_label()!r}")
            elif isinstance(coll, LineCollection):  # error bars, vlines
                if any(_inside(box, _along(coll.get_transform().transform(segment)))
                       for segment in coll.get_segments()):  # fmt: skip
                    hits.append(f"lines {coll.get_label()!r}")
            elif box.overlaps(coll.get_window_extent(renderer)):  # bands
                hits.append(f"area {type(coll).__name__}")
        for patch in ax.patches:
            if not patch.get_fill():  # an outline (a step histogram): the points along it
                outline = patch.get_transform().transform(patch.get_path().vertices)
                covered = _inside(box, _along(outline))
            else:
                covered = box.overlaps(patch.get_window_extent(renderer))
            if covered:
                hits.append(f"patch {type(patch).__name__}")
        for image in ax.images:
            if box.overlaps(image.get_window_extent(renderer)):
                hits.append("image")
    return hits


def _along(xy: np.ndarray) -> np.ndarray:
    """50 points along each segment of the polyline ``xy`` (n, 2), non-finite points dropped."""
    xy = np.asarray(xy, dtype=float).reshape(-1, 2)
    xy = xy[np.isfinite(xy).all(1)]
    if len(xy) < 2:
        return xy
    steps = np.linspace(0, 1, 50)[:, None, None]
    return (xy[:-1] + steps * (xy[1:] - xy[:-1])).reshape(-1, 2)


def _inside(box, xy: np.ndarray) -> bool:
    x, y = np.asarray(xy, dtype=float).reshape(-1, 2).T
    return bool(((box.x0 < x) & (x < box.x1) & (box.y0 < y) & (y < box.y1)).any())


def test_legends_outside_moves_a_legend_off_the_data() -> None:
    """A legend that covers data (lines, a point, a bar, a band, an error bar and a step
    histogram through the middle of the axes) is moved clear of it; one anchored outside
    already, and a figure legend, stay where they are."""
    from ganalyze.report.html import legends_outside

    fig = Figure(figsize=(4, 3))
    ax1, ax2 = fig.subplots(1, 2)
    x = np.linspace(0, 1, 5)
    ax1.plot(x, x, label="rising")
    ax1.plot(x, 1 - x, label="falling")
    ax1.scatter([0.5], [0.5], label="centre")
    ax1.bar([0.5], [1.0], width=0.2, alpha=0.3, label="bar")
    ax1.fill_between(x, 0.4, 0.6, alpha=0.2, label="band")
    ax1.errorbar([0.45], [0.5], yerr=0.3, fmt="none", label="interval")
    ax1.hist([0.3, 0.5, 0.5, 0.7], bins=3, histtype="step", label="histogram")
    ax1.legend(loc="center")
    ax2.plot(x, x, label="outside")
    kept = ax2.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0))
    figure_legend = fig.legend(["figure"], loc="lower center")
    before = _covered(fig)
    assert {"line 'rising'", "line 'falling'", "points 'centre'"} <= set(before)
    assert {"patch", "area", "lines"} <= {hit.split()[0] for hit in before}  # bar, band, error bar
    assert before.count("patch Polygon") == 1  # the step histogram's outline
    anchor = kept.get_bbox_to_anchor().bounds
    assert legends_outside(fig) is fig
    assert _covered(fig) == []
    assert kept.get_bbox_to_anchor().bounds == anchor and fig.legends == [figure_legend]


def test_legends_cover_no_data(smoke) -> None:  # noqa: F811
    """Every legend of every figure, as the report draws it, lies clear of the plotted lines,
    points and bars of its axes."""
    from ganalyze.report.html import draw

    report, _ = smoke
    checked = 0
    for r in report.results:
        for name in r.figures:
            fig = draw(r, name)
            assert _covered(fig) == [], (r.name, name, _covered(fig))
            checked += sum(ax.get_legend() is not None for ax in fig.axes)
    assert checked >= 5


def test_the_html_reads_top_down_with_one_format_per_metric(smoke) -> None:  # noqa: F811
    import re

    report, folder = smoke
    html = (folder / "index.html").read_text(encoding="utf-8")
    order = [html.index(f'id="{a}"') for a in ("verdicts", "findings", "contents", "audited")]
    sections = [html.index(f'id="{r.name}"') for r in report.results]
    assert order == sorted(order) and order[-1] < min(sections)
    assert max(sections) < html.index('id="all-metrics"') < html.index("<details>")
    for anchor in re.findall(r'<nav class="toc".*?</nav>', html, re.S)[0].split('href="#')[1:]:
        assert f'id="{anchor.split(chr(34))[0]}"' in html
    cells = re.findall(r'<td class="num">([^<]*)</td><td class="num ci">([^<]*)</td>', html)
    assert len(cells) >= sum(len(r.metrics) for r in report.results)
    for value, interval in cells:
        assert "e-" not in value + interval
        if interval:
            low, high = interval.split(" – ")
            places = {len(v.split(".")[1]) if "." in v else 0 for v in (value, low, high)}
            assert len(places) == 1, (value, interval)
    assert html.count("<figcaption>") == sum(len(r.figures) for r in report.results)
    assert all(len(c) > 30 for c in re.findall(r"<figcaption>([^<]*)<code>", html))


def test_interpolation_frame_labels_are_legible() -> None:
    from ganalyze.analyses._interpolation_plots import _rows

    ax = Figure(figsize=(8, 2)).subplots()
    labels = np.array([[1, 7, 10], [3, 3, 10]])
    _rows(ax, np.zeros((2, 3, 28, 28)), labels)
    texts = ax.texts
    assert [t.get_text() for t in texts] == ["1", "7", "?", "3", "3", "?"]
    assert min(t.get_fontsize() for t in texts) >= 8
    image = ax.images[0].get_array()
    for t in texts:  # each label sits on white, above its frame, not over the digit
        x, y = (round(v) for v in t.get_position())
        assert image[y, x] == 0
