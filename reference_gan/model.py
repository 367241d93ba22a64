"""The reference GAN of the study "Understanding GANs: MNIST case study".

Both networks are plain ``nn.Sequential`` stacks with the study's layer indices, so bare
state_dicts with keys ``0.weight ... 4.bias`` (as simple MNIST GAN scripts save them) load
directly into them.

- G: Linear(64, 256) ReLU Linear(256, 256) ReLU Linear(256, 784) Tanh; prior z ~ N(0, I_64);
  output (n, 784) in [-1, 1].
- D: Linear(784, 256) LeakyReLU(0.2) Linear(256, 256) LeakyReLU(0.2) Linear(256, 1) Sigmoid;
  input (n, 784) in [-1, 1]; output a probability of "real".
"""

from __future__ import annotations

from torch import nn

LATENT_DIM = 64
HIDDEN = 256
IMAGE_SIZE = 784
LEAKY_SLOPE = 0.2


def make_generator(
    latent_dim: int = LATENT_DIM, hidden: int = HIDDEN, image_size: int = IMAGE_SIZE
) -> nn.Sequential:
    """Build the study's generator: (n, latent_dim) -> (n, 784) in [-1, 1]."""
    return nn.Sequential(
        nn.Linear(latent_dim, hidden),
        nn.ReLU(),
        nn.Linear(hidden, hidden),
        nn.ReLU(),
        nn.Linear(hidden, image_size),
        nn.Tanh(),
    )


def make_discriminator(hidden: int = HIDDEN, image_size: int = IMAGE_SIZE) -> nn.Sequential:
    """Build the study's discriminator: (n, 784) in [-1, 1] -> (n, 1) probabilities."""
    return nn.Sequential(
        nn.Linear(image_size, hidden),
        nn.LeakyReLU(LEAKY_SLOPE),
        nn.Linear(hidden, hidden),
        nn.LeakyReLU(LEAKY_SLOPE),
        nn.Linear(hidden, 1),
        nn.Sigmoid(),
    )
