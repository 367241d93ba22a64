"""Train the bundled MNIST classifier reproducibly: ``ganalyze classifier train``."""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path

import torch
from torch.nn import functional as F
from tqdm.auto import tqdm

from ganalyze._io import save_torch
from ganalyze.classifier.model import MnistCNN
from ganalyze.data import load_mnist

logger = logging.getLogger(__name__)


def _augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Small random affine jitter (rotation 10 deg, scale 10%, shift 2 px) per image."""
    n = x.shape[0]
    angle = (torch.rand(n, generator=gen) * 2 - 1) * math.radians(10)
    scale = 1 + (torch.rand(n, generator=gen) * 2 - 1) * 0.1
    shift = (torch.rand(n, 2, generator=gen) * 2 - 1) * (2 / 14)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack(
        [torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1
    )
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, align_corners=False, padding_mode="zeros")


@torch.no_grad()
def accuracy(model: MnistCNN, images: torch.Tensor, labels: torch.Tensor) -> float:
    """Top-1 accuracy on (n, 1, 28, 28) images in [0, 1]."""
    model.eval()
    hits = sum(
        int((model(images[i : i + 2000]).argmax(1) == labels[i : i + 2000]).sum())
        for i in range(0, len(images), 2000)
    )
    return hits / len(images)


def train_classifier(
    out: str | os.PathLike[str],
    epochs: int = 4,
    seed: int = 0,
    batch_size: int = 128,
    lr: float = 2e-3,
    data_dir: str | os.PathLike[str] | None = None,
    quiet: bool = False,
    limit: int | None = None,
) -> dict:
    """Train :class:`MnistCNN` on MNIST train (seeded) and save its weights to ``out``.

    Returns the record saved beside the weights: seed, epochs, test accuracy.
    """
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    train, test = load_mnist(True, data_dir), load_mnist(False, data_dir)
    x, y = train.to_unit()[:limit], train.labels[:limit]
    model = MnistCNN()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    steps = epochs * math.ceil(len(x) / batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
    for epoch in range(epochs):
        model.train()
        perm = torch.randperm(len(x), generator=gen)
        bar = tqdm(
            range(0, len(x), batch_size),
            desc=f"classifier epoch {epoch + 1}/{epochs}",
            disable=quiet,
            leave=False,
        )
        for i in bar:
            idx = perm[i : i + batch_size]
            loss = F.cross_entropy(model(_augment(x[idx], gen)), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        acc = accuracy(model, test.to_unit(), test.labels)
        logger.info("classifier epoch %d: test accuracy %.4f", epoch + 1, acc)
    record = {
        "seed": seed,
        "epochs": epochs,
        "batch_size": batch_size,
        "lr": lr,
        "test_accuracy": acc,
    }
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    save_torch({"state_dict": state, "meta": record}, Path(out))
    return record
