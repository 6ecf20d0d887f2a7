"""Perceptual path length (Karras et al. 2019, StyleGAN section 3), in the StyleGAN2 variants.

For each sample: latents z0, z1 and t (0 for "end" sampling, uniform in [0, 1) for "full"); in W,
w0, w1 = mapping(z0, c), mapping(z1, c) and images at lerp(w0, w1, t) and lerp(w0, w1, t + eps); in Z,
images at mapping(slerp(z0, z1, t)) and mapping(slerp(z0, z1, t + eps)); distance = LPIPS / eps^2 with
eps = 1e-4. With `crop` (the official ppl_zfull, ppl_wfull, ppl_zend, ppl_wend) the central face region
[3/8..7/8 of the height, 2/8..6/8 of the width] is cut out first and images are area-downsampled by
resolution // 256; without it (adagan's ppl_wend = the official ppl2_wend) images larger than 256 are
area-downsampled to 256 (inside LPIPSVGG16.features). The result is the mean after dropping values outside
the 1st..99th percentiles. docs/metrics.md lists the names.
"""

from __future__ import annotations

import numpy as np
import torch

from adagan.metrics.stats import gather_rows, sample_latents, shard


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation between the directions of a and b [N, D] at t [N, 1]; a unit vector."""
    a = a / a.norm(dim=-1, keepdim=True)
    b = b / b.norm(dim=-1, keepdim=True)
    cos = (a * b).sum(dim=-1, keepdim=True)
    ortho = b - cos * a  # b's part orthogonal to a
    ortho = ortho / ortho.norm(dim=-1, keepdim=True)
    angle = t * torch.acos(cos)
    out = a * torch.cos(angle) + ortho * torch.sin(angle)
    return out / out.norm(dim=-1, keepdim=True)


def _t(indices: np.ndarray, seed: int, sampling: str) -> torch.Tensor:
    """t per sample [N, 1]: 0 ('end') or uniform in [0, 1) from its own stream ([seed, i, 2]; z uses [seed, i])."""
    if sampling == "end":
        return torch.zeros([len(indices), 1])
    return torch.tensor([[np.random.default_rng([seed, int(i), 2]).random()] for i in indices]).float()


@torch.no_grad()
def ppl_distances(G, lpips, indices: np.ndarray, *, epsilon: float = 1e-4, dataset=None, seed: int = 0,
                  device="cpu", space: str = "w", sampling: str = "end", crop: bool = False) -> np.ndarray:
    """Per-sample scaled LPIPS distances [len(indices)] for sample indices (deterministic per index)."""
    (z0, z1), c = sample_latents(indices, G.z_dim, seed=seed, dataset=dataset, c_dim=G.c_dim, num=2)
    z0, z1, c = z0.to(device), z1.to(device), c.to(device)
    t = _t(indices, seed, sampling).to(device)
    if space == "w":
        w0, w1 = G.mapping(z0, c), G.mapping(z1, c)
        wt0 = torch.lerp(w0, w1, t[:, :, None])
        wt1 = torch.lerp(w0, w1, t[:, :, None] + epsilon)
    else:
        wt0, wt1 = G.mapping(slerp(z0, z1, t), c), G.mapping(slerp(z0, z1, t + epsilon), c)
    img = G.synthesis(torch.cat([wt0, wt1]), noise_mode="const").float()
    if crop:
        e = img.shape[2] // 8
        img = img[:, :, 3 * e: 7 * e, 2 * e: 6 * e]
        factor = G.img_resolution // 256
        if factor > 1:
            img = torch.nn.functional.avg_pool2d(img, factor)
    img = (img + 1) * (255 / 2)
    if img.shape[1] == 1:
        img = img.repeat(1, 3, 1, 1)
    f0, f1 = lpips.features(img).chunk(2)
    return ((f0 - f1).square().sum(dim=1) / epsilon**2).cpu().numpy()


def compute_ppl(G, lpips, num_samples: int, *, epsilon: float = 1e-4, dataset=None, batch_size: int = 16,
                seed: int = 0, device="cpu", rank: int = 0, world_size: int = 1,
                progress: bool | None = None, space: str = "w", sampling: str = "end",
                crop: bool = False) -> float | None:
    """PPL over num_samples samples (default: ppl_wend); the value on rank 0, None on other ranks."""
    from adagan.progress import progress as progress_bar

    if crop and G.img_resolution < 32:  # the crop is half the image; LPIPS-VGG16's pooling needs 16 px
        from adagan.errors import ConfigError

        raise ConfigError(f"the official PPL variants with a centre crop (ppl_zfull, ppl_wfull, ppl_zend) need a "
                          f"generator of at least 32 px, not {G.img_resolution}; use ppl2_wend (no crop)")
    idx = shard(num_samples, rank, world_size)
    parts = []
    with progress_bar(len(idx), desc="ppl", show=progress, leave=False) as bar:
        for i in range(0, len(idx), batch_size):
            b = idx[i: i + batch_size]
            parts.append(ppl_distances(G, lpips, b, epsilon=epsilon, dataset=dataset, seed=seed, device=device,
                                       space=space, sampling=sampling, crop=crop))
            bar.update(len(b))
    part = np.concatenate(parts) if parts else np.zeros([0], np.float32)
    dist = gather_rows(part[:, None].astype(np.float32), num_samples, rank=rank, world_size=world_size,
                       device=device)[:, 0]
    if rank != 0:
        return None
    lo = np.percentile(dist, 1, method="lower")
    hi = np.percentile(dist, 99, method="higher")
    return float(dist[(dist >= lo) & (dist <= hi)].mean())
