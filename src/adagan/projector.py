"""StyleGAN2's projector (Karras et al. 2020, Appendix D): find the w whose image matches a target.

`project` optimises one w (broadcast to all layers) and the per-layer noise maps to minimise the LPIPS-VGG16
distance to a target, with a noise regularisation (weight 1e5) that keeps the noise maps free of
low-frequency structure; learning rate with a 5% cosine ramp-up and 25% ramp-down; Gaussian noise on w
decaying to 0 at 75% of the steps. It keeps one w per step, so memory does not grow with num_ws.
`load_image` reads the target (centre crop, Lanczos resize).
"""

from __future__ import annotations

import copy
import math
import os

import numpy as np
import torch
import torch.nn.functional as F

from adagan.errors import ConfigError
from adagan.generation import device_of, resolve_device


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


def _w_statistics(G, w_avg_samples: int, gen: torch.Generator, dev) -> tuple[torch.Tensor, float]:
    """(w_avg [1, 1, w_dim], w_std): where the search starts and how much exploration noise it gets.

    Two passes over the same draws, 1000 at a time (memory does not grow with w_avg_samples): the first
    advances `gen` as one pass does, the second replays it from a copy of the state."""
    def w_chunks(g):
        for i in range(0, w_avg_samples, 1000):
            n = min(1000, w_avg_samples - i)
            z = torch.randn([n, G.z_dim], generator=g).to(dev)
            c = None
            if G.c_dim:  # conditional G: average over classes drawn uniformly
                c = F.one_hot(torch.randint(G.c_dim, [n], generator=g), G.c_dim).float().to(dev)
            with torch.no_grad():
                yield G.mapping(z, c)[:, :1].double()  # [n, 1, C]

    replay = torch.Generator().set_state(gen.get_state())
    w_avg = sum(w.sum(dim=0, keepdim=True) for w in w_chunks(gen)) / w_avg_samples  # [1, 1, C]
    w_std = float(sum((w - w_avg).square().sum() for w in w_chunks(replay)) / w_avg_samples) ** 0.5
    return w_avg.float(), w_std


def _learning_rate(t: float, initial_lr: float, rampdown: float, rampup: float) -> float:
    """The rate at fraction t of the steps: cosine ramp-down over the last `rampdown`, linear ramp-up."""
    ramp = min(1.0, (1.0 - t) / rampdown)
    ramp = 0.5 - 0.5 * math.cos(ramp * math.pi)
    return initial_lr * (ramp * min(1.0, t / rampup))


def _check_target(G, target) -> torch.Tensor:
    target = torch.as_tensor(np.asarray(target) if not isinstance(target, torch.Tensor) else target)
    expected = (G.img_channels, G.img_resolution, G.img_resolution)
    if target.dtype != torch.uint8 or tuple(target.shape) != expected:
        raise ConfigError(f"target must be uint8 {list(expected)}, got {target.dtype} {list(target.shape)}")
    return target


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
    dev = resolve_device(device) if device is not None else device_of(G)
    target = _check_target(G, target)
    G = copy.deepcopy(G).eval().requires_grad_(False).to(dev)
    lpips = lpips.to(dev)
    gen = torch.Generator().manual_seed(seed)
    w_avg, w_std = _w_statistics(G, w_avg_samples, gen, dev)
    noise_bufs = [buf for name, buf in G.synthesis.named_buffers() if name.endswith("noise_const")]
    with torch.no_grad():
        target_features = lpips.features(_lpips_input(target[None].to(dev).to(torch.float32)))

    w_opt = w_avg.clone().requires_grad_(True)
    for buf in noise_bufs:
        buf.copy_(torch.randn(buf.shape, generator=gen).to(dev))
        buf.requires_grad_(True)
    opt = torch.optim.Adam([w_opt, *noise_bufs], betas=(0.9, 0.999), lr=initial_lr)
    w_steps, losses = [], []
    it = range(steps)
    if progress:
        from tqdm import tqdm

        it = tqdm(it, desc="projecting", unit="step")
    for step in it:
        t = step / steps
        w_noise_scale = w_std * initial_noise_factor * max(0.0, 1.0 - t / noise_ramp_length) ** 2
        for group in opt.param_groups:
            group["lr"] = _learning_rate(t, initial_lr, lr_rampdown_length, lr_rampup_length)
        ws = (w_opt + torch.randn(w_opt.shape, generator=gen).to(dev) * w_noise_scale).repeat(1, G.num_ws, 1)
        synth = (G.synthesis(ws, noise_mode="const", force_fp32=True) + 1) * (255 / 2)
        dist = (target_features - lpips.features(_lpips_input(synth))).square().sum()
        loss = dist + _noise_reg(noise_bufs) * regularize_noise_weight
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(float(dist.detach()))
        if progress:
            it.set_postfix(dist=f"{losses[-1]:.4f}")
        w_steps.append(w_opt.detach()[0, 0].cpu())  # [w_dim]: the w of every layer
        with torch.no_grad():  # keep each noise map zero-mean, unit-variance
            for buf in noise_bufs:
                buf -= buf.mean()
                buf *= buf.square().mean().rsqrt()
    return torch.stack(w_steps)[:, None].expand(-1, G.num_ws, -1), losses


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
