"""adagan: StyleGAN2 with adaptive discriminator augmentation (ADA), in pure PyTorch."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["build_networks", "train", "__version__"]


def build_networks(preset: str, resolution: int, img_channels: int = 3, c_dim: int = 0, gpus: int = 1):
    """Build (G, D) exactly as training with `preset` would, e.g. build_networks('paper256', 256)."""
    from adagan.networks import Discriminator, Generator
    from adagan.presets import resolve

    config = resolve(preset, resolution, img_channels=img_channels, c_dim=c_dim, gpus=gpus)
    return Generator(config.G), Discriminator(config.D)


def train(data: str | None = None, **options):
    """Train as `adagan train` does, without click: `adagan.train("mydata.zip", kimg=500, mirror=True)`.

    The keywords are the command's flags (preset, batch, gamma, kimg, aug, p, ..., outdir, name, new,
    device, overrides=["loss.r1_gamma=0.5"]); the run directory and exact resume are the command's too.
    Returns the training summary (adagan.training.run.train; `plan` resolves without training).
    """
    from adagan.training.run import train as train_run

    return train_run(data, **options)
