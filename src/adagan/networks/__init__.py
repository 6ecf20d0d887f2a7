"""StyleGAN2 networks (Karras et al. 2020, "Analyzing and Improving the Image Quality of StyleGAN", config F)."""

from adagan.networks.discriminator import Discriminator
from adagan.networks.generator import Generator, MappingNetwork, SynthesisNetwork

__all__ = ["Generator", "MappingNetwork", "SynthesisNetwork", "Discriminator"]
