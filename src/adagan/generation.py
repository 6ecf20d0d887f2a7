"""Using a trained generator: seeds, sampling, style mixing and latent walks (projection: projector.py).

- `generate`: z from a seed (`np.random.RandomState(seed).randn(z_dim)`, as StyleGAN2's tools do), so a
  seed names the same image on any batch size and device (up to float tolerance).
- `style_mix`: the StyleGAN style-mixing figure: each cell takes the ws of its row seed, with the
  layers in `styles` replaced by those of its column seed.
- `interpolate`: a closed latent walk through the seeds' ws, Catmull-Rom (cubic) in W, looping smoothly.

Images are float NCHW in [-1, 1] inside, uint8 NHWC at the boundary (files, `generate`'s return).
Library code raises `adagan.errors` and prints nothing (except tqdm progress when asked for).
Work that grows with a flag is streamed: `seed_ranges` counts a seed list without building it,
`generate_batches` and `interpolate_batches` yield images a batch at a time and `style_mix` builds its grid
row by row, so memory stays bounded by the batch (or the one output
image) however many seeds, frames or steps are asked for.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterator, Sequence

import numpy as np
import torch

from adagan.errors import ConfigError
from adagan.io import load_network
from adagan.networks.generator import check_noise_mode
from adagan.ops.image import to_uint8 as _to_uint8

# -- inputs ------------------------------------------------------------------------------------------


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """None -> CUDA when available, else CPU; an unavailable CUDA request is a ConfigError."""
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ConfigError(f"unknown device {device!r}; use cpu, cuda or cuda:N") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {device} asked for, but no CUDA GPU is available; use --device cpu")
    return dev


MAX_SEED = 2**32 - 1  # np.random.RandomState seeds
MAX_LIST = 1_000_000  # values `parse_range` builds into a list (streaming consumers use seed_ranges)


class IntRanges(Sequence):
    """The integers of '0-3,7,10-11' as a lazy sequence: len() and iteration without a list of them."""

    def __init__(self, parts: list[tuple[int, int]]):
        self.parts = parts
        self._len = sum(hi - lo + 1 for lo, hi in parts)

    def __len__(self) -> int:
        return self._len

    def __iter__(self) -> Iterator[int]:
        for lo, hi in self.parts:
            yield from range(lo, hi + 1)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        i = i + len(self) if i < 0 else i
        for lo, hi in self.parts:
            if i <= hi - lo:
                return lo + i
            i -= hi - lo + 1
        raise IndexError("index out of range")


def seed_ranges(text: str | int | list | tuple, name: str = "seeds", max_value: int = MAX_SEED) -> IntRanges:
    """'0-3,7,10-11' -> a lazy IntRanges (ints and lists pass through); every value in 0..max_value."""
    if isinstance(text, IntRanges):
        return text
    if isinstance(text, int) and not isinstance(text, bool):
        text = [text]
    if isinstance(text, list | tuple | range):
        vals = [int(v) for v in text]
        bad = [v for v in vals if not 0 <= v <= max_value]
        if bad:
            raise ConfigError(f"--{name} {bad[0]} is out of range: use integers in 0..{max_value}")
        return IntRanges([(v, v) for v in vals])
    parts = []
    for part in str(text).split(","):
        part = part.strip()
        m = re.fullmatch(r"(\d{1,20})(?:\s*-\s*(\d{1,20}))?", part)
        if not m:
            raise ConfigError(f"bad --{name} {str(text)[:60]!r}: use non-negative integers and ranges, e.g. 0-99,120")
        lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
        if hi < lo:
            raise ConfigError(f"bad --{name} {text!r}: range {part} goes backwards")
        if hi > max_value:
            raise ConfigError(f"bad --{name} {str(text)[:60]!r}: {hi} is out of range; use integers in 0..{max_value}")
        parts.append((lo, hi))
    return IntRanges(parts)


def parse_range(text: str | int | list | tuple, name: str = "seeds", max_count: int = MAX_LIST) -> list[int]:
    """'0-3,7,10-11' -> [0, 1, 2, 3, 7, 10, 11]; ints and lists pass through. At most max_count values."""
    values = seed_ranges(text, name)
    if len(values) > max_count:
        raise ConfigError(f"--{name} names {len(values):,} values, more than {max_count:,}")
    return list(values)


def seed_to_z(seed: int, z_dim: int) -> np.ndarray:
    """The latent of a seed: float64 [z_dim], independent of batch size and device."""
    if not 0 <= int(seed) < 2**32:
        raise ConfigError(f"seed {seed} out of range: seeds are integers in 0..2^32-1")
    return np.random.RandomState(int(seed)).randn(z_dim)


def make_labels(G, class_idx: int | None, n: int, device) -> torch.Tensor | None:
    """One-hot labels [n, c_dim] for a conditional G, None for an unconditional one."""
    if G.c_dim == 0:
        if class_idx is not None:
            raise ConfigError("this network is unconditional: drop --class")
        return None
    if class_idx is None:
        raise ConfigError(f"this network is conditional: pass --class K with K in 0..{G.c_dim - 1}")
    if not 0 <= class_idx < G.c_dim:
        raise ConfigError(f"--class {class_idx} out of range: this network has classes 0..{G.c_dim - 1}")
    c = torch.zeros([n, G.c_dim], device=device)
    c[:, class_idx] = 1
    return c


def device_of(G) -> torch.device:
    return next(G.parameters()).device


def load_generator(path: str | os.PathLike, device=None):
    """G_ema (or G) from an adagan network file, in eval mode, on `device` (None = CUDA if available)."""
    return load_network(path, "G_ema", device=resolve_device(device))


# -- sampling ----------------------------------------------------------------------------------------


def to_uint8_nhwc(img: torch.Tensor) -> np.ndarray:
    """float [N, C, H, W] in [-1, 1] -> uint8 [N, H, W, C] numpy, the file layout (ops.image.to_uint8)."""
    return _to_uint8(img).permute(0, 2, 3, 1).cpu().numpy()


def seeds_to_ws(G, seeds, *, c=None, truncation_psi: float = 1.0, truncation_cutoff: int | None = None,
                batch: int = 32) -> torch.Tensor:
    """ws [len(seeds), num_ws, w_dim] of the given seeds (on G's device). c: one-hot labels [1 or N, c_dim]."""
    device = device_of(G)
    seeds = seed_ranges(seeds)
    out = []
    with torch.no_grad():
        for i in range(0, len(seeds), batch):
            zb = torch.from_numpy(np.stack([seed_to_z(s, G.z_dim) for s in seeds[i: i + batch]])) \
                .to(torch.float32).to(device)
            cb = None
            if c is not None:
                cb = c.to(device).expand(zb.shape[0], -1) if c.shape[0] == 1 else c[i: i + batch].to(device)
            out.append(G.mapping(zb, cb, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff))
    return torch.cat(out)


def synthesize(G, ws: torch.Tensor, *, noise_mode: str = "const", batch: int = 32, seed: int = 0,
               progress: bool = False) -> torch.Tensor:
    """Images float [N, C, H, W] (on CPU) from ws [N, num_ws, w_dim].

    noise_mode 'random' draws fresh noise from a torch generator seeded with `seed` per batch, so a
    command repeats exactly, but the noise then depends on the batch layout.
    """
    check_noise_mode(noise_mode)
    device = device_of(G)
    chunks = range(0, ws.shape[0], batch)
    if progress:
        from tqdm import tqdm

        chunks = tqdm(chunks, desc="synthesis", unit="batch", leave=False)
    out = []
    cuda_ids = [device.index if device.index is not None else torch.cuda.current_device()] \
        if device.type == "cuda" else []
    with torch.no_grad():
        for i in chunks:
            with torch.random.fork_rng(devices=cuda_ids):
                torch.manual_seed(seed + i)
                out.append(G.synthesis(ws[i: i + batch].to(device), noise_mode=noise_mode).float().cpu())
    return torch.cat(out)


def generate(G, seeds, *, c: torch.Tensor | int | None = None, truncation_psi: float = 1.0,
             truncation_cutoff: int | None = None, noise_mode: str = "const", device=None, batch: int = 16,
             progress: bool = False) -> np.ndarray:
    """uint8 images [len(seeds), H, W, C], one per seed (all in memory: `generate_batches` streams them).

    c: a class index (int) or one-hot labels [1 or N, c_dim] for a conditional G.
    device: where to run (None = G's device); G is moved there.
    """
    seeds = parse_range(seeds)
    chunks = [imgs for _, imgs in generate_batches(G, seeds, c=c, truncation_psi=truncation_psi,
                                                    truncation_cutoff=truncation_cutoff, noise_mode=noise_mode,
                                                    device=device, batch=batch, progress=progress)]
    return np.concatenate(chunks) if chunks else np.zeros([0, G.img_resolution, G.img_resolution, G.img_channels],
                                                          np.uint8)


def generate_batches(G, seeds, *, c: torch.Tensor | int | None = None, truncation_psi: float = 1.0,
                     truncation_cutoff: int | None = None, noise_mode: str = "const", device=None, batch: int = 16,
                     progress: bool = False) -> Iterator[tuple[list[int], np.ndarray]]:
    """(seeds, uint8 images [n, H, W, C]) a batch at a time: memory does not grow with the number of seeds.
    Each image is the one `generate` gives for its seed."""
    if device is not None:
        G = G.to(resolve_device(device))
    if batch < 1:
        raise ConfigError("batch must be at least 1")
    _check_psi(truncation_psi)
    seeds = seed_ranges(seeds)
    if isinstance(c, int) or c is None:
        c = make_labels(G, c, 1, device_of(G))
    starts = range(0, len(seeds), batch)
    if progress:
        from tqdm import tqdm

        starts = tqdm(starts, desc="generating", unit="batch", leave=False)
    for i in starts:
        chunk = seeds[i: i + batch]
        cb = c if c is None or c.shape[0] == 1 else c[i: i + batch]
        ws = seeds_to_ws(G, chunk, c=cb, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff,
                         batch=batch)
        # seed i + offset: the noise of `random` mode is drawn per batch of the whole list, as `synthesize` does
        yield chunk, to_uint8_nhwc(synthesize(G, ws, noise_mode=noise_mode, batch=batch, seed=i))


def _check_psi(psi) -> None:
    if not isinstance(psi, int | float) or not math.isfinite(psi):
        raise ConfigError(f"truncation psi must be a finite number, got {psi!r}")


def style_mix(G, row_seeds, col_seeds, styles, *, c=None, truncation_psi: float = 1.0,
              noise_mode: str = "const", batch: int = 16) -> np.ndarray:
    """The style-mixing grid, uint8 [(R+1)*H, (C+1)*W, channels].

    Top row: the column seeds' images; left column: the row seeds' images; cell (r, c): the ws of row
    seed r with the layers in `styles` (indices into 0..num_ws-1) taken from column seed c. The top-left
    cell is black. Built one row at a time (memory: the grid plus one row of images).
    """
    row_seeds, col_seeds = parse_range(row_seeds, "rows"), parse_range(col_seeds, "cols")
    styles = parse_range(styles, "styles", max_count=10_000)
    if not row_seeds or not col_seeds:
        raise ConfigError("style mixing needs at least one row seed and one column seed")
    bad = [s for s in styles if s >= G.num_ws]
    if bad:
        raise ConfigError(f"--styles {bad[:5]} out of range: this network has ws 0..{G.num_ws - 1}")
    _check_psi(truncation_psi)
    if isinstance(c, int) or c is None:
        c = make_labels(G, c, 1, device_of(G))
    R, C = len(row_seeds), len(col_seeds)
    H = W = G.img_resolution
    grid = np.zeros([(R + 1) * H, (C + 1) * W, G.img_channels], dtype=np.uint8)
    col_ws = seeds_to_ws(G, col_seeds, c=c, truncation_psi=truncation_psi, batch=batch)
    for j, img in enumerate(to_uint8_nhwc(synthesize(G, col_ws, noise_mode=noise_mode, batch=batch))):
        grid[:H, (j + 1) * W: (j + 2) * W] = img
    for i, seed in enumerate(row_seeds):
        row_w = seeds_to_ws(G, [seed], c=c, truncation_psi=truncation_psi, batch=batch)  # [1, num_ws, w_dim]
        mixed = row_w.repeat(C, 1, 1)
        mixed[:, styles] = col_ws[:, styles]
        imgs = to_uint8_nhwc(synthesize(G, torch.cat([row_w, mixed]), noise_mode=noise_mode, batch=batch))
        for j, img in enumerate(imgs):
            grid[(i + 1) * H: (i + 2) * H, j * W: (j + 1) * W] = img
    return grid


def interpolate_ws(key_ws: torch.Tensor, frames_per_seed: int, start: int = 0,
                   stop: int | None = None) -> torch.Tensor:
    """A closed Catmull-Rom curve through key ws [K, num_ws, w_dim]: frames [start, stop) of its
    K*frames_per_seed frames, [n, num_ws, w_dim] (default: all of them).

    Frame k*frames_per_seed is exactly key k; the curve wraps from the last key back to the first with
    a continuous first derivative, so the video loops without a jump.
    """
    if frames_per_seed < 1:
        raise ConfigError("frames per seed must be at least 1")
    K = key_ws.shape[0]
    stop = K * frames_per_seed if stop is None else min(stop, K * frames_per_seed)
    frames = []
    for n in range(start, stop):
        k, f = divmod(n, frames_per_seed)
        p0, p1, p2, p3 = (key_ws[(k + d) % K] for d in (-1, 0, 1, 2))
        t = f / frames_per_seed
        # Catmull-Rom basis (uniform, tension 0.5).
        frames.append(0.5 * ((2 * p1) + (-p0 + p2) * t + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t**2
                             + (-p0 + 3 * p1 - 3 * p2 + p3) * t**3))
    return torch.stack(frames) if frames else key_ws[:0]


def interpolate(G, seeds, frames_per_seed: int, *, c=None, truncation_psi: float = 1.0,
                noise_mode: str = "const", batch: int = 16, progress: bool = False) -> np.ndarray:
    """Frames uint8 [len(seeds)*frames_per_seed, H, W, C] of a looping walk through the seeds in W (all in
    memory: `interpolate_batches` streams them)."""
    return np.concatenate(list(interpolate_batches(G, seeds, frames_per_seed, c=c, truncation_psi=truncation_psi,
                                                   noise_mode=noise_mode, batch=batch, progress=progress)))


def interpolate_batches(G, seeds, frames_per_seed: int, *, c=None, truncation_psi: float = 1.0,
                        noise_mode: str = "const", batch: int = 16, progress: bool = False) -> Iterator[np.ndarray]:
    """The frames of `interpolate`, uint8 [n, H, W, C] a batch at a time (memory does not grow with the video)."""
    seeds = parse_range(seeds)
    if not seeds:
        raise ConfigError("a latent walk needs at least one seed")
    _check_psi(truncation_psi)
    if frames_per_seed < 1:
        raise ConfigError("frames per seed must be at least 1")
    if isinstance(c, int) or c is None:
        c = make_labels(G, c, 1, device_of(G))
    key_ws = seeds_to_ws(G, seeds, c=c, truncation_psi=truncation_psi, batch=batch)
    total = len(seeds) * frames_per_seed
    starts = range(0, total, batch)
    if progress:
        from tqdm import tqdm

        starts = tqdm(starts, desc="synthesis", unit="batch", leave=False)
    for i in starts:
        ws = interpolate_ws(key_ws, frames_per_seed, i, i + batch)
        yield to_uint8_nhwc(synthesize(G, ws, noise_mode=noise_mode, batch=batch, seed=i))
