"""Improved precision and recall (Kynkaanniemi et al. 2019), k = 3.

Each real feature gets a ball whose radius is the distance to its k-th nearest other real
feature; precision is the fraction of generated features inside at least one real ball, recall
the same with the roles swapped. The embedding is adagan.metrics.features.VGG16Features (see there
for how it differs from NVIDIA's fc7 features).
"""

from __future__ import annotations

import numpy as np
import torch

from adagan.metrics.stats import GenFn, dataset_features, generated_features


def _kth_radius(x: torch.Tensor, k: int, batch: int) -> torch.Tensor:
    out = []
    for i in range(0, len(x), batch):
        d = torch.cdist(x[i: i + batch], x)
        out.append(d.kthvalue(k + 1, dim=1).values)  # +1: the point itself is at distance 0
    return torch.cat(out)


def _coverage(manifold: torch.Tensor, radii: torch.Tensor, probes: torch.Tensor, batch: int) -> float:
    inside = []
    for i in range(0, len(probes), batch):
        d = torch.cdist(probes[i: i + batch], manifold)
        inside.append((d <= radii[None, :]).any(dim=1))
    return float(torch.cat(inside).float().mean())


def precision_recall(real: np.ndarray, gen: np.ndarray, *, k: int = 3, batch: int = 1000) -> tuple[float, float]:
    r = torch.from_numpy(np.asarray(real, np.float32))
    g = torch.from_numpy(np.asarray(gen, np.float32))
    if len(r) <= k or len(g) <= k:
        raise ValueError(f"precision/recall with k={k} needs more than {k} real and generated images")
    precision = _coverage(r, _kth_radius(r, k, batch), g, batch)
    recall = _coverage(g, _kth_radius(g, k, batch), r, batch)
    return precision, recall


def compute_pr(gen_fn: GenFn, dataset, num_gen: int, detector, *, k: int = 3, max_real: int | None = None,
               batch_size: int = 32, device="cpu", rank: int = 0, world_size: int = 1,
               progress: bool | None = None, use_cache: bool = True) -> tuple[float, float] | None:
    """(precision, recall) on rank 0, None on other ranks."""
    real = dataset_features(dataset, detector, max_items=max_real, batch_size=batch_size, rank=rank,
                            world_size=world_size, device=device, progress=progress, use_cache=use_cache)
    gen = generated_features(gen_fn, num_gen, detector, batch_size=batch_size, rank=rank, world_size=world_size,
                             device=device, progress=progress)
    return precision_recall(real, gen, k=k) if rank == 0 else None
