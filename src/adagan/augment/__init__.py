"""Adaptive discriminator augmentation: the transform pipeline and the p controller."""

from adagan.augment.controller import MODES, AdaController, build_augment
from adagan.augment.pipeline import AUGPIPES, GROUPS, STRENGTHS, TRANSFORMS, AugmentPipe

__all__ = ["AugmentPipe", "AdaController", "AUGPIPES", "GROUPS", "STRENGTHS", "TRANSFORMS", "MODES", "build_augment"]
