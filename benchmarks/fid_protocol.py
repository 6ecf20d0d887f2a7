"""Does `adagan fid A B` reproduce the paper's FID protocol? A check on real data against NVIDIA's metric code.

    adagan weights fetch inception-2015-12-05
    python benchmarks/fid_protocol.py --repo /path/to/stylegan2-ada-pytorch          # 2 x 500 images
    python benchmarks/fid_protocol.py --repo R --num 100 --work /tmp/fidp100        # 2 x 100 images

1. Two halves of builtin:twemoji at 32 px: images 0..2N-1, even indices -> A/, odd -> B/ (PNG folders
   under --work).
2. Reference: each PNG -> uint8 -> resized to 299x299 *here*, as NVIDIA's Inception TorchScript does it
   (TensorFlow 1 resize_bilinear: an identity affine_grid whose translation is shifted by 1/W - 1/299 and
   1/H - 1/299, grid_sample bilinear with border padding, align_corners=False), written independently of
   adagan's resize -> the installed Inception network (the fid-helper TorchScript: NVIDIA's detector file
   cannot be downloaded here, so both sides use the same network) -> 2048-d features. FID and KID come
   from the official `metrics/frechet_inception_distance.py` and `metrics/kernel_inception_distance.py`
   (imported from --repo, their feature collection replaced by these features; mean and covariance by
   the official `metric_utils.FeatureStats`).
3. adagan: `python -m adagan fid A B --kid` in a subprocess (the command as users run it; its own resize,
   features, statistics and FID).

Prints both values and their relative difference (the target is < 0.1%). Reference features are kept in
--work (keyed by the Inception file), so a rerun only repeats what changed; `adagan fid` uses its own
real-feature cache unless --no-cache.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
import torch.nn.functional as F


def make_halves(work: Path, num: int) -> tuple[Path, Path]:
    from PIL import Image

    from adagan.data import open_dataset

    a, b = work / "A", work / "B"
    if all(d.is_dir() and len(list(d.glob("*.png"))) == num for d in (a, b)):
        return a, b
    ds = open_dataset("builtin:twemoji", resolution=32)
    if 2 * num > len(ds):
        sys.exit(f"--num {num}: builtin:twemoji has only {len(ds)} images")
    imgs = ds.get_batch(np.arange(2 * num))[0].permute(0, 2, 3, 1).numpy()  # [2N, H, W, C] uint8
    ds.close()
    for d, part in ((a, imgs[0::2]), (b, imgs[1::2])):
        d.mkdir(parents=True, exist_ok=True)
        for old in d.glob("*.png"):
            old.unlink()
        for i, img in enumerate(part):
            Image.fromarray(img.squeeze(-1) if img.shape[-1] == 1 else img).save(d / f"{i:05d}.png")
    return a, b


def read_folder(folder: Path) -> torch.Tensor:
    from PIL import Image

    arrs = [np.asarray(Image.open(p)) for p in sorted(folder.glob("*.png"))]
    x = torch.from_numpy(np.stack(arrs))
    x = x[..., None] if x.ndim == 3 else x
    return x.permute(0, 3, 1, 2).contiguous()  # [N, C, H, W] uint8


def reference_resize(x: torch.Tensor) -> torch.Tensor:
    """NVIDIA's detector resize to 299x299 (TensorFlow 1 resize_bilinear), on float [N, 3, H, W]."""
    n, c, h, w = x.shape
    theta = torch.eye(2, 3, dtype=torch.float32).repeat(n, 1, 1)
    theta[:, 0, 2] += 1 / w - 1 / 299
    theta[:, 1, 2] += 1 / h - 1 / 299
    grid = F.affine_grid(theta, [n, c, 299, 299], align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


@torch.no_grad()
def reference_features(images: torch.Tensor, net, kind: str, batch: int) -> np.ndarray:
    out = []
    for i in range(0, len(images), batch):
        x = images[i: i + batch].to(torch.float32)
        x = x.repeat(1, 3, 1, 1) if x.shape[1] == 1 else x
        x = reference_resize(x)
        if kind == "fid-helper":  # features-only file: input (x - 128) / 128
            f = net((x - 128) / 128)
        else:  # NVIDIA's file: input 0..255, scales itself
            f = net(x, return_features=True)
        out.append(f.reshape(len(x), -1).numpy())
    return np.concatenate(out)


def official_metrics(repo: Path, feats_real: np.ndarray, feats_gen: np.ndarray) -> tuple[float, float]:
    """(FID, KID) by the official metric functions, given features instead of a dataset and a generator."""
    sys.path.insert(0, str(repo))
    from metrics import frechet_inception_distance, kernel_inception_distance, metric_utils

    def stats(features):
        def collect(opts, detector_url, detector_kwargs, rel_lo=0, rel_hi=1, max_items=None, **stats_kwargs):
            s = metric_utils.FeatureStats(max_items=max_items, **stats_kwargs)
            s.append(features)
            return s
        return collect

    metric_utils.compute_feature_stats_for_dataset = stats(feats_real)
    metric_utils.compute_feature_stats_for_generator = stats(feats_gen)
    opts = SimpleNamespace(rank=0)
    fid = frechet_inception_distance.compute_fid(opts, max_real=None, num_gen=len(feats_gen))
    np.random.seed(0)  # KID subsets; with n <= 1000 each subset is the whole set, so the seed does not matter
    kid = kernel_inception_distance.compute_kid(opts, max_real=None, num_gen=len(feats_gen), num_subsets=100,
                                                max_subset_size=1000)
    return float(fid), float(kid)


def run_adagan_fid(a: Path, b: Path, no_cache: bool) -> tuple[float, float, float]:
    cmd = [sys.executable, "-m", "adagan", "fid", str(a), str(b), "--kid", "--device", "cpu"]
    if no_cache:
        cmd.append("--no-cache")
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{r.stderr}")
    vals = dict(re.findall(r"^(fid|kid)\s+(\S+)$", r.stdout, flags=re.M))
    return float(vals["fid"]), float(vals["kid"]), time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repo", required=True, type=Path, help="checkout of NVlabs/stylegan2-ada-pytorch")
    ap.add_argument("--num", type=int, default=500, help="images per half (default 500)")
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "adagan-fid-protocol",
                    help="folder for the halves and the reference features")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--no-cache", action="store_true", help="pass --no-cache to `adagan fid`")
    args = ap.parse_args()
    from adagan.metrics import weights as W

    inception = W.resolve(W.INCEPTION)
    sha1 = W.file_digest(inception, "sha1")
    kind = "fid-helper" if sha1 == W.FID_HELPER_SHA1 else "nvidia"
    work = args.work / f"n{args.num}"
    a, b = make_halves(work, args.num)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; Inception {inception} ({kind}); "
          f"halves {a} and {b}, {args.num} images each (builtin:twemoji, 32 px)", flush=True)

    net = None
    feats = []
    for d in (a, b):
        imgs = read_folder(d)
        key = hashlib.sha256(imgs.numpy().tobytes() + sha1.encode()).hexdigest()[:16]
        cache = work / f"ref-{d.name}-{key}.npy"
        if cache.is_file():
            feats.append(np.load(cache))
            continue
        if net is None:
            net = W.jit_load(inception, "cpu").eval()
        t0 = time.perf_counter()
        feats.append(reference_features(imgs, net, kind, args.batch))
        np.save(cache, feats[-1])
        print(f"reference features {d.name}: {len(imgs)} images in {time.perf_counter() - t0:.0f} s", flush=True)
    ref_fid, ref_kid = official_metrics(args.repo, feats[1], feats[0])

    fid, kid, sec = run_adagan_fid(a, b, args.no_cache)
    print(f"adagan fid A B --kid ({sec:.0f} s)")
    for name, ours, ref in (("FID", fid, ref_fid), ("KID", kid, ref_kid)):  # the command prints 6 digits
        print(f"{name}: adagan {ours:.6g}  official protocol {ref:.8g}  difference {ours - ref:+.2g} "
              f"(relative {(ours - ref) / abs(ref):+.1e})")


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main()
