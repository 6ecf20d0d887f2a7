"""The augmentation-leak measure (leakNk): per-image statistics, the baseline, the real-data justification, the
metric pipeline, the CLI and training's snapshot metrics."""

import json
import math

import numpy as np
import pytest
import torch

from adagan.augment import AugmentPipe
from adagan.data import ImageDataset, open_dataset
from adagan.metrics import evaluate
from adagan.metrics.leak import COLUMNS, COMPONENTS, image_stats, leak_scores
from adagan.ops.image import to_uint8


def _col(stats, name):
    return stats[:, COLUMNS.index(name)]


def _solid(rgb, res=16):
    return torch.tensor(rgb, dtype=torch.uint8)[None, :, None, None].expand(1, 3, res, res).clone()


def test_hue_is_the_saturation_weighted_circular_mean():
    red, green, blue, grey = (_solid(c) for c in ([255, 0, 0], [0, 255, 0], [0, 0, 255], [128, 128, 128]))
    s = image_stats(torch.cat([red, green, blue, grey]))
    assert _col(s, "hue")[:3] == pytest.approx([0, 2 * math.pi / 3, -2 * math.pi / 3], abs=1e-6)
    assert _col(s, "hue_w") == pytest.approx([1, 1, 1, 0], abs=1e-6)  # grey: no weight in the histogram
    # Half red, half grey: the same hue at half the weight; half red half green: yellow's hue (60 degrees).
    half = red.clone()
    half[:, :, :, 8:] = 128
    mix = red.clone()
    mix[:, :, :, 8:] = green[:, :, :, 8:]
    s = image_stats(torch.cat([half, mix]))
    assert _col(s, "hue_w")[0] == pytest.approx(0.5) and _col(s, "hue")[0] == pytest.approx(0, abs=1e-6)
    assert _col(s, "hue")[1] == pytest.approx(math.pi / 3)
    assert _col(s, "bright")[0] == pytest.approx((0.299 * 255 + 128) / 2 / 255)  # mean Rec. 601 luma
    assert _col(s, "contrast")[0] == pytest.approx(abs(0.299 * 255 - 128) / 2 / 255)


def _blob(res=32, cx=16.0, cy=16.0, rx=6.0, ry=6.0):
    """A yellow ellipse on white with a dark spot right of its centre ([1, 3, res, res] uint8)."""
    y, x = torch.meshgrid(torch.arange(res) + 0.5, torch.arange(res) + 0.5, indexing="ij")
    img = torch.full([3, res, res], 255.0)
    inside = ((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2 <= 1
    img[:, inside] = torch.tensor([200.0, 150.0, 0.0])[:, None]
    spot = inside & ((x - cx - rx / 2) ** 2 + (y - cy) ** 2 <= (min(rx, ry) / 3) ** 2)
    img[:, spot] = 40.0
    return img.to(torch.uint8)[None]


def test_geometry_stats_turn_and_mirror_with_the_image():
    b = _blob()
    imgs = torch.cat([b, b.flip(3), torch.rot90(b, 1, (2, 3)), _blob(rx=12, ry=4), _blob(rx=4, ry=12),
                      _blob(rx=12, ry=12), _blob(cx=10)])
    s = image_stats(imgs)
    orient = _col(s, "orient")
    assert abs(orient[0]) == pytest.approx(math.pi, abs=1e-6)  # dark spot right: the bright side is left
    assert orient[1] == pytest.approx(0, abs=1e-6)  # x-flip: theta -> 180 - theta
    assert orient[2] == pytest.approx(-math.pi / 2, abs=1e-6)  # rot90 counter-clockwise: +90 degrees
    assert _col(s, "orient_w")[0] > 0.2
    axis, aniso = _col(s, "axis"), _col(s, "aniso")
    assert axis[3] == pytest.approx(0, abs=1e-6) and abs(axis[4]) == pytest.approx(math.pi, abs=1e-6)
    assert aniso[3] > 0.7 and aniso[0] < 0.05
    assert _col(s, "scale")[5] == pytest.approx(2 * _col(s, "scale")[0], rel=0.1)
    assert _col(s, "offset")[6] == pytest.approx(6 / 32, abs=0.01) and _col(s, "offset")[0] < 0.01
    # Large images are reduced at 64 px: in image widths, the same statistics as at 32 px.
    big = image_stats(_blob(res=256, cx=128, cy=128, rx=48, ry=48))
    assert _col(big, "scale") == pytest.approx(_col(s, "scale")[0], rel=0.05)
    assert _col(big, "hue") == pytest.approx(_col(s, "hue")[0], abs=0.02)


def test_samples_of_the_same_distribution_score_about_zero_and_shifted_ones_do_not():
    rng = np.random.default_rng(0)

    def stats(n, shift=0.0):
        s = np.zeros([n, len(COLUMNS)])
        for c in COLUMNS:
            s[:, COLUMNS.index(c)] = rng.uniform(0, 1, n) if c.endswith("_w") else rng.normal(shift, 1, n)
        return s

    same = [leak_scores(stats(500), stats(150), seed=i)["leak"] for i in range(20)]
    assert abs(np.mean(same)) < 0.01
    shifted = leak_scores(stats(500, shift=1.0), stats(150))
    assert shifted["leak"] > 0.2 and all(shifted[n] > 0.1 for n in COMPONENTS["colour"])


@pytest.fixture(scope="module")
def smileys():
    ds = open_dataset("builtin:twemoji/smileys", resolution=32)
    return ds.get_batch(list(range(len(ds))))[0]


def _augment(images, p, seed):
    pipe = AugmentPipe("bgc")
    pipe.p.fill_(p)
    torch.manual_seed(seed)
    with torch.no_grad():
        return to_uint8(pipe(images.float() / 127.5 - 1))


def test_reals_do_not_leak_and_augmented_reals_leak_in_order_of_p(smileys):
    """The justification on real data (benchmarks/leak.py has the full table): a random half of the smileys scored
    against the other half is at ~0; the same half through bgc at p scores more the larger p."""
    ps = (0.0, 0.3, 0.6, 1.0)
    scores = {p: [] for p in ps}
    for split in range(3):
        perm = np.random.default_rng(split).permutation(len(smileys))
        ref, query = image_stats(smileys[perm[:85]]), smileys[perm[85:]]
        for p in ps:
            q = query if p == 0 else _augment(query, p, seed=split)
            scores[p].append(leak_scores(image_stats(q), ref, seed=split))

    def mean(p, key):
        return float(np.mean([s[key] for s in scores[p]]))

    assert abs(mean(0, "leak")) < 0.03 and abs(mean(0, "colour")) < 0.03
    assert mean(1, "leak") > 0.25 and mean(1, "hue") > 0.4  # the rainbow of issue 27
    colour = [mean(p, "colour") for p in ps]
    assert colour == sorted(colour) and colour[-1] > colour[1] + 0.1, colour
    assert mean(0.3, "leak") < mean(1, "leak")


class CopyG(torch.nn.Module):
    """Returns pool image k for sample z (k from z), optionally darkened (its RGB values halved)."""

    def __init__(self, images, darken=False):
        super().__init__()
        self.images, self.darken, self.z_dim, self.c_dim = images, darken, 4, 0

    def forward(self, z, c=None, truncation_psi=1.0, noise_mode="const"):
        x = self.images[(z[:, 0].abs() * 1000).long() % len(self.images)].float()
        return (x / 2 if self.darken else x) / 127.5 - 1


def test_leak_through_compute_metrics_needs_no_detector(tmp_path, mx, monkeypatch):
    monkeypatch.setattr(evaluate, "load_detector", lambda kind, device: pytest.fail("leak loaded a detector"))
    pool = ImageDataset(mx.write_images(tmp_path / "pool", 60, seed=0))
    images = pool.get_batch(list(range(len(pool))))[0]
    spec = evaluate.parse_metric("leak1k")
    assert (spec.kind, spec.num) == ("leak", 1000)
    same = evaluate.compute_metrics(CopyG(images), pool, [spec], batch_size=64, progress=False)["leak1k"]
    dark = evaluate.compute_metrics(CopyG(images, darken=True), pool, [spec], batch_size=64)["leak1k"]
    keys = {"leak1k", "leak1k_colour", "leak1k_geometry"} | {f"leak1k_{n}" for v in COMPONENTS.values() for n in v}
    assert set(same) == keys
    # The pool's own images, resampled, are no leak: below 0, as copies lie closer to the reals than the
    # independent sample the baseline assumes.
    assert -0.3 < same["leak1k"] < 0.02
    assert dark["leak1k_bright"] > 0.6 and dark["leak1k_contrast"] > 0.5 and dark["leak1k_colour"] > 0.3
    assert abs(dark["leak1k_geometry"] - same["leak1k_geometry"]) < 0.05  # the same shapes


def test_reals_statistics_are_reused_for_the_same_data_only(tmp_path, mx, monkeypatch):
    from adagan.metrics.leak import compute_leak
    from adagan.metrics.stats import generator_fn

    a = ImageDataset(mx.write_images(tmp_path / "a", 20, seed=0))
    gen = generator_fn(mx.tiny_generator())
    first = compute_leak(gen, a, 32)
    monkeypatch.setattr(ImageDataset, "get_batch", lambda *args: pytest.fail("the reals were reduced again"))
    assert compute_leak(gen, ImageDataset(tmp_path / "a"), 32) == first  # the next snapshot: same data
    monkeypatch.undo()
    b = ImageDataset(mx.write_images(tmp_path / "b", 20, seed=1))
    assert compute_leak(gen, b, 32) != first

def _fewer_samples(monkeypatch, num=64):
    """leak1k measured on `num` samples (the tiny generator is slow enough at 1000)."""
    real_parse = evaluate.parse_metrics
    monkeypatch.setattr(evaluate, "parse_metrics",
                        lambda names: [evaluate.MetricSpec(s.name, s.kind, num) for s in real_parse(names)])


def test_metrics_cli_lists_and_computes_leak(tmp_path, mx, run_cli, monkeypatch):
    code, out, _ = run_cli("metrics", "--help")
    assert code == 0 and "leak1k" in out
    data = str(mx.write_images(tmp_path / "data", 20))
    from adagan.io import save_networks

    snap = tmp_path / "network-snapshot-000004.safetensors"
    save_networks(snap, G_ema=mx.tiny_generator())
    _fewer_samples(monkeypatch)
    # No detector weights exist in the isolated cache: leak works without them.
    code, out, err = run_cli("metrics", "--network", snap, "--data", data, "--metrics", "leak1k")
    assert code == 0, err
    line = json.loads((tmp_path / "metric-leak1k.jsonl").read_text().splitlines()[-1])
    assert line["kimg"] == 4 and np.isfinite(line["results"]["leak1k"]) and "leak1k " in out


def test_metrics_cli_prints_results_it_cannot_record(tmp_path, mx, run_cli, monkeypatch):
    from adagan.io import save_networks

    data = str(mx.write_images(tmp_path / "data", 20))
    snap = tmp_path / "network-snapshot-000004.safetensors"
    save_networks(snap, G_ema=mx.tiny_generator())
    (tmp_path / "metric-leak1k.jsonl").mkdir()  # appending fails (as in a read-only folder, even for root)
    _fewer_samples(monkeypatch)
    code, out, err = run_cli("metrics", "--network", snap, "--data", data, "--metrics", "leak1k")
    assert code == 0, err
    assert "leak1k " in out and "not recorded: cannot append to metric-leak1k.jsonl" in err


def test_metrics_cli_records_a_builtin_network_s_results_in_the_cache(tmp_path, mx, run_cli, monkeypatch):
    from adagan import pretrained
    from adagan.io import save_networks

    package = tmp_path / "package"
    package.mkdir()
    save_networks(package / "twemoji32.safetensors", G_ema=mx.tiny_generator())
    monkeypatch.setattr(pretrained, "BUILTIN_DIR", package)
    data = str(mx.write_images(tmp_path / "data", 20))
    _fewer_samples(monkeypatch)
    code, _, err = run_cli("metrics", "--network", "builtin:twemoji32", "--data", data, "--metrics", "leak1k")
    assert code == 0, err
    assert sorted(p.name for p in package.iterdir()) == ["twemoji32.safetensors"]
    dest = tmp_path / "adagan-cache" / "pretrained" / "metric-leak1k.jsonl"
    assert json.loads(dest.read_text())["snapshot"] == "twemoji32.safetensors" and str(dest) in err


def test_training_reports_leak_at_snapshots(tmp_path, mx, run_cli, monkeypatch):
    from adagan.report import panel_series, read_jsonl

    _fewer_samples(monkeypatch)
    data = str(mx.write_images(tmp_path / "data", 12))
    tiny = ["--cfg", "cpu", "--G.z_dim=8", "--G.w_dim=8", "--G.channel_base=128", "--G.channel_max=8",
            "--D.channel_base=128", "--D.channel_max=8", "--D.mbstd_group_size=2", "--batch", "4", "--batch-gpu", "2",
            "--tick", "0.016", "--snap", "1"]
    code, _, err = run_cli("train", "--data", data, "--outdir", tmp_path, "--name", "r", "--kimg", "0.016",
                           "--metrics", "leak1k", *tiny)
    assert code == 0, err
    rows = read_jsonl(tmp_path / "r" / "metric-leak1k.jsonl")
    assert rows and all(np.isfinite(r["results"]["leak1k"]) for r in rows)
    panels = dict(panel_series(read_jsonl(tmp_path / "r" / "stats.jsonl"), {"leak1k": [(0.016, 0.1)]}))
    assert "leak1k" in panels["Augmentation leak"]


def test_leak_over_two_ranks_equals_one_process(tmp_path, mx):
    """Rank 0 of a pretend two-process group (the training worker's lent collectives, metrics/stats.py): each
    rank reduces its shard of the samples and of the reals; gathered, the result is the one-process one."""
    from adagan.metrics import leak
    from adagan.metrics.stats import generator_fn, shard, use_collectives

    ds = ImageDataset(mx.write_images(tmp_path / "d", 21, seed=2))
    gen = generator_fn(mx.tiny_generator())
    alone = leak.compute_leak(gen, ds, 40)
    reals = ds.get_batch(list(range(len(ds))))[0]
    rank1 = [leak.image_stats(gen(shard(40, 1, 2))), leak.image_stats(reals[shard(21, 1, 2)])]

    class TwoRanks:
        def all_gather(self, tensor):
            other = torch.zeros_like(tensor)
            rows = torch.from_numpy(rank1.pop(0)).float()
            other[: len(rows)] = rows
            return [tensor, other]

    leak._REAL_STATS.clear()
    with use_collectives(TwoRanks()):
        together = leak.compute_leak(gen, ds, 40, rank=0, world_size=2)
    assert not rank1 and together == pytest.approx(alone, abs=1e-6)
