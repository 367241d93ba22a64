"""The bundled reference GAN of the study "Understanding GANs: MNIST case study"."""

from reference_gan.model import make_discriminator, make_generator

__all__ = ["make_discriminator", "make_generator"]
