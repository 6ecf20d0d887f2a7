"""Adaptive discriminator augmentation: the transform pipeline and the p controller."""

from adagan.augment.controller import MODES, AdaController
from adagan.augment.pipeline import AUGPIPES, GROUPS, STRENGTHS, TRANSFORMS, AugmentPipe

__all__ = ["AugmentPipe", "AdaController", "AUGPIPES", "GROUPS", "STRENGTHS", "TRANSFORMS", "MODES"]
