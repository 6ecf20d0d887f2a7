"""The Inception input protocol of the paper's FID/KID/IS: TensorFlow 1 resize_bilinear to 299x299, the
real-feature cache keyed by it, and the feature statistics of NVIDIA's FID code."""

import hashlib
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from adagan.data import ImageDataset
from adagan.metrics.features import InceptionDetector, inception_preprocess, inception_resize, load_inception
from adagan.metrics.fid import feature_stats, fid_from_features
from adagan.metrics.stats import cache_path, dataset_features


def tf1_resize_bilinear(img: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """TensorFlow 1 `tf.image.resize_bilinear(align_corners=False)` ([C, H, W], float64), pixel by pixel
    as TensorFlow's CPU kernel computes it: scale = in / out, in_y = y * scale (no half-pixel offset),
    top = floor(in_y), bottom = min(ceil(in_y), in - 1), lerp = in_y - top; the same along x."""
    _, h, w = img.shape
    out = np.zeros([img.shape[0], out_h, out_w])
    for y in range(out_h):
        in_y = y * (h / out_h)
        top, bottom = math.floor(in_y), min(math.ceil(in_y), h - 1)
        y_lerp = in_y - top
        for x in range(out_w):
            in_x = x * (w / out_w)
            left, right = math.floor(in_x), min(math.ceil(in_x), w - 1)
            x_lerp = in_x - left
            top_v = img[:, top, left] + (img[:, top, right] - img[:, top, left]) * x_lerp
            bottom_v = img[:, bottom, left] + (img[:, bottom, right] - img[:, bottom, left]) * x_lerp
            out[:, y, x] = top_v + (bottom_v - top_v) * y_lerp
    return out


@pytest.mark.parametrize("h, w, size", [(32, 32, 299), (300, 410, 299), (5, 7, 13)])
def test_resize_matches_tf1_resize_bilinear(h, w, size):
    # 32 -> 299 (our datasets), shrinking a non-square image (no antialiasing, like TF1), and a tiny
    # odd case where every output pixel is checked against its four source pixels.
    rng = np.random.default_rng(h * w)
    img = rng.integers(0, 256, [3, h, w]).astype(np.float64)
    want = tf1_resize_bilinear(img, size, size)
    got = inception_resize(torch.from_numpy(img).float()[None], size)[0].double().numpy()
    assert got.shape == want.shape
    # The grid is float32 (as in NVIDIA's detector): coordinates are exact to ~1e-7 of the width, times
    # pixel steps of up to 255.
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-3 + 255 * max(h, w) * 2e-7)
    # The half-pixel-centred resize adagan used before differs by whole intensity levels.
    old = F.interpolate(torch.from_numpy(img).float()[None], size=(size, size), mode="bilinear",
                        align_corners=False)[0].double().numpy()
    assert np.abs(old - want).max() > 5


def test_resize_batch_and_gray_follow_the_same_rule():
    rng = np.random.default_rng(3)
    imgs = torch.from_numpy(rng.integers(0, 256, [3, 1, 32, 24]).astype(np.uint8))
    x = inception_preprocess(imgs)
    assert x.shape == (3, 3, 299, 299)
    for i in range(3):
        want = (tf1_resize_bilinear(imgs[i].double().numpy(), 299, 299) - 128) / 128
        for ch in range(3):  # gray is repeated to RGB before the resize
            np.testing.assert_allclose(x[i, ch].double().numpy(), want[0], atol=2e-5)


def test_resize_is_identity_at_299():
    imgs = torch.from_numpy(np.random.default_rng(4).integers(0, 256, [2, 3, 299, 299]).astype(np.uint8))
    assert torch.equal(inception_resize(imgs.float()), imgs.float())
    assert torch.equal(inception_preprocess(imgs), (imgs.float() - 128) / 128)


class _FakeInception(torch.nn.Module):
    """Stands in for an Inception TorchScript file: records its input, returns 2048 'features'."""

    def forward(self, x: torch.Tensor, return_features: bool = False) -> torch.Tensor:
        f = torch.cat([x.mean(dim=(2, 3)), x.std(dim=(2, 3)), x[:, :, ::50, ::50].flatten(1)], dim=1)
        return F.pad(f, [0, 2048 - f.shape[1]])


@pytest.fixture
def fake_inception_file(tmp_path):
    """A TorchScript 'Inception' registered like NVIDIA's file (sha256 sidecar), so load_inception takes it."""
    import warnings

    p = tmp_path / "inception-2015-12-05-nvidia.pt"
    with warnings.catch_warnings():  # torch.jit.script is deprecated; the real files are TorchScript
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.script(_FakeInception()).save(str(p))
    (tmp_path / (p.name + ".sha256")).write_text(hashlib.sha256(p.read_bytes()).hexdigest())
    return p


def test_both_detector_kinds_see_the_tf1_resized_input(fake_inception_file):
    imgs = torch.from_numpy(np.random.default_rng(5).integers(0, 256, [2, 3, 32, 32]).astype(np.uint8))
    want = inception_preprocess(imgs)
    det = load_inception("cpu", fake_inception_file)
    assert det.kind == "nvidia"
    # NVIDIA's file takes 0..255 and scales itself; the fid-helper file takes [-1, 127/128].
    torch.testing.assert_close(det(imgs), _FakeInception()(want * 128 + 128), rtol=1e-5, atol=1e-4)
    helper = InceptionDetector(_FakeInception(), "fid-helper", weights_id="inception-2015-12-05:fid-helper:x")
    torch.testing.assert_close(helper(imgs), _FakeInception()(want), rtol=1e-6, atol=1e-6)


def test_cache_key_names_the_resize(tmp_path, fake_inception_file):
    """Real-image features cached under the old key (same file, half-pixel resize) are not served."""
    from types import SimpleNamespace

    from PIL import Image

    folder = tmp_path / "real"
    folder.mkdir()
    rng = np.random.default_rng(6)
    for i in range(4):
        Image.fromarray(rng.integers(0, 256, [16, 16, 3]).astype(np.uint8)).save(folder / f"{i}.png")
    ds = ImageDataset(folder)
    det = load_inception("cpu", fake_inception_file)
    sha1 = hashlib.sha1(fake_inception_file.read_bytes()).hexdigest()
    old_id = f"inception-2015-12-05:nvidia:{sha1[:12]}"  # the cache_id before the TF1 resize
    assert det.cache_id != old_id and "tf1-bilinear" in det.cache_id
    old = cache_path(ds, SimpleNamespace(cache_id=old_id), num=4)
    assert cache_path(ds, det, num=4) != old
    old.parent.mkdir(parents=True, exist_ok=True)
    np.save(old, np.full([4, 2048], 7.0, np.float32))
    feats = dataset_features(ds, det, progress=False)
    assert not np.allclose(feats, 7.0)
    np.testing.assert_allclose(feats, det(ds.get_batch(np.arange(4))[0]).numpy(), rtol=1e-6)
    assert cache_path(ds, det, num=4).is_file()


def test_feature_stats_divide_by_n_like_nvidias_fid():
    """NVIDIA's FID accumulates sum(x) and sum(x x^T) and uses sum(x x^T) / N - mu mu^T (no N - 1)."""
    rng = np.random.default_rng(7)
    x = rng.standard_normal([10, 4]) * [1, 2, 3, 4] + 5
    mu, cov = feature_stats(x)
    np.testing.assert_allclose(mu, x.sum(0) / 10, rtol=1e-12)
    np.testing.assert_allclose(cov, x.T @ x / 10 - np.outer(mu, mu), rtol=1e-10, atol=1e-12)
    # Two sets that differ only in scale: FID = sum((sqrt(v_a) - sqrt(v_b))^2) with variances over N.
    a = rng.standard_normal([10, 3])
    a = (a - a.mean(0)) / a.std(0)  # per-dimension variance exactly 1 over N
    assert fid_from_features(a, 2 * a) == pytest.approx(3 * (2 - 1) ** 2, rel=1e-9)
