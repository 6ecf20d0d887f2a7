"""Progress where the output is not a terminal (nohup, CI, a notebook): plain lines now and then (adagan.progress)."""

import io

import numpy as np
import torch

from adagan import progress


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


def test_plain_lines_at_most_every_interval():
    out, clock = io.StringIO(), Clock()
    bar = progress.PlainProgress(1000, desc="generated", file=out, interval=30, clock=clock)
    clock.t = 10
    bar.update(100)
    assert out.getvalue() == ""  # within the first interval: nothing
    clock.t = 31
    bar.update(300)
    assert out.getvalue() == "generated: 400/1,000 img (40%), 0m31s, ETA 0m46s\n"
    clock.t = 50
    bar.update(100)
    clock.t = 70
    bar.clear()  # a tick line was printed: the next plain line waits a whole interval from here
    clock.t = 95
    bar.update(100)
    assert out.getvalue().count("\n") == 1
    clock.t = 101
    bar.update(100)
    assert out.getvalue().splitlines()[-1].startswith("generated: 700/1,000 img (70%), 1m41s")


def test_not_a_terminal_gets_plain_lines_and_a_terminal_a_bar(monkeypatch):
    class Tty(io.StringIO):
        def isatty(self):
            return True

    assert isinstance(progress.progress(10, file=io.StringIO()), progress.PlainProgress)
    assert not isinstance(progress.progress(10, file=Tty()), progress.PlainProgress)
    assert not isinstance(progress.progress(10, file=io.StringIO(), show=False), progress.PlainProgress)


def test_metric_features_print_progress_without_a_terminal(monkeypatch, capsys):
    from adagan.metrics.features import extract_features

    monkeypatch.setattr(progress, "INTERVAL_S", 0.0)  # every batch, so the test needs no waiting
    batches = (torch.zeros([4, 3, 8, 8], dtype=torch.uint8) for _ in range(3))
    feats = extract_features(batches, lambda x: x.float().flatten(1)[:, :5], total=12, desc="generated")
    assert feats.shape == (12, 5) and np.all(feats == 0)
    err = capsys.readouterr().err  # pytest's captured stderr is not a terminal
    assert "generated: 12/12 img (100%)" in err and "\r" not in err


def test_training_prints_progress_without_a_terminal(run_cli, monkeypatch, tmp_path):
    from PIL import Image

    data = tmp_path / "imgs"
    data.mkdir()
    for i in range(8):
        Image.new("RGB", (16, 16), (i * 30, 100, 200)).save(data / f"{i}.png")
    monkeypatch.setattr(progress, "INTERVAL_S", 0.0)
    code, out, err = run_cli("train", "--data", data, "--outdir", tmp_path / "runs", "--kimg", "0.008",
                             "--threads", "1", "--cfg", "cpu", "--G.z_dim=8", "--G.w_dim=8", "--G.channel_base=128",
                             "--G.channel_max=8", "--D.channel_base=128", "--D.channel_max=8",
                             "--D.mbstd_group_size=2", "--batch", "4", "--tick", "0.004")
    assert code == 0, err
    lines = [x for x in err.splitlines() if x.startswith("training: ")]
    assert lines and lines[-1].startswith("training: 8/8 img (100%)"), err
    assert "tick 2" in out
