"""The adaptive CPU thread count (adagan.runtime) and the --threads option."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from adagan import runtime


class FakeLoad:
    """Hands out the other processes' core use, one value per sample()."""

    def __init__(self, values):
        self.values = list(values)

    def sample(self):
        return self.values.pop(0)


@pytest.fixture
def governor(monkeypatch):
    monkeypatch.setattr(runtime, "cpu_count", lambda: 2)
    monkeypatch.setattr(runtime, "FIRST_SAMPLE_S", 0.0)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)

    def make(values, **kw):
        calls = []
        gov = runtime.ThreadGovernor(load=FakeLoad(values), interval=0.0, set_threads=calls.append, **kw)
        return gov, calls

    return make


def test_threads_follow_the_cores_others_leave(governor):
    # idle -> 2; a neighbour takes a core -> 1; it stays while the neighbour runs (no flapping on 0.9 or
    # 0.6); the neighbour leaves -> 2; a small bursty neighbour (0.3 cores) does not cost a thread.
    gov, calls = governor([0.0, 1.0, 0.9, 0.6, 0.05, 0.3, 0.4])
    assert gov.start() == 2
    assert [gov.maybe_update() for _ in range(6)] == [1, 1, 1, 2, 2, 2]
    assert calls == [2, 1, 2]  # torch is only told about changes


def test_busy_at_start_and_limits(governor):
    gov, _ = governor([1.6])
    assert gov.start() == 1  # never 0
    gov, _ = governor([0.0, 0.0], limit=1)  # e.g. 2 training processes on 2 cores: 1 each
    assert gov.start() == 1 and gov.maybe_update() == 1
    gov, _ = governor([None, None])  # no /proc/stat: all cores, as PyTorch's default
    assert gov.start() == 2 and gov.maybe_update() == 2


def test_explicit_count_is_used_as_given(governor, monkeypatch):
    gov, calls = governor([1.9, 1.9], threads=2)
    assert gov.start() == 2 and gov.maybe_update() == 2 and not gov.automatic and calls == [2]
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    gov, calls = governor([0.0])
    assert gov.start() == 1 and not gov.automatic
    monkeypatch.setenv("OMP_NUM_THREADS", "lots")  # not a count: automatic
    assert runtime.explicit_threads(None) is None


def test_update_waits_for_the_interval(governor, monkeypatch):
    monkeypatch.setattr(runtime, "cpu_count", lambda: 2)
    gov = runtime.ThreadGovernor(load=FakeLoad([0.0, 1.0]), interval=3600, set_threads=lambda n: None)
    gov.start()
    assert gov.maybe_update() == 2  # no second sample taken yet


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc/stat")
def test_cpu_load_sees_another_process_but_not_this_one():
    load = runtime.CpuLoad()
    child = subprocess.Popen([sys.executable, "-c", "import time\nt = time.time()\nwhile time.time() - t < 1.5: pass"])
    try:
        time.sleep(1.0)
        others = load.sample()
    finally:
        child.wait()
    assert others is not None and others > 0.5  # the spinning child: about one core
    load.sample()
    t = time.process_time()
    while time.process_time() - t < 0.5:  # spin here: our own time is not "others"
        pass
    assert load.sample() >= 0


def test_train_threads_option(run_cli, tmp_path):
    from PIL import Image

    data = tmp_path / "imgs"
    data.mkdir()
    for i in range(8):
        Image.new("RGB", (16, 16), (i * 30, 100, 200)).save(data / f"{i}.png")
    before = torch.get_num_threads()
    try:
        code, out, err = run_cli("train", "--data", data, "--outdir", tmp_path / "runs", "--name", "r",
                                 "--kimg", "0.008", "--threads", "1", "--cfg", "cpu", "--G.z_dim=8", "--G.w_dim=8",
                                 "--G.channel_base=128", "--G.channel_max=8", "--D.channel_base=128",
                                 "--D.channel_max=8", "--D.mbstd_group_size=2", "--batch", "4", "--tick", "0.008")
        assert code == 0, err
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
    tick = json.loads((tmp_path / "runs" / "r" / "stats.jsonl").read_text().splitlines()[-1])
    assert tick["Resources/threads"] == 1
    code, _, err = run_cli("train", "--data", data, "--outdir", tmp_path / "runs", "--threads", "0", "--dry-run")
    assert code != 0 and "--threads" in err


def test_cli_runs_without_the_resource_module(tmp_path):
    # Windows has no `resource` module: importing the CLI and training on the CPU with the automatic thread
    # count (which measures this process's CPU time) must still work. sys.modules[...] = None makes
    # `import resource` raise ImportError, as there.
    from PIL import Image

    data = tmp_path / "imgs"
    data.mkdir()
    for i in range(8):
        Image.new("RGB", (16, 16), (i * 30, 100, 200)).save(data / f"{i}.png")
    code = ("import sys; sys.modules['resource'] = None\n"
            "from adagan import runtime\n"
            "assert runtime.resource is None and runtime._own_seconds() >= 0\n"
            "from adagan.cli.main import main\n"
            f"main(['train', '--data', {str(data)!r}, '--outdir', {str(tmp_path / 'runs')!r}, '--name', 'r', "
            "'--kimg', '0.008', '--cfg', 'cpu', '--G.z_dim=8', '--G.w_dim=8', '--G.channel_base=128', "
            "'--G.channel_max=8', '--D.channel_base=128', '--D.channel_max=8', '--D.mbstd_group_size=2', "
            "'--batch', '4', '--tick', '0.008'])\n")
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}  # the automatic count: it reads CPU time
    env["PYTHONPATH"] = os.pathsep.join([str(Path(runtime.__file__).parents[1]), env.get("PYTHONPATH", "")])
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert (tmp_path / "runs" / "r" / "stats.jsonl").is_file()
