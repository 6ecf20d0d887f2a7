"""Shared fixtures of the training tests: a tiny labelled dataset made with `adagan dataset`."""

import numpy as np
import pytest
from PIL import Image


@pytest.fixture(scope="module")
def image_dir(tmp_path_factory):
    """16 small RGB images in two class folders."""
    root = tmp_path_factory.mktemp("imgs")
    rng = np.random.RandomState(0)
    for i in range(16):
        cls = root / f"class{i % 2}"
        cls.mkdir(exist_ok=True)
        arr = (rng.rand(16, 16, 3) * 255).astype(np.uint8)
        arr[:, : 8 if i % 2 else 4] = 255
        Image.fromarray(arr).save(cls / f"{i:02d}.png")
    return root


@pytest.fixture(scope="module")
def dataset_zip(image_dir, tmp_path_factory):
    from adagan.cli.main import main

    dest = tmp_path_factory.mktemp("ds") / "tiny.zip"
    try:
        main(["dataset", "--source", str(image_dir), "--dest", str(dest), "--labels", "subfolders"])
    except SystemExit as e:
        assert not e.code
    return dest
