"""Exact resume on a busy machine: bitwise at a fixed thread count, whatever the load does (docs/training.md,
"Exact resume"). The load is simulated: a fake CpuLoad whose other processes take the whole machine, then leave,
at every check, so the automatic thread count changes every iteration."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from adagan import runtime
from adagan.io import load_networks

TINY = ["--cfg", "cpu", "--G.z_dim=8", "--G.w_dim=8", "--G.channel_base=128", "--G.channel_max=8",
        "--D.channel_base=128", "--D.channel_max=8", "--D.mbstd_group_size=2", "--batch", "4", "--batch-gpu", "2",
        "--tick", "0.016", "--snap", "1", "--seed", "3"]


class FlappingLoad:
    """Other processes' use in cores: nothing, then all of them, in turn (one value per sample)."""

    def __init__(self):
        self.n = 0

    def sample(self):
        self.n += 1
        return 0.0 if self.n % 2 else float(runtime.cpu_count())


@pytest.fixture
def busy(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(runtime, "cpu_count", lambda: 2)
    monkeypatch.setattr(runtime, "CpuLoad", FlappingLoad)
    monkeypatch.setattr(runtime, "INTERVAL_S", 0.0)  # re-check at every iteration
    monkeypatch.setattr(runtime, "FIRST_SAMPLE_S", 0.0)
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("imgs")
    rng = np.random.RandomState(0)
    for i in range(8):
        Image.fromarray((rng.rand(16, 16, 3) * 255).astype(np.uint8)).save(root / f"{i}.png")
    return root


def _weights(run: Path):
    snap = sorted(run.glob("network-snapshot-*.safetensors"))[-1]
    return {k: v.state_dict() for k, v in load_networks(snap).items()}


def _threads(run: Path) -> list[float]:
    return [json.loads(x)["Resources/threads"] for x in (run / "stats.jsonl").read_text().splitlines()]


def test_the_simulated_load_moves_the_automatic_thread_count(run_cli, data, tmp_path, busy):
    code, _, err = run_cli("train", "--data", data, "--outdir", tmp_path, "--name", "auto", "--kimg", "0.016", *TINY)
    assert code == 0, err
    assert "threads: 2 -> 1" in err and "threads: 1 -> 2" in err
    assert any(t != 2 for t in _threads(tmp_path / "auto"))


def test_resume_under_load_equals_uninterrupted_at_a_fixed_thread_count(run_cli, data, tmp_path, busy):
    # one thread: any fixed count keeps the promise, and one does not busy-wait on a loaded test machine
    args = ["--data", data, "--outdir", tmp_path, *TINY, "--threads", "1"]
    code, _, err = run_cli("train", "--name", "full", "--kimg", "0.032", *args)
    assert code == 0, err
    code, _, err = run_cli("train", "--name", "split", "--kimg", "0.020", *args)  # stopped within a tick
    assert code == 0, err
    code, out, err = run_cli("train", "--name", "split", "--kimg", "0.032", *args)
    assert code == 0 and "resuming" in out, err
    assert "threads:" not in err  # the load did not move a fixed count
    assert set(_threads(tmp_path / "full")) == set(_threads(tmp_path / "split")) == {1}
    a, b = _weights(tmp_path / "full"), _weights(tmp_path / "split")
    for net in a:
        for k in a[net]:
            assert torch.equal(a[net][k], b[net][k]), (net, k)
