"""FID/KID/PR/PPL maths against independent references, and the pipeline with a tiny detector."""

import numpy as np
import pytest
import scipy.linalg
import torch

from adagan.data import ImageDataset
from adagan.errors import ConfigError
from adagan.metrics import (
    fid_from_features,
    frechet_distance,
    kid_from_features,
    parse_metric,
    precision_recall,
)
from adagan.metrics.inception_score import inception_score_from_probs
from adagan.metrics.ppl import compute_ppl
from adagan.metrics.stats import cache_path, dataset_features, generated_features, generator_fn, to_uint8


def reference_fid(a, b):
    """Independent float64 computation with scipy's general matrix square root (covariances / N, as
    NVIDIA's FID code; this reference used np.cov's N - 1 before adagan adopted that protocol)."""
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False, bias=True), np.cov(b, rowvar=False, bias=True)
    covmean = scipy.linalg.sqrtm(s1 @ s2)
    covmean = covmean.real if np.iscomplexobj(covmean) else covmean
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * covmean))


def test_frechet_distance_closed_form():
    rng = np.random.default_rng(0)
    # Diagonal covariances: FD = |dmu|^2 + sum (sqrt(a) - sqrt(b))^2.
    a, b = rng.uniform(0.1, 2, 5), rng.uniform(0.1, 2, 5)
    mu1, mu2 = rng.standard_normal(5), rng.standard_normal(5)
    want = ((mu1 - mu2) ** 2).sum() + ((np.sqrt(a) - np.sqrt(b)) ** 2).sum()
    assert frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(want, rel=1e-10)
    # Same covariance, rotated: FD = |dmu|^2 + 2 tr(S) - 2 tr(S) = |dmu|^2 when S1 = S2.
    q, _ = np.linalg.qr(rng.standard_normal([6, 6]))
    s = q @ np.diag(rng.uniform(0.5, 3, 6)) @ q.T
    assert frechet_distance(mu1[:1].repeat(6), s, mu1[:1].repeat(6), s) == pytest.approx(0, abs=1e-9)
    # 1-d: (m1-m2)^2 + (s1-s2)^2 with standard deviations s.
    assert frechet_distance([1.0], [[4.0]], [3.0], [[9.0]]) == pytest.approx(4 + 1)


def test_fid_matches_scipy_reference():
    rng = np.random.default_rng(1)
    a = rng.standard_normal([300, 20]) @ rng.standard_normal([20, 20])
    b = rng.standard_normal([250, 20]) @ rng.standard_normal([20, 20]) + 0.3
    assert fid_from_features(a.astype(np.float32), b.astype(np.float32)) == pytest.approx(reference_fid(a, b),
                                                                                          rel=1e-4)


def test_kid_same_distribution_is_about_zero_and_unbiased():
    rng = np.random.default_rng(2)
    a, b = rng.standard_normal([400, 16]), rng.standard_normal([400, 16])
    same = kid_from_features(a, b, num_subsets=50, max_subset_size=200)
    diff = kid_from_features(a, b + 0.5, num_subsets=50, max_subset_size=200)
    assert abs(same) < 0.02 * diff
    # Unbiased: the mean over many independent small same-distribution draws is ~0 (FID would be large).
    vals = [kid_from_features(rng.standard_normal([20, 16]), rng.standard_normal([20, 16]), num_subsets=5)
            for _ in range(40)]
    assert abs(np.mean(vals)) < 3 * np.std(vals) / np.sqrt(len(vals)) + 1e-4
    # Subsets shrink to the smaller set.
    assert np.isfinite(kid_from_features(a[:5], b, num_subsets=3))


def test_precision_recall():
    rng = np.random.default_rng(3)
    real = rng.standard_normal([300, 8])
    p, r = precision_recall(real, rng.standard_normal([300, 8]))
    assert p > 0.8 and r > 0.8
    p, r = precision_recall(real, rng.standard_normal([300, 8]) * 0.2)  # mode collapse: precise, low recall
    assert p > 0.9 and r < 0.5
    p, r = precision_recall(real, rng.standard_normal([300, 8]) + 10)
    assert p == 0 and r == 0


def test_inception_score_from_probs():
    k = 10
    uniform = np.full([100, k], 1 / k)
    assert inception_score_from_probs(uniform)[0] == pytest.approx(1)
    confident = np.eye(k)[np.arange(100) % k]
    assert inception_score_from_probs(confident, num_splits=10)[0] == pytest.approx(k, rel=1e-6)


def test_metric_names():
    assert parse_metric("fid50k_full").num == 50000
    assert parse_metric("kid1k").kind == "kid"
    assert parse_metric("pr1k3_full").kind == "pr"
    assert parse_metric("ppl_wend").num == 50000 and parse_metric("ppl1k_wend").num == 1000
    assert parse_metric("is1k").kind == "is"
    for bad in ("fid", "fid0k", "ppl2_zend", "ppl_wmid", "nope"):
        with pytest.raises(ConfigError, match="unknown metric"):
            parse_metric(bad)


@pytest.fixture
def folder_ds(tmp_path, mx):
    return ImageDataset(mx.write_images(tmp_path / "real", 40, seed=0))


def _features(gen, dataset, num_gen, detector, batch_size):
    """(real, generated) detector features: the whole dataset and num_gen generated samples."""
    return (dataset_features(dataset, detector, batch_size=batch_size, progress=False),
            generated_features(gen, num_gen, detector, batch_size=batch_size, progress=False))


def test_identical_images_give_zero_fid(folder_ds, detector):
    gen = lambda idx: folder_ds.get_batch(idx)[0]
    fid = fid_from_features(*_features(gen, folder_ds, len(folder_ds), detector, batch_size=7))
    assert abs(fid) < 1e-6


def test_pipeline_matches_direct_features(folder_ds, detector, mx):
    G = mx.tiny_generator()
    gen = generator_fn(G, seed=1)
    feats = _features(gen, folder_ds, 30, detector, batch_size=8)
    fid = fid_from_features(*feats)
    with torch.no_grad():
        real = detector(folder_ds.get_batch(range(len(folder_ds)))[0]).numpy()
        from adagan.metrics.stats import sample_latents

        (z,), c = sample_latents(np.arange(30), G.z_dim, seed=1)
        fake = detector(to_uint8(G(z, c, noise_mode="const"))).numpy()
    assert fid == pytest.approx(reference_fid(real.astype(np.float64), fake.astype(np.float64)), rel=1e-3)
    kid = kid_from_features(*feats)
    assert kid == pytest.approx(kid_from_features(real, fake), rel=1e-4, abs=1e-7)


def test_generated_set_does_not_depend_on_batch_size(detector, mx):
    gen = generator_fn(mx.tiny_generator(), seed=3)
    a = generated_features(gen, 10, detector, batch_size=3, progress=False)
    b = generated_features(gen, 10, detector, batch_size=10, progress=False)
    np.testing.assert_allclose(a, b, atol=2e-3)  # rare +-1 uint8 rounding flips
    # Ranks' shards concatenate to the whole set.
    parts = [generated_features(gen, 10, detector, batch_size=4, rank=r, world_size=3, progress=False)
             for r in range(3)]
    np.testing.assert_allclose(np.concatenate(parts), a, atol=2e-3)


def test_real_feature_cache(tmp_path, detector, mx):
    folder = mx.write_images(tmp_path / "data", 12, seed=5)
    ds = ImageDataset(folder)
    p = cache_path(ds, detector, num=12)
    f1 = dataset_features(ds, detector, progress=False)
    assert p.is_file()
    np.testing.assert_array_equal(np.load(p), f1)
    # Same content -> same key; a different detector or a changed image -> a different key.
    assert cache_path(ImageDataset(folder), detector, num=12) == p
    assert cache_path(ds, mx.TinyDetector(seed=1, cache_id="other"), num=12) != p
    mx.write_images(tmp_path / "tmp", 1, seed=99)
    (tmp_path / "tmp" / "0000.png").replace(folder / "0003.png")
    ds2 = ImageDataset(folder)
    assert cache_path(ds2, detector, num=12) != p
    f2 = dataset_features(ds2, detector, progress=False)
    assert not np.allclose(f1, f2)
    # A detector without cache_id is never cached.
    del detector.cache_id
    assert cache_path(ds, detector, num=12) is None


def test_ppl_is_finite_and_scales(mx):
    from adagan.metrics.lpips import LPIPSVGG16

    torch.manual_seed(0)
    lp = LPIPSVGG16().eval().requires_grad_(False)
    G = mx.tiny_generator()
    v = compute_ppl(G, lp, 8, batch_size=4, progress=False)
    assert np.isfinite(v) and v > 0
    assert compute_ppl(G, lp, 8, batch_size=8, progress=False) == pytest.approx(v, rel=1e-3)
