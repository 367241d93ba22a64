"""The training record a ``ganalyze train`` checkpoint carries: losses and D's scores."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ganalyze.analyses.base import Analysis, AnalysisResult, Flag, metric_adder, register

GAP_FLAG = 0.10  # D scores training digits this much above held-out digits: memorization


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

    def run(self, ctx) -> AnalysisResult:
        history = ctx.generator.info["history"]
        frame = pd.DataFrame(history)
        last = history[-1]
        res = self.result()
        add = metric_adder(res)
        add("epochs_trained", last["epoch"], "epochs completed", higher_is_better=None)
        add("d_loss_final", last["d_loss"], "D loss in the last epoch (BCE, batch means)")
        add("g_loss_final", last["g_loss"], "G loss in the last epoch (non-saturating BCE)")
        add(
            "d_train_final",
            last["d_train"],
            "D's mean score on training digits after the last epoch",
        )
        add(
            "d_test_final",
            last["d_test"],
            "D's mean score on MNIST test digits after the last epoch",
        )
        add("d_gen_final", last["d_gen"], "D's mean score on generated digits after the last epoch")
        gap = last["d_train"] - last["d_test"]
        add(
            "d_train_test_gap_final",
            gap,
            "d_train_final - d_test_final: how much more D "
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
                    f"d_train_test_gap_final > {GAP_FLAG:g}",
                    ["d_train_test_gap_final"],
                )
            )
        res.tables["history"] = frame
        run_dir = ctx.generator.info.get("run_dir")
        grids = sorted(Path(run_dir).glob("samples/epoch_*.png")) if run_dir else []
        res.arrays["grids"] = _pick(grids)
        if not grids:
            res.notes.append(
                "No sample grids were found next to the checkpoint (its run folder's samples/)."
            )
        return res

    def plot(self, res: AnalysisResult) -> dict[str, Figure]:
        from reference_gan.plots import plot_training_curves

        figs = {"curves": plot_training_curves(res.tables["history"].to_dict("records"))}
        if res.arrays["grids"]:
            figs["sample_grids"] = plot_grids(res)
        return figs


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


def plot_grids(res: AnalysisResult) -> Figure:
    """The sample grids saved during training (fixed latents), first to last epoch."""
    grids = res.arrays["grids"]
    fig = Figure(figsize=(3 * len(grids), 3.3), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(grids)))
    for ax, (title, grid) in zip(axes, grids, strict=True):
        ax.imshow(grid, cmap="gray", interpolation="nearest")
        ax.set_title(title, fontsize="small")
        ax.set_axis_off()
    return fig
