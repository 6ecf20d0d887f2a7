"""import-official: a restricted unpickler on synthetic pickles with the official layout."""

import collections
import contextlib
import io
import os
import pickle
import sys
import types

import pytest
import torch

from adagan.errors import CheckpointError


@contextlib.contextmanager
def fake_official_modules():
    """Register `torch_utils.persistence` and `dnnlib.util` only while writing, so pickle can reference
    the official global names; the reader never imports them."""
    persistence = types.ModuleType("torch_utils.persistence")
    util = types.ModuleType("dnnlib.util")

    def _reconstruct_persistent_obj(meta):  # never called by the code under test
        raise AssertionError("the official hook must not run")

    _reconstruct_persistent_obj.__module__ = "torch_utils.persistence"
    _reconstruct_persistent_obj.__qualname__ = "_reconstruct_persistent_obj"
    persistence._reconstruct_persistent_obj = _reconstruct_persistent_obj

    class EasyDict(dict):
        pass

    EasyDict.__module__, EasyDict.__qualname__ = "dnnlib.util", "EasyDict"
    util.EasyDict = EasyDict
    names = ["torch_utils", "torch_utils.persistence", "dnnlib", "dnnlib.util"]
    saved = {n: sys.modules.get(n) for n in names}
    sys.modules.update({"torch_utils": types.ModuleType("torch_utils"), "torch_utils.persistence": persistence,
                        "dnnlib": types.ModuleType("dnnlib"), "dnnlib.util": util})
    try:
        yield types.SimpleNamespace(hook=_reconstruct_persistent_obj, EasyDict=EasyDict)
    finally:
        for n, m in saved.items():
            if m is None:
                sys.modules.pop(n, None)
            else:
                sys.modules[n] = m


class Persistent:
    """Pickles as the official persistence wrapper does: hook(meta) with the module's __dict__ as state."""

    def __init__(self, hook, class_name, state, module_src):
        self.hook, self.meta = hook, dict(type="class", version=4, module_src=module_src, class_name=class_name,
                                          state=state)

    def __reduce__(self):
        return self.hook, (self.meta,)


def as_official(module, fake, init_kwargs=None, module_src="raise SystemExit('never run')"):
    """Our module tree -> nested persistent objects with parameters, *all* buffers (the official resample
    filters are persistent) and constructor arguments, under the official names."""
    state = {
        "training": False,
        "_init_args": (),
        "_init_kwargs": fake.EasyDict(init_kwargs or {}),
        "_parameters": collections.OrderedDict((k, v) for k, v in module._parameters.items()),
        "_buffers": collections.OrderedDict((k, v) for k, v in module._buffers.items()),
        "_modules": collections.OrderedDict(
            (k, as_official(m, fake, module_src=module_src)) for k, m in module._modules.items()
            if not isinstance(m, torch.nn.Identity)),
    }
    # MinibatchStdLayer has no tensors: it stays a (persistent) module with an empty state.
    return Persistent(fake.hook, type(module).__name__, state, module_src)


def g_kwargs(G, fake):
    c = G.cfg
    return dict(z_dim=c.z_dim, c_dim=c.c_dim, w_dim=c.w_dim, img_resolution=c.img_resolution,
                img_channels=c.img_channels,
                mapping_kwargs=fake.EasyDict(num_layers=c.map_layers),
                synthesis_kwargs=fake.EasyDict(channel_base=c.channel_base, channel_max=c.channel_max,
                                               num_fp16_res=c.num_fp16_res, conv_clamp=c.conv_clamp,
                                               architecture=c.architecture))


def d_kwargs(D, fake):
    c = D.cfg
    return dict(c_dim=c.c_dim, img_resolution=c.img_resolution, img_channels=c.img_channels,
                architecture=c.architecture, channel_base=c.channel_base, channel_max=c.channel_max,
                num_fp16_res=c.num_fp16_res, conv_clamp=c.conv_clamp, cmap_dim=c.cmap_dim,
                block_kwargs=fake.EasyDict(), mapping_kwargs=fake.EasyDict(num_layers=c.map_layers),
                epilogue_kwargs=fake.EasyDict(mbstd_group_size=c.mbstd_group_size))


def write_official(path, G, D, G_ema, module_src="raise SystemExit('never run')", tamper=None):
    with fake_official_modules() as fake:
        data = {"G": as_official(G, fake, g_kwargs(G, fake), module_src),
                "D": as_official(D, fake, d_kwargs(D, fake), module_src),
                "G_ema": as_official(G_ema, fake, g_kwargs(G_ema, fake), module_src),
                "augment_pipe": None,
                "training_set_kwargs": fake.EasyDict(path="~/datasets/ffhq.zip", resolution=G.img_resolution)}
        if tamper:
            tamper(data)
        with open(path, "wb") as f:
            pickle.dump(data, f)  # default protocol, as the official training loop
    assert "torch_utils.persistence" not in sys.modules


@pytest.mark.parametrize("c_dim", [0, 2])
@pytest.mark.parametrize("g_arch,d_arch", [("skip", "resnet"), ("skip", "orig"), ("orig", "skip"),
                                           ("resnet", "skip"), ("orig", "resnet"), ("resnet", "orig")])
def test_official_pickle_converts_exactly(tmp_path, run_cli, inf_helpers, c_dim, g_arch, d_arch):
    """A pickle with the official layout of each architecture (StyleGAN2 Figure 7: G orig/skip/resnet,
    D orig/skip/resnet) converts bit-exactly."""
    from adagan.io import load_networks
    from adagan.networks import Discriminator

    G = inf_helpers.tiny_generator(c_dim=c_dim, seed=1, architecture=g_arch)
    G_ema = inf_helpers.tiny_generator(c_dim=c_dim, seed=2, architecture=g_arch)
    torch.manual_seed(3)
    D = Discriminator(inf_helpers.tiny_d_cfg(16, c_dim, architecture=d_arch)).eval()
    with torch.no_grad():  # non-zero biases, so a bias renamed onto the wrong layer would show
        for p in D.parameters():
            p.add_(0.1 * torch.randn_like(p))
    marker = tmp_path / "code-ran"
    src = f"open({str(marker)!r}, 'w').write('x')"  # the embedded source must never run
    write_official(tmp_path / "snap.pkl", G, D, G_ema, module_src=src)
    dest = tmp_path / "out.safetensors"
    code, out, err = run_cli("import-official", "--source", tmp_path / "snap.pkl", "--dest", dest)
    assert code == 0, err
    assert "G, D, G_ema" in out
    assert not marker.exists()
    nets = load_networks(dest)
    assert nets["G"].cfg.architecture == nets["G_ema"].cfg.architecture == g_arch
    assert nets["D"].cfg.architecture == d_arch
    for name, ref in (("G", G), ("G_ema", G_ema), ("D", D)):
        got = nets[name].state_dict()
        assert got.keys() == ref.state_dict().keys()
        for k, v in ref.state_dict().items():
            assert torch.equal(got[k], v), (name, k)
    z = torch.randn(3, G.z_dim)
    c = torch.eye(c_dim)[[0, 1, 0]] if c_dim else None
    with torch.no_grad():
        torch.testing.assert_close(nets["G_ema"](z, c, noise_mode="const"), G_ema(z, c, noise_mode="const"),
                                   rtol=0, atol=0)
        img = G(z, c, noise_mode="const")
        torch.testing.assert_close(nets["D"](img, c), D(img, c), rtol=0, atol=0)


def test_malicious_pickle_is_refused_and_runs_nothing(tmp_path, run_cli):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return os.system, (f"touch {marker}",)

    class EvilEval:
        def __reduce__(self):
            return eval, (f"open({str(marker)!r}, 'w')",)

    for i, payload in enumerate([{"G": Evil()}, {"G_ema": EvilEval()}, Evil()]):
        path = tmp_path / f"evil{i}.pkl"
        path.write_bytes(pickle.dumps(payload))
        code, _, err = run_cli("import-official", "--source", path, "--dest", tmp_path / "x.safetensors")
        assert code == 1 and err.startswith("Error: ") and "refusing to load" in err, err
        assert err.count("\n") == 1
        assert not marker.exists()
        assert not (tmp_path / "x.safetensors").exists()


def test_unexpected_or_missing_parameter_is_a_clear_error(tmp_path, inf_helpers):
    from adagan.official import convert_official

    G, D = inf_helpers.tiny_generator(), inf_helpers.tiny_discriminator()

    def extra(data):
        data["G_ema"].meta["state"]["_parameters"]["mystery"] = torch.zeros(3)

    write_official(tmp_path / "a.pkl", G, D, G, tamper=extra)
    with pytest.raises(CheckpointError, match=r"unexpected tensor G\.mystery"):
        convert_official(tmp_path / "a.pkl")

    def missing(data):
        del data["G"].meta["state"]["_modules"]["mapping"].meta["state"]["_buffers"]["w_avg"]

    write_official(tmp_path / "b.pkl", G, D, G, tamper=missing)
    with pytest.raises(CheckpointError, match=r"missing: \['mapping.w_avg'\]"):
        convert_official(tmp_path / "b.pkl")

    def stylegan3(data):
        data["G"].meta["state"]["_modules"]["synthesis"].meta["state"]["_parameters"]["input.weight"] = torch.zeros(1)

    write_official(tmp_path / "c.pkl", G, D, G, tamper=stylegan3)
    with pytest.raises(CheckpointError, match="alias-free StyleGAN3"):
        convert_official(tmp_path / "c.pkl")


def test_official_architecture_names_are_renamed_explicitly():
    """Every official tensor name of every architecture has a row in the renaming tables."""
    import re

    from adagan.official import D_NAME_TABLE, G_NAME_TABLE

    g_names = ["synthesis.b32.skip.weight", "synthesis.b32.skip.resample_filter", "synthesis.b32.torgb.weight",
               "synthesis.b32.torgb.affine.bias"]
    d_names = ["b16.fromrgb.weight", "b16.fromrgb.bias", "b4.fromrgb.weight", "b4.fromrgb.bias",
               "b4.fromrgb.resample_filter", "b16.resample_filter", "b32.skip.weight"]
    for names, table in ((g_names, G_NAME_TABLE), (d_names, D_NAME_TABLE)):
        for n in names:
            row = next(((p, r) for p, r in table if re.fullmatch(p, n)), None)
            assert row is not None, n
            pattern, repl = row
            # Ours read like the official names; the filter buffers are dropped (rebuilt from the architecture).
            assert (repl is None) == n.endswith("resample_filter") and (repl is None or re.sub(pattern, repl, n) == n)


def test_unknown_official_architecture_is_refused(tmp_path, inf_helpers):
    from adagan.official import convert_official

    G, D = inf_helpers.tiny_generator(), inf_helpers.tiny_discriminator()

    def g_arch(data):
        data["G"].meta["state"]["_init_kwargs"]["synthesis_kwargs"]["architecture"] = "unet"

    write_official(tmp_path / "a.pkl", G, D, G, tamper=g_arch)
    with pytest.raises(CheckpointError, match="G architecture 'unet'"):
        convert_official(tmp_path / "a.pkl")

    def d_arch(data):
        data["D"].meta["state"]["_init_kwargs"]["architecture"] = "unet"

    write_official(tmp_path / "b.pkl", G, D, G, tamper=d_arch)
    with pytest.raises(CheckpointError, match="D architecture 'unet'"):
        convert_official(tmp_path / "b.pkl")


def test_not_a_pickle_and_missing_file(tmp_path, run_cli):
    (tmp_path / "junk.pkl").write_bytes(b"\x00\x01garbage")
    code, _, err = run_cli("import-official", "--source", tmp_path / "junk.pkl", "--dest", tmp_path / "o.safetensors")
    assert code == 1 and "not a readable network pickle" in err
    code, _, err = run_cli("import-official", "--source", tmp_path / "nope.pkl", "--dest", tmp_path / "o.safetensors")
    assert code == 1 and "not found" in err


class _Reduce:
    def __init__(self, *reduced):
        self.reduced = reduced

    def __reduce__(self):
        return self.reduced


def test_numpy_array_declaring_a_huge_shape_is_refused_before_allocating(tmp_path, run_cli):
    # numpy pickles an array as _reconstruct(ndarray, (0,), dtype) + its real shape and bytes; a file that
    # declares 10^6 x 10^6 int8 (931 GiB) up front must be refused before numpy allocates it.
    import numpy as np

    fn, _, state = np.zeros(3).__reduce__()
    blob = pickle.dumps({"G_ema": _Reduce(fn, (np.ndarray, (10**6, 10**6), b"b"), state)}, protocol=4)
    (tmp_path / "huge.pkl").write_bytes(blob)
    code, out, err = run_cli("import-official", "--source", tmp_path / "huge.pkl", "--dest", tmp_path / "o.safetensors")
    assert code == 1 and "declares shape (1000000, 1000000)" in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "o.safetensors").exists()
    # numpy's own pickles (shape declared empty, then filled) still load
    from adagan.official import OfficialUnpickler

    arr = np.arange(6, dtype=np.float32).reshape(2, 3)
    assert np.array_equal(OfficialUnpickler(io.BytesIO(pickle.dumps(arr, protocol=4))).load(), arr)


def test_existing_dest_needs_force(tmp_path, run_cli, inf_helpers):
    # as `adagan dataset`: an existing output is replaced only with --force
    from adagan.io import load_networks
    from adagan.networks import Discriminator

    G = inf_helpers.tiny_generator(seed=1)
    D = Discriminator(inf_helpers.tiny_d_cfg(16, 0)).eval()
    write_official(tmp_path / "snap.pkl", G, D, G)
    dest = tmp_path / "out.safetensors"
    dest.write_bytes(b"keep me")
    code, _, err = run_cli("import-official", "--source", tmp_path / "snap.pkl", "--dest", dest)
    assert code == 1 and "already exists" in err and "--force" in err and len(err.strip().splitlines()) == 1
    assert dest.read_bytes() == b"keep me"
    code, _, err = run_cli("import-official", "--source", tmp_path / "snap.pkl", "--dest", dest, "--force")
    assert code == 0, err
    assert torch.equal(load_networks(dest)["G_ema"].state_dict()["mapping.fc0.weight"],
                       G.state_dict()["mapping.fc0.weight"])
