"""The whole training run held against NVIDIA's official StyleGAN2-ADA training loop (issue 27).

    python benchmarks/vs_official_training.py --official PATH                  # exact check, 64 iterations
    python benchmarks/vs_official_training.py --official PATH --iters 128 --tol 2
    python benchmarks/vs_official_training.py --official PATH --which official --seed 1 --out runs/vs
    python benchmarks/vs_official_training.py --official PATH --which adagan --seed 1 --out runs/vs
    python benchmarks/vs_official_training.py --official PATH --report --out runs/vs

The official code is imported from the checkout given with --official (NVlabs/stylegan2-ada-pytorch),
copied to a temporary folder and patched there to run on CPU (benchmarks/official_cpu.py); nothing of it is
in this repository.

Exact mode (the default). Both loops train the `cpu` preset's networks (src/adagan/config.py PRESETS['cpu'];
ADA bgc, target 0.6, ada_kimg 20, lazy R1 every 16, G reg interval 4, EMA 2.5 kimg with ramp-up 0.05) for
--iters iterations on --images images of builtin:twemoji/smileys. The official `training_loop.training_loop`
runs first, unchanged apart from the CPU patches, with recorders around three of its calls: the data
sampler (which images each batch holds), `StyleGAN2Loss.accumulate_gradients` (each phase's z, c, gain and
the global RNG state it starts from, i.e. the noise inputs) and `AugmentPipe.forward` (every random
number the pipe draws). Then adagan's `training.loop.setup` and `run_iteration` run the same number of
iterations from the official G and D as they were when training began (converted by `adagan
import-official`'s code), fed the recorded batches, latents and RNG states, and adagan's augment pipe is
handed the official pipe's draws (each transform's value and Bernoulli draw; the two pipes draw them in
different orders). Everything else (phases, Adam, gains, R1, the EMA and its ramp-up, the ADA controller)
is each code's own. At the end G, D and G_ema (the official ones read from its last snapshot with adagan's
importer) are compared tensor by tensor, and p.

Why a float floor and not a fixed tolerance: two float32 codes that sum in different orders cannot end 64
GAN iterations with equal weights. Adam's first step is lr * sign(g) for every weight, so each gradient
element within rounding of zero flips a step of 2 lr, and the runs drift apart from there (measured: the
first Gmain gradients of the two codes differ by up to 2e-3 of a tensor's largest, on the noise strengths,
whose gradient is a sum of ~30,000 cancelling terms; adagan's agree with a float64 evaluation to 1e-6).
So the script also runs the official loop a second time with its initial G and D weights multiplied by
1 + 2**-23 (one float32 ulp) and measures how far that moves its own result (|official' - official|, per
network, the L2 norm over all tensors), after 1, 2, 4, ... iterations and at the end. PASS when
|adagan - official| <= --tol (default 3) times that floor for G, D and G_ema at every checkpoint, at most
max(1, --tol x the floor run's count) ADA updates step differently from the official ones (`check_p`), and
the batches are identical; a logic
difference (a wrong gain, interval, EMA or ADA step, a different draw) shows as a ratio far above 1.

Statistical mode (--which official|adagan --seed S, then --report): benchmarks/vs_official_stats.py.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import math
import sys
import tempfile
import time
import types
from dataclasses import replace
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import official_cpu  # noqa: E402  (benchmarks/official_cpu.py)

DATA = "builtin:twemoji/smileys"


class Recording:
    """What the official loop did, call by call."""

    def __init__(self):
        self.indices: list[int] = []  # dataset indices in the order the sampler handed them out
        self.calls: list[dict] = []  # one per accumulate_gradients call
        self.current: dict | None = None
        self.pipe = None  # the official AugmentPipe (for its final p)
        self.G = self.D = None  # the official networks being trained
        self.start: dict | None = None  # G and D when the first phase began
        self.keep_grads = 8  # keep the gradients of this many first phase calls
        self.nudge = False  # multiply the new G's and D's weights by 1 + 2**-23 (about one float32 ulp)
        self.G_ema = None  # the official G_ema (the loop's first deep copy of G)
        self.checkpoints: set[int] = set()  # iterations after which to keep G, D, G_ema and p
        self.snaps: dict[int, dict] = {}
        self.iteration = 0  # Gmain calls so far = iterations begun
        self.p: list[float] = []  # p at the start of every iteration (then the final p)

    def keep(self, k: int) -> None:
        self.snaps[k] = dict(G=copy.deepcopy(self.G), D=copy.deepcopy(self.D), G_ema=copy.deepcopy(self.G_ema),
                             p=float(self.pipe.p) if self.pipe is not None else 0.0)


@contextlib.contextmanager
def recorders(off, rec: Recording):
    """Wrap the official sampler, loss and augment pipe so that `rec` sees their inputs and draws."""
    Sampler, Loss, Pipe = off.misc.InfiniteSampler, off.loss.StyleGAN2Loss, off.augment.AugmentPipe
    Gen, Disc, misc, loop = off.networks.Generator, off.networks.Discriminator, off.misc, off.training_loop
    saved = {(Sampler, "__iter__"): Sampler.__iter__, (Loss, "accumulate_gradients"): Loss.accumulate_gradients,
             (Pipe, "forward"): Pipe.forward, (Gen, "__init__"): Gen.__init__, (Disc, "__init__"): Disc.__init__,
             (misc, "print_module_summary"): misc.print_module_summary, (loop, "copy"): loop.copy}

    def sampler_iter(self):
        for idx in saved[(Sampler, "__iter__")](self):
            rec.indices.append(int(idx))
            yield idx

    def accumulate(self, phase, real_img, real_c, gen_z, gen_c, sync, gain):
        if rec.start is None:
            rec.start = {"G": copy.deepcopy(rec.G), "D": copy.deepcopy(rec.D)}
        if phase == "Gmain":  # the first phase of every iteration: the state after rec.iteration iterations
            rec.p.append(float(rec.pipe.p) if rec.pipe is not None else 0.0)
            if rec.iteration in rec.checkpoints:
                rec.keep(rec.iteration)
            rec.iteration += 1
        call = dict(phase=phase, real=real_img.detach().clone(), z=gen_z.detach().clone(),
                    c=gen_c.detach().clone(), gain=gain, rng=torch.get_rng_state(), aug=[])
        rec.calls.append(call)
        rec.current = call
        try:
            saved[(Loss, "accumulate_gradients")](self, phase=phase, real_img=real_img, real_c=real_c, gen_z=gen_z,
                                                  gen_c=gen_c, sync=sync, gain=gain)
        finally:
            rec.current = None
        module = rec.G if phase.startswith("G") else rec.D
        call["grads"] = any(p.grad is not None for p in module.parameters())
        if len(rec.calls) <= rec.keep_grads:  # the first calls' gradients, to show where a difference starts
            call["grad"] = {n: p.grad.detach().clone() for n, p in module.named_parameters() if p.grad is not None}

    def pipe_forward(self, images, debug_percentile=None):
        draws, rand, randn = [], torch.rand, torch.randn

        def rec_rand(*a, **k):
            t = rand(*a, **k)
            draws.append(("u", t.detach().clone()))
            return t

        def rec_randn(*a, **k):
            t = randn(*a, **k)
            draws.append(("n", t.detach().clone()))
            return t

        torch.rand, torch.randn = rec_rand, rec_randn
        try:
            out = saved[(Pipe, "forward")](self, images, debug_percentile)
        finally:
            torch.rand, torch.randn = rand, randn
        rec.pipe = self
        if rec.current is not None:
            rec.current["aug"].append(draws)
        return out

    def nudged(net):
        if rec.nudge:
            with torch.no_grad():
                for p in net.parameters():
                    p.mul_(1 + 2**-23)
        return net

    def gen_init(self, *a, **k):
        saved[(Gen, "__init__")](self, *a, **k)
        rec.G = nudged(self) if rec.G is None else rec.G

    def disc_init(self, *a, **k):
        saved[(Disc, "__init__")](self, *a, **k)
        rec.D = nudged(self) if rec.D is None else rec.D

    def summary(module, inputs, **kw):
        # The loop prints its network tables by running G in training mode on torch.empty latents, which moves
        # G.mapping.w_avg by whatever memory held (NaN at times); zeros make that move the same every run.
        return saved[(misc, "print_module_summary")](module, [x.zero_() for x in inputs], **kw)

    def deepcopy(x, memo=None):  # the loop's `copy` module, whose first copy of G is G_ema
        out = copy.deepcopy(x, memo)
        if x is rec.G and rec.G_ema is None:
            rec.G_ema = out
        return out

    copy_module = types.SimpleNamespace(deepcopy=deepcopy, copy=copy.copy)
    fns = (sampler_iter, accumulate, pipe_forward, gen_init, disc_init, summary, copy_module)
    for (cls, name), fn in zip(saved, fns, strict=True):
        setattr(cls, name, fn)
    try:
        yield rec
    finally:
        for (cls, name), fn in saved.items():
            setattr(cls, name, fn)


class FedDraws:
    """Stands in for adagan's augment/pipeline.py `_Draws`, handing out the official pipe's draws.

    Both pipes draw, for each enabled transform in the same order, one value draw and one Bernoulli
    draw (official: value, then gate; adagan: some transforms gate first). The official draws are paired
    up (value, gate) per transform, and each adagan call takes the matching half of the current pair:
    uniform/normal values as they are, randint(k) as floor(u * k) (the official code's integer draw), a
    gate as u < prob."""

    queue: list[list] = []  # per pipe call: the official draws [(kind, tensor)]

    def __init__(self, n: int, device, q):
        if q is not None or not FedDraws.queue:
            raise RuntimeError("adagan's augment pipe was called more often than the official one")
        draws = FedDraws.queue.pop(0)
        if len(draws) % 2:
            raise RuntimeError(f"official pipe drew {len(draws)} times; expected value/gate pairs")
        self.n, self.device, self.q = n, device, q
        self.pairs = [dict(value=draws[i], gate=draws[i + 1]) for i in range(0, len(draws), 2)]
        self.i = 0

    def _take(self, role: str, kind: str):
        pair = self.pairs[self.i]
        if role not in pair:
            raise RuntimeError(f"draw {self.i}: adagan asks for a second {role}")
        got_kind, t = pair.pop(role)
        if got_kind != kind:
            raise RuntimeError(f"draw {self.i} ({role}): adagan draws {kind}, the official pipe drew {got_kind}")
        if not pair:
            self.i += 1
        return t.reshape(self.n, -1)

    def uniform(self, *shape):
        return self._take("value", "u").reshape(self.n, *shape)

    def normal(self, *shape):
        return self._take("value", "n").reshape(self.n, *shape)

    def randint(self, high: int):
        return torch.floor(self._take("value", "u").reshape(self.n) * high)

    def gate(self, prob):
        return self._take("gate", "u").reshape(self.n) < torch.as_tensor(prob, dtype=torch.float32)

    def done(self) -> bool:
        return self.i == len(self.pairs)


def checkpoints(iters: int) -> list[int]:
    """Iterations after which both runs are compared: 1, 2, 4, ... and the last."""
    return sorted({2**i for i in range(iters.bit_length()) if 2**i < iters} | {iters})


def run_official(off, cfg, data_dir: Path, run_dir: Path, iters: int, nudge: bool = False) -> Recording:
    rec = Recording()
    rec.nudge = nudge
    rec.checkpoints = set(checkpoints(iters))
    kw = official_cpu.loop_kwargs(cfg, str(data_dir), str(run_dir), total_kimg=iters * cfg.batch / 1000,
                                  snap_ticks=10**6, image_ticks=None)
    kw["kimg_per_tick"] = 10**6  # one tick after the first iteration (official), one at the end
    run_dir.mkdir(parents=True, exist_ok=True)
    with recorders(off, rec), contextlib.redirect_stdout(sys.stderr):
        off.training_loop.training_loop(**kw)
    rec.keep(iters)
    rec.p.append(float(rec.pipe.p))
    return rec


def run_adagan(cfg, rec: Recording, data_dir: Path, run_dir: Path, start_file: Path, iters: int):
    """adagan's setup + run_iteration, fed the official loop's batches, latents, RNG states and draws."""
    from adagan.augment import pipeline
    from adagan.data import ImageDataset
    from adagan.training.distributed import Context
    from adagan.training.loop import run_iteration, setup

    ds = ImageDataset(data_dir)
    t, _ = setup(cfg, Context(), run_dir, ds, resume_weights=start_file, log=lambda msg: None)
    t.samples = iter(rec.indices)
    calls = [c for c in rec.calls if c["phase"] != "Greg" or c["grads"]]  # Greg without path length: a no-op
    skipped = len(rec.calls) - len(calls)
    calls.reverse()
    accumulate, data_diff, grad_rows, snaps = t.loss.accumulate_gradients, [0.0], [], {}

    def fed(phase, real_img, real_c, gen_z, gen_c, gain=1.0):
        call = calls.pop()
        if call["phase"] != phase or call["gain"] != gain:
            raise RuntimeError(f"adagan runs {phase} (gain {gain}) where the official loop ran {call['phase']} "
                               f"(gain {call['gain']})")
        data_diff[0] = max(data_diff[0], (real_img - call["real"]).abs().max().item())
        torch.set_rng_state(call["rng"])
        FedDraws.queue = list(call["aug"])
        accumulate(phase, call["real"], real_c, call["z"], None if gen_c is None else call["c"], gain=gain)
        if FedDraws.queue:
            raise RuntimeError(f"{phase}: adagan called its augment pipe fewer times than the official loop")
        if "grad" in call:
            module = t.G if phase.startswith("G") else t.D
            worst = (0.0, "")
            for n, p in module.named_parameters():
                o = call["grad"].get(n)
                if o is None or p.grad is None:
                    continue
                r = (p.grad - o).abs().max().item() / max(o.abs().max().item(), 1e-30)
                worst = max(worst, (r, n))
            grad_rows.append((phase, worst))

    t.loss.accumulate_gradients = fed
    original = pipeline._Draws
    pipeline._Draws = FedDraws
    try:
        keep, p_traj = set(checkpoints(iters)), [float(t.augment_pipe.p)]
        for k in range(1, iters + 1):
            run_iteration(t)
            p_traj.append(float(t.augment_pipe.p))
            if k in keep:
                snaps[k] = dict(G=copy.deepcopy(t.G), D=copy.deepcopy(t.D), G_ema=copy.deepcopy(t.G_ema),
                                p=float(t.augment_pipe.p))
    finally:
        pipeline._Draws = original
        t.close()
    if calls:
        raise RuntimeError(f"{len(calls)} official phase calls were left over")
    return t, dict(skipped_greg=skipped, data_max_abs=data_diff[0], grad_rows=grad_rows, snaps=snaps, p=p_traj)


def compare(official: dict, other: dict, start: dict) -> list[dict]:
    """Per tensor: max |diff|, relative to max |official|, sum of squared diffs, and how far training moved it."""
    rows = []
    for net in ("G", "D", "G_ema"):
        o_sd, a_sd, s_sd = official[net].state_dict(), other[net].state_dict(), start[net].state_dict()
        if set(o_sd) != set(a_sd):
            raise RuntimeError(f"{net}: tensor names differ: {sorted(set(o_sd) ^ set(a_sd))[:4]}")
        for name in sorted(o_sd):
            o, a, s = o_sd[name].double(), a_sd[name].double(), s_sd[name].double()
            if not o.numel():
                continue
            d = torch.where(o.isnan() & a.isnan(), 0.0, o - a)
            diff, scale = d.abs().max().item(), o.abs().nan_to_num(0.0).max().item()
            rel = diff / scale if scale > 0 else (0.0 if diff == 0 else math.inf)
            rows.append(dict(net=net, name=name, diff=diff, scale=scale, rel=rel, sq=d.square().sum().item(),
                             moved=(o - s).abs().nan_to_num(0.0).max().item(),
                             sq_moved=(o - s).nan_to_num(0.0).square().sum().item()))
    return rows


def summarize(rows: list[dict], floor: list[dict], tol: float, verbose: bool) -> int:
    """Per-tensor table (worst first) and per-network distances; returns the number of networks above tol."""
    fl = {(r["net"], r["name"]): r for r in floor}
    print(f"{'tensor':52s} {'max|off|':>9s} {'moved':>9s} {'|ada-off|':>9s} {'rel':>9s} {'|off2-off|':>10s}")
    bad = 0
    for net in ("G", "D", "G_ema"):
        sub = [r for r in rows if r["net"] == net]
        for r in (sub if verbose else sorted(sub, key=lambda r: -r["rel"])[:4]):
            print(f"{net + '.' + r['name']:52s} {r['scale']:9.2e} {r['moved']:9.2e} {r['diff']:9.2e} {r['rel']:9.2e} "
                  f"{fl[(net, r['name'])]['diff']:10.2e}")
        dist = math.sqrt(sum(r["sq"] for r in sub))
        floor_dist = math.sqrt(sum(fl[(net, r["name"])]["sq"] for r in sub))
        moved = math.sqrt(sum(r["sq_moved"] for r in sub))
        ratio = dist / floor_dist if floor_dist > 0 else (0.0 if dist == 0 else math.inf)
        ok = ratio <= tol
        bad += not ok
        print(f"  {net}: |adagan - official| {dist:.3e}, |official' - official| {floor_dist:.3e} (ratio {ratio:.2f}), "
              f"training moved it {moved:.3e}; worst tensor rel {max(r['rel'] for r in sub):.1e}  "
              f"{'ok' if ok else 'FAIL'}")
    return bad


def _as_adagan(tmp: Path, snap: dict, name: str, dest: Path | None = None) -> dict:
    """Official G, D, G_ema modules -> adagan networks through adagan's importer (`adagan import-official`;
    dest: also write its network file there)."""
    import pickle  # our own file: official modules pickled for the importer, in our temporary folder

    from adagan.official import convert_official, import_official

    pkl = tmp / f"{name}.pkl"
    with open(pkl, "wb") as f:
        pickle.dump({k: snap[k] for k in ("G", "D", "G_ema")}, f)
    nets = convert_official(pkl)
    if dest is not None:
        import_official(pkl, dest)
    pkl.unlink()
    return {"G": nets.G, "D": nets.D, "G_ema": nets.G_ema, "p": snap.get("p", 0.0)}


def _trajectory(tmp: Path, rec: Recording, rec2: Recording, ours: dict, start: dict, tol: float) -> tuple:
    """Distances at every checkpoint; returns (final rows, final floor rows, checkpoints with a ratio above
    tol)."""
    print(f"{'iter':>5s} {'|adagan - official| G, D, G_ema':>32s} {'|official2 - official|':>30s} "
          f"{'ratios':>18s}  p official / adagan / official2")
    bad_p = 0
    for k in sorted(rec.snaps):
        o = _as_adagan(tmp, rec.snaps[k], f"official-{k}")
        o2 = _as_adagan(tmp, rec2.snaps[k], f"official2-{k}")
        rows, floor = compare(o, ours[k], start), compare(o, o2, start)
        d = [math.sqrt(sum(r["sq"] for r in rows if r["net"] == n)) for n in ("G", "D", "G_ema")]
        f = [math.sqrt(sum(r["sq"] for r in floor if r["net"] == n)) for n in ("G", "D", "G_ema")]
        ratios = [a / b if b > 0 else (0.0 if a == 0 else math.inf) for a, b in zip(d, f, strict=True)]
        bad_p += sum(r > tol for r in ratios)
        print(f"{k:5d} {' '.join(f'{x:10.2e}' for x in d)} {' '.join(f'{x:9.2e}' for x in f)} "
              f"{' '.join(f'{x:5.2f}' for x in ratios)}  {o['p']:.4f} / {ours[k]['p']:.4f} / {o2['p']:.4f}"
              f"{'  FAIL' if max(ratios) > tol else ''}")
    return rows, floor, bad_p


def ada_steps(p: list[float], interval: int = 4) -> list[float]:
    """The change of p at each ADA update (every `interval` iterations) of a per-iteration p trajectory."""
    return [p[i] - p[i - interval] for i in range(interval, len(p), interval)]


def check_p(p_off: list[float], p_ada: list[float], p_off2: list[float], tol: float) -> int:
    """ADA decisions (each update moves p by one step up or down, clamped at 0) that differ from the official
    loop's: adagan may differ in at most max(1, tol x the floor run's count) of them, since a decision is
    sign(r_t - target) of a mean of +-1 signs, and the same one-ulp chaos that moves the weights flips a
    decision whenever r_t sits next to the target. Returns 1 when that fails."""
    s_off, s_ada, s_off2 = ada_steps(p_off), ada_steps(p_ada), ada_steps(p_off2)
    differ = [i for i, (a, b) in enumerate(zip(s_off, s_ada, strict=True)) if abs(a - b) > 1e-6]
    floor = sum(abs(a - b) > 1e-6 for a, b in zip(s_off, s_off2, strict=True))
    ok = len(differ) <= max(1, tol * floor)
    print(f"ADA: {len(s_off)} p updates; adagan's step differs from the official one at {len(differ)} "
          f"(update{'s' if len(differ) != 1 else ''} {', '.join(str(i + 1) for i in differ) or '-'}), official2's "
          f"at {floor}; final p {p_off[-1]:.4f} / {p_ada[-1]:.4f} / {p_off2[-1]:.4f}  {'ok' if ok else 'FAIL'}")
    return 0 if ok else 1


def exact(args) -> int:
    from adagan.config import resolve

    torch.set_num_threads(args.threads)
    cfg = replace(resolve("cpu", 32), seed=args.seed, kimg=args.iters * 32 / 1000, metrics=[], max_minutes=None,
                  snap_ticks=0)
    with tempfile.TemporaryDirectory(prefix="vs-official-") as tmp:
        tmp = Path(tmp)
        off = official_cpu.import_loop(official_cpu.patched_copy(args.official, tmp / "official"))
        data_dir = official_cpu.export_folder(DATA, 32, tmp / "data", args.images)
        t0 = time.time()
        rec = run_official(off, cfg, data_dir, tmp / "official-run", args.iters)
        t1 = time.time()
        start = _as_adagan(tmp, dict(rec.start, G_ema=rec.start["G"]), "start", tmp / "start.safetensors")
        _, info = run_adagan(cfg, rec, data_dir, tmp / "adagan-run", tmp / "start.safetensors", args.iters)
        t2 = time.time()
        rec2 = run_official(off, cfg, data_dir, tmp / "official-nudged", args.iters, nudge=True)
        t3 = time.time()
        n_phase = {}
        for c in rec.calls:
            n_phase[c["phase"]] = n_phase.get(c["phase"], 0) + 1
        print(f"torch {torch.__version__}, {args.threads} thread(s); cpu preset, {args.images} images of {DATA}, "
              f"seed {args.seed}, {args.iters} iterations ({args.iters * 32} images)")
        print(f"official loop {t1 - t0:.0f} s, adagan {t2 - t1:.0f} s, official2 {t3 - t2:.0f} s; official phase "
              f"calls {n_phase} ({info['skipped_greg']} Greg calls without path length did nothing and have no "
              f"adagan phase); {sum(len(c['aug']) for c in rec.calls)} augment calls fed; max |real batch diff| "
              f"{info['data_max_abs']:.1e}")
        print("first phase calls, gradients (worst tensor, max |diff| / max |official grad|): " + "; ".join(
            f"{ph} {r:.1e} ({n})" for ph, (r, n) in info["grad_rows"]))
        print("official2 = the official loop again with its initial G and D weights times 1 + 2**-23 (one float32 "
              "ulp): the float floor. Distances: L2 over all tensors of a network.")
        rows, floor, bad_p = _trajectory(tmp, rec, rec2, info["snaps"], start, args.tol)
        bad_p += check_p(rec.p, info["p"], rec2.p, args.tol)
    print(f"\nafter {args.iters} iterations, per tensor (worst relative difference first):")
    bad = summarize(rows, floor, args.tol, args.verbose) + bad_p + (info["data_max_abs"] > 0)
    print(f"{'PASS' if bad == 0 else 'FAIL'}: adagan within {args.tol:g}x the official loop's own float floor "
          f"({bad} check(s) failed)")
    return 0 if bad == 0 else 1


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--official", help="checkout of NVlabs/stylegan2-ada-pytorch (all modes but --report)")
    ap.add_argument("--iters", type=int, default=64, help="exact mode: iterations (>= 64 covers R1, ADA, EMA)")
    ap.add_argument("--images", type=int, default=64, help=f"exact mode: the first N images of {DATA}")
    ap.add_argument("--tol", type=float, default=3.0,
                    help="exact mode: allowed |adagan - official| / |official' - official| per network (and for p)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--verbose", action="store_true", help="exact mode: print every tensor")
    ap.add_argument("--which", choices=["official", "adagan"], help="statistical mode: train one loop, one seed")
    ap.add_argument("--report", action="store_true", help="statistical mode: the table and grids of --out's runs")
    ap.add_argument("--kimg", type=float, default=60, help="statistical mode: training length")
    ap.add_argument("--out", default="runs/vs-official", help="statistical mode: folder of the runs")
    ap.add_argument("--ada-kimg", type=float, default=None,
                    help="statistical mode: ADA speed instead of the cpu preset's 20 (the paper: 500); runs and "
                         "report go to their own folders")
    ap.add_argument("--every", type=int, default=10, help="--report: a row every N kimg")
    ap.add_argument("--metrics", default="leak1k,kid1k@30",
                    help="--report: adagan metrics per snapshot, NAME@N only every N kimg ('none': skip)")
    args = ap.parse_args(argv)
    if args.iters < 1 or args.images < 1 or args.kimg <= 0 or (args.ada_kimg is not None and args.ada_kimg <= 0):
        ap.error("--iters, --images, --kimg and --ada-kimg must be positive")
    if args.official is None and not args.report and args.which != "adagan":
        ap.error("--official PATH is required (a checkout of NVlabs/stylegan2-ada-pytorch)")
    try:
        if args.report or args.which:
            import vs_official_stats

            if args.report:
                return vs_official_stats.report(args)
            return (vs_official_stats.run_official if args.which == "official" else vs_official_stats.run_adagan)(args)
        return exact(args)
    except official_cpu.UsageError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
