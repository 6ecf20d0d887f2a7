"""StyleGAN2 discriminator: blocks from the image resolution down to 8x8, minibatch-std epilogue at 4x4,
projection conditioning with its own 8-layer label mapping (StyleGAN2 paper, Figure 7 and Appendix B).

The three architectures of StyleGAN2's Figure 7: "resnet" (config F and every preset but cifar:
residual blocks with a 1x1 downsampling skip conv), "orig" (a plain chain; the cifar preset) and
"skip" (a FromRGB at every block and in the epilogue, reading the input image 2x-downsampled with the
FIR filter once per block, added to the features).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from adagan.config import DiscriminatorConfig
from adagan.errors import ConfigError
from adagan.limits import check_network
from adagan.networks.generator import MappingNetwork, block_resolutions, channels_at, fp16_resolution
from adagan.networks.layers import FIR, Conv2dLayer, FullyConnectedLayer, MinibatchStdLayer
from adagan.ops import downsample2d, setup_filter

ARCHITECTURES = ("resnet", "orig", "skip")


class DiscriminatorBlock(nn.Module):
    """[FromRGB] -> conv0 3x3 -> conv1 3x3 with 2x down (+ 1x1 down skip in resnet).

    FromRGB is in the top block only, except in "skip", where every block adds FromRGB(img) to its input
    features and passes the image on 2x-downsampled.
    """

    def __init__(self, in_channels: int, tmp_channels: int, out_channels: int, resolution: int,
                 img_channels: int, architecture: str = "resnet", use_fp16: bool = False,
                 conv_clamp: float | None = None):
        super().__init__()
        assert architecture in ARCHITECTURES, architecture
        self.in_channels, self.resolution, self.architecture = in_channels, resolution, architecture
        self.use_fp16 = use_fp16
        if architecture == "skip":
            self.register_buffer("resample_filter", setup_filter(FIR), persistent=False)
        if in_channels == 0 or architecture == "skip":
            self.fromrgb = Conv2dLayer(img_channels, tmp_channels, 1, activation="lrelu", conv_clamp=conv_clamp)
        self.conv0 = Conv2dLayer(tmp_channels, tmp_channels, 3, activation="lrelu", conv_clamp=conv_clamp)
        self.conv1 = Conv2dLayer(tmp_channels, out_channels, 3, activation="lrelu", down=2, conv_clamp=conv_clamp)
        if architecture == "resnet":
            self.skip = Conv2dLayer(tmp_channels, out_channels, 1, bias=False, down=2)

    def forward(self, x: torch.Tensor | None, img: torch.Tensor | None,
                force_fp32: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        """-> (features at half the resolution, the image for the next block: None unless "skip")."""
        device = (img if x is None else x).device
        use_fp16 = self.use_fp16 and not force_fp32 and device.type == "cuda"
        dtype = torch.float16 if use_fp16 else torch.float32
        if x is not None:
            x = x.to(dtype=dtype, memory_format=torch.contiguous_format)
        if self.in_channels == 0 or self.architecture == "skip":
            img = img.to(dtype=dtype, memory_format=torch.contiguous_format)
            y = self.fromrgb(img)
            x = y if x is None else x + y
            img = downsample2d(img, self.resample_filter) if self.architecture == "skip" else None
        if self.architecture == "resnet":
            # Both paths scaled by sqrt(0.5) so the sum keeps unit variance.
            y = self.skip(x, gain=math.sqrt(0.5))
            x = self.conv0(x)
            x = self.conv1(x, gain=math.sqrt(0.5))
            return y + x, img
        return self.conv1(self.conv0(x)), img


class DiscriminatorEpilogue(nn.Module):
    """4x4: [+ FromRGB in skip] -> minibatch std -> conv 3x3 (C+1 -> C) -> FC (C*16 -> C) -> FC (C -> 1 or cmap_dim)."""

    def __init__(self, in_channels: int, cmap_dim: int, resolution: int = 4, mbstd_group_size: int = 4,
                 mbstd_num_channels: int = 1, conv_clamp: float | None = None, img_channels: int = 3,
                 architecture: str = "resnet"):
        super().__init__()
        self.in_channels, self.cmap_dim, self.resolution = in_channels, cmap_dim, resolution
        self.architecture = architecture
        if architecture == "skip":
            # Not clamped, unlike the blocks' FromRGB: that is the official StyleGAN2-ADA layout.
            self.fromrgb = Conv2dLayer(img_channels, in_channels, 1, activation="lrelu")
        self.mbstd = MinibatchStdLayer(mbstd_group_size, mbstd_num_channels) if mbstd_num_channels > 0 else None
        self.conv = Conv2dLayer(in_channels + mbstd_num_channels, in_channels, 3, activation="lrelu",
                                conv_clamp=conv_clamp)
        self.fc = FullyConnectedLayer(in_channels * resolution**2, in_channels, activation="lrelu")
        self.out = FullyConnectedLayer(in_channels, 1 if cmap_dim == 0 else cmap_dim)

    def forward(self, x: torch.Tensor, img: torch.Tensor | None, cmap: torch.Tensor | None) -> torch.Tensor:
        x = x.to(dtype=torch.float32, memory_format=torch.contiguous_format)
        if self.architecture == "skip":
            x = x + self.fromrgb(img.to(dtype=torch.float32, memory_format=torch.contiguous_format))
        if self.mbstd is not None:
            x = self.mbstd(x)
        x = self.conv(x)
        x = self.fc(x.flatten(1))
        x = self.out(x)
        if self.cmap_dim > 0:
            # Projection discriminator: inner product with the label embedding.
            x = (x * cmap).sum(dim=1, keepdim=True) * (1 / np.sqrt(self.cmap_dim))
        return x


class Discriminator(nn.Module):
    """D(img, c) -> logits [N, 1]."""

    def __init__(self, cfg: DiscriminatorConfig):
        super().__init__()
        check_network(cfg)  # every field in range before anything is allocated
        if cfg.architecture not in ARCHITECTURES:
            raise ConfigError(f"D architecture must be one of {ARCHITECTURES}, got {cfg.architecture!r}")
        self.cfg = cfg
        self.c_dim, self.img_resolution, self.img_channels = cfg.c_dim, cfg.img_resolution, cfg.img_channels
        self.block_resolutions = [r for r in reversed(block_resolutions(cfg.img_resolution)) if r > 4]
        fp16_res = fp16_resolution(cfg.img_resolution, cfg.num_fp16_res)
        ch = lambda r: channels_at(r, cfg.channel_base, cfg.channel_max)
        for res in self.block_resolutions:
            in_ch = ch(res) if res < cfg.img_resolution else 0
            block = DiscriminatorBlock(in_ch, ch(res), ch(res // 2), res, cfg.img_channels,
                                       architecture=cfg.architecture,
                                       use_fp16=cfg.num_fp16_res > 0 and res >= fp16_res,
                                       conv_clamp=cfg.conv_clamp)
            setattr(self, f"b{res}", block)
        cmap_dim = cfg.cmap_dim if cfg.c_dim else 0
        if cfg.c_dim:
            self.mapping = MappingNetwork(0, cfg.c_dim, cmap_dim, num_ws=None, num_layers=cfg.map_layers,
                                          lr_mul=cfg.map_lr_mul, w_avg_beta=None)
        self.b4 = DiscriminatorEpilogue(ch(4), cmap_dim, mbstd_group_size=cfg.mbstd_group_size,
                                        mbstd_num_channels=cfg.mbstd_num_channels, conv_clamp=cfg.conv_clamp,
                                        img_channels=cfg.img_channels, architecture=cfg.architecture)

    def forward(self, img: torch.Tensor, c: torch.Tensor | None = None, force_fp32: bool = False) -> torch.Tensor:
        res, C = self.img_resolution, self.img_channels
        assert img.ndim == 4 and img.shape[1:] == (C, res, res), \
            f"img must be [N, {C}, {res}, {res}], got {list(img.shape)}"  # [NCHW]
        x = None
        for r in self.block_resolutions:
            x, img = getattr(self, f"b{r}")(x, img, force_fp32=force_fp32)
        cmap = self.mapping(None, c) if self.c_dim else None
        return self.b4(x, img, cmap)

    def layer_names(self) -> list[str]:
        """Module prefixes in Freeze-D order: from the highest resolution down to the epilogue."""
        names = []
        for r in self.block_resolutions:
            block = getattr(self, f"b{r}")
            names += [f"b{r}.{n}" for n in ("fromrgb", "conv0", "conv1", "skip") if hasattr(block, n)]
        return names + [f"b4.{n}" for n in ("fromrgb", "conv", "fc", "out") if hasattr(self.b4, n)]
