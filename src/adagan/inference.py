"""Using a trained generator: sampling, style mixing, latent walks and projection.

- `generate`: z from a seed (`np.random.RandomState(seed).randn(z_dim)`, as StyleGAN2's tools do), so a
  seed names the same image on any batch size and device (up to float tolerance).
- `style_mix`: the StyleGAN style-mixing figure: each cell takes the ws of its row seed, with the
  layers in `styles` replaced by those of its column seed.
- `interpolate`: a closed latent walk through the seeds' ws, Catmull-Rom (cubic) in W, looping smoothly.
- `project`: StyleGAN2's projector (Karras et al. 2020, Appendix D): optimise one w (broadcast to all
  layers) and the per-layer noise maps to minimise the LPIPS-VGG16 distance to a target, with a noise
  regularisation (weight 1e5) that keeps the noise maps free of low-frequency structure; learning
  rate with a 5% cosine ramp-up and 25% ramp-down; Gaussian noise on w decaying to 0 at 75% of the steps.

Images are float NCHW in [-1, 1] inside, uint8 NHWC at the boundary (files, `generate`'s return).
Library code raises `adagan.errors` and prints nothing (except tqdm progress when asked for).
Work that grows with a flag is streamed: `seed_ranges` counts a seed list without building it,
`generate_batches` and `interpolate_batches` yield images a batch at a time, `style_mix` builds its grid
row by row and `project` keeps one w per step, so memory stays bounded by the batch (or the one output
image) however many seeds, frames or steps are asked for.
"""

from __future__ import annotations

import copy
import math
import os
import re
from collections.abc import Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from adagan.errors import ConfigError
from adagan.networks.generator import check_noise_mode
from adagan.ops.image import make_grid
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


def _device_of(G) -> torch.device:
    return next(G.parameters()).device


def load_generator(path: str | os.PathLike, device=None):
    """G_ema (or G) from an adagan network file, in eval mode, on `device` (None = CUDA if available)."""
    from adagan.io import load_network

    return load_network(path, "G_ema", device=resolve_device(device))


# -- sampling ----------------------------------------------------------------------------------------


def to_uint8(img: torch.Tensor) -> np.ndarray:
    """float [N, C, H, W] in [-1, 1] -> uint8 [N, H, W, C] numpy, the file layout (ops.image.to_uint8)."""
    return _to_uint8(img).permute(0, 2, 3, 1).cpu().numpy()


def seeds_to_ws(G, seeds, *, c=None, truncation_psi: float = 1.0, truncation_cutoff: int | None = None,
                batch: int = 32) -> torch.Tensor:
    """ws [len(seeds), num_ws, w_dim] of the given seeds (on G's device). c: one-hot labels [1 or N, c_dim]."""
    device = _device_of(G)
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
    device = _device_of(G)
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
        c = make_labels(G, c, 1, _device_of(G))
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
        yield chunk, to_uint8(synthesize(G, ws, noise_mode=noise_mode, batch=batch, seed=i))


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
        c = make_labels(G, c, 1, _device_of(G))
    R, C = len(row_seeds), len(col_seeds)
    H = W = G.img_resolution
    grid = np.zeros([(R + 1) * H, (C + 1) * W, G.img_channels], dtype=np.uint8)
    col_ws = seeds_to_ws(G, col_seeds, c=c, truncation_psi=truncation_psi, batch=batch)
    for j, img in enumerate(to_uint8(synthesize(G, col_ws, noise_mode=noise_mode, batch=batch))):
        grid[:H, (j + 1) * W: (j + 2) * W] = img
    for i, seed in enumerate(row_seeds):
        row_w = seeds_to_ws(G, [seed], c=c, truncation_psi=truncation_psi, batch=batch)  # [1, num_ws, w_dim]
        mixed = row_w.repeat(C, 1, 1)
        mixed[:, styles] = col_ws[:, styles]
        imgs = to_uint8(synthesize(G, torch.cat([row_w, mixed]), noise_mode=noise_mode, batch=batch))
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
        c = make_labels(G, c, 1, _device_of(G))
    key_ws = seeds_to_ws(G, seeds, c=c, truncation_psi=truncation_psi, batch=batch)
    total = len(seeds) * frames_per_seed
    starts = range(0, total, batch)
    if progress:
        from tqdm import tqdm

        starts = tqdm(starts, desc="synthesis", unit="batch", leave=False)
    for i in starts:
        ws = interpolate_ws(key_ws, frames_per_seed, i, i + batch)
        yield to_uint8(synthesize(G, ws, noise_mode=noise_mode, batch=batch, seed=i))


# -- projection --------------------------------------------------------------------------------------


def _noise_reg(noise_bufs: list[torch.Tensor]) -> torch.Tensor:
    """Sum over scales (down to 8x8) of squared autocorrelations at a 1-pixel shift in x and y."""
    reg = 0.0
    for v in noise_bufs:
        v = v[None, None]  # [1, 1, H, W]
        while True:
            reg = reg + (v * torch.roll(v, shifts=1, dims=3)).mean() ** 2
            reg = reg + (v * torch.roll(v, shifts=1, dims=2)).mean() ** 2
            if v.shape[2] <= 8:
                break
            v = F.avg_pool2d(v, kernel_size=2)
    return reg


def _lpips_input(img: torch.Tensor) -> torch.Tensor:
    """float [N, C, H, W] in 0..255 -> 3 channels, at most 256x256 (area downsampling)."""
    if img.shape[1] == 1:
        img = img.repeat(1, 3, 1, 1)
    elif img.shape[1] == 4:
        img = img[:, :3]
    if img.shape[2] > 256:
        img = F.interpolate(img, size=(256, 256), mode="area")
    return img


def project(G, target: np.ndarray | torch.Tensor, *, steps: int = 1000, lpips, device=None,
            w_avg_samples: int = 10000, initial_lr: float = 0.1, initial_noise_factor: float = 0.05,
            lr_rampdown_length: float = 0.25, lr_rampup_length: float = 0.05, noise_ramp_length: float = 0.75,
            regularize_noise_weight: float = 1e5, seed: int = 0, progress: bool = False):
    """Find the w whose image matches `target` (uint8 [C, H, W], C = G.img_channels, H = W = G's resolution).

    lpips: a module with `features(float [N, 3, H, W] in 0..255) -> [N, F]` whose squared L2 distance
    is the perceptual distance (adagan.metrics.lpips.LPIPSVGG16).
    Returns (w_steps [steps, num_ws, w_dim] on CPU, losses [steps] as a list of floats). G itself is not
    modified. The w of a step is broadcast to all layers, so w_steps is a view of [steps, w_dim] (memory does
    not grow with num_ws), and the w statistics are accumulated 1000 samples at a time.
    """
    if steps < 1:
        raise ConfigError("projection needs at least 1 step")
    if w_avg_samples < 1:
        raise ConfigError("projection needs at least 1 w sample")
    dev = resolve_device(device) if device is not None else _device_of(G)
    target = torch.as_tensor(np.asarray(target) if not isinstance(target, torch.Tensor) else target)
    expected = (G.img_channels, G.img_resolution, G.img_resolution)
    if target.dtype != torch.uint8 or tuple(target.shape) != expected:
        raise ConfigError(f"target must be uint8 {list(expected)}, got {target.dtype} {list(target.shape)}")
    G = copy.deepcopy(G).eval().requires_grad_(False).to(dev)
    lpips = lpips.to(dev)
    gen = torch.Generator().manual_seed(seed)

    # The mean and spread of w: where the search starts and how much exploration noise it gets. Two passes
    # over the same draws, 1000 at a time (memory does not grow with w_avg_samples): the first advances
    # `gen` as one pass does, the second replays it from a copy of the state.
    def w_chunks(g):
        for i in range(0, w_avg_samples, 1000):
            n = min(1000, w_avg_samples - i)
            z = torch.randn([n, G.z_dim], generator=g).to(dev)
            c = None
            if G.c_dim:  # conditional G: average over classes drawn uniformly
                c = torch.nn.functional.one_hot(torch.randint(G.c_dim, [n], generator=g), G.c_dim).float().to(dev)
            with torch.no_grad():
                yield G.mapping(z, c)[:, :1].double()  # [n, 1, C]

    replay = torch.Generator().set_state(gen.get_state())
    w_avg = sum(w.sum(dim=0, keepdim=True) for w in w_chunks(gen)) / w_avg_samples  # [1, 1, C]
    w_std = float(sum((w - w_avg).square().sum() for w in w_chunks(replay)) / w_avg_samples) ** 0.5
    w_avg = w_avg.float()

    noise_bufs = {name: buf for name, buf in G.synthesis.named_buffers() if name.endswith("noise_const")}
    with torch.no_grad():
        target_features = lpips.features(_lpips_input(target[None].to(dev).to(torch.float32)))

    w_opt = w_avg.clone().requires_grad_(True)
    for buf in noise_bufs.values():
        buf.copy_(torch.randn(buf.shape, generator=gen).to(dev))
        buf.requires_grad_(True)
    opt = torch.optim.Adam([w_opt, *noise_bufs.values()], betas=(0.9, 0.999), lr=initial_lr)

    w_steps, losses = [], []
    it = range(steps)
    if progress:
        from tqdm import tqdm

        it = tqdm(it, desc="projecting", unit="step")
    for step in it:
        t = step / steps
        w_noise_scale = w_std * initial_noise_factor * max(0.0, 1.0 - t / noise_ramp_length) ** 2
        lr_ramp = min(1.0, (1.0 - t) / lr_rampdown_length)
        lr_ramp = 0.5 - 0.5 * math.cos(lr_ramp * math.pi)
        lr_ramp = lr_ramp * min(1.0, t / lr_rampup_length)
        for group in opt.param_groups:
            group["lr"] = initial_lr * lr_ramp

        w_noise = torch.randn(w_opt.shape, generator=gen).to(dev) * w_noise_scale
        ws = (w_opt + w_noise).repeat(1, G.num_ws, 1)
        synth = (G.synthesis(ws, noise_mode="const", force_fp32=True) + 1) * (255 / 2)
        synth_features = lpips.features(_lpips_input(synth))
        dist = (target_features - synth_features).square().sum()
        loss = dist + _noise_reg(list(noise_bufs.values())) * regularize_noise_weight

        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(float(dist.detach()))
        if progress:
            it.set_postfix(dist=f"{losses[-1]:.4f}")
        w_steps.append(w_opt.detach()[0, 0].cpu())  # [w_dim]: the w of every layer
        with torch.no_grad():  # keep each noise map zero-mean, unit-variance
            for buf in noise_bufs.values():
                buf -= buf.mean()
                buf *= buf.square().mean().rsqrt()

    return torch.stack(w_steps)[:, None].expand(-1, G.num_ws, -1), losses


# -- files -------------------------------------------------------------------------------------------


def to_pil(img: np.ndarray):
    """uint8 [H, W, C] (C = 1, 3 or 4) -> PIL image."""
    from PIL import Image

    return Image.fromarray(img[:, :, 0] if img.shape[2] == 1 else img)


def save_image(img: np.ndarray, path: str | os.PathLike) -> None:
    to_pil(img).save(path)


def save_grid(images: np.ndarray, path: str | os.PathLike, cols: int | None = None) -> None:
    save_image(make_grid(images, cols), path)


MAX_IMAGE_PIXELS = 100_000_000  # a target image larger than this is refused before it is decoded


def load_image(path: str | os.PathLike, resolution: int, channels: int) -> np.ndarray:
    """An image file -> uint8 [channels, resolution, resolution]: centre-cropped to a square, resized (Lanczos).
    Images over MAX_IMAGE_PIXELS are refused from their header, before decoding (decompression bombs)."""
    import warnings

    from PIL import Image, UnidentifiedImageError

    if not os.path.exists(path):
        raise ConfigError(f"image not found: {path}")
    if not os.path.isfile(path):
        raise ConfigError(f"{path} is not a regular file; pass a PNG or JPEG")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # the size is checked below
            with Image.open(path) as im:
                if im.width * im.height > MAX_IMAGE_PIXELS:
                    raise ConfigError(f"{path} is {im.width}x{im.height} pixels, more than the "
                                      f"{MAX_IMAGE_PIXELS:,} accepted; shrink it first")
                im.load()
                mode = {1: "L", 3: "RGB", 4: "RGBA"}.get(channels, "RGB")
                im = im.convert(mode)
    except Image.DecompressionBombError:
        raise ConfigError(f"{path} has more than {MAX_IMAGE_PIXELS:,} pixels (a decompression bomb, or a very large "
                          "image); shrink it first") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:
        raise ConfigError(f"{path} is not a readable image ({e}); pass a PNG or JPEG") from None
    w, h = im.size
    s = min(w, h)
    im = im.crop(((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s))
    im = im.resize((resolution, resolution), Image.LANCZOS)
    arr = np.asarray(im, dtype=np.uint8)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    return arr.transpose(2, 0, 1).copy()


def save_video(frames, path: str | os.PathLike, fps: float = 30) -> None:
    """uint8 frames [T, H, W, C] (or an iterable of such batches) -> .mp4 (H.264 via imageio-ffmpeg, written
    as the frames come) or .gif (Pillow, assembled in memory)."""
    path = str(path)
    ext = os.path.splitext(path)[1].lower()
    batches = [frames] if isinstance(frames, np.ndarray) else frames

    def rgb(batch):
        if batch.shape[3] == 1:
            return batch.repeat(3, axis=3)
        return batch[..., :3] if batch.shape[3] == 4 else batch

    if ext == ".gif":
        from PIL import Image

        imgs = [Image.fromarray(f) for batch in batches for f in rgb(batch)]
        imgs[0].save(path, save_all=True, append_images=imgs[1:], duration=max(1, round(1000 / fps)), loop=0)
        return
    if ext != ".mp4":
        raise ConfigError(f"video must end in .mp4 or .gif, got {path}")
    try:
        import imageio.v2 as imageio
    except ImportError:
        raise ConfigError("writing MP4 needs imageio and imageio-ffmpeg: pip install 'adagan[video]', "
                          "or write a .gif") from None
    writer = None
    try:
        for batch in batches:
            batch = rgb(batch)
            if writer is None:
                # H.264 wants even sizes; macro_block_size=1 keeps small frames unscaled.
                even = batch.shape[1] % 2 == 0 and batch.shape[2] % 2 == 0
                try:
                    writer = imageio.get_writer(path, fps=fps, codec="libx264", quality=8, macro_block_size=1,
                                                pixelformat="yuv420p" if even else "yuv444p")
                except (ImportError, RuntimeError) as e:
                    raise ConfigError(f"cannot write MP4 ({e}); pip install imageio-ffmpeg, or write a .gif") \
                        from None
            for f in batch:
                writer.append_data(f)
    finally:
        if writer is not None:
            writer.close()
