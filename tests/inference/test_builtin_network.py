"""builtin:NAME networks: export_builtin writes a snapshot's G, D, G_ema in float16; they load back as float32
networks for generate and `train --resume builtin:twemoji32`."""

import copy

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors import safe_open

from adagan import pretrained
from adagan.errors import CheckpointError
from adagan.io import load_networks, read_metadata
from adagan.netfiles import trained_kimg

# A tiny training run (tests/training/test_train.py's TINY, without its per-phase extras).
TINY = ["--cfg", "cpu", "--G.z_dim=8", "--G.w_dim=8", "--G.channel_base=128", "--G.channel_max=8",
        "--D.channel_base=128", "--D.channel_max=8", "--D.mbstd_group_size=2", "--batch", "4", "--batch-gpu", "2",
        "--tick", "0.008", "--snap", "1"]


@pytest.fixture
def builtin_dir(tmp_path, monkeypatch):
    folder = tmp_path / "package"
    folder.mkdir()
    monkeypatch.setattr(pretrained, "BUILTIN_DIR", folder)
    return folder


def test_export_builtin_stores_float16_and_loads_float32(snapshot, builtin_dir):
    out = pretrained.export_builtin(snapshot, builtin_dir / "twemoji32.safetensors")
    with safe_open(str(out), framework="pt") as f:
        dtypes = {f.get_slice(k).get_dtype() for k in f.keys()}
    assert dtypes == {"F16"}
    assert out.stat().st_size < 0.6 * snapshot.stat().st_size
    assert read_metadata(out)["meta.dtype"] == "float16"
    ref, got = load_networks(snapshot), load_networks("builtin:twemoji32")
    assert set(got) == {"G", "D", "G_ema"}
    for name in ref:
        for k, v in ref[name].state_dict().items():
            w = got[name].state_dict()[k]
            assert w.dtype == torch.float32
            # float16 keeps 11 significant bits: round-to-nearest is within 2^-11 relative (plus subnormals).
            torch.testing.assert_close(w, v, rtol=2.0**-11, atol=1e-7)
    z = torch.randn(4, ref["G_ema"].z_dim, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        a, b = ref["G_ema"](z, None, noise_mode="const"), got["G_ema"](z, None, noise_mode="const")
    assert (a - b).abs().max() < 0.02 and not torch.equal(a, b)  # rounded, not copied


def test_generate_and_info_take_builtin_names(snapshot, builtin_dir, run_cli, tmp_path):
    pretrained.export_builtin(snapshot, builtin_dir / "twemoji32.safetensors")
    code, out, err = run_cli("generate", "--network", "builtin:twemoji32", "--seeds", "0-3", "--outdir",
                             tmp_path / "out", "--grid")
    assert code == 0, err
    code, out2, err = run_cli("generate", "--network", snapshot, "--seeds", "0-3", "--outdir", tmp_path / "ref")
    for i in range(4):
        a = np.asarray(Image.open(tmp_path / "out" / f"seed{i:04d}.png"), dtype=int)
        b = np.asarray(Image.open(tmp_path / "ref" / f"seed{i:04d}.png"), dtype=int)
        assert np.abs(a - b).max() <= 3
    code, out, err = run_cli("info", "builtin:twemoji32")
    assert code == 0 and f"file: {builtin_dir / 'twemoji32.safetensors'}" in out


def test_a_missing_builtin_file_is_one_line(builtin_dir, run_cli, tmp_path):
    code, out, err = run_cli("generate", "--network", "builtin:twemoji32", "--seeds", "0", "--outdir", tmp_path)
    assert code == 1 and err.count("\n") == 1
    assert err.startswith("Error: builtin:twemoji32: this adagan installation has no twemoji32.safetensors")


def test_export_builtin_refuses_what_it_cannot_keep(snapshot, tmp_path, inf_helpers):
    from adagan.io import save_networks

    G = inf_helpers.tiny_generator()
    save_networks(tmp_path / "g.safetensors", G=G)
    with pytest.raises(CheckpointError, match="has no D, G_ema"):
        pretrained.export_builtin(tmp_path / "g.safetensors", tmp_path / "out.safetensors")
    with torch.no_grad():
        G.mapping.w_avg[0] = 1e6
    save_networks(tmp_path / "big.safetensors", G=G, D=inf_helpers.tiny_discriminator(), G_ema=copy.deepcopy(G))
    with pytest.raises(CheckpointError, match="beyond float16's range"):
        pretrained.export_builtin(tmp_path / "big.safetensors", tmp_path / "out.safetensors")
    assert not (tmp_path / "out.safetensors").exists()


def test_train_resumes_from_a_builtin_network(run_cli, builtin_dir, tmp_path):
    data = tmp_path / "imgs"
    data.mkdir()
    rng = np.random.RandomState(0)
    for i in range(8):
        Image.fromarray((rng.rand(16, 16, 3) * 255).astype(np.uint8)).save(data / f"{i}.png")
    code, out, err = run_cli("train", "--data", data, "--outdir", tmp_path / "runs", "--name", "src", "--kimg",
                             "0.008", *TINY)
    assert code == 0, err
    snap = sorted((tmp_path / "runs" / "src").glob("network-snapshot-*.safetensors"))[-1]
    pretrained.export_builtin(snap, builtin_dir / "twemoji32.safetensors")
    args = ["train", "--data", data, "--outdir", tmp_path / "runs", "--kimg", "0.008", "--resume",
            "builtin:twemoji32", *TINY]
    code, out, err = run_cli(*args, "--dry-run")
    assert code == 0, err
    assert f"Resume from: builtin:twemoji32 = {builtin_dir / 'twemoji32.safetensors'}" in out
    assert "-from-twemoji32-" in out
    code, out, err = run_cli(*args)
    assert code == 0, err
    run_dir = next(p for p in (tmp_path / "runs").iterdir() if "-from-twemoji32-" in p.name)
    assert "Initialised G, D and G_ema from" in (run_dir / "log.txt").read_text()
    # Its snapshots record what it was fine-tuned from and how long that had trained; the chain adds up.
    tuned = sorted(run_dir.glob("network-snapshot-*.safetensors"))[-1]
    assert read_metadata(tuned)["meta.resumed_from"] == {"network": "builtin:twemoji32", "kimg": 0.008}
    code, out, err = run_cli("info", tuned)
    assert code == 0, err
    assert "kimg: 0.008, started from builtin:twemoji32 (0.008 kimg): 0.016 kimg in all" in out
    pretrained.export_builtin(tuned, tmp_path / "continued.safetensors")  # as a pretraining is carried on
    code, out, err = run_cli("train", "--data", data, "--outdir", tmp_path / "runs", "--name", "again", "--kimg",
                             "0.008", "--resume", tmp_path / "continued.safetensors", *TINY)
    assert code == 0, err
    again = sorted((tmp_path / "runs" / "again").glob("network-snapshot-*.safetensors"))[-1]
    origin = read_metadata(again)["meta.resumed_from"]
    assert origin == {"network": str((tmp_path / "continued.safetensors").resolve()), "kimg": pytest.approx(0.016)}
    assert trained_kimg(read_metadata(again)) == pytest.approx(0.024)
    # Written as a built-in network, the origin keeps the file's name, not this machine's folder.
    shipped = read_metadata(pretrained.export_builtin(again, tmp_path / "shipped.safetensors"))
    assert shipped["meta.resumed_from"] == {"network": "continued.safetensors", "kimg": pytest.approx(0.016)}
    assert trained_kimg(shipped) == pytest.approx(0.024)
    assert shipped["meta.made_from"] == again.name
    again_shipped = read_metadata(pretrained.export_builtin(tmp_path / "shipped.safetensors", tmp_path / "x.st"))
    assert again_shipped["meta.made_from"] == again.name  # re-exported: still the training snapshot's name
    # A state saved before runs kept their origin: resumed with the same --resume, the run records it from there.
    from adagan.config import TrainConfig, from_dict
    from adagan.io import load_extra_tensors, save_networks
    from adagan.training import checkpoint

    state = checkpoint.list_states(tmp_path / "runs" / "again")[-1]
    info = read_metadata(state)
    meta = {k[len("meta."):]: v for k, v in info.items() if k.startswith("meta.") and k != "meta.origin"}
    save_networks(state, **load_networks(state), config=from_dict(TrainConfig, info["train_config"]),
                  extra_tensors=load_extra_tensors(state), metadata=meta)
    code, out, err = run_cli("train", "--data", data, "--outdir", tmp_path / "runs", "--name", "again", "--kimg",
                             "0.016", "--resume", tmp_path / "continued.safetensors", *TINY)
    assert code == 0, err
    later = read_metadata(sorted((tmp_path / "runs" / "again").glob("network-snapshot-*.safetensors"))[-1])
    assert later["meta.cur_nimg"] == 16 and later["meta.resumed_from"] == origin


def test_studio_opens_a_builtin_network(snapshot, builtin_dir, run_cli, monkeypatch):
    pytest.importorskip("starlette")
    uvicorn = pytest.importorskip("uvicorn")
    monkeypatch.setattr(uvicorn.Server, "run", lambda self, sockets: None)  # serve nothing; the setup is tested
    code, out, err = run_cli("studio", "builtin:twemoji32", "--port", "0")
    assert code == 1 and "has no twemoji32.safetensors" in err
    pretrained.export_builtin(snapshot, builtin_dir / "twemoji32.safetensors")
    code, out, err = run_cli("studio", "builtin:twemoji32", "--port", "0")
    assert code == 0, err
    assert f"serving {builtin_dir} at http://127.0.0.1:" in out and "#generator" in out
