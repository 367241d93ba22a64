"""A small MNIST CNN: probabilities, labels and the ``mnist_cnn`` feature space.

The feature space every analysis uses is the penultimate embedding (128 ReLU units),
L2-normalised: unnormalised, uniform noise lands inside the digit clouds.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from ganalyze.errors import LoaderError

EMBED_DIM = 128
WEIGHTS_PATH = Path(__file__).with_name("mnist_cnn.pt")
FEATURE_SPACE = "mnist_cnn"


class MnistCNN(nn.Module):
    """Three 3x3 conv blocks (32, 64, 64 channels, each with 2x2 max-pooling), a 128-unit
    embedding and a 10-way linear head. Input: float (n, 1, 28, 28) in [0, 1]."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, padding=1)
        self.conv2 = nn.Conv2d(32, 64, 3, padding=1)
        self.conv3 = nn.Conv2d(64, 64, 3, padding=1)
        self.fc = nn.Linear(64 * 3 * 3, EMBED_DIM)
        self.dropout = nn.Dropout(0.3)
        self.head = nn.Linear(EMBED_DIM, 10)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """The penultimate embedding (n, 128), before normalisation."""
        x = F.max_pool2d(F.relu(self.conv1(x - 0.5)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = F.max_pool2d(F.relu(self.conv3(x)), 2)
        return F.relu(self.fc(x.flatten(1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (n, 10)."""
        return self.head(self.dropout(self.embed(x)))


def file_sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@functools.lru_cache(maxsize=4)
def _load(path: str) -> MnistCNN:
    model = MnistCNN()
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        model.load_state_dict(state.get("state_dict", state))
    except (OSError, RuntimeError, KeyError) as exc:
        raise LoaderError(
            f"Could not load the MNIST classifier weights from {path} ({exc}). Reinstall "
            "ganalyze, or rebuild them with `ganalyze classifier train --out FILE`."
        ) from exc
    return model.eval().to(memory_format=torch.channels_last)


def load_classifier(path: str | Path | None = None) -> MnistCNN:
    """The bundled classifier (or the weights at ``path``), in eval mode, on the CPU."""
    return _load(str(Path(path) if path is not None else WEIGHTS_PATH))
