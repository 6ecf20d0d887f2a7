"""Metric names, detector loading, `evaluate_snapshot` and the two-folder comparison behind `adagan fid`.

Names (N = number of generated images, `k` = thousands; real statistics always use the whole
dataset, without x-flips):
  fidNk_full / fidNk     FID                        e.g. fid50k_full, fid10k_full, fid1k_full, fid1k
  kidNk_full / kidNk     KID                        e.g. kid50k_full, kid1k
  prNk3_full / prNk3     precision & recall, k=3    e.g. pr50k3_full, pr1k3_full
  ppl_wend / pplNk_wend  PPL in W, endpoints, no crop (= the official ppl2_wend)  ppl_wend = 50k samples
  ppl_zfull, ppl_wfull,  the official PPL variants: Z (slerp) or W, t uniform ("full") or 0 ("end"), the
  ppl_zend, ppl2_wend    centre crop (not ppl2_wend); any with Nk, e.g. ppl1k_zfull, ppl2_1k_wend
  isNk                   Inception Score            e.g. is50k, is1k (needs NVIDIA's Inception file)
  memNk                  memorisation: near-copies of training images, e.g. mem1k (against the
                         training set itself: the run's --subset when it has one; see memorisation.py)
  leakNk                 augmentation leak: how far the samples' colour and geometry statistics moved from
                         the reals' (0 = like the reals; no detector network; see leak.py), e.g. leak1k
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from adagan.errors import ConfigError

_PATTERNS = (
    (re.compile(r"^fid(\d+)k(_full)?$"), "fid"),
    (re.compile(r"^kid(\d+)k(_full)?$"), "kid"),
    (re.compile(r"^pr(\d+)k3(_full)?$"), "pr"),
    (re.compile(r"^ppl(2_?)?(?:(\d+)k)?_([zw])(full|end)$"), "ppl"),
    (re.compile(r"^is(\d+)k$"), "is"),
    (re.compile(r"^mem(\d+)k$"), "mem"),
    (re.compile(r"^leak(\d+)k$"), "leak"),
)
KNOWN = ("fid50k_full", "kid50k_full", "fid10k_full", "kid10k_full", "fid1k_full", "kid1k_full", "fid1k", "kid1k",
         "pr50k3_full", "pr1k3_full", "ppl_wend", "ppl1k_wend", "ppl2_wend", "ppl_zfull", "ppl_wfull", "ppl_zend",
         "is50k", "is1k", "mem1k", "leak1k")
DETECTOR_FOR = {"fid": "inception", "kid": "inception", "is": "inception-head", "pr": "vgg16", "ppl": "lpips",
                "mem": "inception", "leak": None}


@dataclass(frozen=True)
class MetricSpec:
    name: str
    kind: str  # fid | kid | pr | ppl | is | mem | leak
    num: int  # generated images (PPL: samples)
    ppl: tuple[str, str, bool] = ("w", "end", False)  # PPL only: space, sampling, centre crop (metrics/ppl.py)


def parse_metric(name: str) -> MetricSpec:
    name = name.strip()
    for pat, kind in _PATTERNS:
        m = pat.match(name)
        if m:
            if kind == "ppl":
                two, k, space, sampling = m.groups()
                num = int(k) * 1000 if k else 50000
                if two is not None and ((space, sampling) != ("w", "end") or (two == "2_") != bool(k)):
                    break  # the official "2" name is ppl2_wend only (with a size: ppl2_1k_wend)
                # Every official name crops but ppl2_wend; adagan's ppl_wend (older than these names) does not.
                crop = not two and (space, sampling) != ("w", "end")
                return MetricSpec(name, kind, num, (space, sampling, crop))
            else:
                num = int(m.group(1)) * 1000
            if num < 1:
                break
            return MetricSpec(name, kind, num)
    raise ConfigError(f"unknown metric {name!r}; use one of {', '.join(KNOWN)} (any fidNk/kidNk/prNk3 also works)")


def parse_metrics(names) -> list[MetricSpec]:
    if isinstance(names, str):
        names = names.split(",")
    specs = [parse_metric(n) for n in names if n.strip()]
    if not specs:
        raise ConfigError("no metrics given; e.g. --metrics fid1k_full,kid1k_full")
    return specs


def metric_names(text) -> tuple[str, ...]:
    """`--metrics` (a comma-separated string or a list) -> checked metric names; "none" (any case) or ""
    = no metrics, as in the official train.py. Checked here so that a typo fails before training."""
    if isinstance(text, str) and text.strip().lower() in ("", "none"):
        return ()
    return tuple(spec.name for spec in parse_metrics(text))


def load_detector(kind: str, device) -> object:
    """The detector network for a DETECTOR_FOR kind (tests monkeypatch this)."""
    from adagan.metrics import features

    if kind == "inception":
        return features.load_inception(device)
    if kind == "inception-head":
        return features.load_inception(device, need_head=True)
    if kind == "vgg16":
        return features.load_vgg16_features(device)
    if kind == "lpips":
        return features.load_lpips(device)
    raise ValueError(kind)


def compute_metrics(G, dataset, specs: list[MetricSpec], *, device="cpu", rank: int = 0, world_size: int = 1,
                    batch_size: int | None = None, progress: bool | None = None, seed: int = 0,
                    use_cache: bool = True, on_result=None, train_dataset=None) -> dict[str, dict[str, float]]:
    """{metric name: {result name: value}} for G_ema against the dataset (real values on rank 0).

    `on_result(spec, result, seconds)` is called after each metric (seconds spent on it).
    train_dataset: the images G was trained on, for memorisation (`memNk`); None = `dataset`.
    """
    from adagan.metrics.fid import fid_from_features
    from adagan.metrics.inception_score import compute_is
    from adagan.metrics.kid import kid_from_features
    from adagan.metrics.ppl import compute_ppl
    from adagan.metrics.pr import compute_pr
    from adagan.metrics.stats import broadcast_object, dataset_features, generated_features, generator_fn

    device = torch.device(device)
    bs = batch_size or (64 if device.type == "cuda" else 32)
    detectors: dict[str, object] = {}

    def det(kind: str):
        if kind not in detectors:
            detectors[kind] = load_detector(kind, device)
        return detectors[kind]

    for s in specs:  # fail on missing weights before any expensive work
        if DETECTOR_FOR[s.kind] is not None:
            det(DETECTOR_FOR[s.kind])
    gen_fn = generator_fn(G, dataset=dataset, device=device, seed=seed)
    tap = None
    if any(s.kind == "mem" for s in specs):
        # Keep the generated pixels of every Inception pass, so memorisation reuses KID/FID's samples.
        gen_fn = tap = _PixelTap(gen_fn)
    common = dict(batch_size=bs, device=device, rank=rank, world_size=world_size, progress=progress)
    # FID and KID share one pass of the real images through Inception and, at the same size, one of
    # the generated images. Keyed by "real" / num (not tested for None: ranks != 0 get None back).
    inception_feats: dict[str | int, object] = {}
    out: dict[str, dict[str, float]] = {}
    for s in specs:
        t0 = time.time()
        d = det(DETECTOR_FOR[s.kind]) if DETECTOR_FOR[s.kind] is not None else None
        if s.kind == "leak":
            from adagan.metrics.leak import compute_leak

            v = compute_leak(gen_fn, dataset, s.num, seed=seed, **common)
            res = None if v is None else {(s.name if k == "leak" else f"{s.name}_{k}"): x for k, x in v.items()}
        elif s.kind in ("fid", "kid", "mem"):
            if s.num not in inception_feats:
                inception_feats[s.num] = generated_features(gen_fn, s.num, d, **common)
            gen = inception_feats[s.num]
            if s.kind == "mem":
                gen_px = tap.vectors(s.num, rank=rank, world_size=world_size, device=device)
                res = _memorisation(gen, gen_px, train_dataset or dataset, d, use_cache=use_cache, **common)
                res = None if res is None else {f"{s.name}_{k}": v for k, v in res.items()}
            else:
                if "real" not in inception_feats:
                    inception_feats["real"] = dataset_features(dataset, d, use_cache=use_cache, **common)
                from_features = fid_from_features if s.kind == "fid" else kid_from_features
                res = {s.name: from_features(inception_feats["real"], gen)} if rank == 0 else None
        elif s.kind == "pr":
            v = compute_pr(gen_fn, dataset, s.num, d, use_cache=use_cache, **common)
            res = None if v is None else {f"{s.name}_precision": v[0], f"{s.name}_recall": v[1]}
        elif s.kind == "is":
            v = compute_is(gen_fn, s.num, d, **common)
            res = None if v is None else {f"{s.name}_mean": v[0], f"{s.name}_std": v[1]}
        else:
            space, sampling, crop = s.ppl
            v = compute_ppl(G, d, s.num, dataset=dataset, seed=seed, space=space, sampling=sampling, crop=crop,
                            **{**common, "batch_size": max(bs // 2, 1)})
            res = None if v is None else {s.name: v}
        out[s.name] = broadcast_object(res, world_size=world_size)
        if on_result is not None:
            on_result(s, out[s.name], time.time() - t0)
    return out


class _PixelTap:
    """A generator function that also keeps each sample's pixel vector (memorisation.pixel_vectors)."""

    def __init__(self, gen_fn):
        self.gen_fn = gen_fn
        self.rows: dict[int, object] = {}

    def __call__(self, indices):
        from adagan.metrics.memorisation import pixel_vectors

        images = self.gen_fn(indices)
        for i, v in zip(indices, pixel_vectors(images.cpu()), strict=True):
            self.rows[int(i)] = v
        return images

    def vectors(self, n: int, *, rank: int, world_size: int, device):
        import numpy as np

        from adagan.metrics.stats import gather_rows, shard

        part = np.stack([self.rows[int(i)] for i in shard(n, rank, world_size)])
        return gather_rows(part, n, rank=rank, world_size=world_size, device=device)


def _memorisation(gen_feats, gen_px, train_dataset, detector, *, use_cache: bool, **common):
    """memorisation() of generated features/pixels against the training set (rank 0; None elsewhere)."""
    import numpy as np

    from adagan.metrics.memorisation import memorisation, pixel_vectors
    from adagan.metrics.stats import dataset_features

    train_feats = dataset_features(train_dataset, detector, use_cache=use_cache, **common)
    if common.get("rank", 0) != 0:
        return None
    n, bs = len(train_dataset), common.get("batch_size", 32)
    train_px = np.concatenate([pixel_vectors(train_dataset.get_batch(list(range(i, min(i + bs, n))))[0])
                               for i in range(0, n, bs)])
    return memorisation(gen_feats, train_feats, gen_px, train_px)


def _snapshot_kimg(path: Path) -> float | None:
    m = re.search(r"network-snapshot-(\d+)", path.name)
    return float(int(m.group(1))) if m else None


def append_results(snapshot_path, name: str, results: dict[str, float], total_time: float,
                   dest_dir=None) -> Path:
    """Append one JSON line to metric-NAME.jsonl next to the snapshot (or in dest_dir)."""
    snapshot_path = Path(snapshot_path)
    dest = Path(dest_dir if dest_dir is not None else snapshot_path.parent) / f"metric-{name}.jsonl"
    line = {"results": results, "metric": name, "snapshot": snapshot_path.name, "kimg": _snapshot_kimg(snapshot_path),
            "total_time": round(total_time, 3), "timestamp": time.time()}
    dest.parent.mkdir(parents=True, exist_ok=True)
    with open(dest, "a", encoding="utf-8") as f:
        f.write(json.dumps(line) + "\n")
    return dest


def evaluate_snapshot(snapshot_path, G_ema, *, metrics: list[str], data: str, resolution: int | None, device,
                      rank: int = 0, world_size: int = 1, progress: bool | None = None,
                      use_cache: bool = True, subset: int | None = None, seed: int = 0) -> dict[str, float]:
    """Compute `metrics` for G_ema against `data` (all ranks take part); rank 0 appends metric-NAME.jsonl
    lines next to the snapshot. Returns the flat results, e.g. {"fid1k": 123.4}, on every rank.

    subset, seed: the run's training subset of `data`; memorisation (memNk) is measured against it, every
    other metric against the whole of `data`."""
    from adagan.data import open_dataset

    specs = parse_metrics(metrics)
    dataset = open_dataset(data, resolution=resolution, use_labels=bool(G_ema.c_dim), mirror=False)
    train_dataset = None
    if subset is not None and any(s.kind == "mem" for s in specs):
        train_dataset = open_dataset(data, resolution=resolution, use_labels=bool(G_ema.c_dim), subset=subset,
                                     seed=seed)
    was_training = G_ema.training
    G_ema.eval()
    flat: dict[str, float] = {}

    def record(spec: MetricSpec, res: dict[str, float], seconds: float) -> None:
        if rank == 0 and snapshot_path is not None:
            append_results(snapshot_path, spec.name, res, seconds)
        flat.update(res)

    try:
        compute_metrics(G_ema, dataset, specs, device=device, rank=rank, world_size=world_size,
                        progress=progress, use_cache=use_cache, on_result=record, train_dataset=train_dataset)
    finally:
        G_ema.train(was_training)
        dataset.close()
        if train_dataset is not None:
            train_dataset.close()
    return flat


def compare_datasets(path_a, path_b, *, kid: bool = False, num: int | None = None, device="cpu",
                     batch_size: int | None = None, detector=None, progress: bool | None = None,
                     use_cache: bool = True) -> dict[str, float]:
    """FID (and KID) between two image folders/zips, each limited to its first `num` images."""
    import numpy as np

    from adagan.data import ImageDataset, open_dataset
    from adagan.metrics.fid import fid_from_features
    from adagan.metrics.kid import kid_from_features
    from adagan.metrics.stats import dataset_features

    device = torch.device(device)
    if num is not None and num < 2:
        raise ConfigError(f"--num {num}: need at least 2 images per set")
    sets = [open_dataset(p) if str(p).startswith("builtin:") else ImageDataset(p) for p in (path_a, path_b)]
    for p, ds in zip((path_a, path_b), sets, strict=True):
        if len(ds) < 2:
            raise ConfigError(f"{p} has {len(ds)} image(s); FID needs at least 2 per set")
    det = detector if detector is not None else load_detector("inception", device)
    bs = batch_size or (64 if device.type == "cuda" else 32)
    feats = []
    for ds in sets:
        feats.append(dataset_features(ds, det, max_items=num, batch_size=bs, device=device, progress=progress,
                                      use_cache=use_cache))
        ds.close()
    a, b = (np.asarray(f) for f in feats)
    out = {"fid": fid_from_features(a, b), "num_a": float(len(a)), "num_b": float(len(b))}
    if kid:
        out["kid"] = kid_from_features(a, b)
    return out
