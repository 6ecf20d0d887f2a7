import torch

from adagan.config import GeneratorConfig
from adagan.io import save_networks
from adagan.networks import Generator


def test_info_prints_configs(run_cli, tmp_path):
    G = Generator(GeneratorConfig(z_dim=8, w_dim=8, img_resolution=16, channel_base=128, channel_max=8, map_layers=2))
    save_networks(tmp_path / "g.safetensors", G=G, metadata={"kimg": 4.0})
    code, out, err = run_cli("info", tmp_path / "g.safetensors")
    assert code == 0, err
    assert "networks: G" in out and "16px" in out and "kimg: 4" in out
    code, out, _ = run_cli("info", "--json", tmp_path / "g.safetensors")
    assert code == 0 and '"networks"' in out
    assert torch.is_tensor(next(G.parameters()))


def test_info_rejects_other_files(run_cli, tmp_path):
    (tmp_path / "x.safetensors").write_bytes(b"junk")
    code, _, err = run_cli("info", tmp_path / "x.safetensors")
    assert code == 1 and err.startswith("Error:") and "Traceback" not in err


def test_info_adds_up_a_fine_tuned_networks_training(run_cli, tmp_path):
    from adagan.netfiles import trained_kimg

    G = Generator(GeneratorConfig(z_dim=8, w_dim=8, img_resolution=16, channel_base=128, channel_max=8, map_layers=2))
    cases = [  # (metadata, trained_kimg, what info says)
        ({"kimg": 40.0, "resumed_from": {"network": "builtin:twemoji32", "kimg": 459.104}}, 499.104,
         "kimg: 40, started from builtin:twemoji32 (459.104 kimg): 499.104 kimg in all"),
        ({"kimg": 40.0, "resumed_from": {"network": "ffhq256", "kimg": None}}, None,
         "kimg: 40, started from ffhq256 (its training not recorded)"),
        ({"kimg": 12}, 12.0, "kimg: 12\n"),
        ({"kimg": True, "resumed_from": "junk"}, None, "networks: G"),
    ]
    for i, (meta, total, line) in enumerate(cases):
        path = tmp_path / f"g{i}.safetensors"
        save_networks(path, G=G, metadata=meta)
        from adagan.io import read_metadata

        assert trained_kimg(read_metadata(path)) == total
        code, out, err = run_cli("info", path)
        assert code == 0, err
        assert line in out, out
