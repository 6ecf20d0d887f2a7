"""Augmentation for the discriminator: ADA's transform pipeline and p controller, and DiffAugment's pipe."""

from adagan.augment.controller import MODES, AdaController, build_augment, build_pipe
from adagan.augment.diffaug import DiffAugmentPipe
from adagan.augment.pipeline import AUGPIPES, GROUPS, STRENGTHS, TRANSFORMS, AugmentPipe

__all__ = ["AugmentPipe", "DiffAugmentPipe", "AdaController", "AUGPIPES", "GROUPS", "STRENGTHS", "TRANSFORMS", "MODES",
           "build_augment", "build_pipe"]
