"""benchmarks/grid_figure.py: the README's figure, the first rows of labelled grids stacked."""

import numpy as np
import pytest
from PIL import Image


@pytest.fixture(scope="module")
def gf(load_benchmark):
    return load_benchmark("grid_figure")


def test_figure_takes_the_first_rows_enlarged_beside_the_label(gf, tmp_path):
    rng = np.random.default_rng(0)
    grid = rng.integers(0, 256, (5 * 8, 3 * 8, 3), dtype=np.uint8)  # 5 rows x 3 columns of 8x8 cells
    Image.fromarray(grid).save(tmp_path / "fakes000010.png")
    out = tmp_path / "fig" / "figure.png"
    assert gf.main(["--out", str(out), "--res", "8", "--rows", "2", "--scale", "3",
                    f"a=b label={tmp_path / 'fakes000010.png'}", f"second={tmp_path / 'fakes000010.png'}"]) == 0
    fig = np.asarray(Image.open(out))
    assert fig.shape == (2 * (2 * 8 * 3) + gf.GAP, gf.LABEL_WIDTH + 3 * 8 * 3, 3)
    top = fig[: 2 * 8 * 3, gf.LABEL_WIDTH:]
    np.testing.assert_array_equal(top, grid[: 2 * 8].repeat(3, 0).repeat(3, 1))  # nearest neighbour, no smoothing
    assert (fig[2 * 8 * 3: 2 * 8 * 3 + gf.GAP] == 255).all()  # white between panels
    assert (fig[:, : gf.LABEL_WIDTH] < 128).any()  # the label is drawn
    assert not list(out.parent.glob("*.tmp"))


def test_bad_panels_are_one_line_errors(gf, tmp_path, capsys):
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "small.png")
    out = tmp_path / "figure.png"
    assert gf.main(["--out", str(out), "no label"]) == 1
    assert "expected LABEL=GRID.png" in capsys.readouterr().err
    assert gf.main(["--out", str(out), f"x={tmp_path / 'missing.png'}"]) == 1
    assert "no such file" in capsys.readouterr().err
    assert gf.main(["--out", str(out), "--res", "8", f"x={tmp_path / 'small.png'}"]) == 1
    assert "fewer than 4 rows" in capsys.readouterr().err
    assert not out.exists()
    out.write_bytes(b"kept")  # a file where --out needs a folder: one line, and the file is left as it was
    assert gf.main(["--out", str(out / "fig.png"), "--res", "8", "--rows", "1", f"x={tmp_path / 'small.png'}"]) == 1
    assert "cannot write" in capsys.readouterr().err
    assert out.read_bytes() == b"kept"
