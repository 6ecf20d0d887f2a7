"""Builders for small messy image sources, made on the fly."""

import gzip
import io
import shutil
import struct
import zipfile

import numpy as np
import pytest
from PIL import Image


def save(path, arr_or_img, **kw):
    path.parent.mkdir(parents=True, exist_ok=True)
    img = arr_or_img if isinstance(arr_or_img, Image.Image) else Image.fromarray(arr_or_img)
    img.save(path, **kw)
    return path


def noise(h, w, c=3, seed=0):
    rng = np.random.RandomState(seed)
    shape = (h, w) if c == 1 else (h, w, c)
    return (rng.rand(*shape) * 255).astype(np.uint8)


def bomb_png(width=100_000, height=100_000) -> bytes:
    """A tiny PNG whose header claims a gigantic image (a decompression bomb's signature)."""
    import zlib

    def chunk(tag, data):
        crc = zlib.crc32(tag + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 10)) + \
        chunk(b"IEND", b"")


@pytest.fixture
def messy_dir(tmp_path):
    """Two class folders with mixed sizes and modes, plus junk, corrupt, tiny, duplicate and bomb files.

    Usable: cats (4 RGB JPEG/PNG of various sizes, 1 grayscale), dogs (3 RGBA, 1 palette, 1 16-bit gray).
    """
    root = tmp_path / "messy"
    save(root / "cats" / "a.jpg", noise(80, 120, seed=1), quality=95)
    save(root / "cats" / "b.png", noise(100, 70, seed=2))
    save(root / "cats" / "c.bmp", noise(64, 64, seed=3))
    save(root / "cats" / "nested" / "d.webp", noise(90, 90, seed=4))
    save(root / "cats" / "gray.png", noise(70, 70, c=1, seed=5))
    for i in range(3):
        save(root / "dogs" / f"rgba{i}.png", noise(72, 72, c=4, seed=10 + i))
    save(root / "dogs" / "pal.gif", Image.fromarray(noise(66, 66, seed=20)).convert("P"))
    deep = (np.arange(64 * 64).reshape(64, 64) * 16).astype(np.uint16)
    save(root / "dogs" / "deep.png", Image.fromarray(deep))
    # Junk.
    shutil.copy(root / "cats" / "b.png", root / "cats" / "b_copy.png")  # duplicate
    save(root / "dogs" / "tiny.png", noise(12, 20, seed=30))  # too small at 64
    (root / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    (root / "cats" / "._a.jpg").write_bytes(b"\x00\x05\x16\x07AppleDouble")
    (root / "notes.pdf").write_bytes(b"%PDF-1.4\n%...")
    (root / "dogs" / "empty.jpg").write_bytes(b"")
    jpg = (root / "cats" / "a.jpg").read_bytes()
    (root / "cats" / "trunc.jpg").write_bytes(jpg[: len(jpg) // 3])
    (root / "cats" / "fake.png").write_bytes(b"this is not a png at all")
    (root / "dogs" / "bomb.png").write_bytes(bomb_png())
    return root


@pytest.fixture
def mnist_files(tmp_path):
    """train-images-idx3-ubyte.gz / train-labels-idx1-ubyte.gz with 20 28x28 digits."""
    rng = np.random.RandomState(0)
    imgs = (rng.rand(20, 28, 28) * 255).astype(np.uint8)
    labels = (np.arange(20) % 10).astype(np.uint8)
    d = tmp_path / "mnist"
    d.mkdir()
    (d / "train-images-idx3-ubyte.gz").write_bytes(
        gzip.compress(struct.pack(">BBBBIII", 0, 0, 8, 3, 20, 28, 28) + imgs.tobytes()))
    (d / "train-labels-idx1-ubyte.gz").write_bytes(
        gzip.compress(struct.pack(">BBBBI", 0, 0, 8, 1, 20) + labels.tobytes()))
    return d, imgs, labels


def write_tar(path, members: dict):
    import tarfile

    with tarfile.open(path, "w:gz") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return path


@pytest.fixture
def cifar_tarball(tmp_path):
    """A CIFAR-10-shaped python tarball: 5 batches of 4 images each + batches.meta (pickles)."""
    import pickle

    rng = np.random.RandomState(0)
    members = {}
    for b in range(1, 6):
        data = (rng.rand(4, 3072) * 255).astype(np.uint8)
        members[f"cifar-10-batches-py/data_batch_{b}"] = pickle.dumps(
            {b"batch_label": b"training batch", b"labels": [(b + i) % 10 for i in range(4)], b"data": data,
             b"filenames": [b"x.png"] * 4}, protocol=2)
    members["cifar-10-batches-py/test_batch"] = members["cifar-10-batches-py/data_batch_1"]
    names = [b"airplane", b"automobile", b"bird", b"cat", b"deer", b"dog", b"frog", b"horse", b"ship",
             b"truck"]
    members["cifar-10-batches-py/batches.meta"] = pickle.dumps({b"label_names": names}, protocol=2)
    return write_tar(tmp_path / "cifar-10-python.tar.gz", members)


@pytest.fixture
def malicious_zip(tmp_path):
    """A zip whose member names try to escape (../, absolute) next to two good images."""
    path = tmp_path / "evil.zip"
    good = io.BytesIO()
    Image.fromarray(noise(32, 32, seed=1)).save(good, format="PNG")
    good2 = io.BytesIO()
    Image.fromarray(noise(32, 32, seed=2)).save(good2, format="PNG")
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("photos/ok.png", good.getvalue())
        zf.writestr("photos/ok2.png", good2.getvalue())
        zf.writestr("../../escape.png", good.getvalue())
        zf.writestr("/etc/owned.png", good.getvalue())
        zf.writestr("photos/..\\..\\win.png", good.getvalue())
    return path
