"""LPIPS v0.1 with a VGG16 trunk (Zhang et al. 2018, "The Unreasonable Effectiveness of Deep Features").

LPIPS(a, b) = sum_l mean_hw sum_c w_lc (n_l(a) - n_l(b))^2, where n_l is the channel-normalised
activation of VGG16 at relu1_2, relu2_2, relu3_3, relu4_3, relu5_3 and w_l >= 0 are the learned
linear heads. Scaling each normalised activation by sqrt(w_lc / (H_l W_l)) and flattening turns
this into a plain squared L2 distance between two feature vectors; `features()` returns those
vectors (the contract of the `vgg16.pt` used by StyleGAN2's projector), so a projector can
compute target features once and precision/recall can run k-NN in this space.

The weights come from `adagan weights fetch lpips-vgg16` (see adagan.metrics.features); a module
built here without loading them has random weights (for tests).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

# torchvision's VGG16 `features` configuration; "M" = 2x2 max-pool.
VGG16_CFG = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512)
# Indices of the conv layers (0..12) whose ReLU outputs LPIPS reads: relu1_2, relu2_2, relu3_3, relu4_3, relu5_3.
TAP_CONVS = (1, 3, 6, 9, 12)
TAP_CHANNELS = (64, 128, 256, 512, 512)
# LPIPS' ScalingLayer: inputs in [-1, 1] are standardised with these ImageNet-derived constants.
SHIFT = (-0.030, -0.088, -0.188)
SCALE = (0.458, 0.448, 0.450)
MAX_RESOLUTION = 256  # larger inputs are area-downsampled to 256x256 first (as StyleGAN2's projector does)


class LPIPSVGG16(torch.nn.Module):
    """VGG16 conv trunk + LPIPS v0.1 linear heads.

    State dict keys: `convs.{0..12}.weight|bias` (torch OIHW, torchvision VGG16 conv order) and
    `lins.{0..4}.weight` ([1, C, 1, 1], non-negative).
    """

    def __init__(self):
        super().__init__()
        convs = []
        c_in = 3
        for v in VGG16_CFG:
            if v != "M":
                convs.append(torch.nn.Conv2d(c_in, v, 3, padding=1))
                c_in = v
        self.convs = torch.nn.ModuleList(convs)
        self.lins = torch.nn.ModuleList(torch.nn.Conv2d(c, 1, 1, bias=False) for c in TAP_CHANNELS)
        with torch.no_grad():  # random init: keep the heads non-negative like the trained ones
            for lin in self.lins:
                lin.weight.abs_()
        self.register_buffer("shift", torch.tensor(SHIFT).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor(SCALE).view(1, 3, 1, 1), persistent=False)

    def activations(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The five tapped ReLU activations for inputs already standardised by the scaling layer."""
        out = []
        i = 0
        for v in VGG16_CFG:
            if v == "M":
                x = F.max_pool2d(x, 2, 2)
                continue
            x = F.relu(self.convs[i](x))
            if i in TAP_CONVS:
                out.append(x)
            i += 1
        return out

    def features(self, img_0_255: torch.Tensor) -> torch.Tensor:
        """float [N, 3, H, W] in 0..255 -> [N, F]; ||features(a) - features(b)||^2 = LPIPS(a, b)."""
        if img_0_255.ndim != 4 or img_0_255.shape[1] != 3:
            raise ValueError(f"expected float images [N, 3, H, W] in 0..255, got shape {list(img_0_255.shape)}")
        x = img_0_255.to(self.shift.dtype)
        if x.shape[2] > MAX_RESOLUTION or x.shape[3] > MAX_RESOLUTION:
            x = F.interpolate(x, size=(MAX_RESOLUTION, MAX_RESOLUTION), mode="area")
        x = (x / 127.5 - 1 - self.shift) / self.scale
        parts = []
        for act, lin in zip(self.activations(x), self.lins, strict=True):
            # normalize over channels (eps as in LPIPS), then weight by sqrt(w / HW) so squared L2 = LPIPS.
            act = act / (act.square().sum(dim=1, keepdim=True).sqrt() + 1e-10)
            w = lin.weight.view(1, -1, 1, 1).clamp(min=0)
            act = act * (w / (act.shape[2] * act.shape[3])).sqrt()
            parts.append(act.flatten(1))
        return torch.cat(parts, dim=1)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """LPIPS distance [N] between two batches of float images in 0..255."""
        return (self.features(a) - self.features(b)).square().sum(dim=1)
