import numpy as np
import pytest
import torch
from PIL import Image

from adagan import inference as inf


@pytest.mark.parametrize("cmd", ["generate", "mix", "video", "project", "export", "import-official"])
def test_help(run_cli, cmd):
    code, out, _ = run_cli(cmd, "--help")
    assert code == 0 and "Example" in out


def test_generate_writes_pngs_and_grid(run_cli, snapshot, tmp_path):
    out = tmp_path / "out"
    code, stdout, err = run_cli("generate", "--network", snapshot, "--seeds", "0-2,5", "--trunc", "0.7",
                                "--outdir", out, "--grid", "--device", "cpu")
    assert code == 0, err
    assert sorted(p.name for p in out.iterdir()) == ["grid.png", "seed0000.png", "seed0001.png", "seed0002.png",
                                                     "seed0005.png"]
    assert Image.open(out / "grid.png").size == (32, 32)
    # The file is the same image the library gives for that seed.
    G = inf.load_generator(snapshot, "cpu")
    ref = inf.generate(G, [5], truncation_psi=0.7)[0]
    assert np.abs(np.asarray(Image.open(out / "seed0005.png")).astype(int) - ref).max() <= 1


def test_mix_grid_size(run_cli, snapshot, tmp_path):
    code, _, err = run_cli("mix", "--network", snapshot, "--rows", "1,2,3", "--cols", "10,11", "--styles", "0-3",
                           "--out", tmp_path / "mix.png", "--device", "cpu")
    assert code == 0, err
    assert Image.open(tmp_path / "mix.png").size == (3 * 16, 4 * 16)


def test_mix_outdir_as_the_official_style_mixing(run_cli, snapshot, tmp_path):
    # style_mixing.py --outdir: grid.png plus ROW-COL.png for every cell and ROW-ROW.png / COL-COL.png
    out = tmp_path / "mixdir"
    code, _, err = run_cli("mix", "--network", snapshot, "--rows", "1,2", "--cols", "10", "--styles", "0-3",
                           "--outdir", out, "--device", "cpu")
    assert code == 0, err
    assert {p.name for p in out.iterdir()} == {"grid.png", "1-10.png", "2-10.png", "1-1.png", "2-2.png", "10-10.png"}
    grid = np.asarray(Image.open(out / "grid.png"))
    assert grid.shape[:2] == (3 * 16, 2 * 16)
    np.testing.assert_array_equal(np.asarray(Image.open(out / "2-10.png")), grid[32:48, 16:32])
    np.testing.assert_array_equal(np.asarray(Image.open(out / "10-10.png")), grid[0:16, 16:32])
    code, _, err = run_cli("mix", "--network", snapshot, "--rows", "1", "--cols", "2", "--outdir", out,
                           "--out", tmp_path / "m.png")
    assert code == 1 and "not both" in err


@pytest.mark.parametrize("ext", ["gif", "mp4"])
def test_video_frame_count(run_cli, snapshot, tmp_path, ext):
    import imageio.v3 as iio

    out = tmp_path / f"walk.{ext}"
    code, _, err = run_cli("video", "--network", snapshot, "--seeds", "0,5,9", "--frames-per-seed", "4", "--out", out,
                           "--device", "cpu")
    assert code == 0, err
    assert iio.imread(out).shape[0] == 12


def test_project_and_render_projected_w(run_cli, snapshot, tmp_path, monkeypatch, inf_helpers):
    from adagan.metrics import features

    monkeypatch.setattr(features, "load_lpips", lambda device="cpu", path=None: inf_helpers.TinyLPIPS().to(device))
    G = inf.load_generator(snapshot, "cpu")
    target = tmp_path / "target.png"
    inf.save_image(inf.generate(G, [4])[0], target)
    out = tmp_path / "proj"
    code, stdout, err = run_cli("project", "--network", snapshot, "--target", target, "--steps", "5", "--outdir", out,
                                "--w-avg-samples", "200", "--save-video", "--device", "cpu")
    assert code == 0, err
    assert {p.name for p in out.iterdir()} == {"target.png", "proj.png", "projected_w.npz", "proj.mp4"}
    # the official projector.py's spellings: --num-steps, --save-video=BOOL
    code, _, err = run_cli("project", "--network", snapshot, "--target", target, "--num-steps", "2",
                           "--outdir", tmp_path / "p2", "--w-avg-samples", "200", "--save-video=0", "--device", "cpu")
    assert code == 0, err
    assert {p.name for p in (tmp_path / "p2").iterdir()} == {"target.png", "proj.png", "projected_w.npz"}
    w = np.load(out / "projected_w.npz")["w"]
    assert w.shape == (1, G.num_ws, G.w_dim) and w.dtype == np.float32
    code, _, err = run_cli("generate", "--network", snapshot, "--projected-w", out / "projected_w.npz",
                           "--outdir", tmp_path / "render", "--device", "cpu")
    assert code == 0, err
    rendered = np.asarray(Image.open(tmp_path / "render" / "proj00.png"))
    np.testing.assert_array_equal(rendered, np.asarray(Image.open(out / "proj.png")))
    ref = inf.to_uint8(inf.synthesize(G, torch.from_numpy(w)))[0]
    assert np.abs(rendered.astype(int) - ref).max() <= 1


def test_bad_inputs_give_one_line_errors(run_cli, snapshot, tmp_path):
    cases = [
        (("generate", "--network", tmp_path / "missing.safetensors", "--seeds", "0", "--outdir", tmp_path / "o"),
         "not found"),
        (("generate", "--network", snapshot, "--seeds", "0-x", "--outdir", tmp_path / "o"), "bad --seeds"),
        (("generate", "--network", snapshot, "--outdir", tmp_path / "o"), "either --seeds"),
        (("generate", "--network", snapshot, "--seeds", "0", "--class", "2", "--outdir", tmp_path / "o"),
         "unconditional"),
        (("generate", "--network", snapshot, "--projected-w", tmp_path / "nope.npz", "--outdir", tmp_path / "o"),
         "not found"),
        (("mix", "--network", snapshot, "--rows", "1", "--cols", "2", "--styles", "0-99"), "out of range"),
        (("video", "--network", snapshot, "--seeds", "0,1", "--out", tmp_path / "w.avi"), ".mp4 or .gif"),
        (("project", "--network", snapshot, "--target", tmp_path / "bad.jpg", "--outdir", tmp_path / "p"),
         "not a readable image"),
        (("export", "--network", snapshot), "nothing to do"),
        (("generate", "--network", snapshot, "--seeds", "0", "--outdir", tmp_path / "o", "--device", "cuda:7"),
         "cuda"),
    ]
    (tmp_path / "bad.jpg").write_text("this is not a jpeg")
    for args, needle in cases:
        if needle == "cuda" and torch.cuda.device_count() > 7:
            continue
        code, _, err = run_cli(*args)
        assert code == 1, (args, err)
        assert err.startswith("Error: ") and err.count("\n") == 1 and needle in err, (args, err)
