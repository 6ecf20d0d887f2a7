"""Feature collection shared by the metrics: generator sampling, rank sharding and the real-image cache.

Sample i of a metric is drawn from `np.random.default_rng([seed, i])` (its z and, for a conditional
G, the dataset index whose label it uses), so the generated set is the same whatever the batch
size or the number of ranks. Ranks take contiguous slices of the indices; features are gathered over
the `Collectives` a training worker lends (`use_collectives`), so this package never imports
torch.distributed.

Real-image features are cached in `<cache>/metrics/` under a key made of the dataset's content
hash, the detector's `cache_id` and the options (number of images; no x-flips), written
atomically, so a changed dataset or detector never reuses stale features.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from adagan.cache import cache_dir
from adagan.files import atomic_write
from adagan.metrics.features import extract_features
from adagan.ops.image import to_uint8

GenFn = Callable[[np.ndarray], torch.Tensor]  # sample indices -> uint8 images [N, C, H, W]


# ---- processes ---------------------------------------------------------------------------------------------


class Collectives(Protocol):
    """The two collectives the metrics need from a process group.

    Metrics may not import training (docs/code.md) and only training/distributed.py touches
    torch.distributed, so the metrics declare this interface and the training worker lends them
    its implementation (`training.distributed.Collectives`) for one evaluation, `use_collectives`.
    Without one, each rank works alone: gather_rows returns its own rows.
    """

    def all_gather(self, tensor: torch.Tensor) -> list[torch.Tensor]: ...

    def broadcast_object(self, obj, src: int = 0): ...


_collectives: Collectives | None = None


@contextmanager
def use_collectives(collectives: Collectives | None):
    """Let the metrics inside this block gather over `collectives` (None: every rank alone)."""
    global _collectives
    previous, _collectives = _collectives, collectives
    try:
        yield
    finally:
        _collectives = previous


def shard(n: int, rank: int, world_size: int) -> np.ndarray:
    """The contiguous slice of range(n) that `rank` handles."""
    lo, hi = n * rank // world_size, n * (rank + 1) // world_size
    return np.arange(lo, hi)


def _comm_device(device) -> torch.device:
    dev = torch.device(device)
    return dev if dev.type == "cuda" else torch.device("cpu")


def gather_rows(part: np.ndarray, n: int, *, rank: int, world_size: int, device) -> np.ndarray:
    """Concatenate each rank's rows of shard(n, r, world_size) into [n, D] (on every rank)."""
    if world_size <= 1 or _collectives is None:
        return part
    dev = _comm_device(device)
    counts = [len(shard(n, r, world_size)) for r in range(world_size)]
    width = part.shape[1]
    buf = torch.zeros([max(counts), width], dtype=torch.float32, device=dev)
    buf[: part.shape[0]] = torch.from_numpy(part).to(dev)
    out = _collectives.all_gather(buf)
    return np.concatenate([o[:c].cpu().numpy() for o, c in zip(out, counts, strict=True)])


def broadcast_object(obj, *, world_size: int, src: int = 0):
    if world_size <= 1 or _collectives is None:
        return obj
    return _collectives.broadcast_object(obj, src=src)


# ---- generated images -------------------------------------------------------------------------------------


def sample_latents(indices: np.ndarray, z_dim: int, *, seed: int = 0, dataset=None, c_dim: int = 0,
                   num: int = 1) -> tuple[list[torch.Tensor], torch.Tensor]:
    """`num` z's [N, z_dim] per sample and its label c [N, c_dim], drawn from rng([seed, i]) for each index i.

    For a conditional G the label is that of a uniformly drawn dataset image, i.e. the dataset's
    label distribution.
    """
    zs: list[list[np.ndarray]] = [[] for _ in range(num)]
    cs = []
    for i in indices:
        rng = np.random.default_rng([seed, int(i)])
        for k in range(num):
            zs[k].append(rng.standard_normal(z_dim))
        if c_dim:
            cs.append(dataset.get_label(int(rng.integers(len(dataset)))).numpy())
    z = [torch.from_numpy(np.stack(zk) if len(zk) else np.zeros([0, z_dim])).float() for zk in zs]
    c = torch.from_numpy(np.stack(cs)).float() if c_dim and cs else torch.zeros([len(indices), c_dim])
    return z, c


def generator_fn(G, *, dataset=None, device="cpu", seed: int = 0, truncation_psi: float = 1.0) -> GenFn:
    """gen_fn(indices) -> uint8 images of G_ema for those sample indices (noise_mode='const')."""
    if G.c_dim and (dataset is None or getattr(dataset, "c_dim", 0) != G.c_dim):
        from adagan.errors import DatasetError

        raise DatasetError(f"the generator is conditional (c_dim={G.c_dim}) but the dataset has no matching "
                           "labels; evaluate with the labelled dataset it was trained on")

    @torch.no_grad()
    def gen(indices: np.ndarray) -> torch.Tensor:
        (z,), c = sample_latents(indices, G.z_dim, seed=seed, dataset=dataset, c_dim=G.c_dim)
        img = G(z.to(device), c.to(device), truncation_psi=truncation_psi, noise_mode="const")
        return to_uint8(img)

    return gen


def _batches(indices: np.ndarray, batch_size: int):
    for i in range(0, len(indices), batch_size):
        yield indices[i: i + batch_size]


def generated_features(gen_fn: GenFn, num_gen: int, detector, *, batch_size: int = 32, rank: int = 0,
                       world_size: int = 1, device="cpu", progress: bool | None = None) -> np.ndarray:
    """Detector features [num_gen, D] of generated samples 0..num_gen-1 (sharded by rank, gathered)."""
    idx = shard(num_gen, rank, world_size)
    part = extract_features((gen_fn(b) for b in _batches(idx, batch_size)), detector, total=len(idx),
                            device=device, desc="generated", progress=progress)
    return gather_rows(part, num_gen, rank=rank, world_size=world_size, device=device)


# ---- real images ------------------------------------------------------------------------------------------


def cache_key(dataset, detector, **options) -> str | None:
    """Hex key for (dataset content, detector weights, options); None when the detector has no cache_id."""
    cid = getattr(detector, "cache_id", None)
    if cid is None:
        return None
    blob = json.dumps({"dataset": dataset.content_hash(), "detector": cid, "mirror": bool(dataset.mirror),
                       "options": options, "v": 1}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def cache_path(dataset, detector, **options) -> Path | None:
    key = cache_key(dataset, detector, **options)
    return None if key is None else cache_dir() / "metrics" / f"{dataset.name}-{key}.npy"


def _save_npy(path, arr: np.ndarray) -> None:
    with open(path, "wb") as f:
        np.save(f, arr, allow_pickle=False)


def dataset_features(dataset, detector, *, max_items: int | None = None, batch_size: int = 32, rank: int = 0,
                     world_size: int = 1, device="cpu", progress: bool | None = None,
                     use_cache: bool = True) -> np.ndarray | None:
    """Detector features of the dataset's first max_items images (None = all), in index order.

    Returns the array on rank 0 and None on other ranks (only rank 0 computes the metric).
    """
    n = len(dataset) if max_items is None else min(max_items, len(dataset))
    path = cache_path(dataset, detector, num=n) if use_cache else None
    hit = rank == 0 and path is not None and path.is_file()
    hit = broadcast_object(hit, world_size=world_size)
    if hit:
        if rank != 0:
            return None
        try:
            return np.load(path, allow_pickle=False)
        except (OSError, ValueError):  # unreadable cache file: rank 0 recomputes on its own
            rank, world_size = 0, 1
    idx = shard(n, rank, world_size)
    part = extract_features((dataset.get_batch(b)[0] for b in _batches(idx, batch_size)), detector,
                            total=len(idx), device=device, desc=f"{dataset.name} (real)", progress=progress)
    feats = gather_rows(part, n, rank=rank, world_size=world_size, device=device)
    if rank == 0 and path is not None:

        try:
            atomic_write(path, lambda tmp: _save_npy(tmp, feats))
        except Exception:  # noqa: BLE001 - a read-only cache only costs recomputation next time
            pass
    return feats if rank == 0 else None
