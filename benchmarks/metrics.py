"""Metric speed: images/s of Inception feature extraction, and wall time of kid1k/fid1k on CPU.

    adagan weights fetch                       # the benchmark needs the real Inception network
    python benchmarks/metrics.py               # CPU (and CUDA when present)
    python benchmarks/metrics.py --threads 2   # what a 2-core machine sees
    python benchmarks/metrics.py --skip-metrics --impls ref,torch,onnxruntime --batches 8,32 --rounds 5 --fid 200

Rows: `inception` = uint8 32px images -> 2048-d features (resize to 299 included), batch 32 (CPU)
or 64 (CUDA), one row per feature path (`--impls`, InceptionDetector: `ref` = the TorchScript file as
it is, `torch` = its graph rebuilt with folded batch norms, channels_last; `onnxruntime` = that graph
in ONNX Runtime) and batch size (`--batches`). The paths are timed in one run, alternating batch by
batch for `--rounds` rounds, the order reversed every other round; each row is the median and names
its speed relative to `ref` at the first batch size, and the max abs difference of its features
from `ref` on the same images. `--fid N`: FID between the first N and the next N images of
builtin:twemoji at 32 px with each path, and its relative difference from `ref`'s.
`kid1k`/`fid1k` = the whole metric as `adagan metrics` runs it, with the `cpu` preset
generator at 32 px (random weights: speed does not depend on training) on builtin:twemoji, once
kid1k first with an empty real-feature cache (`cold`: real + generated images), then fid1k with
it filled (`warm`: only the 1000 generated images go through Inception).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

import torch


def bench_inception(device: str, impls: list[str], batches: list[int], n: int, rounds: int) -> list[dict]:
    """Interleaved img/s of every (impl, batch) on the same images; rows in the order given."""
    from adagan.metrics.features import load_inception

    dets = {}
    for impl in impls:
        if impl in EXPERIMENTS:
            dets[impl] = EXPERIMENTS[impl](load_inception(device, impl="ref"))
            continue
        det = load_inception(device, impl=impl)
        dets[impl if det.impl == impl else f"{impl}->{det.impl}"] = det
    impls = list(dets)
    gen = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, [max(batches), 3, 32, 32], dtype=torch.uint8, generator=gen).to(device)
    cands = [(impl, b) for impl in impls for b in batches]
    times: dict[tuple[str, int], list[float]] = {c: [] for c in cands}
    with torch.no_grad():
        ref = dets[impls[0]](x)
        diffs = {impl: float((det(x) - ref).abs().max()) for impl, det in dets.items()}
        for impl, b in cands:  # warm-up: TorchScript's profiling executor optimizes on the first calls per shape
            dets[impl](x[:b])
        for r in range(rounds):
            for impl, b in (cands if r % 2 == 0 else cands[::-1]):
                if device == "cuda":
                    torch.cuda.synchronize()
                t0 = time.perf_counter()
                done = 0
                while done < n:
                    dets[impl](x[:b])
                    done += b
                if device == "cuda":
                    torch.cuda.synchronize()
                times[(impl, b)].append(done / (time.perf_counter() - t0))
    rows = [dict(impl=impl, batch=b, img_s=statistics.median(times[(impl, b)]), max_diff=diffs[impl])
            for impl, b in cands]
    for row in rows:
        row["speedup"] = row["img_s"] / rows[0]["img_s"]
    return rows


def _experiment(make_net):
    """Candidates measured for docs/metrics.md but not offered by InceptionDetector: ref_det -> callable."""
    def build(ref_det):
        from adagan.metrics.features import inception_preprocess

        net = make_net(ref_det.net)
        return lambda imgs: net(inception_preprocess(imgs)).reshape(imgs.shape[0], -1)
    return build


def _cl_input(net):
    return lambda x: net(x.contiguous(memory_format=torch.channels_last))


def _frozen(net):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.jit.optimize_for_inference(torch.jit.freeze(net))


def _folded(memory_format, mkldnn=False):
    def make(net):
        import warnings

        from adagan.metrics.features import FoldedGraphNet

        folded = FoldedGraphNet(net, memory_format=memory_format).eval()
        if not mkldnn:
            return folded
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            traced = torch.jit.trace(folded, torch.zeros([2, 3, 299, 299]), check_trace=False)
            return torch.jit.optimize_for_inference(torch.jit.freeze(traced))
    return make


# --impls names besides InceptionDetector's: the file with a channels_last input; the file frozen and
# optimized for inference (freeze cannot fold its batch norms: each weight passes through an aten::to of the
# input's dtype); the rebuilt graph in the default layout; the rebuilt graph traced, frozen and converted to
# oneDNN (MKLDNN) ops by optimize_for_inference.
EXPERIMENTS = {
    "ref+channels_last": _experiment(_cl_input),
    "ref+freeze": _experiment(_frozen),
    "torch+nchw": _experiment(_folded(torch.contiguous_format)),
    "torch+mkldnn": _experiment(_folded(torch.contiguous_format, mkldnn=True)),
}


def fid_agreement(device: str, impls: list[str], n: int) -> dict[str, float]:
    """FID of builtin:twemoji images [0, n) vs [n, 2n) at 32 px, per impl."""
    from adagan.data import open_dataset
    from adagan.metrics.features import extract_features, load_inception
    from adagan.metrics.fid import fid_from_features

    ds = open_dataset("builtin:twemoji", resolution=32)
    out = {}
    for impl in impls:
        det = EXPERIMENTS[impl](load_inception(device, impl="ref")) if impl in EXPERIMENTS else \
            load_inception(device, impl=impl)
        feats = extract_features((ds.get_batch(list(range(i, min(i + 32, 2 * n))))[0] for i in range(0, 2 * n, 32)),
                                 det, device=device, progress=False)
        out[impl] = fid_from_features(feats[:n], feats[n:])
    return out


def bench_metric(name: str, device: str, subset: int | None) -> tuple[float, float, int]:
    """(seconds, value, real images) of one run of the metric as `adagan metrics` runs it."""
    from adagan import build_networks
    from adagan.data import open_dataset
    from adagan.metrics.evaluate import compute_metrics, parse_metrics

    torch.manual_seed(0)
    G, _ = build_networks("cpu", 32)
    G = G.eval().requires_grad_(False).to(device)
    ds = open_dataset("builtin:twemoji", resolution=32, subset=subset)
    t0 = time.perf_counter()
    res = compute_metrics(G, ds, parse_metrics(name), device=device, progress=False)
    return time.perf_counter() - t0, next(iter(res[name].values())), len(ds)


def loadavg() -> str:
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "n/a"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: all)")
    ap.add_argument("--n", type=int, default=64, help="images per round and row for the Inception throughput rows")
    ap.add_argument("--impls", default="ref,auto",
                    help="comma-separated Inception paths (first = the baseline): auto, onnxruntime, torch, ref, "
                         "or the experiments " + ", ".join(EXPERIMENTS))
    ap.add_argument("--batches", default=None, help="comma-separated batch sizes (default 32 on CPU, 64 on CUDA)")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds of the Inception throughput rows")
    ap.add_argument("--fid", type=int, default=0, metavar="N",
                    help="also compare FID of two sets of N builtin:twemoji images across the paths")
    ap.add_argument("--skip-metrics", action="store_true", help="only the Inception throughput rows")
    ap.add_argument("--subset", type=int, default=None,
                    help="use this many real images of builtin:twemoji (default: all 4009)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    # Fresh real-feature cache so `cold` really is cold (weights stay where they are).
    from adagan.metrics.weights import weights_dir

    os.environ.setdefault("ADAGAN_INCEPTION", str(weights_dir() / "inception-2015-12-05.pt"))
    os.environ["ADAGAN_CACHE"] = tempfile.mkdtemp(prefix="adagan-bench-")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads, "
          f"{os.cpu_count()} cores" + (f", {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""))
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    impls = [s for s in args.impls.split(",") if s]
    print(f"load average at start {loadavg()}")
    for dev in devices:
        batches = [int(b) for b in args.batches.split(",")] if args.batches else [64 if dev == "cuda" else 32]
        n = args.n * (8 if dev == "cuda" else 1)
        for r in bench_inception(dev, [i for i in impls if dev == "cpu" or i != "onnxruntime"], batches, n,
                                 args.rounds):
            print(f"inception  {dev:<5s} {r['impl']:<12s} batch {r['batch']:<3d} {r['img_s']:8.2f} img/s  "
                  f"{r['speedup']:5.2f}x  max |feature diff| {r['max_diff']:.2e}", flush=True)
        if args.fid:  # the paths InceptionDetector offers (the experiments differ from them by layout only)
            fids = fid_agreement(dev, [i for i in impls if i not in EXPERIMENTS], args.fid)
            base = fids[impls[0]]
            for impl, v in fids.items():
                print(f"fid {args.fid} vs {args.fid} twemoji  {dev:<5s} {impl:<12s} {v:.6f}  "
                      f"({100 * (v / base - 1):+.5f}% vs {impls[0]})", flush=True)
    print(f"load average at end {loadavg()}")
    if not args.skip_metrics:
        for dev in devices:  # kid1k fills the real-feature cache (cold); fid1k then reuses it (warm)
            for name, state in (("kid1k", "cold"), ("fid1k", "warm")):
                sec, value, n_real = bench_metric(name, dev, args.subset)
                print(f"{name:<10s} {dev:<5s} {state} cache, {n_real} real + 1000 generated: {sec:7.1f} s  "
                      f"(value {value:.4g})", flush=True)


if __name__ == "__main__":
    main()
