"""What a comparison audits: one :class:`Entry` per generator, from specs, run folders and
manifests."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Entry:
    """One generator of a comparison.

    Attributes
    ----------
    label
        Its unique name: the row label of every table, its report folder ``runs/<label>/``.
    spec
        What ``ganalyze report`` would audit (a file as an absolute path).
    step
        Its epoch or iteration in a training run; None when it has none.
    load
        Load options other than the defaults (discriminator, weights, latent_dim, prior,
        output_range, d_input_range, d_output), as plain values.
    train_indices
        The member set file (absolute path), if one was named.
    source
        Where it came from, for messages: "argument 2", "run folder runs/x", "manifest
        m.csv, row 3".
    """

    label: str
    spec: str
    step: int | None = None
    load: dict[str, Any] = field(default_factory=dict)
    train_indices: str | None = None
    source: str = ""
    labelled: bool = False  # the label was given (a manifest's label column), not derived

    @property
    def folder(self) -> str:
        """Its report folder's name under ``runs/``."""
        from ganalyze.comparison.specs import folder_name

        return folder_name(self.label)

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "spec": self.spec, "step": self.step, "load": dict(self.load),
                "train_indices": self.train_indices, "source": self.source,
                "labelled": self.labelled}  # fmt: skip
