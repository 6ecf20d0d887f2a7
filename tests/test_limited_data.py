"""benchmarks/limited_data.py end to end on tiny networks, a 16-image folder and a tiny detector."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

TINY = ["--G.z_dim=8", "--G.w_dim=8", "--G.channel_base=128", "--G.channel_max=8", "--D.channel_base=128",
        "--D.channel_max=8", "--D.mbstd_group_size=2", "--batch", "4", "--batch-gpu", "4", "--augment.ada_kimg=0.01",
        "--augment.target=-1"]


class TinyDetector(torch.nn.Module):
    """uint8 images -> 8-d features; no cache_id, so nothing is cached or downloaded."""

    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.w = torch.randn(8, 3, 3, 3, generator=g) * 0.2

    def forward(self, images):
        x = images.float() / 127.5 - 1
        return torch.tanh(torch.nn.functional.conv2d(x, self.w, padding=1)).mean(dim=(2, 3)) * 10


@pytest.fixture(scope="module")
def study(load_benchmark):
    return load_benchmark("limited_data")


@pytest.fixture
def image_dir(tmp_path):
    rng = np.random.RandomState(0)
    root = tmp_path / "imgs"
    root.mkdir()
    for i in range(16):
        arr = (rng.rand(16, 16, 3) * 255).astype(np.uint8)
        arr[:, : 4 + i % 8] = 255
        Image.fromarray(arr).save(root / f"{i:02d}.png")
    return root


def test_study_runs_reports_and_resumes(study, image_dir, tmp_path, monkeypatch, capsys):
    import adagan.metrics.evaluate as evaluate
    import adagan.training.monitor as monitor

    monkeypatch.setattr(monitor, "grid_shape", lambda res: (2, 2))  # small image grids: this test is about the study
    monkeypatch.setenv("ADAGAN_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(evaluate, "load_detector", lambda kind, device: TinyDetector())
    out = tmp_path / "study"
    argv = ["--data", str(image_dir), "--outdir", str(out), "--subsets", "8", "--settings", "noaug,ada+lecam",
            "--kimg", "0.016", "--tick", "0.016", "--snap", "1", "--cfg", "cpu", "--eval", "final", "--", *TINY]
    # Train only (as the long study processes do), then evaluate separately with --eval-only.
    assert study.main([*argv[:argv.index("--")], "--metrics", "none", *argv[argv.index("--"):]]) == 0
    log = capsys.readouterr().out
    assert "training 0 -> 0.016 kimg" in log and not list(out.glob("*/metric-*.jsonl"))
    assert study.main([*argv[:argv.index("--")], "--eval-only"]) == 0
    assert "training" not in capsys.readouterr().out
    for name in ("sub8-noaug", "sub8-ada+lecam"):
        run = out / name
        assert (run / "stats.jsonl").exists()
        cfg = json.loads((run / "config.json").read_text())
        assert cfg["kimg"] == 0.016 and cfg["seed"] == 0 and cfg["subset"] == 8
        lines = [json.loads(x) for x in (run / "metric-kid1k.jsonl").read_text().splitlines()]
        assert len(lines) == 1 and lines[0]["real"] == 16  # real features: the full dataset, not the subset
        assert np.isfinite(lines[0]["results"]["kid1k"])
        assert (run / "metric-fid1k.jsonl").exists()
        mem = json.loads((run / "metric-mem1k.jsonl").read_text())["results"]
        assert set(mem) == {"mem1k_copies", "mem1k_dist", "mem1k_copies_px", "mem1k_dist_px"}
        assert 0 <= mem["mem1k_copies"] <= 1 and mem["mem1k_dist_px"] > 0
        leak = json.loads((run / "metric-leak1k.jsonl").read_text())["results"]
        assert np.isfinite(leak["leak1k"]) and np.isfinite(leak["leak1k_colour"])
    cfg = json.loads((out / "sub8-ada+lecam" / "config.json").read_text())
    assert cfg["augment"]["mode"] == "ada" and cfg["loss"]["lecam"] == 0.3
    md = (out / "results.md").read_text()
    assert "| sub8-noaug | 8 |" in md and "| sub8-ada+lecam | 8 |" in md and "Change vs noaug" in md
    assert "leak1k final" in md and "leak1k_colour final" in md
    for png in ("kid1k.png", "fid1k.png", "mem1k_copies.png", "mem1k_dist_px.png", "leak1k.png", "augment.png",
                "samples.png",
                "nearest-sub8.png"):
        assert (out / png).stat().st_size > 1000

    # Rerun: every run is finished and evaluated, so nothing trains or evaluates again.
    mtimes = {p: p.stat().st_mtime_ns for p in out.glob("*/stats.jsonl")}
    assert study.main(argv) == 0
    log = capsys.readouterr().out
    assert log.count("skipped") == 2 and "training" not in log and "kid1k " not in log and "mem1k_copies " not in log
    assert mtimes == {p: p.stat().st_mtime_ns for p in out.glob("*/stats.jsonl")}
    assert len((out / "sub8-ada+lecam" / "metric-kid1k.jsonl").read_text().splitlines()) == 1

    # A different shared setting in the same outdir is refused.
    with pytest.raises(SystemExit, match="other seed"):
        study.main([*argv[:-len(TINY) - 1], "--seed", "1", "--", *TINY])
    assert study.main(["--outdir", str(out), "--subsets", "8,all", "--settings", "noaug,ada+lecam",
                       "--report-only"]) == 0


def test_settings_and_subsets_parse(study):
    assert study.parse_setting("fixed0.2")[:4] == ("fixed", 0.2, None, None)
    assert study.parse_setting("ada") == study.Setting("ada", None)
    assert study.parse_setting("ada+freezed4+scratch") == study.Setting("ada", None, freezed=4, scratch=True)
    assert study.parse_subset("all") is None and study.parse_subset("250") == 250
    with pytest.raises(SystemExit):
        study.parse_setting("fixed2")
    with pytest.raises(SystemExit):
        study.parse_subset("-3")


@pytest.mark.parametrize("setting,flags", [
    ("noaug", ["--aug", "noaug"]),
    ("fixed0.2", ["--aug", "fixed", "--p", "0.2"]),
    ("diffaug", ["--aug", "diffaug"]),
    ("ada+lecam", ["--aug", "ada", "--lecam", "0.3"]),
    ("ada+lecam0.01", ["--aug", "ada", "--lecam", "0.01"]),
    ("ada+lecam3e-7", ["--aug", "ada", "--lecam", "3e-07"]),
    ("diffaug+lecam", ["--aug", "diffaug", "--lecam", "0.3"]),
    ("ada+diffaug", ["--aug", "ada", "--augpipe", "diffaug"]),
    ("fixed0.5+diffaug+lecam1", ["--aug", "fixed", "--p", "0.5", "--augpipe", "diffaug", "--lecam", "1"]),
    ("ada+freezed4", ["--aug", "ada", "--freezed", "4"]),
    ("noaug+freezed0", ["--aug", "noaug", "--freezed", "0"]),
    ("ada+scratch", ["--aug", "ada"]),  # the run's --resume none: see test_resume_goes_to_every_run_but_scratch
])
def test_lecam_and_diffaug_settings_become_train_flags(study, setting, flags):
    assert study.parse_setting(setting).train_args() == flags
    from adagan.cli.train import cli

    # Every flag list is one `adagan train` accepts (a dry run on the built-in smileys resolves it).
    assert cli.main(args=[*flags, "--data", "builtin:twemoji/smileys", "--dry-run"], standalone_mode=False) is None


@pytest.mark.parametrize("setting", ["ada+", "ada+lecamx", "ada+lecam-1", "noaug+diffaug", "diffaug+diffaug",
                                     "ada+lecam+lecam", "lecam", "ada+mixup", "ada+freezed", "ada+freezed-1",
                                     "ada+freezed1+freezed2", "ada+scratch+scratch", "scratch"])
def test_bad_settings_are_refused(study, setting):
    with pytest.raises(SystemExit, match="unknown setting"):
        study.parse_setting(setting)


def test_resume_goes_to_every_run_but_scratch(study):
    import argparse

    args = argparse.Namespace(data="builtin:twemoji/smileys", outdir="o", seed=0, tick=1.0, snap=10, cfg="cpu",
                              resume="builtin:twemoji32", train_args=[])

    def resume(setting):
        flags = study.train_args(args, None, setting, "n", 40)
        return flags[flags.index("--resume") + 1] if "--resume" in flags else None

    assert resume("ada") == resume("noaug+freezed4") == "builtin:twemoji32"
    assert resume("ada+scratch") == "none"
    args.resume = None
    assert resume("ada") is None and resume("ada+scratch") == "none"
