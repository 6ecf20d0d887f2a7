"""Augmentation leak: how far the generated images have moved toward what the augmentations do and the data
does not (metric `leakNk`; docs/metrics.md, "Augmentation leak").

ADA's promise (Karras et al. 2020, §2.2-2.3) is that, for p below about 0.8, the generator does *not* learn the
distortions D sees: a leaking generator produces faces in every hue, rotated, mirrored or rescaled although the
training images are not. This measure needs no detector network: every image (uint8 [N, C, H, W]) is reduced to a
few per-image statistics, and the distribution of each over the generated images is compared with the same over
the real images:

colour (what bgc's colour transforms change: brightness, contrast, luma flip, hue rotation, saturation)
  hue       circular mean hue of the pixels, saturation-weighted (each pixel adds S * e^{i*hue}); the image
            counts in the histogram with the length of that mean, so grey images add almost nothing; 12 bins
  sat       mean HSV saturation
  bright    mean luma (Rec. 601 weights)
  contrast  standard deviation of luma
geometry (bgc's flips, 90-degree and arbitrary rotations, isotropic and anisotropic scaling, translation), measured
on a soft foreground mask (pixels that differ from the image's border colour, relative to the most different)
  orient    direction (0-360 degrees) of the luma dipole of the foreground: where, from the foreground's centre,
            its bright parts lie. Rotations turn it, x-flips mirror it (theta -> 180 - theta); weighted by the
            dipole's strength (a correlation in [0, 1]); 12 bins
  axis      the foreground's principal axis (second moments; angle mod 180 degrees), weighted by its
            anisotropy; 12 bins
  aniso     the anisotropy (lambda1 - lambda2) / (lambda1 + lambda2) of those moments
  scale     the foreground's spread: sqrt of the trace of its second central moments, in image widths
  offset    the distance of the foreground's centre from the image centre, in image widths

A scalar statistic is binned at the reference (real) images' deciles, so each bin holds a tenth of the reals.
Each component's distance is the total-variation distance between the two weighted histograms (half the L1
distance, 0..1). Two finite samples of one distribution are not at distance 0, so from each distance we subtract
its expected value for two independent samples of the reals of the same sizes (the mean over bootstrap draws
from the reals): a component scores about 0 when the generated images are like the reals and up to about 0.9
(deciles: the reals' own bin keeps its tenth) or 1 (angles) when nothing overlaps. The angle histograms' weights
are capped at the reals' median weight, so that a few strongly oriented images do not carry a histogram.
The total-variation distance of a mixture (1 - p) * reals + p * other from the reals is p * TV(other, reals),
so images of which a fraction p was transformed score in proportion to p. `colour` and `geometry` are the means
of their components; `leak` (the headline) is the mean of those two.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

HUE_BINS = 12
ANGLE_BINS = 12
DECILES = 10
BOOTSTRAP = 32  # draws for the finite-sample baseline
MAX_REALS = 5000  # at most this many real images are reduced (an even subset of larger datasets)
MAX_RES = 64  # larger images are area-downsampled to this first (the statistics are global; 256 px: 15x faster)
COMPONENTS = {"colour": ("hue", "sat", "bright", "contrast"),
              "geometry": ("orient", "axis", "aniso", "scale", "offset")}
# Columns of image_stats(): (value, weight) for the circular ones, value alone for the scalar ones.
COLUMNS = ("hue", "hue_w", "sat", "bright", "contrast", "orient", "orient_w", "axis", "axis_w", "aniso", "scale",
           "offset")
CIRCULAR = ("hue", "orient", "axis")  # angles in radians, [-pi, pi) (axis: doubled, so mod 180 degrees)
LUMA = (0.299, 0.587, 0.114)  # Rec. 601 (the augment pipe's own luma axis is (1, 1, 1) / sqrt(3))


def _rgb(images) -> torch.Tensor:
    """uint8 [N, C, H, W] (C = 1, 3 or 4) -> float32 RGB in [0, 1], at most MAX_RES; RGBA is composited on white."""
    x = torch.as_tensor(images).float() / 255  # [NCHW]
    if x.ndim != 4 or x.shape[1] not in (1, 3, 4):
        raise ValueError(f"expected uint8 images [N, C, H, W] with 1, 3 or 4 channels, got {tuple(x.shape)}")
    if max(x.shape[2:]) > MAX_RES:
        x = F.adaptive_avg_pool2d(x, [max(1, round(d * MAX_RES / max(x.shape[2:]))) for d in x.shape[2:]])
    if x.shape[1] == 4:
        x = x[:, :3] * x[:, 3:] + (1 - x[:, 3:])
    return x.repeat(1, 3, 1, 1) if x.shape[1] == 1 else x


def _colour_stats(x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-image hue (saturation-weighted circular mean) and its weight, saturation, luma mean and std."""
    mx, mn = x.max(1).values, x.min(1).values  # [NHW]
    sat = torch.where(mx > 0, (mx - mn) / mx.clamp_min(1e-12), torch.zeros_like(mx))
    r, g, b = x[:, 0], x[:, 1], x[:, 2]
    # The hexagonal hue of HSV, as an angle (0 = red, 2pi/3 = green, 4pi/3 = blue).
    hue = torch.atan2(math.sqrt(3) * (g - b), 2 * r - g - b)
    hx, hy = (sat * torch.cos(hue)).mean((1, 2)), (sat * torch.sin(hue)).mean((1, 2))
    luma = LUMA[0] * r + LUMA[1] * g + LUMA[2] * b
    return {"hue": torch.atan2(hy, hx), "hue_w": torch.hypot(hx, hy), "sat": sat.mean((1, 2)),
            "bright": luma.mean((1, 2)), "contrast": luma.flatten(1).std(1, unbiased=False)}


def _geometry_stats(x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-image moments of a soft foreground mask: luma dipole, principal axis, anisotropy, spread, offset."""
    N, _, H, W = x.shape
    band = max(1, min(H, W) // 16)
    border = torch.cat([x[:, :, :band].flatten(2), x[:, :, -band:].flatten(2), x[:, :, :, :band].flatten(2),
                        x[:, :, :, -band:].flatten(2)], dim=2)
    bg = border.median(2).values[:, :, None, None]  # [NC11] the border's colour
    # Soft mask on the distance from the border colour relative to the image's largest (so that brightness and
    # contrast changes leave it alone): 0 below a tenth of it, 1 from 0.4 of it; an image within 0.02 of its
    # border colour everywhere (noise) has no foreground.
    d = (x - bg).abs().amax(1)  # [NHW]
    d = d / d.flatten(1).amax(1).clamp_min(0.02)[:, None, None]
    w = ((d - 0.1) / 0.3).clamp(0, 1)
    mass = w.sum((1, 2)).clamp_min(1e-12)
    ys = (torch.arange(H, dtype=x.dtype) + 0.5) / W - H / W / 2  # image widths, centred; y down
    xs = (torch.arange(W, dtype=x.dtype) + 0.5) / W - 0.5
    Y, X = torch.meshgrid(ys, xs, indexing="ij")

    def wmean(v):
        return (w * v).sum((1, 2)) / mass

    cx, cy = wmean(X), wmean(Y)
    dx, dy = X - cx[:, None, None], Y - cy[:, None, None]
    sxx, syy, sxy = wmean(dx * dx), wmean(dy * dy), wmean(dx * dy)
    tr = (sxx + syy).clamp_min(1e-12)
    luma = LUMA[0] * x[:, 0] + LUMA[1] * x[:, 1] + LUMA[2] * x[:, 2]
    dl = luma - wmean(luma)[:, None, None]
    px, py = wmean(dl * dx), wmean(dl * -dy)  # y up, so that angles turn counter-clockwise on screen
    dipole = torch.hypot(px, py) / (wmean(dl * dl).sqrt() * tr.sqrt()).clamp_min(1e-12)  # Cauchy-Schwarz: <= 1
    aniso = torch.hypot(sxx - syy, 2 * sxy) / tr
    empty = w.sum((1, 2)) < 1e-6
    zero = torch.zeros_like(cx)
    return {"orient": torch.atan2(py, px), "orient_w": torch.where(empty, zero, dipole),
            "axis": torch.atan2(-2 * sxy, sxx - syy), "axis_w": torch.where(empty, zero, aniso),
            "aniso": aniso, "scale": (sxx + syy).sqrt(), "offset": torch.hypot(cx, cy)}


def image_stats(images) -> np.ndarray:
    """uint8 images [N, C, H, W] -> float64 [N, len(COLUMNS)], the per-image statistics (module docstring)."""
    x = _rgb(images)
    stats = {**_colour_stats(x), **_geometry_stats(x)}
    return torch.stack([stats[c] for c in COLUMNS], 1).double().numpy()


def _col(stats: np.ndarray, name: str) -> np.ndarray:
    return stats[:, COLUMNS.index(name)]


def _bins(name: str, stats: np.ndarray, ref: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """(bin index, weight) of each row for component `name`, and the number of bins; scalar statistics are
    binned at the deciles of `ref` (the reference set)."""
    v = _col(stats, name)
    if name in CIRCULAR:
        k = HUE_BINS if name == "hue" else ANGLE_BINS
        idx = np.floor((v + math.pi) / (2 * math.pi) * k).astype(np.int64) % k
        # Weights capped at the reals' median: a few strongly oriented images must not carry the histogram
        # (its sampling noise would then be that of a handful of images, and the baseline's estimate of it low).
        cap = max(float(np.median(_col(ref, name + "_w"))), 1e-12)
        return idx, np.clip(_col(stats, name + "_w") / cap, 0, 1), k
    edges = np.unique(np.quantile(_col(ref, name), np.arange(1, DECILES) / DECILES))
    return np.searchsorted(edges, v, side="right"), np.ones_like(v), len(edges) + 1


def _hist(idx: np.ndarray, w: np.ndarray, k: int) -> np.ndarray:
    h = np.bincount(idx, weights=w, minlength=k)
    total = h.sum()
    return h / total if total > 1e-12 else np.full(k, 1.0 / k)  # no weight at all: no information


def tv_distance(gen: np.ndarray, ref: np.ndarray, name: str) -> float:
    """Total-variation distance (0..1) between the histograms of component `name` of two image_stats arrays."""
    gi, gw, k = _bins(name, gen, ref)
    ri, rw, _ = _bins(name, ref, ref)
    return float(0.5 * np.abs(_hist(gi, gw, k) - _hist(ri, rw, k)).sum())


def baseline(ref: np.ndarray, num_gen: int, name: str, *, draws: int = BOOTSTRAP, seed: int = 0) -> float:
    """Expected tv_distance of component `name` between two independent samples of the reals' distribution of
    num_gen and len(ref) images: the mean over bootstrap draws (with replacement) from ref."""
    rng = np.random.default_rng(seed)
    idx, w, k = _bins(name, ref, ref)
    out = []
    for _ in range(draws):
        a, b = rng.integers(len(ref), size=num_gen), rng.integers(len(ref), size=len(ref))
        out.append(0.5 * np.abs(_hist(idx[a], w[a], k) - _hist(idx[b], w[b], k)).sum())
    return float(np.mean(out))


def leak_scores(gen: np.ndarray, ref: np.ndarray, *, seed: int = 0) -> dict[str, float]:
    """{component: score, 'colour', 'geometry', 'leak'} of generated image_stats `gen` against real `ref`.

    Each component is its tv_distance minus its finite-sample baseline (about 0 for images like the reals;
    may be slightly negative by chance)."""
    if len(gen) < 2 or len(ref) < 2:
        raise ValueError("the leak measure needs at least 2 generated and 2 real images")
    out = {}
    for names in COMPONENTS.values():
        for name in names:
            out[name] = tv_distance(gen, ref, name) - baseline(ref, len(gen), name, seed=seed)
    for group, names in COMPONENTS.items():
        out[group] = float(np.mean([out[n] for n in names]))
    out["leak"] = (out["colour"] + out["geometry"]) / 2
    return out


def real_indices(n: int, max_items: int = MAX_REALS) -> np.ndarray:
    """The dataset indices the reals' statistics use: all, or max_items evenly spread ones."""
    return np.arange(n) if n <= max_items else np.unique(np.linspace(0, n - 1, max_items).round().astype(np.int64))


_REAL_STATS: dict[tuple, np.ndarray] = {}  # the reals' statistics, kept for the next snapshot of the same data


def _real_key(dataset, n: int) -> tuple | None:
    """What the reals' statistics depend on: the dataset's content (when it can say) and the number used."""
    content = getattr(dataset, "content_hash", None)
    return None if content is None else (content(), n, COLUMNS, MAX_RES)


def compute_leak(gen_fn, dataset, num_gen: int, *, batch_size: int = 32, rank: int = 0, world_size: int = 1,
                 device="cpu", progress: bool | None = None, seed: int = 0) -> dict[str, float] | None:
    """leak_scores of num_gen generated samples (gen_fn: sample indices -> uint8 images, as for the other
    metrics) against the dataset's images (at most MAX_REALS of them); rank 0 gets the result, others None.
    progress: accepted with the other metrics' options; the statistics are quick enough to need no bar."""
    from adagan.metrics.stats import gather_rows, shard

    def reduce(batches, n):
        rows = [image_stats(b.cpu()) for b in batches]
        part = np.concatenate(rows) if rows else np.zeros([0, len(COLUMNS)])
        return gather_rows(part.astype(np.float32), n, rank=rank, world_size=world_size, device=device)

    def chunks(idx):
        return (idx[i: i + batch_size] for i in range(0, len(idx), batch_size))

    gen = reduce((gen_fn(b) for b in chunks(shard(num_gen, rank, world_size))), num_gen)
    real_idx = real_indices(len(dataset))
    key = _real_key(dataset, len(real_idx))
    ref = _REAL_STATS.get(key) if key is not None else None
    if ref is None:
        mine = real_idx[shard(len(real_idx), rank, world_size)]
        ref = reduce((dataset.get_batch(list(b))[0] for b in chunks(mine)), len(real_idx))
        if key is not None:
            _REAL_STATS.clear()  # one dataset at a time: a training run's
            _REAL_STATS[key] = ref
    if rank != 0:
        return None
    return leak_scores(gen.astype(np.float64), ref.astype(np.float64), seed=seed)
