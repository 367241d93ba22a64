"""The result of a neighbour search, and the checks on the arrays that go into one."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ganalyze.errors import InputError


@dataclass(frozen=True)
class Neighbors:
    """k nearest base points per query: ``distances`` (n, k) float32, ``indices`` (n, k) int64."""

    distances: np.ndarray
    indices: np.ndarray

    @property
    def kth(self) -> np.ndarray:
        """Distance to the k-th neighbour of each query."""
        return self.distances[:, -1]


def as_matrix(name: str, x: np.ndarray | torch.Tensor) -> torch.Tensor:
    """``x`` as a contiguous float32 (n, d) CPU tensor (images flattened); InputError if it is
    empty, of another rank, or holds NaN or Inf."""
    t = x if torch.is_tensor(x) else torch.as_tensor(np.asarray(x))
    if t.ndim > 2:
        t = t.reshape(t.shape[0], -1)
    if t.ndim != 2 or t.shape[0] == 0:
        raise InputError(f"{name} must be a non-empty (n, d) array; got shape {tuple(t.shape)}.")
    t = t.detach().cpu().to(torch.float32).contiguous()
    if not np.isfinite(t.numpy()).all():
        bad = np.count_nonzero(~np.isfinite(t.numpy()))
        raise InputError(f"{name} contains {bad} NaN or Inf values.")
    return t
