"""adagan vs NVIDIA's official StyleGAN2-ADA code: the same networks, phases and inputs, timed in one run.

    python benchmarks/vs_official.py --official /path/to/stylegan2-ada-pytorch
    python benchmarks/vs_official.py --official PATH --configs cpu32 --iters 7 --json out.json

The official code is imported from the checkout given with --official (NVlabs/stylegan2-ada-pytorch); this
file contains none of it. Both sides start from identical weights: the official G and D are built with the
config's arguments and random weights, pickled as an official snapshot and converted with adagan's
import-official path (`adagan.official.convert_official`), as ../shared/parity/official_parity.py does.
Both get the same latents, labels and reals, and the global RNG is seeded identically before every timed
call (noise inputs, style mixing and augmentation draws are then statistically alike, not equal).

Rows, per config (each a median over --iters calls, official and adagan alternating call by call, the order
swapped every round, so both see the same machine load):
  G fwd eval  G(z, c) in eval mode under no_grad (an inference / metrics batch)
  Gmain       loss.accumulate_gradients('Gmain'): G forward, augment, D forward, backward through both
  Greg        'Greg': path length on batch / 2, double backward through G (gain 4)
  Dmain       'Dmain': G forward without grad, D on augmented fakes and reals, backward (gain 1)
  Dreg        'Dreg': R1 through the augment pipe on the reals, double backward through D (gain 16)
  augment     the bgc pipe at p = 0.6 on the reals, forward + backward to the input
  iteration   one whole training iteration as each code base's loop runs it when every lazy regularizer
              is due: per phase zero_grad, requires_grad on, accumulate_gradients, requires_grad off,
              (official: nan_to_num of the gradients), Adam step; then the G_ema update; reals converted
              from uint8 first. adagan's side uses its loop's own pieces (build_phases, StyleGAN2Loss,
              training.trainer.update_ema, ops.image.to_float) the way loop.run_phase strings them together.
              The ADA p update (every 4th iteration, < 1 ms) and data loading are left out.
  The iteration's calls also time their parts: phases (accumulate_gradients), optimizer (zero_grad,
  requires_grad, nan_to_num, Adam), G_ema, data; "overhead / phases" is everything but the phases over
  the phases, from the same calls (rows timed minutes apart see different machine load).
Every phase runs through the bgc augment pipe at p = 0.6 (both sides), as D sees images during training.

GFLOP counts come from torch.utils.flop_counter (convolutions, matrix products and their backward, once
per side, on the same call); GFLOP/s = count / median time; "% peak" divides by the fp32 matmul rate of
this machine (2048x2048 on CPU, 8192x8192 on CUDA) timed between the rounds of the same run.

Configs: cpu32 = the `cpu` preset at 32 px, batch 32; paper256-64 = `paper256` networks at 64 px, batch 8
(CPU); paper256-256 = `paper256` at 256 px, batch 32, only on CUDA. fp32 everywhere on CPU (adagan never runs
fp16 there; the official networks are built with num_fp16_res=0 to match, conv_clamp as the preset); on
CUDA both use the preset's num_fp16_res=4 and conv_clamp=256. Presets without path length (`cpu`) get a
Greg row with pl_weight=2 for comparison only; their iteration has no Greg, as in training.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import pickle
import platform
import statistics
import sys
import tempfile
import time
import types
import warnings

import torch

from official_cpu import stand_in_distutils  # benchmarks/official_cpu.py (this folder is sys.path[0])

CONFIGS = {
    "cpu32": dict(preset="cpu", res=32, batch=32, device="cpu"),
    "paper256-64": dict(preset="paper256", res=64, batch=8, device="cpu"),
    "paper256-256": dict(preset="paper256", res=256, batch=32, device="cuda"),
}
AUG_P = 0.6
PHASE_ROWS = ("G fwd eval", "Gmain", "Greg", "Dmain", "Dreg", "augment", "iteration")


# ---- the official code ----------------------------------------------------------------------------------

def import_official(path: str):
    """The official modules, imported from the checkout (with stand-ins for modules it imports but we lack)."""
    try:
        import requests  # noqa: F401
    except ImportError:  # dnnlib imports it at module level, only to download URLs
        sys.modules["requests"] = types.ModuleType("requests")
    stand_in_distutils()
    path = os.path.abspath(path)
    if not os.path.isfile(os.path.join(path, "training", "loss.py")):
        raise SystemExit(f"--official {path!r}: no training/loss.py; give a stylegan2-ada-pytorch checkout")
    sys.path.insert(0, path)
    import importlib

    mods = types.SimpleNamespace(
        networks=importlib.import_module("training.networks"),
        loss=importlib.import_module("training.loss"),
        augment=importlib.import_module("training.augment"),
        misc=importlib.import_module("torch_utils.misc"),
    )
    # What the official training loop switches on before training (custom ops only take effect on CUDA).
    importlib.import_module("torch_utils.ops.conv2d_gradfix").enabled = True
    importlib.import_module("torch_utils.ops.grid_sample_gradfix").enabled = True
    return mods


def build_pair(off, tcfg, device):
    """(official G, D) with their default random init, and adagan's G, D converted from their pickle."""
    from adagan.official import convert_official

    g, d = tcfg.G, tcfg.D
    fp16 = g.num_fp16_res if device.type == "cuda" else 0
    torch.manual_seed(0)
    oG = off.networks.Generator(
        z_dim=g.z_dim, c_dim=g.c_dim, w_dim=g.w_dim, img_resolution=g.img_resolution, img_channels=g.img_channels,
        mapping_kwargs=dict(num_layers=g.map_layers),
        synthesis_kwargs=dict(channel_base=g.channel_base, channel_max=g.channel_max, num_fp16_res=fp16,
                              conv_clamp=g.conv_clamp, architecture=g.architecture))
    oD = off.networks.Discriminator(
        c_dim=d.c_dim, img_resolution=d.img_resolution, img_channels=d.img_channels, architecture=d.architecture,
        channel_base=d.channel_base, channel_max=d.channel_max, num_fp16_res=fp16, conv_clamp=d.conv_clamp,
        epilogue_kwargs=dict(mbstd_group_size=d.mbstd_group_size))
    snap = {"G": oG, "D": oD, "G_ema": oG}
    with tempfile.TemporaryDirectory() as tmp:
        pkl = os.path.join(tmp, "network-snapshot-000000.pkl")
        with open(pkl, "wb") as f:
            pickle.dump({k: copy.deepcopy(v).eval().requires_grad_(False) for k, v in snap.items()}, f)
        nets = convert_official(pkl)
    return (oG.train().requires_grad_(False).to(device), oD.train().requires_grad_(False).to(device),
            nets.G.train().requires_grad_(False).to(device), nets.D.train().requires_grad_(False).to(device))


# ---- one side: its loss, its phases, its iteration ------------------------------------------------------

class Side:
    def __init__(self, name, G, D, pipe, loss, reg_loss, phases, *, to_float, update_ema, nan_to_num=None):
        self.name, self.G, self.D, self.pipe = name, G, D, pipe
        self.loss, self.reg_loss = loss, reg_loss  # reg_loss: for the Greg row (pl_weight 2 when the preset has 0)
        self.phases = phases  # [(name, module, opt, interval)] as the loop runs them
        self.G_ema = copy.deepcopy(G).eval()
        self.G_eval = copy.deepcopy(G).eval()
        self.to_float, self.update_ema = to_float, update_ema  # the loop's uint8 -> [-1, 1] and G_ema update
        self.nan_to_num = nan_to_num  # the official loop's gradient sanitiser (None: adagan's loop has none)
        self.splits = []  # per iteration call: seconds in phases, optimizer, ema, data

    def accumulate(self, phase, reals, c, z, gain, row=False):
        """One accumulate_gradients call; row=True: the Greg row, with pl_weight 2 when the preset has 0."""
        loss = self.reg_loss if row and phase == "Greg" else self.loss
        if self.name == "official":
            loss.accumulate_gradients(phase, reals, c, z, c, sync=True, gain=gain)
        else:
            loss.accumulate_gradients(phase, reals, c, z, c, gain=gain)


def make_sides(off, tcfg, device):
    from adagan.augment import AugmentPipe
    from adagan.ops.image import to_float
    from adagan.training.loss import StyleGAN2Loss
    from adagan.training.trainer import build_phases, update_ema

    oG, oD, aG, aD = build_pair(off, tcfg, device)
    lc, oc = tcfg.loss, tcfg.optim

    # official: bgc as its train.py spells it, p = AUG_P
    opipe = off.augment.AugmentPipe(xflip=1, rotate90=1, xint=1, scale=1, rotate=1, aniso=1, xfrac=1,
                                    brightness=1, contrast=1, lumaflip=1, hue=1, saturation=1).train()
    opipe = opipe.requires_grad_(False).to(device)
    opipe.p.copy_(torch.as_tensor(AUG_P))

    def oloss(pl_weight):
        return off.loss.StyleGAN2Loss(device=device, G_mapping=oG.mapping, G_synthesis=oG.synthesis, D=oD,
                                      augment_pipe=opipe, style_mixing_prob=lc.style_mixing_prob,
                                      r1_gamma=lc.r1_gamma, pl_batch_shrink=lc.pl_batch_shrink,
                                      pl_decay=lc.pl_decay, pl_weight=pl_weight)

    # The official loop's optimizers: Adam per network, lr and betas scaled by k/(k+1) for lazy regularization.
    ophases = []
    for name, module, k, lr in (("G", oG, lc.pl_interval, oc.lr_g), ("D", oD, lc.r1_interval, oc.lr_d)):
        ratio = k / (k + 1)
        opt = torch.optim.Adam(module.parameters(), lr=lr * ratio, betas=(oc.beta1**ratio, oc.beta2**ratio),
                               eps=oc.eps)
        ophases.append((f"{name}main", module, opt, 1))
        ophases.append((f"{name}reg", module, opt, k))  # the official loop runs it even with weight 0
    official = Side("official", oG, oD, opipe, oloss(lc.pl_weight), oloss(lc.pl_weight or 2.0), ophases,
                    to_float=_official_to_float, update_ema=_official_update_ema, nan_to_num=off.misc.nan_to_num)

    apipe = AugmentPipe(augpipe="bgc").train().requires_grad_(False).to(device)
    apipe.p.fill_(AUG_P)
    aloss = StyleGAN2Loss(aG, aD, apipe, lc)
    areg = aloss if lc.pl_weight else StyleGAN2Loss(aG, aD, apipe, _replace(lc, pl_weight=2.0))
    aphases = [(p.name, p.module, p.opt, p.interval) for p in build_phases(aG, aD, lc, oc)]
    adagan = Side("adagan", aG, aD, apipe, aloss, areg, aphases, to_float=to_float, update_ema=update_ema)
    return official, adagan


# What the official training loop does inline (written here, not copied): reals to [-1, 1], and G_ema as a
# lerp of the parameters and a copy of the buffers.
def _official_to_float(img, device):
    return img.to(device).to(torch.float32) / 127.5 - 1


@torch.no_grad()
def _official_update_ema(G_ema, G, beta):
    for p_ema, p in zip(G_ema.parameters(), G.parameters(), strict=True):
        p_ema.copy_(p.lerp(p_ema, beta))
    for b_ema, b in zip(G_ema.buffers(), G.buffers(), strict=True):
        b_ema.copy_(b)


def _replace(cfg, **kw):
    import dataclasses

    return dataclasses.replace(cfg, **kw)


def phase_fns(side, inputs, tcfg, device):
    """name -> zero-argument function running that row once on this side."""
    z, c, reals, reals_u8 = inputs["z"], inputs["c"], inputs["reals"], inputs["reals_u8"]
    G, D = side.G, side.D

    def g_eval():
        with torch.no_grad():
            side.G_eval(z, c)

    def phase(name, module, gain):
        def run():
            module.requires_grad_(True)
            for p in module.parameters():
                p.grad = None
            side.accumulate(name, reals, c, z, gain, row=True)
            module.requires_grad_(False)
        return run

    def augment():
        x = reals.detach().requires_grad_(True)
        side.pipe(x).square().sum().backward()

    def iteration():
        # Each call also records where its time went (side.splits): the phases' accumulate_gradients, the
        # optimizer work around them, the G_ema update and the uint8 -> float conversion of the reals.
        split = dict(phases=0.0, optimizer=0.0, ema=0.0, data=0.0)

        def lap(key, t0):
            _sync(device)
            t = time.perf_counter()
            split[key] += t - t0
            return t

        t = time.perf_counter()
        real = side.to_float(reals_u8, device)
        t = lap("data", t)
        for name, module, opt, interval in side.phases:  # every phase due, as at batch_idx 0
            opt.zero_grad(set_to_none=True)
            module.requires_grad_(True)
            t = lap("optimizer", t)
            side.accumulate(name, real, c, z, gain=interval)
            t = lap("phases", t)
            module.requires_grad_(False)
            if side.nan_to_num is not None:  # the official loop sanitises gradients before the step
                for p in module.parameters():
                    if p.grad is not None:
                        side.nan_to_num(p.grad, nan=0, posinf=1e5, neginf=-1e5, out=p.grad)
            opt.step()
            t = lap("optimizer", t)
        side.update_ema(side.G_ema, G, 0.5 ** (tcfg.batch / (tcfg.ema_kimg * 1000)))
        lap("ema", t)
        side.splits.append(split)

    rows = {"G fwd eval": g_eval, "Gmain": phase("Gmain", G, 1), "Greg": phase("Greg", G, 4),
            "Dmain": phase("Dmain", D, 1), "Dreg": phase("Dreg", D, 16), "augment": augment,
            "iteration": iteration}
    return rows


# ---- timing ---------------------------------------------------------------------------------------------

def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_peak_fn(device):
    n = 8192 if device.type == "cuda" else 2048
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    return (lambda: a @ b), 2 * n**3


def time_interleaved(fns, device, iters, seed, peak):
    """Median seconds of each function in `fns` (a list), alternating call by call, the order reversed
    every other round; one matmul-peak sample per round goes into `peak`."""
    for fn in fns:  # warm-up (first-call allocations, lazy init)
        torch.manual_seed(seed)
        fn()
    _sync(device)
    times = [[] for _ in fns]
    mm = peak["fn"]
    for r in range(iters):
        order = list(range(len(fns)))
        if r % 2:
            order.reverse()
        for i in order:
            torch.manual_seed(seed + r)
            _sync(device)
            t = time.perf_counter()
            fns[i]()
            _sync(device)
            times[i].append(time.perf_counter() - t)
        _sync(device)
        t = time.perf_counter()
        mm()
        _sync(device)
        peak["samples"].append(time.perf_counter() - t)
    return [statistics.median(ts) for ts in times]


def count_flops(fn, seed):
    """FLOPs of one call: torch.utils.flop_counter's per-op formulas, summed in a plain dispatch mode
    (FlopCounterMode's module tracking hooks break autograd.grad on leaf inputs, i.e. R1)."""
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils.flop_counter import flop_registry

    class Count(TorchDispatchMode):
        total = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            out = func(*args, **kwargs)
            formula = flop_registry.get(func._overloadpacket)
            if formula is not None:
                Count.total += formula(*args, **kwargs, out_val=out)
            return out

    torch.manual_seed(seed)
    with Count():
        fn()
    return Count.total


def loadavg():
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "n/a"


def run_config(off, name, spec, args):
    from adagan.presets import resolve
    from adagan.training import stats

    device = torch.device(spec["device"])
    tcfg = resolve(spec["preset"], spec["res"])
    batch = args.batch or spec["batch"]
    tcfg = _replace(tcfg, batch=batch, batch_gpu=batch)
    official, adagan = make_sides(off, tcfg, device)
    gen = torch.Generator().manual_seed(1)
    reals_u8 = torch.randint(0, 256, [batch, 3, spec["res"], spec["res"]], dtype=torch.uint8, generator=gen)
    inputs = dict(z=torch.randn([batch, tcfg.G.z_dim], generator=gen).to(device),
                  c=torch.zeros([batch, 0], device=device), reals_u8=reals_u8.to(device),
                  reals=(reals_u8.float() / 127.5 - 1).to(device))
    fns = {s.name: phase_fns(s, inputs, tcfg, device) for s in (official, adagan)}
    collector = stats.Collector()  # adagan's loop collects every reported statistic; so does the official one
    mm, mm_flops = matmul_peak_fn(device)
    peak = dict(fn=mm, flops=mm_flops, samples=[])
    rows = []
    load0 = loadavg()
    for i, row in enumerate(PHASE_ROWS):
        if row in args.skip:
            continue
        t_off, t_ada = time_interleaved([fns["official"][row], fns["adagan"][row]], device, args.iters, 100 * i,
                                        peak)
        f_off = count_flops(fns["official"][row], 100 * i)
        f_ada = count_flops(fns["adagan"][row], 100 * i)
        rows.append(dict(phase=row, ms_official=t_off * 1e3, ms_adagan=t_ada * 1e3, gflop_official=f_off / 1e9,
                         gflop_adagan=f_ada / 1e9))
        print(f"  {row:<11s} official {t_off * 1e3:9.1f} ms   adagan {t_ada * 1e3:9.1f} ms   "
              f"ratio {t_off / t_ada:5.2f}   load {loadavg()}", flush=True)
    collector.close()
    peak_gflops = mm_flops / statistics.median(peak["samples"]) / 1e9
    for r in rows:
        r["ratio"] = r["ms_official"] / r["ms_adagan"]
        for side in ("official", "adagan"):
            r[f"gflops_{side}"] = r[f"gflop_{side}"] / (r[f"ms_{side}"] / 1e3)
            r[f"peak_frac_{side}"] = r[f"gflops_{side}"] / peak_gflops
    by = {r["phase"]: r for r in rows}
    if "iteration" in by:
        # The timed iteration calls: the one after the warm-up, up to --iters (the FLOP count comes after).
        overhead = {}
        for side in (official, adagan):
            calls = side.splits[1:1 + args.iters]
            med = {k: 1e3 * statistics.median(c[k] for c in calls) for k in calls[0]}
            total = [sum(c.values()) for c in calls]
            rest = [sum(c.values()) - c["phases"] for c in calls]
            med["overhead_frac"] = statistics.median(r / c["phases"] for r, c in zip(rest, calls, strict=True))
            med["total"] = 1e3 * statistics.median(total)
            overhead[side.name] = med
        by["iteration"]["phases_in_iteration"] = [p[0] for p in adagan.phases]
        by["iteration"]["overhead"] = overhead
    return dict(config=name, preset=spec["preset"], res=spec["res"], batch=batch, device=str(device),
                threads=torch.get_num_threads(), peak_gflops=peak_gflops, loadavg_start=load0,
                loadavg_end=loadavg(), rows=rows,
                G_params=sum(p.numel() for p in adagan.G.parameters()),
                D_params=sum(p.numel() for p in adagan.D.parameters()))


def print_table(res):
    print(f"\n### {res['config']}: `{res['preset']}` at {res['res']} px, batch {res['batch']}, {res['device']}, "
          f"{res['threads']} threads; G {res['G_params'] / 1e6:.2f} M, D {res['D_params'] / 1e6:.2f} M params; "
          f"fp32 matmul peak {res['peak_gflops']:.0f} GFLOP/s; load average {res['loadavg_start']} -> "
          f"{res['loadavg_end']}\n")
    print("| phase | ms official | ms adagan | speed ratio | GFLOP (off. / adagan) | GFLOP/s (off. / adagan) "
          "| % of peak (off. / adagan) |")
    print("|---|---|---|---|---|---|---|")
    for r in res["rows"]:
        print(f"| {r['phase']} | {r['ms_official']:,.1f} | {r['ms_adagan']:,.1f} | {r['ratio']:.2f}x | "
              f"{r['gflop_official']:.2f} / {r['gflop_adagan']:.2f} | {r['gflops_official']:.0f} / "
              f"{r['gflops_adagan']:.0f} | {100 * r['peak_frac_official']:.0f}% / {100 * r['peak_frac_adagan']:.0f}% |")
    it = next((r for r in res["rows"] if "overhead" in r), None)
    if it is not None:
        print(f"\nInside the iteration (medians of the same calls; adagan's phases: "
              f"{', '.join(it['phases_in_iteration'])}):\n")
        print("| side | phases | optimizer | G_ema | data | overhead / phases |")
        print("|---|---|---|---|---|---|")
        for side in ("official", "adagan"):
            o = it["overhead"][side]
            print(f"| {side} | {o['phases']:,.1f} ms | {o['optimizer']:,.1f} ms | {o['ema']:,.1f} ms | "
                  f"{o['data']:,.1f} ms | {100 * o['overhead_frac']:+.1f}% |")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--official", required=True, help="a checkout of NVlabs/stylegan2-ada-pytorch")
    ap.add_argument("--configs", default=None,
                    help=f"comma-separated subset of {', '.join(CONFIGS)} (default: the CPU ones, plus "
                         "paper256-256 when CUDA is available)")
    ap.add_argument("--iters", type=int, default=5, help="timed calls per side and row (after one warm-up)")
    ap.add_argument("--batch", type=int, default=None, help="override every config's batch")
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    ap.add_argument("--skip", default="", help=f"comma-separated rows to leave out ({', '.join(PHASE_ROWS)})")
    ap.add_argument("--json", default=None, help="also write the results here")
    args = ap.parse_args()
    args.skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    if args.threads:
        torch.set_num_threads(args.threads)
    names = args.configs.split(",") if args.configs else \
        [n for n, s in CONFIGS.items() if s["device"] == "cpu" or torch.cuda.is_available()]
    for n in names:
        if n not in CONFIGS:
            raise SystemExit(f"unknown config {n!r}; choose from {', '.join(CONFIGS)}")
        if CONFIGS[n]["device"] == "cuda" and not torch.cuda.is_available():
            raise SystemExit(f"config {n} needs CUDA")
    torch.backends.cuda.matmul.allow_tf32 = False  # both training loops turn TF32 off
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cudnn.benchmark = True
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the official code's deprecation warnings on a recent torch
        off = import_official(args.official)
        env = dict(python=platform.python_version(), torch=torch.__version__, threads=torch.get_num_threads(),
                   cpu=platform.processor() or platform.machine(), cores=os.cpu_count(),
                   gpu=torch.cuda.get_device_name() if torch.cuda.is_available() else None)
        print(json.dumps(env))
        results = []
        for n in names:
            print(f"\n== {n}", flush=True)
            results.append(run_config(off, n, CONFIGS[n], args))
    print("\nspeed ratio = ms official / ms adagan (> 1: adagan is faster)")
    for r in results:
        print_table(r)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(env=env, results=results), f, indent=2)


if __name__ == "__main__":
    main()
