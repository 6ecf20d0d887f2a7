"""Memorisation (memNk): nearest-training-image distances, the near-copy threshold, the metric pipeline."""

import numpy as np
import pytest
import torch

from adagan.data import ImageDataset
from adagan.metrics import evaluate
from adagan.metrics.memorisation import (
    COPY_QUANTILE,
    memorisation_scores,
    nearest_distances,
    pixel_vectors,
)


def test_nearest_distances_match_brute_force():
    rng = np.random.default_rng(0)
    q, r = rng.normal(size=[37, 5]), rng.normal(size=[23, 5])
    brute = np.sqrt(((q[:, None] - r[None]) ** 2).sum(-1)).min(1)
    np.testing.assert_allclose(nearest_distances(q, r, chunk=8), brute, rtol=1e-10)
    full = np.sqrt(((r[:, None] - r[None]) ** 2).sum(-1))
    np.fill_diagonal(full, np.inf)
    np.testing.assert_allclose(nearest_distances(r, r, leave_one_out=True, chunk=5), full.min(1), rtol=1e-10)


def test_copies_score_one_and_new_draws_score_the_quantile():
    rng = np.random.default_rng(1)
    train = rng.normal(size=[400, 8])
    copies = memorisation_scores(train[rng.integers(0, 400, 1000)], train)
    assert copies["copies"] == 1.0 and copies["dist"] == 0.0
    # Fresh draws from the training distribution are as far from the set as its own members are from
    # each other: about COPY_QUANTILE of them fall under the threshold and the distance ratio is about 1.
    new = memorisation_scores(rng.normal(size=[4000, 8]), train)
    assert new["copies"] == pytest.approx(COPY_QUANTILE, abs=0.025)
    assert new["dist"] == pytest.approx(1.0, abs=0.1)
    # Half copies, half new: in between.
    mixed = memorisation_scores(np.concatenate([train[:200], rng.normal(size=[200, 8])]), train)
    assert 0.45 < mixed["copies"] < 0.6


def test_duplicate_training_images_do_not_zero_the_threshold():
    rng = np.random.default_rng(2)
    train = rng.normal(size=[50, 4])
    twice = np.concatenate([train, train])  # every image twice: leave-one-out would give 0 for all
    a, b = memorisation_scores(train[:10], twice), memorisation_scores(train[:10], train)
    assert a["threshold"] == b["threshold"] > 0 and a["copies"] == 1.0


def test_pixel_vectors_are_rms_distances_at_32px():
    a = torch.full([1, 3, 64, 64], 100, dtype=torch.uint8)
    b = a + 51  # 0.2 of the range everywhere
    va, vb = pixel_vectors(a), pixel_vectors(b)
    assert va.shape == (1, 3 * 32 * 32)
    assert np.linalg.norm(va - vb) == pytest.approx(0.2, rel=1e-5)
    assert pixel_vectors(torch.zeros([2, 1, 16, 16], dtype=torch.uint8)).shape == (2, 256)


class CopyG(torch.nn.Module):
    """A 'generator' that returns training image k for sample z (k from z): a perfect memoriser."""

    def __init__(self, images: torch.Tensor):
        super().__init__()
        self.images, self.z_dim, self.c_dim = images, 4, 0

    def forward(self, z, c=None, truncation_psi=1.0, noise_mode="const"):
        k = (z[:, 0].abs() * 1000).long() % len(self.images)
        return self.images[k].float() / 127.5 - 1


def test_memorisation_metric_through_compute_metrics(tmp_path, detector, monkeypatch, mx):
    monkeypatch.setattr(evaluate, "load_detector", lambda kind, device: detector)
    pool = ImageDataset(mx.write_images(tmp_path / "pool", 60, seed=0))
    train = ImageDataset(tmp_path / "pool", subset=20, seed=3)
    copier = CopyG(train.get_batch(list(range(len(train))))[0])
    out = evaluate.compute_metrics(copier, pool, evaluate.parse_metrics("mem1k,kid1k"), batch_size=16,
                                   progress=False, train_dataset=train)
    assert set(out["mem1k"]) == {"mem1k_copies", "mem1k_dist", "mem1k_copies_px", "mem1k_dist_px"}
    assert out["mem1k"]["mem1k_copies"] == 1.0 and out["mem1k"]["mem1k_copies_px"] == 1.0
    assert out["mem1k"]["mem1k_dist_px"] < 1e-5
    # Against the whole pool a copier of 20 images is not a copier of the other 40 (the training set matters).
    G = mx.tiny_generator()
    fresh = evaluate.compute_metrics(G, pool, evaluate.parse_metrics("mem1k"), batch_size=16, progress=False,
                                     train_dataset=train)["mem1k"]
    assert fresh["mem1k_copies_px"] < 0.5 and fresh["mem1k_dist_px"] > 0.5


def test_metrics_cli_measures_memorisation_on_the_snapshots_subset(tmp_path, detector, run_cli, mx, monkeypatch):
    import dataclasses
    import json

    from adagan.config import TrainConfig
    from adagan.io import save_networks

    monkeypatch.setattr(evaluate, "load_detector", lambda kind, device: detector)
    real_parse = evaluate.parse_metrics
    monkeypatch.setattr(evaluate, "parse_metrics",
                        lambda names: [evaluate.MetricSpec(s.name, s.kind, 24) for s in real_parse(names)])
    data = str(mx.write_images(tmp_path / "data", 30))
    G = mx.tiny_generator()
    snap = tmp_path / "network-snapshot-000004.safetensors"
    save_networks(snap, G_ema=G, config=dataclasses.replace(TrainConfig(), data=data, subset=10, seed=4))

    def expected(train):
        return evaluate.compute_metrics(G, ImageDataset(data), evaluate.parse_metrics("mem1k"), batch_size=8,
                                        progress=False, train_dataset=train)["mem1k"]

    def cli(*extra):
        code, out, err = run_cli("metrics", "--network", snap, "--data", data, "--metrics", "mem1k", *extra)
        assert code == 0, err
        return json.loads((tmp_path / "metric-mem1k.jsonl").read_text().splitlines()[-1])["results"]

    # By default the snapshot's own training subset (its config: --subset 10 --seed 4); --subset overrides it.
    assert cli() == pytest.approx(expected(ImageDataset(data, subset=10, seed=4)))
    assert cli("--subset", "30") == pytest.approx(expected(ImageDataset(data)))
    assert expected(ImageDataset(data)) != pytest.approx(expected(ImageDataset(data, subset=10, seed=4)))
