import zipfile

import numpy as np
import pytest
from PIL import Image


@pytest.fixture
def tiny_zip(tmp_path):
    path = tmp_path / "tiny.zip"
    rng = np.random.default_rng(0)
    with zipfile.ZipFile(path, "w") as zf:
        for i in range(6):
            arr = rng.integers(0, 255, [16, 16, 3], dtype=np.uint8)
            im_path = tmp_path / f"{i}.png"
            Image.fromarray(arr).save(im_path)
            zf.write(im_path, f"{i:05d}.png")
    return path


def test_preview_writes_grid_and_sheet(run_cli, tiny_zip, tmp_path):
    out = tmp_path / "prev" / "grid.png"
    code, stdout, err = run_cli("augment-preview", "--data", tiny_zip, "--augpipe", "bgcfnc", "--p", "0.5",
                                "--out", out, "--num", "4", "--rows", "2")
    assert code == 0, err
    grid = Image.open(out)
    assert grid.size == (4 * 18 + 2, 3 * 18 + 2)  # 16 px images with 2 px gaps; reals + 2 rows
    sheet = Image.open(out.with_name("grid-transforms.png"))
    assert sheet.height > 15 * 16  # one row per transform of bgcfnc
    assert "Wrote" in stdout


def test_preview_of_diffaugment(run_cli, tiny_zip, tmp_path):
    out = tmp_path / "diff.png"
    code, stdout, err = run_cli("augment-preview", "--data", tiny_zip, "--augpipe", "diffaug", "--p", "1",
                                "--out", out, "--num", "4", "--rows", "2")
    assert code == 0, err
    assert Image.open(out).size == (4 * 18 + 2, 3 * 18 + 2)
    sheet = Image.open(out.with_name("diff-transforms.png"))
    assert 5 * 16 * 2 < sheet.height < 6 * 16 * 2 + 60  # brightness, saturation, contrast, translation, cutout


def test_preview_errors(run_cli, tiny_zip, tmp_path):
    code, _, err = run_cli("augment-preview", "--data", tiny_zip, "--augpipe", "xyz", "--out", tmp_path / "a.png")
    assert code == 1 and "unknown --augpipe" in err
    code, _, err = run_cli("augment-preview", "--data", tmp_path / "missing.zip", "--out", tmp_path / "a.png")
    assert code == 1 and "does not exist" in err
    code, _, err = run_cli("augment-preview", "--data", tiny_zip, "--out", tmp_path / "a.jpg")
    assert code == 1 and ".png" in err


def test_help(run_cli):
    code, out, _ = run_cli("augment-preview", "--help")
    assert code == 0 and "--augpipe" in out
