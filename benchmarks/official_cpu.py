"""NVIDIA's official StyleGAN2-ADA training loop on CPU, for benchmarks/vs_official_training.py.

Nothing of the official code is in this file. `patched_copy` copies a checkout of
NVlabs/stylegan2-ada-pytorch to a temporary folder and changes the few lines that assume CUDA
(../shared/parity/README.md lists them: the device, the CUDA timing events, pin_memory, the peak-memory
calls, grid_sample_gradfix off because native grid_sample has double backward, and torch 2.x's Sampler
that takes no dataset). `import_loop` imports it, `loop_kwargs` builds the keyword arguments that the
official train.py would pass to `training_loop.training_loop` from an adagan TrainConfig, and
`export_folder` writes a dataset as a folder of PNGs that both data loaders read in the same order.
"""

from __future__ import annotations

import importlib
import os
import shutil
import sys
import types
from pathlib import Path

# (file, text in the official code, replacement); each text must occur exactly once.
PATCHES = [
    ("training/training_loop.py", "device = torch.device('cuda', rank)", "device = torch.device('cpu')"),
    ("training/training_loop.py", "grid_sample_gradfix.enabled = True", "grid_sample_gradfix.enabled = False"),
    ("training/training_loop.py", "phase.start_event = torch.cuda.Event(enable_timing=True)",
     "phase.start_event = None"),
    ("training/training_loop.py", "phase.end_event = torch.cuda.Event(enable_timing=True)", "phase.end_event = None"),
    ("training/training_loop.py", ".pin_memory()", ""),
    ("training/training_loop.py", "torch.cuda.max_memory_allocated(device) / 2**30", "0.0"),
    ("training/training_loop.py", "torch.cuda.reset_peak_memory_stats()", "pass"),
    ("torch_utils/misc.py", "super().__init__(dataset)", "super().__init__()"),
]


class UsageError(Exception):
    """Bad input to the benchmark: printed as one line."""


def patched_copy(checkout: str | os.PathLike, dest: str | os.PathLike) -> Path:
    """Copy the official checkout to dest (a new folder) and apply PATCHES there; returns dest."""
    src, dest = Path(checkout).expanduser().resolve(), Path(dest)
    if not (src / "training" / "training_loop.py").is_file():
        raise UsageError(f"--official {checkout}: no training/training_loop.py there; give a checkout of "
                         "NVlabs/stylegan2-ada-pytorch")
    shutil.copytree(src, dest, ignore=shutil.ignore_patterns(".git", "__pycache__", "docs", "*.pkl"))
    for rel, old, new in PATCHES:
        path = dest / rel
        text = path.read_text(encoding="utf-8")
        if text.count(old) != 1:
            raise UsageError(f"--official {checkout}: {rel} has {text.count(old)} copies of {old!r} (expected 1); "
                             "this script knows the NVlabs/stylegan2-ada-pytorch release it was written for")
        path.write_text(text.replace(old, new), encoding="utf-8")
    return dest


def _stand_ins() -> None:
    """Modules the official code imports at module level but never needs here."""
    try:
        import requests  # noqa: F401
    except ImportError:  # dnnlib: only to download URLs
        sys.modules["requests"] = types.ModuleType("requests")
    try:
        import psutil  # noqa: F401
    except ImportError:  # training_loop: only the cpumem field of its status line
        import resource

        mod = types.ModuleType("psutil")

        class _Process:
            def __init__(self, pid=None):
                pass

            def memory_info(self):
                return types.SimpleNamespace(rss=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)

        mod.Process = _Process
        sys.modules["psutil"] = mod
    stand_in_distutils()


def stand_in_distutils() -> None:
    """dnnlib uses distutils.util.strtobool, gone from Python 3.12: a stand-in when it is missing."""
    try:
        import distutils.util  # noqa: F401
    except ImportError:
        dist, util = types.ModuleType("distutils"), types.ModuleType("distutils.util")
        util.strtobool = lambda v: str(v).lower() in ("y", "yes", "t", "true", "on", "1")
        dist.util = util
        sys.modules["distutils"], sys.modules["distutils.util"] = dist, util


def import_loop(patched: Path) -> types.SimpleNamespace:
    """The official modules from a patched copy (put first on sys.path: benchmarks/ has a metrics.py too)."""
    _stand_ins()
    sys.path.insert(0, str(patched))
    for name in list(sys.modules):  # a module of the same name imported earlier (e.g. benchmarks/metrics.py)
        if name.split(".")[0] in ("training", "metrics", "torch_utils", "dnnlib", "legacy"):
            del sys.modules[name]
    mods = {n: importlib.import_module(m) for n, m in [
        ("training_loop", "training.training_loop"), ("networks", "training.networks"), ("loss", "training.loss"),
        ("augment", "training.augment"), ("dataset", "training.dataset"), ("misc", "torch_utils.misc"),
        ("training_stats", "torch_utils.training_stats")]}
    return types.SimpleNamespace(**mods)


def deterministic_summary(off) -> None:
    """The official loop prints its network tables by running G in training mode on torch.empty latents,
    which moves G.mapping.w_avg by whatever memory held (NaN at times, and then every snapshot's w_avg is
    NaN: adagan refuses to load such a file). Zero latents make that move the same every run; nothing else
    of training depends on it (w_avg only serves truncation)."""
    original = off.misc.print_module_summary
    if getattr(original, "zero_inputs", False):
        return

    def summary(module, inputs, **kw):
        return original(module, [x.zero_() for x in inputs], **kw)

    summary.zero_inputs = True
    off.misc.print_module_summary = summary


def augment_multipliers(augpipe: str) -> dict[str, int]:
    """The official AugmentPipe's keyword arguments for an adagan --augpipe name: each of its transforms at
    probability multiplier 1 (as the official train.py's augpipe_specs)."""
    from adagan.augment.pipeline import GROUPS
    from adagan.config import AUGPIPES

    return {t: 1 for group in AUGPIPES[augpipe] for t in GROUPS[group]}


def loop_kwargs(cfg, data_dir: str, run_dir: str, *, total_kimg: float, snap_ticks: int | None,
                image_ticks: int | None) -> dict:
    """training_loop's keyword arguments for an adagan TrainConfig, as the official train.py builds them
    (fp32 on CPU: num_fp16_res 0; G_reg_interval 4 even without path length, as train.py)."""
    g, d, loss, opt, aug = cfg.G, cfg.D, cfg.loss, cfg.optim, cfg.augment
    augment_kwargs, ada_target = None, None
    if aug.mode != "noaug":
        augment_kwargs = dict(class_name="training.augment.AugmentPipe", **augment_multipliers(aug.augpipe))
        ada_target = aug.target if aug.mode == "ada" else None
    return dict(
        run_dir=run_dir,
        training_set_kwargs=dict(class_name="training.dataset.ImageFolderDataset", path=data_dir, use_labels=False,
                                 max_size=None, xflip=cfg.mirror, resolution=g.img_resolution),
        data_loader_kwargs=dict(num_workers=0),
        G_kwargs=dict(class_name="training.networks.Generator", z_dim=g.z_dim, w_dim=g.w_dim,
                      mapping_kwargs=dict(num_layers=g.map_layers),
                      synthesis_kwargs=dict(channel_base=g.channel_base, channel_max=g.channel_max, num_fp16_res=0,
                                            conv_clamp=g.conv_clamp, architecture=g.architecture)),
        D_kwargs=dict(class_name="training.networks.Discriminator", architecture=d.architecture,
                      channel_base=d.channel_base, channel_max=d.channel_max, num_fp16_res=0,
                      conv_clamp=d.conv_clamp, block_kwargs={}, mapping_kwargs={},
                      epilogue_kwargs=dict(mbstd_group_size=d.mbstd_group_size)),
        G_opt_kwargs=dict(class_name="torch.optim.Adam", lr=opt.lr_g, betas=[opt.beta1, opt.beta2], eps=opt.eps),
        D_opt_kwargs=dict(class_name="torch.optim.Adam", lr=opt.lr_d, betas=[opt.beta1, opt.beta2], eps=opt.eps),
        augment_kwargs=augment_kwargs,
        loss_kwargs=dict(class_name="training.loss.StyleGAN2Loss", r1_gamma=loss.r1_gamma,
                         style_mixing_prob=loss.style_mixing_prob, pl_weight=loss.pl_weight,
                         pl_batch_shrink=loss.pl_batch_shrink, pl_decay=loss.pl_decay),
        metrics=[], random_seed=cfg.seed, num_gpus=1, rank=0, batch_size=cfg.batch, batch_gpu=cfg.batch_gpu,
        ema_kimg=cfg.ema_kimg, ema_rampup=cfg.ema_rampup, G_reg_interval=loss.pl_interval,
        D_reg_interval=loss.r1_interval, augment_p=aug.p, ada_target=ada_target, ada_interval=aug.interval,
        ada_kimg=aug.ada_kimg, total_kimg=total_kimg, kimg_per_tick=cfg.tick_kimg,
        image_snapshot_ticks=image_ticks, network_snapshot_ticks=snap_ticks, cudnn_benchmark=False)


def export_folder(spec: str, resolution: int, dest: Path, count: int | None = None) -> Path:
    """Write the first `count` images of an adagan dataset (e.g. builtin:twemoji/smileys) as PNGs
    img00000.png, ... to dest: the official ImageFolderDataset and adagan's ImageDataset both list them
    sorted, so index i is the same image in both."""
    import numpy as np
    from PIL import Image

    from adagan.data import open_dataset

    ds = open_dataset(spec, resolution=resolution, log=lambda msg: None)
    n = len(ds) if count is None else min(count, len(ds))
    if count is not None and count > len(ds):
        raise UsageError(f"--images {count}: {spec} has only {len(ds)} images")
    dest.mkdir(parents=True, exist_ok=True)
    imgs, _ = ds.get_batch(list(range(n)))
    for i, img in enumerate(imgs.numpy()):
        arr = np.ascontiguousarray(img.transpose(1, 2, 0))
        Image.fromarray(arr[:, :, 0] if arr.shape[2] == 1 else arr).save(dest / f"img{i:05d}.png")
    ds.close()
    return dest
