"""StyleGAN2 networks (SPEC §1)."""

from adagan.networks.discriminator import Discriminator
from adagan.networks.generator import Generator, MappingNetwork, SynthesisNetwork

__all__ = ["Generator", "MappingNetwork", "SynthesisNetwork", "Discriminator"]
