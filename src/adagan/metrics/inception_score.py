"""Inception Score (Salimans et al. 2016): exp(E_x KL(p(y|x) || p(y))), mean and std over 10 splits.

Needs the Inception classifier head, which only NVIDIA's inception-2015-12-05.pt has; with the
features-only fid-helper network the detector's `probabilities` raises a WeightsError.
"""

from __future__ import annotations

import numpy as np

from adagan.metrics.stats import GenFn, gather_rows, shard


def inception_score_from_probs(probs: np.ndarray, num_splits: int = 10) -> tuple[float, float]:
    p = np.asarray(probs, np.float64)
    scores = []
    for part in np.array_split(p, num_splits):
        kl = part * (np.log(part + 1e-20) - np.log(part.mean(axis=0, keepdims=True) + 1e-20))
        scores.append(np.exp(kl.sum(axis=1).mean()))
    return float(np.mean(scores)), float(np.std(scores))


def compute_is(gen_fn: GenFn, num_gen: int, detector, *, num_splits: int = 10, batch_size: int = 32, device="cpu",
               rank: int = 0, world_size: int = 1, progress: bool | None = None) -> tuple[float, float] | None:
    from adagan.metrics.features import extract_features

    idx = shard(num_gen, rank, world_size)
    batches = (gen_fn(idx[i: i + batch_size]) for i in range(0, len(idx), batch_size))
    part = extract_features(batches, detector.probabilities, total=len(idx), device=device, desc="generated",
                            progress=progress)
    probs = gather_rows(part, num_gen, rank=rank, world_size=world_size, device=device)
    return inception_score_from_probs(probs, num_splits) if rank == 0 else None
