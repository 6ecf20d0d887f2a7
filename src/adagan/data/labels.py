"""Labels, one parser for the dataset tool (data/prepare.py) and the loader (data/dataset.py).

A label file is dataset.json's "labels": a list of [path, class] pairs (class: an index 0..MAX_CLASSES-1 or,
in a source folder, a class name; in a dataset the tool wrote, an index or a label vector). `label_table`
reads the pairs, `is_class_index` is the one rule for an index. The tool takes labels from sub-folders or a
source's dataset.json (`resolve_labels`); the loader turns a dataset's into a matrix (`label_matrix`).
"""

from __future__ import annotations

from pathlib import PurePosixPath

import numpy as np

from adagan.data import images as I
from adagan.data.sources import Item, Source
from adagan.errors import DatasetError
from adagan.limits import MAX_CLASSES


def is_class_index(v, limit: int | None = MAX_CLASSES) -> bool:
    """An int (not a bool) in 0..limit-1 (limit None: any non-negative int)."""
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0 and (limit is None or v < limit)


def label_table(entries, bad: str, hint: str) -> dict[str, object]:
    """{path: label} from [path, label] pairs; paths with / separators and no leading ./. DatasetError
    "<bad> <entry>; <hint>" for an entry that is not such a pair."""
    table: dict[str, object] = {}
    for e in entries:
        if not (isinstance(e, (list, tuple)) and len(e) == 2 and isinstance(e[0], str)):
            raise DatasetError(f"{bad} {str(e)[:60]}; {hint}")
        table[_norm_label_path(e[0])] = e[1]
    return table


def label_matrix(labels: list, class_names, names: list[str], what: str) -> tuple[np.ndarray, list[str]]:
    """The loader's labels: float32 [len(names), c_dim] (one-hot class indices, or label vectors) and the class
    names, from a dataset.json "labels" list written by `adagan dataset`."""
    table = label_table(labels, f"{what} has a bad label entry", "re-create it with `adagan dataset`")
    missing = [n for n in names if n not in table]
    if missing:
        raise DatasetError(f"{what} has no label for {len(missing)} image(s) (e.g. {missing[0]}); "
                           "re-create the dataset with `adagan dataset`, or train without labels")
    values = [table[n] for n in names]
    if all(is_class_index(v, limit=None) for v in values):
        c_dim = max(values) + 1
        if c_dim > MAX_CLASSES:
            raise DatasetError(f"{what} has class index {max(values):,}; at most {MAX_CLASSES:,} classes "
                               f"(0..{MAX_CLASSES - 1}) are supported")
        if isinstance(class_names, list) and c_dim <= len(class_names) <= MAX_CLASSES:
            c_dim = len(class_names)
            cls = [str(c) for c in class_names]
        else:
            cls = [str(i) for i in range(c_dim)]
        mat = np.zeros([len(names), c_dim], np.float32)
        mat[np.arange(len(names)), values] = 1
        return mat, cls
    # Label vectors: equal length, at most MAX_CLASSES numbers each, all finite (checked before building).
    ok = all(isinstance(v, list) and all(isinstance(x, int | float) and not isinstance(x, bool) for x in v)
             for v in values)
    lengths = {len(v) for v in values} if ok else set()
    if not ok or len(lengths) != 1 or not 0 < next(iter(lengths)) <= MAX_CLASSES:
        raise DatasetError(f"{what}: labels must be class indices (0 to {MAX_CLASSES - 1}) or equal-length "
                           f"vectors of at most {MAX_CLASSES} numbers; re-create it with `adagan dataset`")
    mat = np.asarray(values, dtype=np.float64)
    if not np.isfinite(mat).all() or np.abs(mat).max() > 1e6:
        bad = names[int(np.flatnonzero(~np.isfinite(mat).all(1) | (np.abs(mat) > 1e6).any(1))[0])]
        raise DatasetError(f"{what}: the label of {bad} holds NaN, infinite or huge values; fix dataset.json "
                           "or train without --cond")
    return mat.astype(np.float32), [str(i) for i in range(mat.shape[1])]


def keep_labelled(candidates: list[Item], label_of: dict, labels_mode: str, report) -> list[Item]:
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


def _json_labels(meta: dict, items: list[Item], what: str, report):
    entries = meta.get("labels")
    if entries is None:
        raise DatasetError(f"--labels dataset.json: {what} has \"labels\": null; use --labels subfolders "
                           "or none")
    if isinstance(entries, dict):  # {"path": label} is a common hand-written variant
        entries = list(entries.items())
    if not isinstance(entries, list):
        raise DatasetError(f"{what}: \"labels\" must be a list of [path, class] pairs")
    raw = label_table(entries, f"{what}: bad label entry", "each must be [\"path/in/source.png\", class]")
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
    elif all(is_class_index(v) for v in values):
        n = max(values, default=-1) + 1
        if isinstance(names, list) and len(names) >= n:
            class_names = list(names)
        else:
            class_names = [str(i) for i in range(n)]
        parsed = dict(raw)
    else:
        bad = next(v for v in values if not (is_class_index(v))
                   and not isinstance(v, str))
        raise DatasetError(f"{what}: label {str(bad)[:40]} is not a class index (0 to {MAX_CLASSES - 1}) or class "
                           "name; fix dataset.json or pass --labels subfolders / none")
    if len(class_names) > MAX_CLASSES:
        raise DatasetError(f"{what}: {len(class_names):,} class_names, more than the {MAX_CLASSES:,} supported")
    have = {it.name for it in items}
    report.unmatched_labels = sorted(k for k in parsed if k not in have)
    return {k: v for k, v in parsed.items() if k in have}, class_names


def resolve_labels(src: Source, items: list[Item], mode: str, report):
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
