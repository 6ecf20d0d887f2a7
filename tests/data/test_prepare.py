"""The dataset tool on messy sources: counts and reasons, modes, geometry, labels, hostile input,
atomicity."""

import io
import json
import zipfile

import numpy as np
import pytest
from PIL import Image

from adagan.data import prepare_dataset
from adagan.errors import DatasetError

from .conftest import noise, save


def read_zip(path):
    with zipfile.ZipFile(path) as zf:
        meta = json.loads(zf.read("dataset.json"))
        imgs = {n: np.asarray(Image.open(io.BytesIO(zf.read(n))))
                for n in zf.namelist() if n.endswith(".png")}
    return meta, imgs


def no_temp_files(folder):
    return not [p for p in folder.iterdir() if p.name.endswith(".tmp")]


def test_messy_folder_counts_reasons_and_labels(messy_dir, tmp_path):
    dest = tmp_path / "out.zip"
    r = prepare_dataset(messy_dir, dest, resolution=64, workers=2)
    # 5 cats + 5 dogs usable; the duplicate is dropped.
    assert r.written == 10
    sk = {k: sorted(n for n, _ in v) for k, v in r.skipped.items()}
    assert sk["wrong type"] == [".DS_Store", "cats/._a.jpg", "notes.pdf"]
    assert sk["unreadable"] == ["cats/fake.png", "cats/trunc.jpg", "dogs/empty.jpg"]
    assert sk["too small"] == ["dogs/tiny.png"]
    assert sk["too large"] == ["dogs/bomb.png"]
    assert r.duplicates == [("cats/b_copy.png", "cats/b.png")]
    assert r.labels_mode == "subfolders" and r.class_names == ["cats", "dogs"]
    assert r.resolution == 64 and r.channels == 3

    meta, imgs = read_zip(dest)
    assert sorted(imgs) == [f"00000/img{i:08d}.png" for i in range(10)]
    assert all(a.shape == (64, 64, 3) and a.dtype == np.uint8 for a in imgs.values())
    labels = dict(map(tuple, meta["labels"]))
    assert sorted(labels) == sorted(imgs) and sorted(labels.values()) == [0] * 5 + [1] * 5
    assert meta["class_names"] == ["cats", "dogs"] and meta["resolution"] == 64 and meta["channels"] == 3
    assert meta["counts"]["skipped"] == {"too large": 1, "too small": 1, "unreadable": 3, "wrong type": 3}
    originals = dict(map(tuple, meta["originals"]))
    assert originals["00000/img00000000.png"] == "cats/a.jpg"
    # Uncompressed zip of PNGs.
    with zipfile.ZipFile(dest) as zf:
        assert {i.compress_type for i in zf.infolist()} == {zipfile.ZIP_STORED}

    text = r.summary()
    for word in ("Wrote 10 images", "unreadable: 3", "too small: 1", "wrong type: 3", "Duplicates: 1 skipped",
                 "2 classes from subfolders"):
        assert word in text, text
    assert no_temp_files(tmp_path)


def test_auto_resolution_and_upscale(messy_dir, tmp_path):
    r = prepare_dataset(messy_dir, tmp_path / "a.zip")
    assert r.resolution == 64 and any("chosen automatically" in n for n in r.notes)
    r = prepare_dataset(messy_dir, tmp_path / "b.zip", resolution=64, upscale=True)
    assert "too small" not in r.skipped and r.written == 11


def test_modes_rgba_composited_on_background_or_kept(tmp_path):
    src = tmp_path / "src"
    rgba = np.zeros((32, 32, 4), np.uint8)
    rgba[:16, :, :] = [255, 0, 0, 255]  # top half opaque red, bottom half fully transparent
    save(src / "x.png", rgba)
    _, imgs = read_zip(prepare_dataset(src, tmp_path / "w.zip", resolution=32).dest)
    a = next(iter(imgs.values()))
    assert a.shape == (32, 32, 3) and (a[0, 0] == [255, 0, 0]).all() and (a[-1, -1] == 255).all()
    _, imgs = read_zip(prepare_dataset(src, tmp_path / "b.zip", resolution=32, background="#000000").dest)
    assert (next(iter(imgs.values()))[-1, -1] == 0).all()
    _, imgs = read_zip(prepare_dataset(src, tmp_path / "k.zip", resolution=32, channels=4).dest)
    a = next(iter(imgs.values()))
    assert a.shape == (32, 32, 4) and a[0, 0, 3] == 255 and a[-1, -1, 3] == 0


def test_grayscale_palette_and_16bit(tmp_path):
    src = tmp_path / "gray"
    save(src / "l.png", noise(32, 32, c=1, seed=1))
    save(src / "one.png", Image.fromarray(noise(32, 32, c=1, seed=2)).convert("1"))
    deep = (np.linspace(0, 65535, 32 * 32).reshape(32, 32)).astype(np.uint16)
    save(src / "deep.png", Image.fromarray(deep))
    r = prepare_dataset(src, tmp_path / "g.zip", resolution=32)
    assert r.channels == 1 and r.written == 3
    meta, imgs = read_zip(r.dest)
    assert all(a.shape == (32, 32) for a in imgs.values())
    deep_out = imgs[next(o for o, s in meta["originals"] if s == "deep.png")]
    assert deep_out.min() == 0 and deep_out.max() == 255  # 16-bit range mapped, not truncated to the low byte
    # A colour palette image makes the set RGB.
    save(src / "pal.gif", Image.fromarray(noise(32, 32, seed=3)).convert("P"))
    r = prepare_dataset(src, tmp_path / "c.zip", resolution=32)
    assert r.channels == 3 and r.written == 4
    # Forcing 1 channel converts colour and says so.
    r = prepare_dataset(src, tmp_path / "f.zip", resolution=32, channels=1)
    assert any("converted to grayscale" in n for n in r.notes)


def test_exif_orientation_is_applied(tmp_path):
    src = tmp_path / "exif"
    arr = np.zeros((32, 64, 3), np.uint8)
    arr[:, :32] = 255  # left half white, stored landscape
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display": shown as portrait, white on top
    save(src / "p.jpg", Image.fromarray(arr), exif=exif.tobytes(), quality=100)
    r = prepare_dataset(src, tmp_path / "e.zip", resolution=32, transform="pad", background="black")
    _, imgs = read_zip(r.dest)
    a = next(iter(imgs.values())).astype(int)
    # Displayed portrait: padding left/right (black), white in the top half.
    assert a[:14, 12:20].mean() > 200 and a[18:, 12:20].mean() < 50 and a[:, :6].mean() < 30


@pytest.mark.parametrize("transform", ["center-crop", "center-crop-wide", "pad"])
def test_transforms_make_square_images(tmp_path, transform):
    src = tmp_path / "wide"
    arr = np.zeros((40, 160, 3), np.uint8)
    arr[:, 60:100] = 255  # a white centre band
    save(src / "w.png", arr)
    r = prepare_dataset(src, tmp_path / "t.zip", resolution=32, transform=transform, background="black")
    a = next(iter(read_zip(r.dest)[1].values())).astype(int)
    assert a.shape == (32, 32, 3)
    if transform == "center-crop":  # the 40x40 centre is all white
        assert a.mean() > 240
    elif transform == "pad":  # 160x160 canvas: image rows 60..100 -> 12..20, band columns 12..20
        assert a[16, 16].mean() > 200 and a[2, 16].mean() == 0 and a[16, 2].mean() == 0
    else:  # 80x40 strip letterboxed: rows 8..24, band columns 8..24
        assert a[16, 16].mean() > 200 and a[2, 16].mean() == 0 and a[16, 2].mean() == 0
        assert a[16, 10].mean() > 200


def test_duplicates_keep_and_max_images(messy_dir, tmp_path):
    r = prepare_dataset(messy_dir, tmp_path / "k.zip", resolution=64, duplicates="keep")
    assert r.written == 11 and len(r.duplicates) == 1 and r.duplicates_kept
    r = prepare_dataset(messy_dir, tmp_path / "m.zip", resolution=64, max_images=3)
    assert r.written == 3 and r.stopped_at_max
    assert len(read_zip(r.dest)[1]) == 3


def test_labels_from_dataset_json(tmp_path):
    src = tmp_path / "j"
    for i in range(4):
        save(src / f"{i}.png", noise(32, 32, seed=i))
    (src / "dataset.json").write_text(json.dumps(
        {"labels": [["0.png", 1], ["1.png", 0], ["2.png", 1], ["ghost.png", 0]], "class_names": ["a", "b"]}))
    with pytest.raises(DatasetError, match=r"labels 1 file\(s\) that are not in the source \(e.g. ghost.png\)"):
        prepare_dataset(src, tmp_path / "o.zip", resolution=32)  # docs/data.md: an error, not a silent skip
    (src / "dataset.json").write_text(json.dumps(
        {"labels": [["0.png", 1], ["1.png", 0], ["2.png", 1]], "class_names": ["a", "b"]}))
    r = prepare_dataset(src, tmp_path / "o.zip", resolution=32)  # auto picks dataset.json
    assert r.labels_mode == "dataset.json" and r.class_names == ["a", "b"] and r.written == 3
    assert [n for n, _ in r.skipped["no label"]] == ["3.png"]
    meta, _ = read_zip(r.dest)
    assert [c for _, c in meta["labels"]] == [1, 0, 1]

    (src / "dataset.json").write_text(json.dumps({"labels": [["0.png", "dog"], ["1.png", "cat"]]}))
    r = prepare_dataset(src, tmp_path / "s.zip", resolution=32, labels="dataset.json")
    assert r.class_names == ["cat", "dog"] and r.written == 2

    (src / "dataset.json").write_text(json.dumps({"labels": [["0.png", 0.5]]}))
    with pytest.raises(DatasetError, match="not a class index"):
        prepare_dataset(src, tmp_path / "x.zip", resolution=32)
    (src / "dataset.json").write_text("{not json")
    with pytest.raises(DatasetError, match="not valid JSON"):
        prepare_dataset(src, tmp_path / "y.zip", resolution=32)
    (src / "dataset.json").write_text(json.dumps({"labels": [["nope.png", 0]]}))
    with pytest.raises(DatasetError, match="names none of the files"):
        prepare_dataset(src, tmp_path / "z.zip", resolution=32)
    assert no_temp_files(tmp_path)


def test_label_modes_subfolders_and_none(tmp_path):
    src = tmp_path / "flat"
    save(src / "a.png", noise(32, 32, seed=1))
    save(src / "k" / "b.png", noise(32, 32, seed=2))
    assert prepare_dataset(src, tmp_path / "1.zip", resolution=32).labels_mode == "none"  # auto: root file
    r = prepare_dataset(src, tmp_path / "2.zip", resolution=32, labels="subfolders")
    assert r.written == 1 and [n for n, _ in r.skipped["no label"]] == ["a.png"]
    assert read_zip(r.dest)[0]["labels"] == [["00000/img00000000.png", 0]]
    r = prepare_dataset(src, tmp_path / "3.zip", resolution=32, labels="none")
    assert r.written == 2 and read_zip(r.dest)[0]["labels"] is None
    with pytest.raises(DatasetError, match="no dataset.json"):
        prepare_dataset(src, tmp_path / "4.zip", resolution=32, labels="dataset.json")


def test_zip_source_common_root_and_malicious_names(malicious_zip, tmp_path):
    r = prepare_dataset(malicious_zip, tmp_path / "out" / "o.zip", resolution=32)
    assert r.written == 2
    unsafe = sorted(n for n, _ in r.skipped["unsafe path"])
    assert unsafe == sorted(["../../escape.png", "/etc/owned.png", "photos/..\\..\\win.png"])
    # Nothing was extracted anywhere.
    assert not (tmp_path / "escape.png").exists() and not (tmp_path.parent / "escape.png").exists()
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["o.zip"]


def test_zip_source_with_class_folders_under_a_wrapper(tmp_path):
    path = tmp_path / "cls.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for i, cls in enumerate(["x", "y", "x"]):
            buf = io.BytesIO()
            Image.fromarray(noise(32, 32, seed=i)).save(buf, format="PNG")
            zf.writestr(f"wrapper/{cls}/{i}.png", buf.getvalue())
        zf.writestr("wrapper/x/broken.png", b"\x89PNG\r\n\x1a\nxx")
    r = prepare_dataset(path, tmp_path / "o.zip")
    assert r.written == 3 and r.class_names == ["x", "y"] and len(r.skipped["unreadable"]) == 1


def test_mnist_idx(mnist_files, tmp_path):
    d, imgs, labels = mnist_files
    r = prepare_dataset(d, tmp_path / "m.zip")
    assert (r.written, r.resolution, r.channels, r.class_names) == (20, 32, 1, [str(i) for i in range(10)])
    meta, out = read_zip(r.dest)
    first = out["00000/img00000000.png"]
    assert first.shape == (32, 32) and (first[2:30, 2:30] == imgs[0]).all() and first[:2].max() == 0
    assert [c for _, c in meta["labels"]] == labels.tolist()
    r = prepare_dataset(d / "train-images-idx3-ubyte.gz", tmp_path / "m2.zip", resolution=16, labels="none")
    assert r.written == 20 and r.resolution == 16 and read_zip(r.dest)[0]["labels"] is None
    (d / "train-images-idx3-ubyte.gz").write_bytes(b"\x1f\x8b garbage")
    with pytest.raises(DatasetError, match="re-download"):
        prepare_dataset(d, tmp_path / "m3.zip")


def test_cifar10_tarball(cifar_tarball, tmp_path):
    r = prepare_dataset(cifar_tarball, tmp_path / "c.zip")
    assert (r.written, r.resolution, r.channels) == (20, 32, 3)
    assert r.class_names[:3] == ["airplane", "automobile", "bird"]
    meta, out = read_zip(r.dest)
    assert out["00000/img00000000.png"].shape == (32, 32, 3)
    assert [c for _, c in meta["labels"]][:4] == [1, 2, 3, 4]


def test_cifar_pickle_with_code_is_refused(tmp_path):
    import os
    import pickle

    from .conftest import write_tar

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo owned > " + str(tmp_path / "owned"),))

    evil = pickle.dumps({b"data": Evil()})
    tar = write_tar(tmp_path / "evil.tar.gz", {"cifar-10-batches-py/data_batch_1": evil})
    with pytest.raises(DatasetError, match="refusing to load"):
        prepare_dataset(tar, tmp_path / "e.zip")
    assert not (tmp_path / "owned").exists()


@pytest.mark.parametrize("kind", ["missing", "empty", "junk_only", "dest_exists", "dest_not_zip",
                                  "dest_parent_file", "dest_unwritable", "bad_option", "unknown_file"])
def test_whole_job_errors(tmp_path, kind):
    src = tmp_path / "src"
    src.mkdir()
    dest = tmp_path / "o.zip"
    kw = {}
    if kind == "missing":
        src, match = tmp_path / "nope", "no such file"
    elif kind == "empty":
        match = "empty"
    elif kind == "junk_only":
        (src / "a.txt").write_text("hi")
        (src / "b.jpg").write_bytes(b"")
        match = "no usable images.*1 wrong type"
    elif kind == "dest_exists":
        save(src / "a.png", noise(32, 32))
        dest.write_bytes(b"old")
        match = "already exists; pass --force"
    elif kind == "dest_not_zip":
        dest, match = tmp_path / "o.tar", "ending in .zip"
    elif kind == "dest_parent_file":
        save(src / "a.png", noise(32, 32))
        (tmp_path / "afile").write_text("x")
        dest, match = tmp_path / "afile" / "o.zip", "cannot|not writable"
    elif kind == "dest_unwritable":
        save(src / "a.png", noise(32, 32))
        dest, match = "/proc/adagan-test.zip", "cannot write|not writable"
    elif kind == "bad_option":
        kw, match = {"transform": "stretch"}, "choose one of"
    else:
        (tmp_path / "file.xyz").write_bytes(b"hello")
        src, match = tmp_path / "file.xyz", "not a folder, zip"
    with pytest.raises(DatasetError, match=match):
        prepare_dataset(src, dest, resolution=32, **kw)
    if kind == "dest_exists":
        assert dest.read_bytes() == b"old"
        assert prepare_dataset(src, dest, resolution=32, overwrite=True).written == 1
    assert no_temp_files(tmp_path)


def test_interrupted_write_leaves_no_half_zip(messy_dir, tmp_path, monkeypatch):
    from adagan.data import images

    dest = tmp_path / "o.zip"
    calls = []

    def boom(arr, compress_level=6):
        calls.append(1)
        if len(calls) > 3:
            raise KeyboardInterrupt
        return real(arr, compress_level)

    real = images.encode_png
    monkeypatch.setattr(images, "encode_png", boom)
    with pytest.raises(KeyboardInterrupt):
        prepare_dataset(messy_dir, dest, resolution=64, workers=1)
    assert not dest.exists() and no_temp_files(tmp_path)
    # An existing DEST survives a failed --force rewrite untouched.
    dest.write_bytes(b"previous")
    calls.clear()
    with pytest.raises(KeyboardInterrupt):
        prepare_dataset(messy_dir, dest, resolution=64, workers=1, overwrite=True)
    assert dest.read_bytes() == b"previous" and no_temp_files(tmp_path)


def test_output_is_deterministic(messy_dir, tmp_path):
    a = prepare_dataset(messy_dir, tmp_path / "a.zip", resolution=32, workers=1).dest.read_bytes()
    b = prepare_dataset(messy_dir, tmp_path / "b.zip", resolution=32, workers=3).dest.read_bytes()
    assert a == b
