"""Save/load: bit-exact round trips, strict loading, and bad files rejected with clear messages."""

import json

import pytest
import torch
from safetensors.torch import save_file

from adagan.config import GeneratorConfig
from adagan.errors import CheckpointError
from adagan.io import load_extra_tensors, load_network, load_networks, read_metadata, save_networks
from adagan.networks import Discriminator, Generator
from adagan.presets import resolve


@pytest.fixture
def nets(tiny_cfgs):
    torch.manual_seed(0)
    g, d = tiny_cfgs
    G, D, G_ema = Generator(g(c_dim=2)), Discriminator(d(c_dim=2)), Generator(g(c_dim=2))
    G.mapping.w_avg.normal_()
    return G, D, G_ema


def test_round_trip_is_bit_exact(tmp_path, nets):
    G, D, G_ema = nets
    cfg = resolve("cpu", 32)
    path = tmp_path / "net.safetensors"
    save_networks(path, G=G, D=D, G_ema=G_ema, config=cfg, extra_tensors={"augment_p": torch.tensor(0.25)},
                  metadata={"kimg": 12.5})
    loaded = load_networks(path)
    assert set(loaded) == {"G", "D", "G_ema"}
    for name, net in zip(("G", "D", "G_ema"), nets, strict=True):
        a, b = net.state_dict(), loaded[name].state_dict()
        assert a.keys() == b.keys()
        for k in a:
            assert torch.equal(a[k], b[k]), (name, k)
    meta = read_metadata(path)
    assert meta["meta.kimg"] == 12.5 and meta["train_config"]["cfg"] == "cpu"
    assert load_extra_tensors(path)["augment_p"].item() == 0.25
    # Same outputs after the round trip.
    z = torch.randn(2, G.z_dim)
    c = torch.eye(2)
    a, b = G.eval()(z, c, noise_mode="const"), loaded["G"](z, c, noise_mode="const")
    torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_load_network_falls_back_to_G(tmp_path, nets):
    G, _, _ = nets
    save_networks(tmp_path / "g.safetensors", G=G)
    assert isinstance(load_network(tmp_path / "g.safetensors"), Generator)
    with pytest.raises(CheckpointError, match="not D"):
        load_networks(tmp_path / "g.safetensors", ("D",))


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_network(tmp_path / "nope.safetensors")
    with pytest.raises(CheckpointError, match="is a folder"):
        load_network(tmp_path)


def test_truncated_file(tmp_path, nets):
    path = tmp_path / "net.safetensors"
    save_networks(path, G=nets[0])
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated|not a readable|mismatch|damaged"):
        load_network(path)


def test_pickle_is_refused_without_unpickling(tmp_path):
    path = tmp_path / "network-snapshot.pkl"
    path.write_bytes(b"\x80\x04\x95" + b"\x00" * 64)
    with pytest.raises(CheckpointError, match="import-official"):
        load_network(path)


def test_foreign_safetensors(tmp_path):
    path = tmp_path / "other.safetensors"
    save_file({"weight": torch.zeros(3)}, str(path))
    with pytest.raises(CheckpointError, match="not an adagan network"):
        load_network(path)


def test_mismatched_tensors(tmp_path, nets):
    G = nets[0]
    path = tmp_path / "bad.safetensors"
    tensors = {f"G.{k}": v.contiguous() for k, v in G.state_dict().items()}
    meta = {"format": "adagan", "format_version": "1", "networks": json.dumps(["G"]),
            "config.G": json.dumps({**json.loads(json.dumps(G.cfg.__dict__)), "channel_max": 8})}
    save_file(tensors, str(path), metadata=meta)
    with pytest.raises(CheckpointError, match="shape"):
        load_network(path)
    del tensors["G.mapping.fc0.bias"]
    meta["config.G"] = json.dumps(G.cfg.__dict__)
    save_file(tensors, str(path), metadata=meta)
    with pytest.raises(CheckpointError, match="missing"):
        load_network(path)


def test_save_is_atomic_on_failure(tmp_path, nets):
    path = tmp_path / "net.safetensors"
    save_networks(path, G=nets[0])
    before = path.read_bytes()

    class Boom(torch.nn.Module):
        cfg = None

    with pytest.raises(TypeError):
        save_networks(path, G=Boom())
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["net.safetensors"]


@pytest.mark.parametrize("g_arch,d_arch", [("orig", "skip"), ("resnet", "orig"), ("skip", "resnet")])
def test_architectures_round_trip(tmp_path, tiny_cfgs, g_arch, d_arch):
    torch.manual_seed(0)
    g, d = tiny_cfgs
    G, D = Generator(g(architecture=g_arch)), Discriminator(d(architecture=d_arch))
    save_networks(tmp_path / "net.safetensors", G=G, D=D)
    meta = read_metadata(tmp_path / "net.safetensors")
    assert meta["config.G"]["architecture"] == g_arch and meta["config.D"]["architecture"] == d_arch
    loaded = load_networks(tmp_path / "net.safetensors")
    assert loaded["G"].cfg == G.cfg and loaded["D"].cfg == D.cfg
    for net, ref in ((loaded["G"], G), (loaded["D"], D)):
        assert all(torch.equal(v, ref.state_dict()[k]) for k, v in net.state_dict().items())


def test_file_without_g_architecture_loads_as_skip(tmp_path, nets):
    """Files written before GeneratorConfig had `architecture` hold skip generators (the only kind then)."""
    G = nets[0]
    path = tmp_path / "old.safetensors"
    save_networks(path, G=G)
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}
        meta = dict(f.metadata())
    cfg = json.loads(meta["config.G"])
    del cfg["architecture"]
    meta["config.G"] = json.dumps(cfg)
    save_file(tensors, str(path), metadata=meta)
    loaded = load_network(path, "G")
    assert loaded.cfg.architecture == "skip" == GeneratorConfig().architecture
    assert all(torch.equal(v, G.state_dict()[k]) for k, v in loaded.state_dict().items())
