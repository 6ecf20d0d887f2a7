"""DiffAugment (Zhao et al., "Differentiable Augmentation for Data-Efficient GAN Training", NeurIPS 2020).

The paper's policy for StyleGAN2 is `color,translation,cutout`, applied to every image the
discriminator sees (reals and fakes, in the G and the D steps), differentiably:

- color:       brightness + U(-0.5, 0.5); saturation: each pixel's deviation from its channel mean
               scaled by U(0, 2); contrast: deviation from the image mean scaled by U(0.5, 1.5)
               (images in [-1, 1]; in that order);
- translation: an integer shift of up to 1/8 of the size (round(size / 8) pixels) in x and y, each
               uniform in [-s, s]; the uncovered border is zero;
- cutout:      a zeroed square of half the size (rounded), clipped at the borders, whose centre is
               uniform over the pixel positions 0..size-1 (one more, `size`, when the square's side is
               even, as in the paper's code).

Unlike ADA's pipe (adagan.augment.pipeline) there is no per-transform probability in the paper: every
transform is applied to every image. Here each group is applied to a sample with probability `p` (a
buffer, like AugmentPipe.p), so `p = 1` is the paper's DiffAugment and the ADA controller can also tune
`p` (`--augpipe diffaug`). The translation and cutout leak into generated images when always applied
to everything in distribution-changing ways only if the generator can gain from it; the paper shows they
do not for its policy at p = 1 (its §3).
"""

from __future__ import annotations

import torch

from adagan.errors import ConfigError

GROUPS = ("color", "translation", "cutout")
# The transforms of each group, as a preview shows them one at a time (quantile_draws).
TRANSFORMS = {"color": ("brightness", "saturation", "contrast"), "translation": ("translation",),
              "cutout": ("cutout",)}
DEFAULT_POLICY = "color,translation,cutout"
TRANSLATION_RATIO = 0.125  # maximum shift, fraction of the image size
CUTOUT_RATIO = 0.5  # side of the cut-out square, fraction of the image size


def parse_policy(policy: str) -> tuple[str, ...]:
    groups = tuple(g.strip() for g in policy.split(",") if g.strip())
    bad = [g for g in groups if g not in GROUPS]
    if bad or not groups:
        raise ConfigError(f"unknown DiffAugment policy {policy!r}; use a comma-separated subset of "
                          f"{', '.join(GROUPS)}")
    return groups


class DiffAugmentPipe(torch.nn.Module):
    """DiffAugment as an augment pipe: `pipe(images)` with images float NCHW in [-1, 1].

    `pipe.p` (scalar buffer) is the probability that each policy group acts on a sample; 1 = the paper.
    `draws` (for tests): a dict of per-sample tensors replacing the random draws: brightness, saturation,
    contrast in [0, 1) (mapped to the ranges above), shift [N, 2] integers (x, y), centre [N, 2] integer
    pixel coordinates (x, y) of the cut-out, and gate_<group> booleans.
    """

    def __init__(self, policy: str = DEFAULT_POLICY, p: float = 1.0):
        super().__init__()
        self.groups = parse_policy(policy)
        self.policy = ",".join(self.groups)
        self.register_buffer("p", torch.tensor(float(p)))

    def extra_repr(self) -> str:
        return f"policy={self.policy!r}, p={float(self.p):.4f}"

    def forward(self, images: torch.Tensor, draws: dict | None = None) -> torch.Tensor:
        if images.ndim != 4:
            raise ValueError(f"DiffAugmentPipe expects NCHW images, got shape {list(images.shape)}")
        d = draws if draws is not None else self._draw(images)
        x = images
        for group in self.groups:
            gate = d[f"gate_{group}"].to(x.device)
            if not bool(gate.any()):
                continue
            y = getattr(self, f"_{group}")(x, d)
            x = torch.where(gate[:, None, None, None], y, x)
        return x

    def _draw(self, x: torch.Tensor) -> dict:
        N, _, H, W = x.shape
        dev = x.device
        sx, sy = _shift_range(W), _shift_range(H)
        d = {
            "brightness": torch.rand([N], device=dev), "saturation": torch.rand([N], device=dev),
            "contrast": torch.rand([N], device=dev),
            "shift": torch.stack([torch.randint(-sx, sx + 1, [N], device=dev),
                                  torch.randint(-sy, sy + 1, [N], device=dev)], 1),
            "centre": torch.stack([torch.randint(0, W + 1 - _cutout_size(W) % 2, [N], device=dev),
                                   torch.randint(0, H + 1 - _cutout_size(H) % 2, [N], device=dev)], 1),
        }
        p = self.p.to(dev).float()
        for group in GROUPS:
            d[f"gate_{group}"] = torch.rand([N], device=dev) < p
        return d

    @staticmethod
    def _color(x: torch.Tensor, d: dict) -> torch.Tensor:
        view = [-1, 1, 1, 1]
        x = x + (d["brightness"].to(x) - 0.5).view(view)
        mean = x.mean(dim=1, keepdim=True)
        x = (x - mean) * (d["saturation"].to(x) * 2).view(view) + mean
        mean = x.mean(dim=[1, 2, 3], keepdim=True)
        return (x - mean) * (d["contrast"].to(x) + 0.5).view(view) + mean

    @staticmethod
    def _translation(x: torch.Tensor, d: dict) -> torch.Tensor:
        """Output pixel (i, j) takes input pixel (i - dy, j - dx), zero where that lies outside."""
        N, C, H, W = x.shape
        shift = d["shift"].to(x.device).long()
        src_x = torch.arange(W, device=x.device)[None, :] - shift[:, 0:1]  # [N, W]
        src_y = torch.arange(H, device=x.device)[None, :] - shift[:, 1:2]  # [N, H]
        ok = ((src_y >= 0) & (src_y < H))[:, :, None] & ((src_x >= 0) & (src_x < W))[:, None, :]  # [N, H, W]
        idx = (src_y.clamp(0, H - 1)[:, :, None] * W + src_x.clamp(0, W - 1)[:, None, :]).flatten(1)  # [N, HW]
        out = x.flatten(2).gather(2, idx[:, None, :].expand(N, C, H * W)).view(N, C, H, W)
        return out * ok[:, None].to(x.dtype)

    @staticmethod
    def _cutout(x: torch.Tensor, d: dict) -> torch.Tensor:
        N, _, H, W = x.shape
        cw, ch = _cutout_size(W), _cutout_size(H)
        centre = d["centre"].to(x.device).long()
        u = torch.arange(W, device=x.device)[None, :] - (centre[:, 0:1] - cw // 2)  # [N, W]
        v = torch.arange(H, device=x.device)[None, :] - (centre[:, 1:2] - ch // 2)  # [N, H]
        inside = ((v >= 0) & (v < ch))[:, :, None] & ((u >= 0) & (u < cw))[:, None, :]
        return x * (~inside)[:, None].to(x.dtype)


def quantile_draws(images: torch.Tensor, q: float, transform: str) -> dict:
    """Draws for a preview: `transform` (one of TRANSFORMS' values) at quantile q of its distribution on
    every sample, every other transform the identity (0.5 is the identity of the colour draws)."""
    N, _, H, W = images.shape
    full = lambda v: torch.full([N], float(v))  # noqa: E731
    d = {"brightness": full(0.5), "saturation": full(0.5), "contrast": full(0.5),
         "shift": torch.zeros([N, 2], dtype=torch.long), "centre": torch.zeros([N, 2], dtype=torch.long)}
    d.update({f"gate_{g}": torch.zeros([N], dtype=torch.bool) for g in GROUPS})
    group = next((g for g, names in TRANSFORMS.items() if transform in names), None)
    if group is None:
        raise ConfigError(f"unknown DiffAugment transform {transform!r}")
    d[f"gate_{group}"][:] = True

    def pick(n: int) -> int:  # the q-quantile of a uniform draw from 0..n-1
        return min(int(q * n), n - 1)

    if group == "color":
        d[transform] = full(q)
    elif group == "translation":
        d["shift"][:] = torch.tensor([pick(2 * _shift_range(W) + 1) - _shift_range(W),
                                      pick(2 * _shift_range(H) + 1) - _shift_range(H)])
    else:
        d["centre"][:] = torch.tensor([pick(W + 1 - _cutout_size(W) % 2), pick(H + 1 - _cutout_size(H) % 2)])
    return d


def _shift_range(size: int) -> int:
    return int(size * TRANSLATION_RATIO + 0.5)


def _cutout_size(size: int) -> int:
    return int(size * CUTOUT_RATIO + 0.5)
