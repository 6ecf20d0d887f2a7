"""The dataset tool: turn a messy source into a clean training zip and report exactly what happened.

Output format (the de-facto StyleGAN convention, so other tools read it too): an uncompressed zip of
PNGs named `00000/img00000000.png` (1000 per folder) and a `dataset.json` with
`{"labels": [["00000/img00000000.png", 3], ...] | null, "class_names": [...], "license": ..., "source": ...}`
plus our own keys (resolution, channels, options, counts, the original file of every image).

The zip is written to a temporary file beside DEST and renamed over it at the end, so DEST is either
the old file or the complete new one, never half-written.
"""

from __future__ import annotations

import collections
import hashlib
import json
import os
import sys
import tempfile
import threading
import zipfile
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np

from adagan.data import images as I
from adagan.data.sources import Item, Source, open_source
from adagan.errors import DatasetError
from adagan.files import to_pil
from adagan.limits import MAX_CLASSES, check_options

MAX_BYTES_IN_FLIGHT = 2**30  # encoded and decoded bytes of the images being converted at once, all threads

LABEL_MODES = ("auto", "subfolders", "dataset.json", "none")
FORMAT_VERSION = 1
ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # fixed timestamps: the same input gives a byte-identical zip


@dataclass
class PrepareReport:
    """What `prepare_dataset` did. `skipped` maps reason -> [(source name, detail)]."""

    dest: Path
    written: int = 0
    resolution: int = 0
    channels: int = 0
    labels_mode: str = "none"
    class_names: list[str] = field(default_factory=list)
    skipped: dict[str, list[tuple[str, str]]] = field(default_factory=lambda: collections.defaultdict(list))
    duplicates: list[tuple[str, str]] = field(default_factory=list)  # (name, name of the earlier copy)
    duplicates_kept: bool = False
    unmatched_labels: list[str] = field(default_factory=list)  # dataset.json entries with no file
    notes: list[str] = field(default_factory=list)
    stopped_at_max: bool = False
    bytes: int = 0

    @property
    def num_skipped(self) -> int:
        return sum(len(v) for v in self.skipped.values())

    def counts(self) -> dict:
        return {"written": self.written, "skipped": {k: len(v) for k, v in sorted(self.skipped.items())},
                "duplicates": len(self.duplicates), "duplicates_kept": self.duplicates_kept}

    def summary(self, verbose: bool = False) -> str:
        """Several lines for a human: counts with reasons and examples (all of them when verbose)."""
        n_ex = None if verbose else 3

        def examples(pairs, fmt) -> str:
            shown = pairs if n_ex is None else pairs[:n_ex]
            rest = len(pairs) - len(shown)
            more = f"; ... {rest} more (--verbose lists all)" if rest else ""
            return "; ".join(fmt(p) for p in shown) + more

        mode = {1: "grayscale", 3: "RGB", 4: "RGBA"}.get(self.channels, f"{self.channels}-channel")
        lines = [f"Wrote {self.written:,} images ({self.resolution}x{self.resolution} {mode}) to {self.dest} "
                 f"({self.bytes / 2**20:.1f} MB)."]
        if self.labels_mode != "none":
            names = ", ".join(self.class_names[:10]) + (", ..." if len(self.class_names) > 10 else "")
            lines.append(f"Labels: {len(self.class_names)} classes from {self.labels_mode} ({names}).")
        else:
            lines.append("Labels: none.")
        if self.num_skipped:
            lines.append(f"Skipped {self.num_skipped:,} file(s):")
            for reason in sorted(self.skipped, key=lambda r: -len(self.skipped[r])):
                pairs = self.skipped[reason]
                lines.append(f"  {reason}: {len(pairs):,} ({examples(pairs, lambda p: f'{p[0]}: {p[1]}')})")
        else:
            lines.append("Skipped: none.")
        if self.duplicates:
            verb = "kept" if self.duplicates_kept else "skipped"
            lines.append(f"Duplicates: {len(self.duplicates):,} {verb} (same pixels as an earlier image: "
                         f"{examples(self.duplicates, lambda p: f'{p[0]} = {p[1]}')}).")
        else:
            lines.append("Duplicates: none.")
        if self.unmatched_labels:
            ex = examples([(n,) for n in self.unmatched_labels], lambda p: p[0])
            lines.append(f"dataset.json lists {len(self.unmatched_labels):,} file(s) that are not in the "
                         f"source: {ex}.")
        if self.stopped_at_max:
            lines.append("Stopped at --max-images.")
        lines += [f"Note: {n}" for n in self.notes]
        return "\n".join(lines)


def prepare_dataset(source: str | os.PathLike, dest: str | os.PathLike, *, resolution: int | None = None,
                    transform: str = "center-crop", resize_filter: str = "lanczos",
                    channels: int | None = None, labels: str = "auto", max_images: int | None = None,
                    background: str | tuple = "white", upscale: bool = False, duplicates: str | None = None,
                    max_pixels: int = I.DEFAULT_MAX_PIXELS, overwrite: bool = False,
                    workers: int | None = None, progress: bool = False,
                    log: Callable[[str], None] | None = None, license: str | None = None) -> PrepareReport:
    """Convert `source` (folder, zip, MNIST, CIFAR-10 tarball, 'builtin:twemoji') into the dataset zip `dest`.

    resolution: output side in pixels; None picks one from the data (the largest power of two that 90% of
      the images reach without upscaling; the source's native size for MNIST/CIFAR/builtin).
    channels: 1, 3 or 4 (4 keeps alpha); None = 1 when every image is grayscale, else 3.
    labels: 'auto' (dataset.json at the source root if present, else sub-folders when every image is in a
      class folder, else none), 'subfolders', 'dataset.json' or 'none'.
    duplicates: 'skip' or 'keep' images whose output pixels equal an earlier image's; None = skip, except
      MNIST/CIFAR/builtin keep their canonical counts.
    log: receives one-line notes as decisions are made (chosen resolution, label source, ...).
    Raises DatasetError for problems with the whole job; per-file problems are counted in the report.
    """
    say = log or (lambda msg: None)
    _check_options(transform, resize_filter, channels, labels, resolution, max_images, duplicates, max_pixels)
    try:
        bg = I.parse_color(background)
    except ValueError as e:
        raise DatasetError(f"--background: {e}") from None
    dest = Path(dest).expanduser()
    _check_dest(dest, overwrite, source)

    src = open_source(source)
    try:
        fixed = getattr(src, "fixed_resolution", None)
        if fixed is not None and resolution is not None and fixed != resolution:
            raise DatasetError(f"--source {source} asks for {fixed} px but --resolution is {resolution}; "
                               "drop one of them")
        report = PrepareReport(dest=dest)
        for name, reason, detail in src.rejected:
            report.skipped[reason].append((name, detail))
        candidates = _filter_by_name(src.items, report)
        label_of, class_names, labels_mode = _resolve_labels(src, candidates, labels, report)
        report.labels_mode, report.class_names = labels_mode, class_names
        candidates = _keep_labelled(candidates, label_of, labels_mode, report)
        if not candidates:
            raise DatasetError(f"no usable images in {src.description}: {_reasons(report)}; "
                               "put JPEG/PNG images in the folder (sub-folders = classes)")
        resolution, channels = _settle_shape(src, candidates, transform, max_pixels, resolution, channels, report,
                                             say)
        if resolution & (resolution - 1) or not 16 <= resolution <= 1024:
            report.notes.append(f"resolution {resolution} is not a power of two from 16 to 1024, "
                                "which training needs")
        report.resolution, report.channels = resolution, channels
        keep_dups = (duplicates == "keep") if duplicates is not None else src.keep_duplicates
        report.duplicates_kept = keep_dups

        options = {"resolution": resolution, "channels": channels, "transform": transform,
                   "resize_filter": resize_filter, "background": "#{:02x}{:02x}{:02x}".format(*bg),
                   "upscale": upscale, "labels": labels_mode, "duplicates": "keep" if keep_dups else "skip",
                   "max_images": max_images}

        budget = _Budget(MAX_BYTES_IN_FLIGHT)

        def process(item: Item):
            held = budget.acquire(_cost(item, max_pixels))
            try:
                return _convert_one(item, resolution=resolution, channels=channels, transform=transform,
                                    resize_filter=resize_filter, upscale=upscale, background=bg,
                                    max_pixels=max_pixels)
            except I.Skip as e:
                # Returned, not raised: drop its traceback and context, whose frames still hold the file's bytes
                # (hundreds of MB for a zip bomb's member) until the writer gets to this result.
                e.__traceback__ = e.__context__ = e.__cause__ = None
                return e
            except Exception as e:  # noqa: BLE001 - one bad file must not end the whole conversion
                return I.Skip(I.UNREADABLE, f"{type(e).__name__}: {e}")
            finally:
                budget.release(held)

        _write_zip(dest, candidates, process, label_of, class_names, labels_mode, report, src, options,
                   keep_dups, max_images, workers, progress, license)
        return report
    finally:
        src.close()


def _keep_labelled(candidates: list[Item], label_of: dict, labels_mode: str, report: PrepareReport) -> list[Item]:
    """The candidates that have a label (all of them when unlabelled); the others are reported skipped."""
    if labels_mode == "none":
        return candidates
    kept = []
    for it in candidates:
        if it.name in label_of:
            kept.append(it)
        else:
            detail = "not inside a class sub-folder" if labels_mode == "subfolders" else "no entry in dataset.json"
            report.skipped[I.NO_LABEL].append((it.name, detail))
    return kept


def _settle_shape(src, candidates: list[Item], transform: str, max_pixels: int, resolution: int | None,
                  channels: int | None, report: PrepareReport, say) -> tuple[int, int]:
    """(resolution, channels): as given, else chosen from the images (noted in the report and the log)."""
    if resolution is not None and channels is not None:
        return resolution, channels
    res_auto, ch_auto, note = _scan_defaults(src, candidates, transform, max_pixels)
    if resolution is None:
        if res_auto is None:
            raise DatasetError(f"no readable images in {src.description} ({len(candidates)} "
                               "candidates failed to open); check the files")
        resolution = res_auto
        say(f"--resolution not given: using {resolution} ({note}).")
        report.notes.append(f"resolution {resolution} chosen automatically ({note})")
    if channels is None:
        channels = ch_auto
        why = "all images are grayscale" if channels == 1 else "colour images present"
        say(f"--channels not given: using {channels} ({why}).")
    return resolution, channels


# ---- option checks ---------------------------------------------------------------------------------------


def _check_options(transform, resize_filter, channels, labels, resolution, max_images, duplicates,
                   max_pixels):
    if transform not in I.TRANSFORMS:
        raise DatasetError(f"--transform {transform!r}: choose one of {', '.join(I.TRANSFORMS)}")
    if resize_filter not in I.RESIZE_FILTERS:
        raise DatasetError(f"--resize-filter {resize_filter!r}: choose one of {', '.join(I.RESIZE_FILTERS)}")
    if channels not in (None, 1, 3, 4):
        raise DatasetError(f"--channels {channels}: choose 1 (gray), 3 (RGB) or 4 (RGB + alpha)")
    if labels not in LABEL_MODES:
        raise DatasetError(f"--labels {labels!r}: choose one of {', '.join(LABEL_MODES)}")
    check_options("dataset", resolution=resolution, max_images=max_images, max_pixels=max_pixels)
    if duplicates not in (None, "skip", "keep"):
        raise DatasetError(f"--duplicates {duplicates!r}: choose skip or keep")


def _check_dest(dest: Path, overwrite: bool, source) -> None:
    if dest.suffix.lower() != ".zip":
        raise DatasetError(f"--dest {dest}: the dataset is written as a zip; give a name ending in .zip")
    if dest.is_dir():
        raise DatasetError(f"--dest {dest} is a folder; give a file name ending in .zip")
    if dest.exists() and not overwrite:
        raise DatasetError(f"--dest {dest} already exists; pass --force to replace it or choose another name")
    try:
        if str(source) and not str(source).startswith("builtin:") and Path(source).expanduser().resolve() \
                == dest.resolve():
            raise DatasetError(f"--dest {dest} is the --source; write the dataset to a new file")
    except OSError:
        pass
    parent = dest.parent
    if not parent.exists():
        try:
            parent.mkdir(parents=True)
        except OSError as e:
            raise DatasetError(f"--dest {dest}: cannot create the folder {parent} ({e.strerror or e}); "
                               "choose a --dest in a folder you can write to") from None
    if not os.access(parent, os.W_OK):
        raise DatasetError(f"--dest {dest}: the folder {parent} is not writable; choose a --dest in a folder "
                           "you can write to")


# ---- labels ----------------------------------------------------------------------------------------------


def _filter_by_name(items: list[Item], report: PrepareReport) -> list[Item]:
    kept = []
    for it in items:
        if it.size is None:  # files: decide from the name
            why = I.classify_name(it.name)
            if why is not None:
                report.skipped[why[0]].append((it.name, why[1]))
                continue
        kept.append(it)
    return kept


def _common_root(names: list[str]) -> int:
    """How many leading folders all names share (a zip of 'photos/...' should not make 'photos' a class)."""
    parts = [PurePosixPath(n).parts[:-1] for n in names]
    if not parts:
        return 0
    depth = 0
    while all(len(p) > depth for p in parts) and len({p[depth] for p in parts}) == 1:
        depth += 1
    return depth


def _subfolder_labels(items: list[Item]) -> tuple[dict[str, int], list[str]]:
    strip = _common_root([it.name for it in items])
    cls_of = {}
    for it in items:
        parts = PurePosixPath(it.name).parts[strip:]
        if len(parts) >= 2:
            cls_of[it.name] = parts[0]
    class_names = sorted(set(cls_of.values()))
    index = {c: i for i, c in enumerate(class_names)}
    return {n: index[c] for n, c in cls_of.items()}, class_names


def _norm_label_path(p: str) -> str:
    p = p.replace("\\", "/")
    while p.startswith("./"):
        p = p[2:]
    return p


def _json_labels(meta: dict, items: list[Item], what: str, report: PrepareReport):
    entries = meta.get("labels")
    if entries is None:
        raise DatasetError(f"--labels dataset.json: {what} has \"labels\": null; use --labels subfolders "
                           "or none")
    if isinstance(entries, dict):  # {"path": label} is a common hand-written variant
        entries = list(entries.items())
    if not isinstance(entries, list):
        raise DatasetError(f"{what}: \"labels\" must be a list of [path, class] pairs")
    raw: dict[str, object] = {}
    for e in entries:
        if not (isinstance(e, (list, tuple)) and len(e) == 2 and isinstance(e[0], str)):
            raise DatasetError(f"{what}: bad label entry {str(e)[:60]}; each must be "
                               "[\"path/in/source.png\", class]")
        raw[_norm_label_path(e[0])] = e[1]
    names = meta.get("class_names")
    if isinstance(names, list) and not all(isinstance(c, str) for c in names):
        names = None
    values = list(raw.values())
    if all(isinstance(v, str) for v in values):
        ok = isinstance(names, list) and set(values) <= set(names)
        class_names = list(names) if ok else sorted(set(values))
        if len(set(values)) > MAX_CLASSES:
            raise DatasetError(f"{what}: {len(set(values)):,} different class names, more than the {MAX_CLASSES:,} "
                               "supported")
        index = {c: i for i, c in enumerate(class_names)}
        parsed = {k: index[v] for k, v in raw.items()}
    elif all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v < MAX_CLASSES for v in values):
        n = max(values, default=-1) + 1
        if isinstance(names, list) and len(names) >= n:
            class_names = list(names)
        else:
            class_names = [str(i) for i in range(n)]
        parsed = dict(raw)
    else:
        bad = next(v for v in values if not (isinstance(v, int) and not isinstance(v, bool) and 0 <= v < MAX_CLASSES)
                   and not isinstance(v, str))
        raise DatasetError(f"{what}: label {str(bad)[:40]} is not a class index (0 to {MAX_CLASSES - 1}) or class "
                           "name; fix dataset.json or pass --labels subfolders / none")
    if len(class_names) > MAX_CLASSES:
        raise DatasetError(f"{what}: {len(class_names):,} class_names, more than the {MAX_CLASSES:,} supported")
    have = {it.name for it in items}
    report.unmatched_labels = sorted(k for k in parsed if k not in have)
    return {k: v for k, v in parsed.items() if k in have}, class_names


def _resolve_labels(src: Source, items: list[Item], mode: str, report: PrepareReport):
    """-> (label by item name, class names, mode used)."""
    if src.class_names is not None:  # MNIST / CIFAR / builtin know their labels
        if mode in ("subfolders", "dataset.json"):
            raise DatasetError(f"--labels {mode} does not apply to {src.kind}; its labels come with it "
                               "(use --labels auto or none)")
        if mode == "none":
            return {}, [], "none"
        return {it.name: it.label for it in items if it.label is not None}, list(src.class_names), src.kind
    if src.kind in ("mnist", "cifar10"):
        return {}, [], "none"
    has_json = src.dataset_json is not None and src.dataset_json.get("labels") is not None
    if mode == "dataset.json" or (mode == "auto" and has_json):
        if src.dataset_json is None:
            raise DatasetError(f"--labels dataset.json: {src.description} has no dataset.json at its root; "
                               "use --labels subfolders or none")
        listed = items + [Item(name, lambda: b"") for name, _, _ in src.rejected]  # skipped ones still exist
        label_of, names = _json_labels(src.dataset_json, listed, f"dataset.json of {src.description}", report)
        label_of = {k: v for k, v in label_of.items() if k in {it.name for it in items}}
        if not label_of:
            raise DatasetError(f"dataset.json of {src.description} names none of the files in the source "
                               f"(e.g. {report.unmatched_labels[:1]}); paths must be relative to the source "
                               "root")
        if report.unmatched_labels:  # docs/data.md: a label of a missing file is an error, not a silent skip
            n = len(report.unmatched_labels)
            raise DatasetError(f"dataset.json of {src.description} labels {n:,} file(s) that are not in the source "
                               f"(e.g. {', '.join(report.unmatched_labels[:3])}); fix the paths (relative to the "
                               "source root) or pass --labels subfolders / none")
        return label_of, names, "dataset.json"
    if mode == "subfolders" or mode == "auto":
        label_of, names = _subfolder_labels(items)
        if mode == "subfolders":
            if not names:
                raise DatasetError(f"--labels subfolders: no images in sub-folders of {src.description}; put "
                                   "each class in its own folder (cats/1.jpg, dogs/2.jpg)")
            return label_of, names, "subfolders"
        # auto: only when every image sits in a class folder and there are at least two.
        if len(names) >= 2 and len(label_of) == len(items):
            return label_of, names, "subfolders"
    return {}, [], "none"


# ---- defaults from a header scan ---------------------------------------------------------------------------


def _scan_defaults(src: Source, items: list[Item], transform: str, max_pixels: int):
    """(resolution, channels, explanation) from the image headers of up to 2000 evenly spread items."""
    import io

    from PIL import Image

    if src.default_resolution is not None:
        return src.default_resolution, src.default_channels or 3, f"the native size of {src.kind}"
    step = max(1, len(items) // 2000)
    sides, gray = [], True
    for it in items[::step]:
        try:
            with Image.open(io.BytesIO(it.read())) as im:  # reads the header only
                w, h = im.size
                if im.getexif().get(0x0112) in (5, 6, 7, 8):  # EXIF says: rotate by 90 degrees
                    w, h = h, w
                mode = im.mode
        except Exception:  # noqa: BLE001 - unreadable files are reported by the main pass
            continue
        if w * h > max_pixels:
            continue
        sides.append(I.relevant_side(w, h, transform))
        gray = gray and I.image_channels(mode) == 1
    if not sides:
        return None, 3, ""
    q = int(np.percentile(sides, 10, method="lower"))
    res = max(min(1 << max(q.bit_length() - 1, 0), 1024), 4)
    what = {"center-crop": "shorter side", "pad": "longer side", "center-crop-wide": "width"}[transform]
    note = (f"the largest power of two (at most 1024) that 90% of the images reach with their {what}; "
            "pass --resolution to choose")
    return res, 1 if gray else 3, note


# ---- conversion and writing --------------------------------------------------------------------------------


def _convert_one(item: Item, *, resolution, channels, transform, resize_filter, upscale, background,
                 max_pixels):
    """-> (png bytes, pixel digest, native channel count). Raises Skip."""
    data = item.read()
    if isinstance(data, np.ndarray):
        im = to_pil(data)
    else:
        im = I.open_image(data, max_pixels=max_pixels, draft_size=resolution, transform=transform)
    native = I.image_channels(im.mode)
    im = I.to_channels(im, channels, background)
    im = I.reshape(im, resolution, transform=transform, resize_filter=resize_filter, upscale=upscale,
                   background=background)
    arr = I.to_array(im)
    digest = hashlib.blake2b(arr.tobytes(), digest_size=16, person=str(arr.shape).encode()[:16]).digest()
    return I.encode_png(arr), digest, native


class _Budget:
    """The bytes the conversion threads hold at once (zip bombs: many members of hundreds of MB each).
    `acquire(n)` waits until n more fit; an item larger than the whole budget waits until it is alone."""

    def __init__(self, total: int):
        self.total, self.used, self.cond = total, 0, threading.Condition()

    def acquire(self, n: int) -> int:
        n = min(max(int(n), 0), self.total)
        with self.cond:
            while self.used + n > self.total:
                self.cond.wait()
            self.used += n
        return n

    def release(self, n: int) -> None:
        with self.cond:
            self.used -= n
            self.cond.notify_all()


def _cost(item: Item, max_pixels: int) -> int:
    """Bytes converting `item` may hold: its file, plus its decoded pixels from the header (RGBA, and a
    converted copy); an image whose header does not say is counted at the pixel cap."""
    if item.head is None:  # arrays (MNIST, CIFAR): small
        return item.nbytes
    try:
        size = I.peek_size(item.head())
    except Exception:  # noqa: BLE001 - unreadable: the conversion reports it
        size = None
    pixels = size[0] * size[1] if size else max_pixels
    return item.nbytes + (8 * pixels if pixels <= max_pixels else 0)  # over the cap: refused before decoding


def _ordered_map(fn, items: Iterable, workers: int) -> Iterator:
    """map(fn, items) on a thread pool, in order, with a bounded number of items in flight.

    Pillow releases the GIL while decoding, resizing and compressing, so threads use all cores."""
    if workers <= 1:
        yield from map(fn, items)
        return
    ex = ThreadPoolExecutor(workers, thread_name_prefix="adagan-prep")
    try:
        pending: collections.deque = collections.deque()
        it = iter(items)
        for x in it:
            pending.append(ex.submit(fn, x))
            if len(pending) >= 4 * workers:
                break
        while pending:
            fut = pending.popleft()
            nxt = next(it, _END)
            if nxt is not _END:
                pending.append(ex.submit(fn, nxt))
            yield fut.result()
    finally:
        ex.shutdown(wait=True, cancel_futures=True)


_END = object()


def output_name(index: int) -> str:
    return f"{index // 1000:05d}/img{index:08d}.png"


def _write_zip(dest: Path, candidates: list[Item], process, label_of, class_names, labels_mode,
               report: PrepareReport, src: Source, options: dict, keep_dups: bool, max_images: int | None,
               workers: int | None, progress: bool, license: str | None) -> None:
    from tqdm import tqdm

    workers = workers or min(os.cpu_count() or 1, 8)
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    except OSError as e:
        raise DatasetError(f"--dest {dest}: cannot write in {dest.parent} ({e.strerror or e}); choose a "
                           "--dest in a folder you can write to") from None
    tmp = Path(tmp_name)
    seen: dict[bytes, str] = {}
    labels_out: list[list] = []
    originals: list[list[str]] = []
    converted_to_gray = 0
    try:
        with os.fdopen(fd, "wb") as f, zipfile.ZipFile(f, "w", zipfile.ZIP_STORED) as zf:
            bar = tqdm(total=len(candidates), unit="img", desc="Converting", disable=not progress,
                       file=sys.stderr, dynamic_ncols=True, leave=True)
            try:
                for item, result in zip(candidates, _ordered_map(process, candidates, workers), strict=False):
                    bar.update(1)
                    if isinstance(result, I.Skip):
                        report.skipped[result.reason].append((item.name, result.detail))
                        continue
                    png, digest, native = result
                    if digest in seen:
                        report.duplicates.append((item.name, seen[digest]))
                        if not keep_dups:
                            continue
                    else:
                        seen[digest] = item.name
                    if options["channels"] == 1 and native == 3:
                        converted_to_gray += 1
                    name = output_name(report.written)
                    info = zipfile.ZipInfo(name, date_time=ZIP_DATE)
                    info.external_attr = 0o644 << 16
                    zf.writestr(info, png)
                    originals.append([name, item.name])
                    if labels_mode != "none":
                        labels_out.append([name, label_of[item.name]])
                    report.written += 1
                    if max_images is not None and report.written >= max_images:
                        report.stopped_at_max = report.written < len(candidates)
                        break
            finally:
                bar.close()
            if report.written == 0:
                raise DatasetError(f"no usable images in {src.description}: {_reasons(report)}; nothing "
                                   "written")
            if converted_to_gray:
                report.notes.append(f"{converted_to_gray} colour image(s) were converted to grayscale; pass "
                                    "--channels 3 to keep colour")
            meta = {
                "labels": labels_out if labels_mode != "none" else None,
                "class_names": class_names if labels_mode != "none" else [],
                "license": license or src.license,
                "source": src.origin or src.description,
                "resolution": options["resolution"],
                "channels": options["channels"],
                "created_by": f"adagan dataset (format {FORMAT_VERSION})",
                "options": options,
                "counts": report.counts(),
                "originals": originals,
            }
            info = zipfile.ZipInfo("dataset.json", date_time=ZIP_DATE)
            info.external_attr = 0o644 << 16
            zf.writestr(info, json.dumps(meta, ensure_ascii=False))
            f.flush()
            os.fsync(f.fileno())
        report.bytes = tmp.stat().st_size
        os.replace(tmp, dest)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise DatasetError(f"writing {dest} failed ({e.strerror or e}); check free space and permissions") \
            from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _reasons(report: PrepareReport) -> str:
    parts = [f"{len(v)} {k}" for k, v in sorted(report.skipped.items(), key=lambda kv: -len(kv[1]))]
    if report.duplicates:
        parts.append(f"{len(report.duplicates)} duplicates")
    return ", ".join(parts) or "no image files"
