"""benchmarks/grid_hue.py: the hue distance of a fakes grid to the training images (issue 27's measure)."""

import numpy as np
import pytest
from PIL import Image


@pytest.fixture(scope="module")
def gh(load_benchmark):
    return load_benchmark("grid_hue")


def solid(rgb, n=4, res=8):
    return np.tile(np.array(rgb, np.uint8), (n, res, res, 1))


def test_cell_hues_reads_hsv_hue_and_drops_colourless_cells(gh):
    cells = np.concatenate([solid((255, 0, 0), 1), solid((0, 255, 0), 1), solid((0, 0, 255), 1),
                            solid((128, 128, 128), 1), solid((255, 255, 255), 1), solid((30, 0, 0), 1)])
    np.testing.assert_allclose(gh.cell_hues(cells), [0, 1 / 3, 2 / 3], atol=1e-6)  # grey, white, too dark: out


def test_distance_zero_for_same_hues_one_for_disjoint(gh):
    yellow, blue = gh.cell_hues(solid((255, 200, 0))), gh.cell_hues(solid((0, 60, 255)))
    assert gh.distance(yellow, yellow) == 0 and gh.distance(yellow, blue) == 1
    assert gh.distance(np.concatenate([yellow, blue]), yellow) == pytest.approx(0.5)


def test_grid_cells_round_trip_and_references(gh, tmp_path):
    cells = np.concatenate([solid((255, 200, 0), 3), solid((0, 60, 255), 3)])  # 6 cells of 8x8
    grid = cells.reshape(2, 3, 8, 8, 3).transpose(0, 2, 1, 3, 4).reshape(16, 24, 3)
    Image.fromarray(grid).save(tmp_path / "fakes000010.png")
    np.testing.assert_array_equal(gh.grid_cells(tmp_path / "fakes000010.png", 8), cells)
    ref = gh.references(gh.cell_hues(cells), 6, splits=50, seed=0)
    assert 0 <= ref["drawn_median"] <= ref["drawn_p95"] <= 1 and 0 <= ref["halves_median"] <= ref["halves_p95"] <= 1
    files, data = gh._inputs([str(tmp_path)])
    assert files == [tmp_path / "fakes000010.png"] and data is None
    with pytest.raises(FileNotFoundError, match="no such file"):
        gh._inputs([str(tmp_path / "missing")])


def test_off_hue_counts_only_bins_the_training_images_lack(gh):
    colours = (((255, 200, 0), 99), ((0, 60, 255), 4), ((255, 0, 0), 1))
    yellow, blue, red = (gh.cell_hues(solid(c, n)) for c, n in colours)
    real = np.concatenate([yellow, red])  # red: 1 of 100, at the floor, so not off-hue
    assert gh.off_hue(real, real) == 0
    assert gh.off_hue(np.concatenate([yellow[:4], blue]), real) == pytest.approx(0.5)
    assert gh.off_hue(yellow[:4], real) == 0  # missing red is a lack, not off-hue
