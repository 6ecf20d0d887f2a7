"""Memorisation: how close generated images come to the training images (metric `memNk`).

A discriminator that memorises a small training set (r_t -> 1, Karras et al. 2020 §2) pushes the
generator towards copies of the training images before FID shows anything. For every generated
sample we take the distance to its nearest training image, in Inception pool-feature space and in
pixels (images area-downsampled to at most 32x32, values in [0, 1], root-mean-square over
pixels and channels), and compare it with how far the training images lie from *each other*:

- the reference distance of training image i is its distance to the nearest *other* training
  image (leave-one-out; exact duplicates removed first, so a repeated file is not a "copy");
- `copies`: the fraction of generated samples nearer to a training image than the 5th percentile
  of those reference distances. Training images are exchangeable with new draws from the same
  distribution, so a generator that produces genuinely new images scores about 0.05, and one that
  reproduces training images scores up to 1;
- `dist`: the median nearest-neighbour distance of the generated samples divided by the median
  reference distance (about 1 for novel samples, towards 0 for copies).

Measure against the set the model was trained on (the run's --subset, not the full pool).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

COPY_QUANTILE = 0.05  # reference-distance percentile below which a sample counts as a near-copy
PIXEL_RES = 32  # pixel distances are taken at this resolution (or the images' own, if smaller)


def pixel_vectors(images: torch.Tensor | np.ndarray, max_res: int = PIXEL_RES) -> np.ndarray:
    """uint8 [N, C, H, W] -> float32 [N, C*h*w] in [0, 1], area-downsampled to at most max_res."""
    x = torch.as_tensor(images).float() / 255  # [NCHW]
    if x.shape[-1] > max_res:
        x = F.adaptive_avg_pool2d(x, max_res)
    x = x.flatten(1)
    return (x / np.sqrt(x.shape[1])).numpy()  # L2 of the scaled vector = RMS pixel difference


def nearest(queries: np.ndarray, refs: np.ndarray, *, leave_one_out: bool = False,
            chunk: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """(L2 distance, index) of each query row's nearest row of refs, [N] each; with leave_one_out, queries
    ARE refs and each row's own entry is skipped."""
    q = torch.from_numpy(np.asarray(queries, np.float64))
    r = torch.from_numpy(np.asarray(refs, np.float64))
    if leave_one_out and len(r) < 2:
        raise ValueError("leave-one-out distances need at least 2 reference rows")
    dists, idx = [torch.zeros([0], dtype=torch.float64)], [torch.zeros([0], dtype=torch.int64)]
    for i in range(0, len(q), chunk):
        d = torch.cdist(q[i: i + chunk], r)
        if leave_one_out:
            rows = torch.arange(d.shape[0])
            d[rows, rows + i] = float("inf")
        m = d.min(1)
        dists.append(m.values)
        idx.append(m.indices)
    return torch.cat(dists).numpy(), torch.cat(idx).numpy()


def nearest_distances(queries: np.ndarray, refs: np.ndarray, *, leave_one_out: bool = False,
                      chunk: int = 1024) -> np.ndarray:
    """The distances of `nearest`."""
    return nearest(queries, refs, leave_one_out=leave_one_out, chunk=chunk)[0]


def _unique_rows(x: np.ndarray) -> np.ndarray:
    return np.unique(np.asarray(x), axis=0)


def memorisation_scores(gen: np.ndarray, train: np.ndarray, quantile: float = COPY_QUANTILE) -> dict[str, float]:
    """{'copies', 'dist', 'threshold'} of generated rows `gen` against training rows `train` (one space)."""
    ref = _unique_rows(train)
    if len(ref) < 2:
        raise ValueError("the training set needs at least 2 distinct images for a memorisation score")
    loo = nearest_distances(ref, ref, leave_one_out=True)
    threshold = float(np.quantile(loo, quantile))
    d = nearest_distances(gen, ref)
    return {"copies": float(np.mean(d < threshold)), "dist": float(np.median(d) / max(np.median(loo), 1e-12)),
            "threshold": threshold}


def memorisation(gen_feats: np.ndarray, train_feats: np.ndarray, gen_px: np.ndarray,
                 train_px: np.ndarray) -> dict[str, float]:
    """The `memNk` results: copies / dist in Inception-feature space and in pixels (suffix _px)."""
    f = memorisation_scores(gen_feats, train_feats)
    p = memorisation_scores(gen_px, train_px)
    return {"copies": f["copies"], "dist": f["dist"], "copies_px": p["copies"], "dist_px": p["dist"]}
