import warnings

import numpy as np
import pytest
import torch

from adagan.export import ExportableGenerator, example_inputs


@pytest.mark.parametrize("c_dim", [0, 3])
def test_onnx_matches_pytorch(run_cli, tmp_path, inf_helpers, c_dim):
    ort = pytest.importorskip("onnxruntime")
    from adagan.io import save_networks

    G = inf_helpers.tiny_generator(c_dim=c_dim)
    snap = tmp_path / "g.safetensors"
    save_networks(snap, G=G)
    code, _, err = run_cli("export", "--network", snap, "--onnx", tmp_path / "G.onnx")
    assert code == 0, err
    sess = ort.InferenceSession(str(tmp_path / "G.onnx"), providers=["CPUExecutionProvider"])
    assert [i.name for i in sess.get_inputs()] == ["z", "c", "psi"]
    z, c, _ = example_inputs(G, n=5)  # a batch size other than the export's
    psi = torch.tensor([0.6])
    (out,) = sess.run(None, {"z": z.numpy(), "c": c.numpy(), "psi": psi.numpy()})
    with torch.no_grad():
        ref = G(z, c if c_dim else None, truncation_psi=0.6, noise_mode="const")
    assert out.shape == tuple(ref.shape)
    np.testing.assert_allclose(out, ref.numpy(), atol=1e-4, rtol=0)


def test_torchscript_matches_pytorch(run_cli, snapshot, tmp_path, inf_helpers):
    from adagan.inference import load_generator

    code, _, err = run_cli("export", "--network", snapshot, "--torchscript", tmp_path / "G.pt")
    assert code == 0, err
    with warnings.catch_warnings():  # torch.jit.load is deprecated; the export still writes TorchScript
        warnings.simplefilter("ignore", DeprecationWarning)
        ts = torch.jit.load(str(tmp_path / "G.pt"))
    G = load_generator(snapshot, "cpu")
    z, c, _ = example_inputs(G, n=3)
    with torch.no_grad():
        out = ts(z, c, torch.tensor([0.8]))
        ref = G(z, None, truncation_psi=0.8, noise_mode="const")
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=0)


@pytest.mark.parametrize("c_dim", [0, 3])
def test_pt2_matches_pytorch(run_cli, tmp_path, inf_helpers, c_dim):
    from adagan.io import save_networks

    G = inf_helpers.tiny_generator(c_dim=c_dim)
    snap = tmp_path / "g.safetensors"
    save_networks(snap, G=G)
    code, out, err = run_cli("export", "--network", snap, "--pt2", tmp_path / "G.pt2")
    assert code == 0, err
    assert "G.pt2" in out
    program = torch.export.load(str(tmp_path / "G.pt2")).module()
    for n in (1, 5):  # batch sizes other than the export's 2
        z, c, _ = example_inputs(G, n=n)
        if c_dim:
            c = torch.nn.functional.one_hot(torch.arange(n) % c_dim, c_dim).float()
        with torch.no_grad():
            got = program(z, c, torch.tensor([0.6]))
            ref = G(z, c if c_dim else None, truncation_psi=0.6, noise_mode="const")
        torch.testing.assert_close(got, ref, atol=1e-5, rtol=0)


def test_export_needs_a_format(run_cli, snapshot, tmp_path):
    code, _, err = run_cli("export", "--network", snapshot)
    assert code != 0
    assert "--pt2" in err


def test_exportable_generator_is_psi_one_identity(inf_helpers):
    G = inf_helpers.tiny_generator()
    z, c, psi = example_inputs(G, n=2)
    with torch.no_grad():
        torch.testing.assert_close(ExportableGenerator(G)(z, c, psi), G(z, noise_mode="const"), atol=1e-5, rtol=0)
