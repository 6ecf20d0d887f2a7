"""A real tiny training run (2 ticks, one snapshot) shared by the studio tests, and copies to damage."""

import shutil

import numpy as np
import pytest
from PIL import Image

# Tiny networks at 16x16 (as tests/training/test_train.py), 2 ticks of 16 images, a snapshot every tick.
TINY = ["--cfg", "cpu", "--G.z_dim=8", "--G.w_dim=8", "--G.channel_base=128", "--G.channel_max=8",
        "--D.channel_base=128", "--D.channel_max=8", "--D.mbstd_group_size=2", "--batch", "4", "--batch-gpu", "2",
        "--tick", "0.016", "--snap", "1", "--kimg", "0.032"]


@pytest.fixture(scope="session")
def studio_root(tmp_path_factory):
    """A folder holding one finished tiny run, `tiny/` (read-only for the tests: copy it to change it)."""
    from adagan.cli.main import main

    base = tmp_path_factory.mktemp("studio")
    images = base / "images"
    images.mkdir()
    rng = np.random.RandomState(0)
    for i in range(16):
        arr = (rng.rand(16, 16, 3) * 255).astype(np.uint8)
        arr[:, : 8 if i % 2 else 4] = 255
        Image.fromarray(arr).save(images / f"{i:02d}.png")
    root = base / "runs"
    try:
        main(["train", "--data", str(images), "--outdir", str(root), "--name", "tiny", *TINY])
    except SystemExit as e:
        assert not e.code
    return root


@pytest.fixture
def run_copy(studio_root, tmp_path):
    """A writable copy of the runs folder: (root, run directory)."""
    root = tmp_path / "runs"
    shutil.copytree(studio_root, root)
    return root, root / "tiny"
