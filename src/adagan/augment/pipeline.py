"""ADA's augmentation pipeline (Karras et al. 2020, "Training Generative Adversarial Networks
with Limited Data", §2.3 and appendix B).

Every image the discriminator sees goes through the same random transforms. `p` (a buffer) scales the
probability of each enabled transform; each transform draws its own per-sample Bernoulli and parameters.
Order: blit (xflip, rotate90, xint) -> geom (scale, rotate, aniso, rotate, xfrac) -> color (brightness,
contrast, lumaflip, hue, saturation) -> filter (imgfilter) -> corrupt (noise, cutout).

Geometric transforms compose into one inverse 3x3 matrix per sample (output pixel -> input pixel, in
pixel units centred on the image; rotations by +theta, counter-clockwise on screen, as in the official
code). A sample whose matrix only flips, turns by 90 degrees and shifts by whole pixels is copied exactly
(a pixel permutation with reflection at the borders); any other sample is resampled once with the
paper's orthogonal wavelet pair (appendix B): the mirror-extended input is upsampled 2x with the 12-tap
symlet-6 ('sym6') low-pass, sampled bilinearly on a 2x output grid, then low-passed with the time-reversed
sym6 and decimated 2x. The pair reconstructs a band-limited image almost exactly (a 0.45 cycles/px
sinusoid keeps > 0.99 of its amplitude). Colour transforms compose into one 4x4 matrix per sample.
Everything is differentiable with respect to the input, to second order (R1 is taken through the pipe).

Images are float NCHW in [-1, 1], square, with 1, 3 or 4 channels. With 4 channels the alpha channel
moves with the geometric transforms, filter and cutout, and is left alone by colour and noise.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from adagan.config import AUGPIPES, DIFFAUG_AUGPIPES
from adagan.errors import ConfigError
from adagan.limits import check_choice
from adagan.ops import downsample2d, setup_filter, upfirdn2d, upsample2d

# Wavelet low-pass (decomposition) filters; public constants of the symlet family.
SYM2 = [-0.12940952255092145, 0.22414386804185735, 0.836516303737469, 0.48296291314469025]
SYM6 = [0.015404109327027373, 0.0034907120842174702, -0.11799011114819057, -0.048311742585633,
        0.4910559419267466, 0.787641141030194, 0.3379294217276218, -0.07263752278646252,
        -0.021060292512300564, 0.04472490177066578, 0.0017677118642428036, -0.007800708325034148]

GROUPS: dict[str, tuple[str, ...]] = {
    "blit": ("xflip", "rotate90", "xint"),
    "geom": ("scale", "rotate", "aniso", "xfrac"),
    "color": ("brightness", "contrast", "lumaflip", "hue", "saturation"),
    "filter": ("imgfilter",),
    "noise": ("noise",),
    "cutout": ("cutout",),
}
TRANSFORMS: tuple[str, ...] = tuple(t for g in GROUPS.values() for t in g)

# Default strengths (appendix B; the official code's defaults).
STRENGTHS: dict[str, float] = {
    "xint_max": 0.125,  # integer translation, fraction of the image size
    "scale_std": 0.2,  # log2 standard deviation of isotropic scaling
    "rotate_max": 1.0,  # rotation range, in units of 180 degrees
    "aniso_std": 0.2,  # log2 standard deviation of anisotropic scaling
    "xfrac_std": 0.125,  # fractional translation, standard deviation as a fraction of the size
    "brightness_std": 0.2,  # additive, in [-1, 1] image units
    "contrast_std": 0.5,  # log2 standard deviation
    "hue_max": 1.0,  # hue rotation range, in units of 180 degrees
    "saturation_std": 1.0,  # log2 standard deviation
    "imgfilter_std": 1.0,  # log2 standard deviation of each band's amplification
    "noise_std": 0.1,  # standard deviation of the per-image noise sigma
    "cutout_size": 0.5,  # side of the cut-out square, fraction of the image size
}

# Expected power of natural images in the 4 filter bands, low to high (keeps the total on average).
BAND_POWER = (10 / 13, 1 / 13, 1 / 13, 1 / 13)
_LUMA = np.array([1, 1, 1, 0]) / math.sqrt(3)


def _autocorrelation(f) -> np.ndarray:
    f = np.asarray(f, np.float64)
    return np.convolve(f, f[::-1])


def _dilate(f: np.ndarray, k: int) -> np.ndarray:
    out = np.zeros((len(f) - 1) * k + 1)
    out[::k] = f
    return out


def resample_filter() -> np.ndarray:
    """The sym6 wavelet low-pass (12 taps) normalised to sum 1: `resample` upsamples by convolving with it
    and low-passes before decimation by correlating with it (i.e. convolving with its time-reverse)."""
    h = np.asarray(SYM6, np.float64)
    return h / h.sum()


def filter_bands() -> np.ndarray:
    """Four zero-phase octave bands [4, 43], low to high, that sum to a unit impulse (see module docstring)."""
    lo = _autocorrelation(SYM2)
    lo = lo / lo.sum()  # half-band low-pass, centre tap 0.5
    hi = -lo
    hi[len(hi) // 2] += 1  # power-complementary high-pass: lo + hi = delta
    b3 = hi
    b2 = np.convolve(lo, _dilate(hi, 2))
    b1 = np.convolve(np.convolve(lo, _dilate(lo, 2)), _dilate(hi, 4))
    b0 = np.convolve(np.convolve(lo, _dilate(lo, 2)), _dilate(lo, 4))
    n = len(b0)
    bands = np.zeros([4, n])
    for i, b in enumerate((b0, b1, b2, b3)):
        o = (n - len(b)) // 2
        bands[i, o:o + len(b)] = b
    return bands


def mirror_index(i: torch.Tensor, n: int) -> torch.Tensor:
    """Map integer indices or continuous positions into [0, n - 1] by reflection without repeating the
    edge (whole-sample symmetric, 'reflect' padding)."""
    if n == 1:
        return torch.zeros_like(i)
    period = 2 * (n - 1)
    i = torch.remainder(i, period)
    return torch.where(i > n - 1, period - i, i)


def mirror_pad(x: torch.Tensor, px0: int, px1: int, py0: int, py1: int) -> torch.Tensor:
    """Reflect-pad NCHW by any amount (torch's reflect mode needs pads smaller than the size)."""
    H, W = x.shape[2], x.shape[3]
    ix = mirror_index(torch.arange(-px0, W + px1, device=x.device), W)
    iy = mirror_index(torch.arange(-py0, H + py1, device=x.device), H)
    return x.index_select(3, ix).index_select(2, iy)


# --- 3x3 (2-D homogeneous) and 4x4 (3-D homogeneous) matrices, batched ---------------------------------

def _mat(rows, ref: torch.Tensor) -> torch.Tensor:
    """Build [N, R, C] from nested lists of scalars / [N] tensors."""
    n = ref.shape[0]
    cols = [torch.stack([torch.as_tensor(v, dtype=ref.dtype, device=ref.device).expand(n) for v in row], dim=-1)
            for row in rows]
    return torch.stack(cols, dim=-2)


def _translate2d(tx, ty, ref):
    return _mat([[1, 0, tx], [0, 1, ty], [0, 0, 1]], ref)


def _scale2d(sx, sy, ref):
    return _mat([[sx, 0, 0], [0, sy, 0], [0, 0, 1]], ref)


def _rotate2d(theta, ref):
    c, s = torch.cos(theta), torch.sin(theta)
    return _mat([[c, -s, 0], [s, c, 0], [0, 0, 1]], ref)


def _translate3d(t, ref):
    return _mat([[1, 0, 0, t], [0, 1, 0, t], [0, 0, 1, t], [0, 0, 0, 1]], ref)


def _scale3d(s, ref):
    return _mat([[s, 0, 0, 0], [0, s, 0, 0], [0, 0, s, 0], [0, 0, 0, 1]], ref)


def _rotate_luma(theta, ref):
    """Rotation by theta about the luma axis (1,1,1)/sqrt(3) (Rodrigues' formula), as a 4x4 matrix."""
    a = 1 / math.sqrt(3)
    c, s = torch.cos(theta), torch.sin(theta)
    t = (1 - c) * a * a
    return _mat([[c + t, t - s * a, t + s * a, 0], [t + s * a, c + t, t - s * a, 0],
                 [t - s * a, t + s * a, c + t, 0], [0, 0, 0, 1]], ref)


class _Draws:
    """Per-sample random draws; in debug mode every draw is the fixed quantile q of its distribution."""

    def __init__(self, n: int, device, q: float | None):
        self.n, self.device, self.q = n, device, q

    def uniform(self, *shape) -> torch.Tensor:  # U[0, 1)
        if self.q is not None:
            return torch.full([self.n, *shape], self.q, device=self.device)
        return torch.rand([self.n, *shape], device=self.device)

    def normal(self, *shape) -> torch.Tensor:
        if self.q is not None:
            q = min(max(self.q, 1e-6), 1 - 1e-6)
            return torch.full([self.n, *shape], math.sqrt(2) * float(torch.erfinv(torch.tensor(2 * q - 1))),
                              device=self.device)
        return torch.randn([self.n, *shape], device=self.device)

    def randint(self, high: int) -> torch.Tensor:
        if self.q is not None:
            return torch.full([self.n], min(int(self.q * high), high - 1), device=self.device, dtype=torch.float32)
        return torch.randint(high, [self.n], device=self.device).float()

    def gate(self, prob) -> torch.Tensor:
        """Bernoulli(prob) per sample (prob may exceed 1); in debug mode, on whenever prob > 0."""
        prob = torch.as_tensor(prob, dtype=torch.float32, device=self.device)
        if self.q is not None:
            return (prob > 0).expand(self.n)
        return torch.rand([self.n], device=self.device) < prob


class AugmentPipe(torch.nn.Module):
    """The ADA pipeline. `AugmentPipe(augpipe='bgc')`, or per-transform multipliers (`xflip=1, hue=0.5`).

    augpipe: an ADA preset from config.AUGPIPES (None = nothing enabled except the multipliers given);
      `diffaug` is another pipe (augment.build_pipe builds either).
    kwargs: probability multipliers by transform name (TRANSFORMS) and strengths (STRENGTHS keys).
    debug_percentile: draw every random parameter at this quantile and apply every enabled transform
      (for previews); None = random.
    Set `pipe.p` (a scalar buffer, e.g. `pipe.p.fill_(0.3)`) to the augmentation probability.
    After each call, `pipe.applied` maps transform names to the per-sample bool masks of their draws (one
    mask per draw: rotate has two, imgfilter one per band).
    """

    def __init__(self, augpipe: str | None = "bgc", *, debug_percentile: float | None = None, **kwargs):
        super().__init__()
        self.multipliers = {t: 0.0 for t in TRANSFORMS}
        if augpipe is not None:
            if augpipe in DIFFAUG_AUGPIPES:
                raise ConfigError(f"--augpipe {augpipe} is DiffAugment's pipe, not ADA's: build it with "
                                  "adagan.augment.build_pipe")
            check_choice("--augpipe", augpipe, AUGPIPES)
            for group in AUGPIPES[augpipe]:
                for t in GROUPS[group]:
                    self.multipliers[t] = 1.0
        self.strengths = dict(STRENGTHS)
        for k, v in kwargs.items():
            if k in self.multipliers:
                self.multipliers[k] = float(v)
            elif k in self.strengths:
                self.strengths[k] = float(v)
            else:
                raise ConfigError(f"unknown augmentation setting {k!r}; transforms: {', '.join(TRANSFORMS)}; "
                                  f"strengths: {', '.join(STRENGTHS)}")
            if not (float(v) >= 0):
                raise ConfigError(f"augmentation setting {k}={v} must be a non-negative number")
        if debug_percentile is not None and not 0 <= debug_percentile <= 1:
            raise ConfigError(f"debug_percentile {debug_percentile} must be in [0, 1]")
        self.augpipe = augpipe
        self.debug_percentile = debug_percentile
        self.register_buffer("p", torch.zeros([]))
        self.register_buffer("resample_f", setup_filter(resample_filter()), persistent=False)
        self.register_buffer("bands", torch.as_tensor(filter_bands(), dtype=torch.float32), persistent=False)
        self.applied: dict[str, list[torch.Tensor]] = {}

    def extra_repr(self) -> str:
        on = {k: v for k, v in self.multipliers.items() if v}
        return f"augpipe={self.augpipe!r}, p={float(self.p):.4f}, enabled={on}"

    # ------------------------------------------------------------------------------------------------
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.ndim != 4:
            raise ValueError(f"AugmentPipe expects NCHW images, got shape {list(images.shape)}")
        N, C, H, W = images.shape
        if H != W:
            raise ValueError(f"AugmentPipe expects square images, got {H}x{W}")
        if C not in (1, 3, 4):
            raise ValueError(f"AugmentPipe handles 1, 3 or 4 channels, got {C}")
        draws = _Draws(N, images.device, self.debug_percentile)
        self.applied = {}
        x = images
        M = self._geometric_matrix(draws, N, W, H)
        if M is not None:
            x = self._apply_geometric(x, M)
        Cm = self._color_matrix(draws, N, C)
        if Cm is not None:
            x = self._apply_color(x, Cm)
        x = self._imgfilter(draws, x)
        x = self._corrupt(draws, x)
        return x

    def _prob(self, name: str) -> torch.Tensor:
        return self.multipliers[name] * self.p.float()

    def _gate(self, draws: _Draws, name: str, prob=None) -> torch.Tensor:
        g = draws.gate(self._prob(name) if prob is None else prob)
        self.applied.setdefault(name, []).append(g)
        return g

    # --- geometric -----------------------------------------------------------------------------------
    def _geometric_matrix(self, draws: _Draws, N: int, W: int, H: int) -> torch.Tensor | None:
        """Inverse transform per sample [N, 3, 3] (float64), or None when no sample is transformed."""
        m, s = self.multipliers, self.strengths
        ref = torch.zeros([N], dtype=torch.float64, device=draws.device)
        G = torch.eye(3, dtype=torch.float64, device=draws.device).expand(N, 3, 3)
        if not any(m[t] > 0 for t in GROUPS["blit"] + GROUPS["geom"]):
            return None
        zero, one = ref, ref + 1
        if m["xflip"] > 0:
            i = torch.where(self._gate(draws, "xflip"), draws.randint(2).double(), zero)
            G = G @ _scale2d(1 - 2 * i, one, ref)
        if m["rotate90"] > 0:
            i = torch.where(self._gate(draws, "rotate90"), draws.randint(4).double(), zero)
            G = G @ _rotate2d(math.pi / 2 * i, ref)  # k = 1: torch.rot90(x, 1, dims=(2, 3))
        if m["xint"] > 0:
            t = (draws.uniform(2).double() * 2 - 1) * s["xint_max"]
            t = torch.where(self._gate(draws, "xint")[:, None], t, 0)
            G = G @ _translate2d(-torch.round(t[:, 0] * W), -torch.round(t[:, 1] * H), ref)
        if m["scale"] > 0:
            sc = torch.exp2(draws.normal().double() * s["scale_std"])
            sc = torch.where(self._gate(draws, "scale"), sc, one)
            G = G @ _scale2d(1 / sc, 1 / sc, ref)
        # Two independent rotations, each with 1 - sqrt(1 - p) so that P(any rotation) = p (appendix B).
        p_rot = 1 - torch.sqrt((1 - self._prob("rotate")).clamp(0, 1))
        if m["rotate"] > 0:
            th = (draws.uniform().double() * 2 - 1) * math.pi * s["rotate_max"]
            th = torch.where(self._gate(draws, "rotate", p_rot), th, zero)
            G = G @ _rotate2d(th, ref)  # +theta in the inverse matrix, as the official code
        if m["aniso"] > 0:
            sc = torch.exp2(draws.normal().double() * s["aniso_std"])
            sc = torch.where(self._gate(draws, "aniso"), sc, one)
            G = G @ _scale2d(1 / sc, sc, ref)
        if m["rotate"] > 0:
            th = (draws.uniform().double() * 2 - 1) * math.pi * s["rotate_max"]
            th = torch.where(self._gate(draws, "rotate", p_rot), th, zero)
            if draws.q is not None:
                th = zero  # a preview shows one rotation by the quantile's angle, not two (as the official code)
            G = G @ _rotate2d(th, ref)
        if m["xfrac"] > 0:
            t = draws.normal(2).double() * s["xfrac_std"]
            t = torch.where(self._gate(draws, "xfrac")[:, None], t, 0)
            G = G @ _translate2d(-t[:, 0] * W, -t[:, 1] * H, ref)
        eye = torch.eye(3, dtype=G.dtype, device=G.device)
        if bool(((G - eye).abs() < 1e-9).all()):
            return None  # nothing drawn: no resampling at all
        return G

    def _apply_geometric(self, x: torch.Tensor, M: torch.Tensor) -> torch.Tensor:
        rounded = M.round()
        exact = ((M - rounded).abs() < 1e-6).flatten(1).all(1)
        exact &= (torch.linalg.det(rounded).abs() - 1).abs() < 1e-6  # a signed permutation
        if bool(exact.all()):
            return blit(x, rounded)
        if not bool(exact.any()):
            return self._resample(x, M)
        ie, ir = exact.nonzero()[:, 0], (~exact).nonzero()[:, 0]
        out = torch.cat([blit(x[ie], rounded[ie]), self._resample(x[ir], M[ir])])
        inverse = torch.empty_like(ie.new_empty(x.shape[0]))
        inverse[torch.cat([ie, ir])] = torch.arange(x.shape[0], device=x.device)
        return out[inverse]

    def _resample(self, x: torch.Tensor, M: torch.Tensor) -> torch.Tensor:
        return resample(x, M, self.resample_f.to(x.dtype))

    # --- colour --------------------------------------------------------------------------------------
    def _color_matrix(self, draws: _Draws, N: int, C: int) -> torch.Tensor | None:
        m, s = self.multipliers, self.strengths
        if not any(m[t] > 0 for t in GROUPS["color"]):
            return None
        ref = torch.zeros([N], dtype=torch.float64, device=draws.device)
        M = torch.eye(4, dtype=torch.float64, device=draws.device).expand(N, 4, 4)
        v = torch.as_tensor(_LUMA, dtype=torch.float64, device=draws.device)
        vv = v.outer(v)
        eye = torch.eye(4, dtype=torch.float64, device=draws.device)
        if m["brightness"] > 0:
            b = torch.where(self._gate(draws, "brightness"), draws.normal().double() * s["brightness_std"], ref)
            M = _translate3d(b, ref) @ M
        if m["contrast"] > 0:
            c = torch.exp2(draws.normal().double() * s["contrast_std"])
            c = torch.where(self._gate(draws, "contrast"), c, ref + 1)
            M = _scale3d(c, ref) @ M
        if m["lumaflip"] > 0:
            i = torch.where(self._gate(draws, "lumaflip"), draws.randint(2).double(), ref)
            M = (eye - 2 * vv * i[:, None, None]) @ M  # Householder reflection of the luma component
        if C >= 3 and m["hue"] > 0:
            th = (draws.uniform().double() * 2 - 1) * math.pi * s["hue_max"]
            th = torch.where(self._gate(draws, "hue"), th, ref)
            M = _rotate_luma(th, ref) @ M
        if C >= 3 and m["saturation"] > 0:
            sat = torch.exp2(draws.normal().double() * s["saturation_std"])
            sat = torch.where(self._gate(draws, "saturation"), sat, ref + 1)
            chroma = (eye - vv)
            chroma[3, 3] = 0
            M = (vv + chroma * sat[:, None, None] + torch.diag(eye.new_tensor([0, 0, 0, 1]))) @ M
        if bool(((M - eye).abs() < 1e-12).all()):
            return None
        return M

    @staticmethod
    def _apply_color(x: torch.Tensor, M: torch.Tensor) -> torch.Tensor:
        N, C, H, W = x.shape
        M = M.to(x.dtype)
        if C == 1:
            # A grey pixel g is the RGB point (g, g, g); keep the mean of the transformed channels.
            gain = M[:, :3, :3].sum(2).mean(1)
            bias = M[:, :3, 3].mean(1)
            return x * gain[:, None, None, None] + bias[:, None, None, None]
        rgb = x[:, :3].reshape(N, 3, H * W)
        rgb = (M[:, :3, :3] @ rgb + M[:, :3, 3:]).reshape(N, 3, H, W)
        return torch.cat([rgb, x[:, 3:]], dim=1) if C == 4 else rgb

    # --- filter and corruptions ----------------------------------------------------------------------
    def _imgfilter(self, draws: _Draws, x: torch.Tensor) -> torch.Tensor:
        if self.multipliers["imgfilter"] <= 0:
            return x
        N, C, H, W = x.shape
        power = torch.tensor(BAND_POWER, device=x.device)
        g = torch.ones([N, 4], device=x.device)
        any_on = torch.zeros([N], dtype=torch.bool, device=x.device)
        for i in range(4):
            t_i = torch.exp2(draws.normal() * self.strengths["imgfilter_std"])
            on = self._gate(draws, "imgfilter")
            any_on |= on
            t = torch.ones([N, 4], device=x.device)
            t[:, i] = torch.where(on, t_i, 1)
            g = g * (t / (power * t.square()).sum(1, keepdim=True).sqrt())  # keep the expected power
        if not bool(any_on.any()):
            return x
        g = torch.where(any_on[:, None], g, 1)
        f = (g.to(x.dtype) @ self.bands.to(x.dtype))  # [N, L] per-sample 1-D filter, applied along x then y
        r = f.shape[1] // 2
        f = f.repeat_interleave(C, dim=0)  # [N*C, L]
        y = mirror_pad(x, r, r, 0, 0).reshape(1, N * C, H, W + 2 * r)
        y = F.conv2d(y, f[:, None, None, :], groups=N * C)
        y = mirror_pad(y.reshape(N, C, H, W), 0, 0, r, r).reshape(1, N * C, H + 2 * r, W)
        y = F.conv2d(y, f[:, None, :, None], groups=N * C)
        return y.reshape(N, C, H, W)

    def _corrupt(self, draws: _Draws, x: torch.Tensor) -> torch.Tensor:
        N, C, H, W = x.shape
        m, s = self.multipliers, self.strengths
        if m["noise"] > 0:
            sigma = draws.normal().abs() * s["noise_std"]
            on = self._gate(draws, "noise")
            if bool(on.any()):
                sigma = torch.where(on, sigma, 0).to(x.dtype)
                gen = None
                if self.debug_percentile is not None:
                    gen = torch.Generator(device=x.device).manual_seed(0)
                noise = torch.randn(x.shape, generator=gen, device=x.device, dtype=x.dtype)
                if C == 4:
                    noise[:, 3] = 0
                x = x + noise * sigma[:, None, None, None]
        if m["cutout"] > 0:
            centre = draws.uniform(2)
            on = self._gate(draws, "cutout")
            if bool(on.any()):
                size = torch.where(on, torch.full_like(on, s["cutout_size"], dtype=torch.float32), 0)
                cx = (torch.arange(W, device=x.device) + 0.5) / W
                cy = (torch.arange(H, device=x.device) + 0.5) / H
                out_x = (cx[None, :] - centre[:, 0:1]).abs() >= size[:, None] / 2  # [N, W]
                out_y = (cy[None, :] - centre[:, 1:2]).abs() >= size[:, None] / 2  # [N, H]
                keep = out_x[:, None, :] | out_y[:, :, None]
                x = x * keep[:, None].to(x.dtype)
        return x


def blit(x: torch.Tensor, M: torch.Tensor) -> torch.Tensor:
    """Exact copy for integer inverse matrices M [N, 3, 3] (flips, 90-degree turns, whole-pixel shifts),
    reflecting at the borders."""
    N, C, H, W = x.shape
    dev = x.device
    u = torch.arange(W, device=dev, dtype=torch.float64) - (W - 1) / 2
    v = torch.arange(H, device=dev, dtype=torch.float64) - (H - 1) / 2
    vv, uu = torch.meshgrid(v, u, indexing="ij")
    coords = torch.stack([uu.flatten(), vv.flatten(), torch.ones_like(uu.flatten())])  # [3, HW]
    src = M[:, :2, :].to(torch.float64) @ coords  # [N, 2, HW]
    ix = mirror_index(torch.round(src[:, 0] + (W - 1) / 2).long(), W)
    iy = mirror_index(torch.round(src[:, 1] + (H - 1) / 2).long(), H)
    idx = (iy * W + ix)[:, None, :].expand(N, C, H * W)
    return x.reshape(N, C, H * W).gather(2, idx).reshape(N, C, H, W)


def _lattice(pos: torch.Tensor, n: int) -> tuple[torch.Tensor, int, int]:
    """Positions along one axis (input pixel index units) -> the 2x lattice of `resample` (m = 2 * pos),
    moved by whole periods of the mirror extension into [-(n - 1), 3(n - 1)), one period centred on the
    image. Returns m and the lattice range [m0, m1] that bilinear sampling reads."""
    m = 2 * pos
    if n == 1:
        m = torch.zeros_like(m)  # the mirror extension of one pixel is constant
    else:
        period = 4 * (n - 1)  # the mirror extension repeats every 2(n - 1) pixels
        m = m - period * torch.floor((m + (n - 1)) / period)
    return m, int(torch.floor(m.min())), int(torch.floor(m.max())) + 1


def _upsample_matrix(f: torch.Tensor, m0: int, m1: int, n: int) -> torch.Tensor:
    """[m1 - m0 + 1, n]: lattice samples m0..m1 of the 2x upsampled mirror extension of n pixels, as a
    linear map of the pixels. Tap s of pixel k lands on lattice sample 2k + s - o (position k + (s - o)/2,
    o = L/2 - 1), with gain 2 (each parity of the taps sums to 1/2)."""
    L = f.shape[0]
    m = torch.arange(m0, m1 + 1, device=f.device)[:, None]
    s = torch.arange(L, device=f.device)[None, :]
    two_k = m - s + L // 2 - 1  # [Lm, L]
    w = torch.where(two_k % 2 == 0, 2 * f[None, :], 0).to(f.dtype)
    U = f.new_zeros([m1 - m0 + 1, n])
    return U.scatter_add_(1, mirror_index(torch.div(two_k, 2, rounding_mode="floor"), n), w)


def _downsample_matrix(f: torch.Tensor, n: int) -> torch.Tensor:
    """[n, 2n + L - 2]: output pixel i = sum_t f[t] * grid point 2i + t (the time-reversed filter, then
    every other sample)."""
    L = f.shape[0]
    D = f.new_zeros([n, 2 * n + L - 2])
    cols = 2 * torch.arange(n, device=f.device)[:, None] + torch.arange(L, device=f.device)[None, :]
    return D.scatter_(1, cols, f[None, :].expand(n, L).contiguous())


# Images of at most this many pixels per side are up- and downsampled by matrix products in `resample`,
# larger ones by convolution. The matrices cost O(size) per output pixel, the 12-tap convolutions O(1), yet
# on CPU the matrix products were faster at every size from 32 to 1024 px (2.2-8x forward+backward; torch's
# depthwise convolution of the zero-inserted image is slow): `python benchmarks/augment.py --resample both`,
# docs/benchmarks.md "Augmentation". Not measured on CUDA.
RESAMPLE_MATMUL_MAX = 1024


def _upsample_conv(x: torch.Tensor, f: torch.Tensor, mv0: int, mv1: int, mu0: int, mu1: int) -> torch.Tensor:
    """The lattice samples [mv0, mv1] x [mu0, mu1] of the 2x upsampled mirror extension (what the matrices
    of `_upsample_matrix` compute), by zero insertion and the separable 12-tap convolution: lattice sample m
    is output j = m + o of the full convolution of the zero-inserted extension, o = L/2 - 1."""
    H, W = x.shape[2], x.shape[3]
    L = f.shape[0]
    o = L // 2 - 1
    # Extension pixels k0..k1 feed the lattice range: k = (j - s) / 2 for taps s in [0, L).
    kv0, kv1 = (mv0 + o - (L - 1)) // 2, (mv1 + o) // 2
    ku0, ku1 = (mu0 + o - (L - 1)) // 2, (mu1 + o) // 2
    dev = x.device
    xe = x.index_select(2, mirror_index(torch.arange(kv0, kv1 + 1, device=dev), H))
    xe = xe.index_select(3, mirror_index(torch.arange(ku0, ku1 + 1, device=dev), W))
    # upfirdn2d output i reads the zero-inserted, padded input from i on: i = j - 2 k0 - (L - 1) + pad0.
    py0, px0 = L - 1 - (mv0 + o - 2 * kv0), L - 1 - (mu0 + o - 2 * ku0)
    py1 = (mv1 - mv0 + 1) - 2 * (kv1 - kv0 + 1) - py0 + L - 1
    px1 = (mu1 - mu0 + 1) - 2 * (ku1 - ku0 + 1) - px0 + L - 1
    return upfirdn2d(xe, f, up=2, padding=[px0, px1, py0, py1], gain=4)


def _downsample_conv(ys: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """Output pixel i = sum_t f[t] * ys[2i + t] per axis (`_downsample_matrix`): correlate, keep every other."""
    return upfirdn2d(ys, f, down=2, flip_filter=True)


def resample(x: torch.Tensor, M: torch.Tensor, f: torch.Tensor, impl: str = "auto") -> torch.Tensor:
    """Apply inverse matrices M [N, 3, 3] (output -> input, centred pixel units) with one resampling.

    f: the 1-D wavelet low-pass (even length L, sums to 1; `resample_filter`). The input is extended by
    mirroring (whole-sample symmetric) and upsampled 2x: tap s of input pixel k lands at position
    k + (s - o)/2, o = L/2 - 1. Each output pixel i gathers tap t from the bilinear sample at output
    position i + (t - o)/2 (a 2x grid of 2*size + L - 2 points per axis), i.e. the time-reversed filter
    before decimation; with an orthogonal f an identity warp returns the input. This is the layout of the
    official code (upsample with 'same' padding, a grid of 2*(size + L/2) points, decimate and crop L/2).

    Only the part of the upsampled extension that the sample positions read is computed: the extension
    repeats every 2(size - 1) pixels, so positions are moved by whole periods next to the image and the
    upsampled region is at most one period (plus one sample) per axis, whatever the warp.
    impl: how the separable up- and downsampling run. 'matmul': as matrix products with the mirroring
    folded in (O(size) work per pixel, but faster on CPU than the convolutions up to 1024 px); 'conv':
    mirror-gather, zero insertion and 12-tap convolutions (upfirdn2d); 'auto': matmul up to
    RESAMPLE_MATMUL_MAX px per side, conv above. Both are the same function (tests/augment);
    `resample_ref` is the padded construction.
    """
    N, C, H, W = x.shape
    dev = x.device
    L = f.shape[0]
    o = L // 2 - 1
    if impl == "auto":
        impl = "matmul" if max(H, W) <= RESAMPLE_MATMUL_MAX else "conv"
    if impl not in ("matmul", "conv"):
        raise ValueError(f"resample impl must be 'auto', 'matmul' or 'conv', got {impl!r}")
    M = M.to(torch.float64)
    nu = torch.arange(-o, 2 * (W - 1) + L - o, device=dev, dtype=torch.float64) / 2 - (W - 1) / 2
    nv = torch.arange(-o, 2 * (H - 1) + L - o, device=dev, dtype=torch.float64) / 2 - (H - 1) / 2
    gv, gu = torch.meshgrid(nv, nu, indexing="ij")
    pts = torch.stack([gu, gv, torch.ones_like(gu)], dim=-1)  # [Hs, Ws, 3] centred output units
    src = torch.einsum("nij,hwj->nhwi", M[:, :2, :], pts)  # [N, Hs, Ws, 2] centred input units
    mu, mu0, mu1 = _lattice(src[..., 0] + (W - 1) / 2, W)
    mv, mv0, mv1 = _lattice(src[..., 1] + (H - 1) / 2, H)
    f = f.to(x.dtype)
    if impl == "matmul":
        xu = _upsample_matrix(f, mv0, mv1, H) @ x @ _upsample_matrix(f, mu0, mu1, W).T  # [N, C, Lv, Lu]
    else:
        xu = _upsample_conv(x, f, mv0, mv1, mu0, mu1)
    Lv, Lu = mv1 - mv0 + 1, mu1 - mu0 + 1
    grid = torch.stack([(2 * (mu - mu0) + 1) / Lu - 1, (2 * (mv - mv0) + 1) / Lv - 1], dim=-1).to(x.dtype)
    ys = F.grid_sample(xu, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    if impl == "matmul":
        return _downsample_matrix(f, H) @ ys @ _downsample_matrix(f, W).T
    return _downsample_conv(ys, f)


def resample_ref(x: torch.Tensor, M: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """Reference twin of `resample`, the padded construction: mirror-pad by the whole margin that the
    transformed corners of the sampling grid need, upsample 2x, sample bilinearly on a grid of
    2*(size + L/2) points, low-pass with the time-reversed filter, decimate 2x and crop L/2 per side.
    Slow for large warps (the padding grows with them); used in the tests.

    Unlike the official code, the margin is not capped at size - 1 (beyond which it samples zeros) and
    reaches past the filter taps, so every sample reads the same mirror extension whatever the batch.
    """
    N, C, H, W = x.shape
    dev = x.device
    L = f.shape[0]
    M = M.to(torch.float64)
    # Grid point j sits at output pixel position (j - L/2)/2, in centred units.
    ju = (torch.arange(2 * W + L, device=dev, dtype=torch.float64) - L / 2) / 2 - (W - 1) / 2
    jv = (torch.arange(2 * H + L, device=dev, dtype=torch.float64) - L / 2) / 2 - (H - 1) / 2
    corners = torch.tensor([[ju[0], jv[0], 1], [ju[-1], jv[0], 1], [ju[0], jv[-1], 1], [ju[-1], jv[-1], 1]],
                           dtype=torch.float64, device=dev).T  # [3, 4]
    cs = M[:, :2, :] @ corners  # [N, 2, 4] centred input units
    half = torch.tensor([(W - 1) / 2, (H - 1) / 2], dtype=torch.float64, device=dev)
    lo = -(cs.amin(dim=(0, 2)) + half)  # how far the grid reaches left of / above pixel 0
    hi = cs.amax(dim=(0, 2)) - half  # and right of / below the last pixel
    reach = L // 2 + 1  # upsampling taps + bilinear neighbour, in input pixels, with room to spare
    px0, py0 = (max(0, math.ceil(float(v))) + reach for v in lo.tolist())
    px1, py1 = (max(0, math.ceil(float(v))) + reach for v in hi.tolist())
    xp = mirror_pad(x, px0, px1, py0, py1)
    xu = upsample2d(xp, f, up=2)  # [N, C, 2Hp, 2Wp], sample k at padded position k/2
    Hu, Wu = xu.shape[2], xu.shape[3]
    gv, gu = torch.meshgrid(jv, ju, indexing="ij")
    pts = torch.stack([gu, gv, torch.ones_like(gu)], dim=-1)  # [Hs, Ws, 3]
    src = torch.einsum("nij,hwj->nhwi", M[:, :2, :], pts)  # centred input units
    ku = 2 * (src[..., 0] + (W - 1) / 2 + px0)
    kv = 2 * (src[..., 1] + (H - 1) / 2 + py0)
    grid = torch.stack([(2 * ku + 1) / Wu - 1, (2 * kv + 1) / Hu - 1], dim=-1).to(x.dtype)
    ys = F.grid_sample(xu, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return downsample2d(ys, f, down=2, padding=-(L // 2), flip_filter=True)
