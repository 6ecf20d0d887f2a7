import numpy as np
import pytest
import torch

from adagan import inference as inf
from adagan.errors import ConfigError


def test_parse_range():
    assert inf.parse_range("0-3,7, 10-11") == [0, 1, 2, 3, 7, 10, 11]
    assert inf.parse_range("5") == [5]
    for bad in ("a", "3-1", "1,,2", "-1", "1.5"):
        with pytest.raises(ConfigError, match="bad --seeds"):
            inf.parse_range(bad)


def test_seed_to_z_is_fixed():
    z = inf.seed_to_z(3, 16)
    assert z.shape == (16,)
    np.testing.assert_array_equal(z, np.random.RandomState(3).randn(16))


def test_same_seed_same_image_across_batch_sizes(inf_helpers):
    G = inf_helpers.tiny_generator()
    a = inf.generate(G, "0-4", batch=5, truncation_psi=0.7)
    b = inf.generate(G, "0-4", batch=2, truncation_psi=0.7)
    c = inf.generate(G, [3], batch=1, truncation_psi=0.7)
    assert a.shape == (5, 16, 16, 3) and a.dtype == np.uint8
    assert np.abs(a.astype(int) - b).max() <= 1
    assert np.abs(a[3].astype(int) - c[0]).max() <= 1
    assert not np.array_equal(a[0], a[1])


def test_generate_conditional_and_noise_modes(inf_helpers):
    G = inf_helpers.tiny_generator(c_dim=3)
    a = inf.generate(G, [0], c=0)
    b = inf.generate(G, [0], c=2)
    assert not np.array_equal(a, b)
    with pytest.raises(ConfigError, match="conditional"):
        inf.generate(G, [0])
    with pytest.raises(ConfigError, match="out of range"):
        inf.generate(G, [0], c=3)
    G0 = inf_helpers.tiny_generator()
    with pytest.raises(ConfigError, match="unconditional"):
        inf.generate(G0, [0], c=1)
    r1 = inf.generate(G0, [0, 1], noise_mode="random")
    r2 = inf.generate(G0, [0, 1], noise_mode="random")
    np.testing.assert_array_equal(r1, r2)  # a command repeats exactly
    assert not np.array_equal(r1, inf.generate(G0, [0, 1], noise_mode="none"))


def test_style_mix_grid(inf_helpers):
    G = inf_helpers.tiny_generator()
    grid = inf.style_mix(G, "1,2,3", "10,11", "0-3")
    assert grid.shape == (4 * 16, 3 * 16, 3)
    assert grid[:16, :16].max() == 0
    singles = inf.generate(G, [1, 10])
    np.testing.assert_allclose(grid[16:32, :16], singles[0], atol=1)  # row seed 1
    np.testing.assert_allclose(grid[:16, 16:32], singles[1], atol=1)  # column seed 10
    # Taking no styles from the column reproduces the row image; all of them, the column image.
    np.testing.assert_allclose(inf.style_mix(G, [1], [10], [])[16:, 16:], singles[0], atol=1)
    np.testing.assert_allclose(inf.style_mix(G, [1], [10], f"0-{G.num_ws - 1}")[16:, 16:], singles[1], atol=1)
    with pytest.raises(ConfigError, match="out of range"):
        inf.style_mix(G, [1], [2], [G.num_ws])


def test_interpolation_passes_keys_and_loops(inf_helpers):
    keys = torch.randn(3, 4, 5)
    ws = inf.interpolate_ws(keys, 6)
    assert ws.shape == (18, 4, 5)
    for k in range(3):
        torch.testing.assert_close(ws[6 * k], keys[k])
    # The step across the loop seam is no larger than the other steps near the keys.
    steps = (ws.roll(-1, 0) - ws).flatten(1).norm(dim=1)
    assert steps[-1] < 2 * steps.max() and steps.min() > 0
    frames = inf.interpolate(inf_helpers.tiny_generator(), "0,5,9", 4)
    assert frames.shape == (12, 16, 16, 3)


def test_video_files(inf_helpers, tmp_path):
    import imageio.v3 as iio

    frames = inf.interpolate(inf_helpers.tiny_generator(), "0,5", 3)
    for name in ("walk.gif", "walk.mp4"):
        inf.save_video(frames, tmp_path / name, fps=10)
        assert iio.imread(tmp_path / name).shape == (6, 16, 16, 3)
    with pytest.raises(ConfigError, match=".mp4 or .gif"):
        inf.save_video(frames, tmp_path / "walk.avi")


def test_projection_recovers_generated_target(inf_helpers):
    G = inf_helpers.tiny_generator()
    with torch.no_grad():
        for name, p in G.named_parameters():
            if name.endswith("noise_strength"):
                p.zero_()  # the target is then a function of w alone
    before = {k: v.clone() for k, v in G.state_dict().items()}
    target = inf.generate(G, [7])[0].transpose(2, 0, 1)
    w_steps, losses = inf.project(G, target, steps=30, lpips=inf_helpers.TinyLPIPS(), w_avg_samples=500)
    assert w_steps.shape == (30, G.num_ws, G.w_dim)
    assert losses[-1] < 0.2 * losses[0]
    proj = inf.to_uint8(inf.synthesize(G, w_steps[-1:]))[0].astype(float)
    other = inf.generate(G, [3])[0].astype(float)
    t = target.transpose(1, 2, 0)
    assert np.abs(proj - t).mean() < 0.3 * np.abs(other - t).mean()
    for k, v in G.state_dict().items():  # G itself is untouched
        torch.testing.assert_close(v, before[k])


def test_project_rejects_wrong_target(inf_helpers):
    G = inf_helpers.tiny_generator()
    with pytest.raises(ConfigError, match="target must be uint8"):
        inf.project(G, np.zeros([3, 8, 8], np.uint8), steps=1, lpips=inf_helpers.TinyLPIPS())


def test_load_image_crops_and_resizes(tmp_path):
    from PIL import Image

    Image.new("RGB", (40, 20), (255, 0, 0)).save(tmp_path / "a.jpg")
    img = inf.load_image(tmp_path / "a.jpg", 16, 3)
    assert img.shape == (3, 16, 16) and img.dtype == np.uint8
    (tmp_path / "b.jpg").write_text("not an image")
    with pytest.raises(ConfigError, match="not a readable image"):
        inf.load_image(tmp_path / "b.jpg", 16, 3)
    with pytest.raises(ConfigError, match="not found"):
        inf.load_image(tmp_path / "c.jpg", 16, 3)
