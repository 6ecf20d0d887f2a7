"""ImageDataset / open_dataset: tensors, labels, mirror, subset, hashing, plain folders, errors."""

import pickle
import shutil
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

from adagan.data import ImageDataset, open_dataset, prepare_dataset
from adagan.errors import DatasetError

from .conftest import noise, save


@pytest.fixture
def labeled_zip(tmp_path):
    src = tmp_path / "src"
    for i in range(6):
        save(src / ("red" if i % 2 else "blue") / f"{i}.png", noise(40, 48, seed=i))
    return prepare_dataset(src, tmp_path / "lab.zip", resolution=16).dest


def test_zip_tensors_and_labels(labeled_zip):
    ds = open_dataset(str(labeled_zip), use_labels=True)
    assert (len(ds), ds.resolution, ds.num_channels, ds.c_dim, ds.has_labels) == (6, 16, 3, 2, True)
    assert ds.class_names == ["blue", "red"] and ds.name == "lab"
    img, label = ds[0]
    assert img.dtype == torch.uint8 and img.shape == (3, 16, 16)
    assert label.dtype == torch.float32 and label.tolist() == [1.0, 0.0]
    imgs, labels = ds.get_batch([0, 3, 5, 3])
    assert imgs.shape == (4, 3, 16, 16) and labels.shape == (4, 2)
    assert (labels.sum(1) == 1).all() and torch.equal(imgs[1], imgs[3])
    assert torch.equal(imgs[0], ds[0][0])
    # Without labels: c_dim 0 and labels of shape [0].
    ds0 = open_dataset(labeled_zip)
    assert ds0.c_dim == 0 and not ds0.has_labels and ds0.data_has_labels and ds0[0][1].shape == (0,)
    assert ds0.get_batch([1, 2])[1].shape == (2, 0)
    with pytest.raises(IndexError):
        ds.get_batch([6])


def test_cached_and_uncached_decoding_agree(labeled_zip):
    a = ImageDataset(labeled_zip, cache=True)
    b = ImageDataset(labeled_zip, cache=False, workers=1)
    idx = [5, 0, 2, 2, 4, 1, 3, 0, 5]
    assert torch.equal(a.get_batch(idx)[0], b.get_batch(idx)[0])
    a.preload()
    assert a._loaded.all() and torch.equal(a.get_batch(idx)[0], b.get_batch(idx)[0])


def test_mirror_doubles_with_x_flips(labeled_zip):
    ds = open_dataset(labeled_zip, mirror=True, use_labels=True)
    assert len(ds) == 12
    x, lx = ds[2]
    y, ly = ds[8]
    assert torch.equal(y, x.flip(-1)) and torch.equal(lx, ly)
    batch = ds.get_batch(list(range(12)))[0]
    assert torch.equal(batch[6:], batch[:6].flip(-1))


def test_subset_is_seeded(labeled_zip):
    a = open_dataset(labeled_zip, subset=3, seed=1)
    b = open_dataset(labeled_zip, subset=3, seed=1)
    c = open_dataset(labeled_zip, subset=3, seed=2)
    assert len(a) == 3 and a.names == b.names
    assert torch.equal(a.get_batch([0, 1, 2])[0], b.get_batch([0, 1, 2])[0])
    assert a.names != c.names or a.content_hash() == c.content_hash()
    assert len(open_dataset(labeled_zip, subset=3, mirror=True)) == 6
    with pytest.raises(DatasetError, match="more than the 6 images"):
        open_dataset(labeled_zip, subset=7)


def test_content_hash_is_stable_and_keyed(labeled_zip, tmp_path):
    h = open_dataset(labeled_zip).content_hash()
    assert h == open_dataset(labeled_zip).content_hash() and len(h) >= 16
    assert open_dataset(labeled_zip, mirror=True).content_hash() != h
    assert open_dataset(labeled_zip, use_labels=True).content_hash() != h
    copy = tmp_path / "copy.zip"
    shutil.copy(labeled_zip, copy)
    assert open_dataset(copy).content_hash() == h  # content, not path
    # The unpacked folder hashes its bytes the same way each time.
    out = tmp_path / "unpacked"
    zipfile.ZipFile(labeled_zip).extractall(out)
    f = open_dataset(out)
    assert f.content_hash() == open_dataset(out).content_hash()
    assert torch.equal(f.get_batch(range(6))[0], open_dataset(labeled_zip).get_batch(range(6))[0])


def test_resolution_check(labeled_zip):
    assert open_dataset(labeled_zip, resolution=16).resolution == 16
    with pytest.raises(DatasetError, match="is 16x16 but resolution 32"):
        open_dataset(labeled_zip, resolution=32)


def test_plain_folder_of_same_size_images_just_works(tmp_path):
    d = tmp_path / "plain"
    save(d / "a.jpg", noise(32, 32, seed=1), quality=95)
    rgba = noise(32, 32, c=4, seed=2)
    rgba[..., 3] = 0  # fully transparent -> white
    save(d / "sub" / "b.png", rgba)
    save(d / "c.png", noise(32, 32, c=1, seed=3))
    (d / ".DS_Store").write_bytes(b"junk")
    (d / "readme.txt").write_text("hi")
    ds = open_dataset(d)
    assert (len(ds), ds.resolution, ds.num_channels, ds.name) == (3, 32, 3, "plain")
    imgs = ds.get_batch([0, 1, 2])[0]
    assert (imgs[2] == 255).all()  # sub/b.png sorts last; composited on white
    assert torch.equal(imgs[1][0], imgs[1][1])  # gray -> RGB replicates
    # All gray -> 1 channel.
    g = tmp_path / "gray"
    for i in range(2):
        save(g / f"{i}.png", noise(16, 16, c=1, seed=i))
    assert open_dataset(g).num_channels == 1


@pytest.mark.parametrize("problem", ["sizes", "non_square", "corrupt", "empty", "truncated"])
def test_unusable_plain_folders_say_run_the_tool(tmp_path, problem):
    d = tmp_path / "bad"
    save(d / "a.png", noise(32, 32, seed=1))
    if problem == "sizes":
        save(d / "b.png", noise(64, 64, seed=2))
        match = "different sizes.*adagan dataset"
    elif problem == "non_square":
        (d / "a.png").unlink()
        save(d / "b.png", noise(32, 48, seed=2))
        match = "not square"
    elif problem == "corrupt":
        (d / "b.png").write_bytes(b"garbage")
        match = "not readable images.*adagan dataset"
    elif problem == "empty":
        (d / "a.png").unlink()
        (d / "x.txt").write_text("")
        match = "holds no images"
    else:
        data = (d / "a.png").read_bytes()
        save(d / "b.png", noise(32, 32, seed=3))
        (d / "b.png").write_bytes((d / "b.png").read_bytes()[: len(data) // 2])
        match = r"(not readable images \(b.png\)|cannot decode b.png).*adagan dataset"
    with pytest.raises(DatasetError, match=match):
        ds = open_dataset(d)
        ds.get_batch(range(len(ds)))


def test_bad_specs(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        open_dataset(tmp_path / "nope.zip")
    (tmp_path / "x.tar.gz").write_bytes(b"not a zip")
    with pytest.raises(DatasetError, match="adagan dataset --source"):
        open_dataset(tmp_path / "x.tar.gz")
    (tmp_path / "broken.zip").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(DatasetError):
        open_dataset(tmp_path / "broken.zip")


def test_labels_missing_for_some_images(tmp_path):
    src = tmp_path / "s"
    for i in range(3):
        save(src / f"{i}.png", noise(16, 16, seed=i))
    (src / "dataset.json").write_text('{"labels": [["0.png", 0], ["1.png", 1]]}')
    with pytest.raises(DatasetError, match="no label for 1 image"):
        open_dataset(src, use_labels=True)
    assert open_dataset(src).c_dim == 0  # fine without labels


def test_dataset_pickles_for_dataloader_workers(labeled_zip):
    ds = open_dataset(labeled_zip, use_labels=True)
    ds.get_batch([0, 1])
    ds2 = pickle.loads(pickle.dumps(ds))
    assert torch.equal(ds2.get_batch([0, 5])[0], ds.get_batch([0, 5])[0])
    loader = torch.utils.data.DataLoader(ds, batch_size=4, num_workers=0)
    x, c = next(iter(loader))
    assert x.shape == (4, 3, 16, 16) and c.shape == (4, 2)


def test_rgba_dataset_keeps_four_channels(tmp_path):
    src = tmp_path / "a"
    for i in range(2):
        save(src / f"{i}.png", noise(16, 16, c=4, seed=i))
    dest = prepare_dataset(src, tmp_path / "a.zip", resolution=16, channels=4).dest
    ds = open_dataset(dest)
    assert ds.num_channels == 4
    want = np.asarray(Image.open(src / "0.png")).transpose(2, 0, 1)
    assert (ds[0][0].numpy() == want).all()


def test_corrupt_member_of_a_tool_zip_names_the_file(labeled_zip, tmp_path):
    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(labeled_zip) as zin, zipfile.ZipFile(bad, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info)
            zout.writestr(info, data[:40] if info.filename.endswith("img00000002.png") else data)
    ds = open_dataset(bad)  # lazy: opening is cheap and does not decode
    ds.get_batch([0, 1])
    with pytest.raises(DatasetError, match="cannot decode 00000/img00000002.png"):
        ds.get_batch([2])


@pytest.mark.parametrize("declared", [1, 4])
def test_channels_that_disagree_with_dataset_json_are_refused(labeled_zip, tmp_path, run_cli, declared):
    # dataset.json edited to say 1 (or 4) channels while the images are RGB: refused, as a size that differs from
    # its resolution is, instead of silently training a grayscale (RGBA) model on converted images.
    import json

    bad = tmp_path / "edited.zip"
    with zipfile.ZipFile(labeled_zip) as zin, zipfile.ZipFile(bad, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info)
            if info.filename == "dataset.json":
                meta = json.loads(data)
                assert meta["channels"] == 3
                data = json.dumps({**meta, "channels": declared}).encode()
            zout.writestr(info, data)
    ds = open_dataset(bad)
    with pytest.raises(DatasetError, match=f"has 3 channel\\(s\\) but dataset.json says {declared}"):
        ds.get_batch([0])
    code, _, err = run_cli("train", "--data", bad, "--outdir", tmp_path / "runs", "--kimg", "0.004", "--batch", "2",
                           "--threads", "1")
    assert code == 1 and "dataset.json says" in err and len(err.strip().splitlines()) == 1, err
