"""The training record a ``ganalyze train`` checkpoint carries: losses and D's scores."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ganalyze.analyses.base import Analysis, AnalysisResult, Flag, metric_adder, register

GAP_FLAG = 0.10  # D scores training digits this much above held-out digits: memorization

# Metric names
EPOCHS_TRAINED, D_LOSS_FINAL, G_LOSS_FINAL = "epochs_trained", "d_loss_final", "g_loss_final"
D_TRAIN_FINAL, D_TEST_FINAL, D_GEN_FINAL = "d_train_final", "d_test_final", "d_gen_final"
D_TRAIN_TEST_GAP_FINAL = "d_train_test_gap_final"
METRICS = (EPOCHS_TRAINED, D_LOSS_FINAL, G_LOSS_FINAL, D_TRAIN_FINAL, D_TEST_FINAL, D_GEN_FINAL,
           D_TRAIN_TEST_GAP_FINAL)  # fmt: skip


@register
class Training(Analysis):
    name = "training"
    title = "Training record"
    description = (
        "How training went, from the history inside the checkpoint: the losses and the "
        "discriminator's mean score on training, held-out (MNIST test) and generated digits per "
        "epoch, with the sample grids written during training."
    )
    needs = ("history",)
    order = 90
    metric_names = METRICS

    def run(self, ctx) -> AnalysisResult:
        history = ctx.generator.info["history"]
        frame = pd.DataFrame(history)
        last = history[-1]
        res = self.result()
        add = metric_adder(res)
        add(EPOCHS_TRAINED, last["epoch"], "epochs completed", higher_is_better=None)
        add(D_LOSS_FINAL, last["d_loss"], "D loss in the last epoch (BCE, batch means)")
        add(G_LOSS_FINAL, last["g_loss"], "G loss in the last epoch (non-saturating BCE)")
        add(
            D_TRAIN_FINAL,
            last["d_train"],
            "D's mean score on training digits after the last epoch",
        )
        add(
            D_TEST_FINAL,
            last["d_test"],
            "D's mean score on MNIST test digits after the last epoch",
        )
        add(D_GEN_FINAL, last["d_gen"], "D's mean score on generated digits after the last epoch")
        gap = last["d_train"] - last["d_test"]
        add(
            D_TRAIN_TEST_GAP_FINAL,
            gap,
            f"{D_TRAIN_FINAL} - {D_TEST_FINAL}: how much more D "
            "believes training digits than unseen ones (target 0)",
            target=0.0,
        )
        res.rules = [
            f"Flagged when D scores training digits more than {GAP_FLAG:g} above "
            "held-out MNIST test digits after the last epoch."
        ]
        if gap > GAP_FLAG:
            res.flags.append(
                Flag(
                    f"D scores training digits {last['d_train']:.3f} but held-out digits "
                    f"{last['d_test']:.3f} (gap {gap:.3f}): it has memorized its training set "
                    "rather than learned what a digit looks like.",
                    f"{D_TRAIN_TEST_GAP_FINAL} > {GAP_FLAG:g}",
                    [D_TRAIN_TEST_GAP_FINAL],
                )
            )
        res.tables["history"] = frame
        run_dir = ctx.generator.info.get("run_dir")
        grids = sorted(Path(run_dir).glob("samples/epoch_*.png")) if run_dir else []
        res.arrays["grids"] = _pick(grids)
        res.figures = {"curves": plot_curves}
        if grids:
            res.figures["sample_grids"] = plot_grids
        else:
            res.notes.append(
                "No sample grids were found next to the checkpoint (its run folder's samples/)."
            )
        return res


def plot_curves(res: AnalysisResult, ax=None) -> Figure:
    """Losses and D's mean scores per epoch (``ax``: two axes, or None for a new Figure); the
    legends sit beside the axes, and a run of one epoch gets an axis from epoch 0 to 2 with
    its points marked, not a line of zero length."""
    from reference_gan.plots import plot_training_curves

    history = res.tables["history"].to_dict("records")
    if ax is None:
        fig = plot_training_curves(history)
        axes = fig.axes[:2]
    else:
        plot_training_curves(history, axes=ax)
        axes = list(ax)
    epochs = [h["epoch"] for h in history]
    for a in axes:
        if a.get_legend() is not None:
            a.legend(frameon=False, fontsize="small", loc="upper left", bbox_to_anchor=(1, 1))
        if len(set(epochs)) == 1:
            a.set_xlim(epochs[0] - 1, epochs[0] + 1)
            a.set_xticks([epochs[0] - 1, epochs[0], epochs[0] + 1])
            for line in a.get_lines():
                if len(line.get_xdata()) == 1:
                    line.set_marker("o")
    return axes[0].figure


def _pick(paths: list[Path], count: int = 4) -> list[tuple[str, np.ndarray]]:
    """Up to ``count`` grids spread from first to last epoch, read as arrays."""
    from PIL import Image

    if not paths:
        return []
    chosen = sorted({paths[int(i)] for i in np.linspace(0, len(paths) - 1, count).round()})
    out = []
    for p in chosen:
        with Image.open(p) as im:
            out.append((p.stem.replace("_", " "), np.asarray(im.convert("L"))))
    return out


def plot_grids(res: AnalysisResult, ax=None) -> Figure:
    """The sample grids saved during training (fixed latents), first to last epoch (``ax``:
    one axes per grid, or None for a new Figure)."""
    grids = res.arrays["grids"]
    if ax is None:
        ax = Figure(figsize=(3 * len(grids), 3.3), layout="constrained").subplots(1, len(grids))
    axes = np.atleast_1d(ax)
    for ax, (title, grid) in zip(axes, grids, strict=True):
        ax.imshow(grid, cmap="gray", interpolation="nearest")
        ax.set_title(title, fontsize="small")
        ax.set_axis_off()
    return axes[0].figure
