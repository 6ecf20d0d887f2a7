"""Using a trained generator, as one import: `generation` (seeds, sampling, style mixing, latent walks),
`projector` (StyleGAN2's projector and its target image) and the image and video writers of `files`.

Images are float NCHW in [-1, 1] inside, uint8 NHWC at the boundary (files, `generate`'s return).
"""

from adagan.files import save_grid, save_image, save_video, to_pil
from adagan.generation import (
    MAX_LIST,
    MAX_SEED,
    IntRanges,
    generate,
    generate_batches,
    interpolate,
    interpolate_batches,
    interpolate_ws,
    load_generator,
    make_labels,
    parse_range,
    resolve_device,
    seed_ranges,
    seed_to_z,
    seeds_to_ws,
    style_mix,
    synthesize,
)
from adagan.generation import to_uint8_nhwc as to_uint8
from adagan.ops.image import make_grid
from adagan.projector import MAX_IMAGE_PIXELS, load_image, project

__all__ = [
    "MAX_IMAGE_PIXELS", "MAX_LIST", "MAX_SEED", "IntRanges", "generate", "generate_batches", "interpolate",
    "interpolate_batches", "interpolate_ws", "load_generator", "load_image", "make_grid", "make_labels",
    "parse_range", "project", "resolve_device", "save_grid", "save_image", "save_video", "seed_ranges",
    "seed_to_z", "seeds_to_ws", "style_mix", "synthesize", "to_pil", "to_uint8",
]
