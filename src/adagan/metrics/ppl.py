"""Perceptual path length (Karras et al. 2019, StyleGAN section 3), the StyleGAN2 `ppl_wend` variant.

For each sample: w0, w1 = mapping(z0, c), mapping(z1, c); t = 0 ("end" sampling); images at
lerp(w0, w1, t) and lerp(w0, w1, t + eps); distance = LPIPS / eps^2 with eps = 1e-4. Images larger
than 256 are area-downsampled to 256 (inside LPIPSVGG16.features); no crop. The result is the mean
after dropping values outside the 1st..99th percentiles.
"""

from __future__ import annotations

import numpy as np
import torch

from adagan.metrics.stats import gather_rows, sample_latents, shard


@torch.no_grad()
def ppl_distances(G, lpips, indices: np.ndarray, *, epsilon: float = 1e-4, dataset=None, seed: int = 0,
                  device="cpu") -> np.ndarray:
    """Per-sample scaled LPIPS distances [len(indices)] for sample indices (deterministic per index)."""
    (z0, z1), c = sample_latents(indices, G.z_dim, seed=seed, dataset=dataset, c_dim=G.c_dim, num=2)
    z0, z1, c = z0.to(device), z1.to(device), c.to(device)
    w0, w1 = G.mapping(z0, c), G.mapping(z1, c)
    t = torch.zeros([len(indices), 1, 1], device=device)  # 'end' sampling
    wt0 = torch.lerp(w0, w1, t)
    wt1 = torch.lerp(w0, w1, t + epsilon)
    img = G.synthesis(torch.cat([wt0, wt1]), noise_mode="const")
    img = (img.float() + 1) * (255 / 2)
    if img.shape[1] == 1:
        img = img.repeat(1, 3, 1, 1)
    f0, f1 = lpips.features(img).chunk(2)
    return ((f0 - f1).square().sum(dim=1) / epsilon**2).cpu().numpy()


def compute_ppl(G, lpips, num_samples: int, *, epsilon: float = 1e-4, dataset=None, batch_size: int = 16,
                seed: int = 0, device="cpu", rank: int = 0, world_size: int = 1,
                progress: bool | None = None) -> float | None:
    """ppl_wend over num_samples samples; the value on rank 0, None on other ranks."""
    from adagan.progress import progress as progress_bar

    idx = shard(num_samples, rank, world_size)
    parts = []
    with progress_bar(len(idx), desc="ppl", show=progress, leave=False) as bar:
        for i in range(0, len(idx), batch_size):
            b = idx[i: i + batch_size]
            parts.append(ppl_distances(G, lpips, b, epsilon=epsilon, dataset=dataset, seed=seed, device=device))
            bar.update(len(b))
    part = np.concatenate(parts) if parts else np.zeros([0], np.float32)
    dist = gather_rows(part[:, None].astype(np.float32), num_samples, rank=rank, world_size=world_size,
                       device=device)[:, 0]
    if rank != 0:
        return None
    lo = np.percentile(dist, 1, method="lower")
    hi = np.percentile(dist, 99, method="higher")
    return float(dist[(dist >= lo) & (dist <= hi)].mean())
