"""The bundled MNIST classifier and the ``mnist_cnn`` feature space."""

from ganalyze.classifier.model import (
    EMBED_DIM,
    WEIGHTS_PATH,
    MnistCNN,
    load_classifier,
)

__all__ = ["EMBED_DIM", "WEIGHTS_PATH", "MnistCNN", "load_classifier"]
