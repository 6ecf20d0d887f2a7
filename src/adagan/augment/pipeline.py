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

from adagan.augment.resample import SYM6, blit, mirror_pad, resample, resample_filter  # noqa: F401 (SYM6: re-export)
from adagan.config import AUGPIPES, DIFFAUG_AUGPIPES
from adagan.errors import ConfigError
from adagan.limits import check_choice
from adagan.ops import setup_filter

# The symlet-2 wavelet low-pass (decomposition) filter, for the filter bands (SYM6: augment/resample.py).
SYM2 = [-0.12940952255092145, 0.22414386804185735, 0.836516303737469, 0.48296291314469025]

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


