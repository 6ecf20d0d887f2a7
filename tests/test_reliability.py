"""Hostile inputs, one test per class of issue 16: each class's worst cases go through the real CLI in a
child process under a 3 GiB address-space cap, and each must end with exactly one `Error:` line (or a
documented, logged skip or success), no traceback, bounded memory and no file outside its own folder
touched. One child runs every case (one torch import), so the whole set takes seconds, not minutes.

benchmarks/hostile.py is the long version (hundreds of cases, every command, kill -9 and resume).
"""

from __future__ import annotations

import collections
import copy
import importlib.util
import io
import json
import os
import pickle
import shutil
import struct
import subprocess
import sys
import types
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

MEM_CAP = 3 * 2**30

# The bomb builders of the hostile-input run (benchmarks/hostile.py), shared rather than written twice.
_spec = importlib.util.spec_from_file_location("hostile",
                                               Path(__file__).resolve().parents[1] / "benchmarks" / "hostile.py")
HOSTILE = sys.modules.setdefault("hostile", importlib.util.module_from_spec(_spec))  # dataclasses look it up
_spec.loader.exec_module(HOSTILE)

TINY = ["--cfg", "cpu", "--G.z_dim=8", "--G.w_dim=8", "--G.channel_base=128", "--G.channel_max=8",
        "--D.channel_base=128", "--D.channel_max=8", "--D.mbstd_group_size=2", "--batch", "4", "--tick", "0.008",
        "--snap", "1"]

# The child: cap memory, give up root's permission override (so chmod'ed folders are really unreadable; a
# user namespace keeps ownership but drops CAP_DAC_OVERRIDE), then run each case through adagan's main().
DRIVER = r'''
import contextlib, io, json, os, resource, shutil, sys, traceback
from pathlib import Path

cases_file, results_file, fixtures, cap = sys.argv[1], sys.argv[2], Path(sys.argv[3]), int(sys.argv[4])
start = int(sys.argv[5])
resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
permissions = os.geteuid() != 0
if not permissions:
    import ctypes
    permissions = ctypes.CDLL(None, use_errno=True).unshare(0x10000000) == 0

from adagan.cli.main import main

def snapshot():
    out = {}
    for p in fixtures.rglob("*"):
        st = p.lstat()
        out[str(p)] = (st.st_size, st.st_mtime_ns, st.st_mode)
    return out

results = json.loads(Path(results_file).read_text()) if start else []
for case in json.loads(Path(cases_file).read_text())[start:]:
    here = Path(case["cwd"])
    here.mkdir(parents=True, exist_ok=True)
    if case.get("copy_run"):
        shutil.copytree(fixtures / "runs" / "base", here / "runs" / "base")
        newest = sorted((here / "runs" / "base").glob("training-state-*.safetensors"))[-1]
        if case.get("truncate"):
            newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 2])
        if case.get("damage_progress"):
            from safetensors import safe_open
            from safetensors.torch import save_file
            with safe_open(str(newest), "pt") as f:
                meta, tensors = dict(f.metadata()), {k: f.get_tensor(k) for k in f.keys()}
            meta["meta.progress"] = case["damage_progress"]
            save_file(tensors, str(newest), metadata=meta)
    for rel, data in case.get("write", {}).items():
        (here / rel).parent.mkdir(parents=True, exist_ok=True)
        (here / rel).write_bytes(data.encode("latin-1"))
    if case.get("chmod"):
        for rel, mode in case["chmod"].items():
            for p in [here / rel, *(here / rel).rglob("*")] if mode == 0o555 else [here / rel]:
                p.chmod(mode if p.is_dir() else 0o444)
    if case.get("needs_permissions") and not permissions:
        results.append({**case, "skipped": "root cannot drop its permission override here"})
        continue
    before = snapshot()
    out, err, code, tb = io.StringIO(), io.StringIO(), 0, None
    os.chdir(here)
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(case["args"])
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        except BaseException:
            tb, code = traceback.format_exc(), -1
    os.chdir(fixtures)
    for rel in case.get("chmod", {}):
        for p in [here / rel, *(here / rel).rglob("*")]:
            p.chmod(0o755 if p.is_dir() else 0o644)
    after = snapshot()
    touched = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
    results.append({**case, "code": code, "stdout": out.getvalue()[-3000:], "stderr": err.getvalue()[-3000:],
                    "traceback": tb, "touched": touched,
                    "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024})
    Path(results_file).write_text(json.dumps(results))
'''


# ---- fixtures: tiny and hostile --------------------------------------------------------------------------

def _png(arr) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def _dataset_zip(path: Path, n=16, labels=None):
    rng = np.random.default_rng(0)
    names = [f"00000/img{i:08d}.png" for i in range(n)]
    meta = {"labels": None if labels is None else [[nm, lab] for nm, lab in zip(names, labels, strict=True)],
            "class_names": [], "resolution": 16, "channels": 3, "created_by": "adagan dataset (format 1)"}
    with zipfile.ZipFile(path, "w") as zf:
        for nm in names:
            zf.writestr(nm, _png(rng.integers(0, 256, [16, 16, 3], np.uint8)))
        zf.writestr("dataset.json", json.dumps(meta))


def _tamper(src: Path, dst: Path, which="G", **changes):
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(src), "pt") as f:
        meta, tensors = dict(f.metadata()), {k: f.get_tensor(k) for k in f.keys()}
    cfg = json.loads(meta[f"config.{which}"])
    for k, v in changes.items():
        if v is None:
            cfg.pop(k)
        else:
            cfg[k] = v
    meta[f"config.{which}"] = json.dumps(cfg)
    save_file(tensors, str(dst), metadata=meta)


def _official_pickle(path: Path, G, **g_changes):
    """G in the official pickle layout (persistent objects), with its constructor arguments changed."""
    persistence = types.ModuleType("torch_utils.persistence")

    def _reconstruct_persistent_obj(meta):
        raise AssertionError

    _reconstruct_persistent_obj.__module__ = "torch_utils.persistence"
    _reconstruct_persistent_obj.__qualname__ = "_reconstruct_persistent_obj"
    persistence._reconstruct_persistent_obj = _reconstruct_persistent_obj

    class P:
        def __init__(self, module, kwargs=None):
            self.meta = dict(type="class", version=4, module_src="raise SystemExit", class_name=type(module).__name__,
                             state={"_init_kwargs": kwargs or {},
                                    "_parameters": collections.OrderedDict(module._parameters.items()),
                                    "_buffers": collections.OrderedDict(module._buffers.items()),
                                    "_modules": collections.OrderedDict((k, P(m)) for k, m in module._modules.items())})

        def __reduce__(self):
            return _reconstruct_persistent_obj, (self.meta,)

    c = G.cfg
    kwargs = dict(z_dim=c.z_dim, c_dim=0, w_dim=c.w_dim, img_resolution=c.img_resolution, img_channels=3,
                  mapping_kwargs=dict(num_layers=c.map_layers),
                  synthesis_kwargs=dict(channel_base=c.channel_base, channel_max=c.channel_max, num_fp16_res=0,
                                        conv_clamp=None))
    kwargs.update(g_changes)
    saved = {n: sys.modules.get(n) for n in ("torch_utils", "torch_utils.persistence")}
    sys.modules.update({"torch_utils": types.ModuleType("torch_utils"), "torch_utils.persistence": persistence})
    try:
        path.write_bytes(pickle.dumps({"G_ema": P(G, kwargs)}))
    finally:
        for n, m in saved.items():
            sys.modules.pop(n) if m is None else sys.modules.__setitem__(n, m)


def _raw_pickle(*ops: bytes) -> bytes:
    return b"\x80\x04" + b"".join(ops) + b"."


def _build_fixtures(fx: Path, tiny_cfgs) -> dict[str, str]:
    from adagan.io import save_networks
    from adagan.networks import Discriminator, Generator

    g_cfg, d_cfg = tiny_cfgs
    P = {}
    torch.manual_seed(0)
    G, D = Generator(g_cfg()), Discriminator(d_cfg())
    save_networks(fx / "net.safetensors", G=G, D=D, G_ema=copy.deepcopy(G))
    P["net"] = str(fx / "net.safetensors")
    for name, changes in {"z_dim_1e12": dict(z_dim=10**12), "chbase_1e9": dict(channel_base=10**9),
                          "res_2p30": dict(img_resolution=2**30), "res_33": dict(img_resolution=33),
                          "map_layers_1e9": dict(map_layers=10**9), "channels_neg": dict(channel_max=-16),
                          "no_z_dim": dict(z_dim=None), "arch_bogus": dict(architecture="bogus"),
                          "zdim_str": dict(z_dim="16")}.items():
        _tamper(fx / "net.safetensors", fx / f"t_{name}.safetensors", **changes)
        P[name] = str(fx / f"t_{name}.safetensors")
    _tamper(fx / "net.safetensors", fx / "t_d_cmap.safetensors", "D", cmap_dim=10**9)
    P["d_cmap"] = str(fx / "t_d_cmap.safetensors")
    raw = (fx / "net.safetensors").read_bytes()
    (fx / "trunc.safetensors").write_bytes(raw[: len(raw) // 2])
    P["trunc"] = str(fx / "trunc.safetensors")
    # a skip-architecture G whose tensors are a superset of an orig G's: --resume must see the difference
    G_skip = Generator(g_cfg(architecture="skip"))
    save_networks(fx / "skip.safetensors", G=G_skip, D=D, G_ema=copy.deepcopy(G_skip))
    P["skip"] = str(fx / "skip.safetensors")
    for name, changes in {"o_res": dict(img_resolution=2**30), "o_zdim": dict(z_dim=10**12),
                          "o_layers": dict(mapping_kwargs=dict(num_layers=10**9)), "o_str": dict(z_dim="x")}.items():
        _official_pickle(fx / f"{name}.pkl", G, **changes)
        P[name] = str(fx / f"{name}.pkl")
    for name, blob in {"o_bytes": _raw_pickle(b"\x8e" + struct.pack("<Q", 6 * 2**30) + b"abc"),
                       "o_frame": b"\x80\x04\x95" + struct.pack("<Q", 6 * 2**30) + b"N.",
                       "o_memo": _raw_pickle(b"N", b"r" + struct.pack("<I", 2**31 - 1)),
                       # an array that claims 10^12 elements and holds 3
                       "o_numpy": pickle.dumps({"G_ema": np.zeros(3)}, protocol=2).replace(
                           b"K\x03\x85", b"\x8a\x06\x00\x10\xa5\xd4\xe8\x00\x85", 1),
                       "o_code": b"\x80\x04\x8c\x02os\x8c\x06system\x93\x8c\x04true\x85R."}.items():
        (fx / f"{name}.pkl").write_bytes(blob)
        P[name] = str(fx / f"{name}.pkl")
    # data
    _dataset_zip(fx / "data.zip")
    P["data"] = str(fx / "data.zip")
    _dataset_zip(fx / "labels_huge.zip", labels=[0] * 15 + [10**9])
    _dataset_zip(fx / "labels_nan.zip", labels=[[float("nan"), 1.0]] * 16)
    P["labels_huge"], P["labels_nan"] = str(fx / "labels_huge.zip"), str(fx / "labels_nan.zip")
    for name, labels in {"src_label_huge": [0, 0, 1, 10**9], "src_missing": None}.items():
        src = fx / name
        src.mkdir()
        for i in range(4):
            (src / f"{i}.png").write_bytes(_png(np.full([32, 32, 3], i * 40, np.uint8)))
        entries = [[f"{i}.png", lab] for i, lab in enumerate(labels)] if labels else \
            [[f"{i}.png", 0] for i in range(4)] + [["gone.png", 1]]
        (src / "dataset.json").write_text(json.dumps({"labels": entries}))
        P[name] = str(src)
    src = fx / "src_classes"  # two class folders; one is made unreadable by its case
    for cls in ("a", "b"):
        (src / cls).mkdir(parents=True)
        for i in range(3):
            (src / cls / f"{i}.png").write_bytes(_png(np.full([32, 32, 3], 60 * i + (cls == "b") * 20, np.uint8)))
    P["src_classes"] = str(src)
    HOSTILE.png_bomb(fx / "bomb.png", level=1)
    P["bomb_png"] = str(fx / "bomb.png")
    HOSTILE.zip_bomb(fx / "bomb.zip", member_mb=256, level=1)
    P["bomb_zip"] = str(fx / "bomb.zip")
    return P


def _cases(P: dict, fx: Path) -> list[dict]:
    net, data = P["net"], P["data"]
    train = ["train", "--data", data, "--outdir", "runs", *TINY, "--kimg", "0.008"]
    base = ["train", "--data", data, "--outdir", "runs", "--name", "base", *TINY]
    C = []

    def add(cls, name, args, expect="error", **kw):
        C.append(dict(cls=cls, name=name, args=[str(a) for a in args], expect=expect,
                      cwd=str(fx.parent / "cases" / f"{cls}-{name}"), **kw))

    # the finished run that the files / leftovers / rerun cases copy (runs first, in the fixtures folder)
    C.append(dict(cls="setup", name="base-run", args=base + ["--kimg", "0.016"], expect="ok", cwd=str(fx)))
    # 1. unbounded work from one flag
    gen = ["generate", "--network", net, "--outdir", "out"]
    add("unbounded", "seeds-1e8", gen + ["--seeds", "0-100000000"])
    add("unbounded", "seeds-past-2^32", gen + ["--seeds", "0-4294967296"])
    add("unbounded", "seeds-digits", gen + ["--seeds", "9" * 5000])
    add("unbounded", "mix-cols-1e8", ["mix", "--network", net, "--rows", "0", "--cols", "0-100000000"])
    add("unbounded", "video-frames-1e8", ["video", "--network", net, "--seeds", "0,1", "--frames-per-seed",
                                          "100000000", "--out", "v.gif"])
    add("unbounded", "project-wavg-1e12", ["project", "--network", net, "--target", P["bomb_png"], "--outdir", "o",
                                           "--w-avg-samples", "1000000000000"])
    add("unbounded", "generate-yes-streams", gen + ["--seeds", "0-2999", "--yes", "--batch", "100"], expect="ok",
        count_pngs=3000)
    # 2. metadata trusted blindly
    for key in ("z_dim_1e12", "chbase_1e9", "res_2p30", "res_33", "map_layers_1e9", "channels_neg", "no_z_dim",
                "arch_bogus", "zdim_str", "d_cmap", "trunc"):
        add("metadata", f"generate-{key}", gen + ["--seeds", "0", "--network", P[key]])
    for key in ("z_dim_1e12", "res_2p30", "map_layers_1e9"):
        add("metadata", f"export-{key}", ["export", "--network", P[key], "--torchscript", "g.pt"])
        add("metadata", f"resume-{key}", train + ["--resume", P[key]])
        add("metadata", f"info-{key}", ["info", P[key]], expect="any")
    for key in ("o_res", "o_zdim", "o_layers", "o_str", "o_bytes", "o_frame", "o_memo", "o_numpy", "o_code"):
        add("metadata", f"import-{key}", ["import-official", "--source", P[key], "--dest", "x.safetensors"])
    add("metadata", "resume-skip-into-orig", train + ["--resume", P["skip"], "--G.architecture=orig"],
        needle="architecture skip (this run: orig)")
    # 3. labels
    add("labels", "dataset-label-1e9", ["dataset", "--source", P["src_label_huge"], "--dest", "o.zip"],
        needle="not a class index")
    add("labels", "train-label-1e9", train + ["--data", P["labels_huge"], "--cond", "--dry-run"],
        needle="at most 1,000 classes")
    add("labels", "train-nan-labels", train + ["--data", P["labels_nan"], "--cond", "--dry-run"], needle="NaN")
    # 4. flags and overrides: refused with the valid range, by the dry run too
    for flag in (["--tick", "0"], ["--kimg", "nan"], ["--kimg", "inf"], ["--freezed", "100"], ["--target", "5"],
                 ["--snap", "-1"], ["--max-minutes", "-1"], ["--gamma", "-1"], ["--seed", "-1"],
                 ["--optim.lr_g=nan"], ["--optim.lr_g=-1"], ["--optim.beta2=2"], ["--G.z_dim=-5"],
                 ["--G.channel_max=0"], ["--G.map_layers=10000000"], ["--G.architecture=bogus"],
                 ["--loss.r1_interval=-1"], ["--ema_kimg=-1"], ["--D.mbstd_group_size=0"]):
        add("flags", f"train{''.join(flag)}", train + flag + ["--dry-run"], range_message=True)
    add("flags", "train-tick-0-real", train + ["--tick", "0"], range_message=True)
    add("flags", "train-name-empty", train + ["--name", "", "--dry-run"], needle="--name ''")
    add("flags", "train-name-long", train + ["--name", "x" * 300, "--dry-run"], needle="at most 200")
    add("flags", "train-outdir-under-file", ["train", "--data", data, "--outdir", f"{data}/runs", *TINY, "--dry-run"],
        needle="is not a folder")
    for args in (gen + ["--seeds", "0", "--trunc", "nan"], ["export", "--network", net, "--onnx", "g.onnx", "--opset",
                 "999"], ["augment-preview", "--data", data, "--p", "2"], ["video", "--network", net, "--seeds", "0",
                 "--fps", "0"], ["dataset", "--source", P["src_missing"], "--dest", "o.zip", "--resolution", "33"],
                 ["dataset", "--source", P["src_missing"], "--dest", "o.zip", "--workers", "-3"],
                 ["project", "--network", net, "--target", P["bomb_png"], "--outdir", "o", "--steps", "0"]):
        add("flags", f"{args[0]}{''.join(args[-2:])}", args, range_message=True)
    # 5. files and environment
    add("files", "readonly-run-dir", base + ["--kimg", "0.024"], copy_run=True, chmod={"runs/base": 0o555},
        needs_permissions=True, needle="cannot write in the run directory")
    for key, value in {"garbage": '"garbage"', "str": '{"cur_nimg": "x", "cur_tick": 1, "batch_idx": 1}'}.items():
        add("files", f"progress-{key}", base + ["--kimg", "0.024"], expect="ok", copy_run=True,
            damage_progress=value, needle_out="Skipped the damaged training state training-state-000000016")
    add("files", "truncated-newest-state", base + ["--kimg", "0.024"], expect="ok", copy_run=True, truncate=True,
        needle_out="Skipped the damaged training state training-state-000000016",
        exists="runs/base/training-state-000000016.safetensors.damaged")  # kept aside, not overwritten
    add("files", "project-target-bomb", ["project", "--network", net, "--target", P["bomb_png"], "--outdir", "o"],
        needle="pixels")
    add("files", "report-malformed-stats", ["report", "r"], expect="any",
        write={"r/stats.jsonl": '[1]\n"x"\n{"Progress/kimg": "a"}\n{"Loss/G/loss": 1}\n\x00\xff\n'})
    add("files", "dataset-json-missing-files", ["dataset", "--source", P["src_missing"], "--dest", "o.zip"],
        needle="not in the source")
    add("files", "dataset-unreadable-subfolder", ["dataset", "--source", "src", "--dest", "o.zip", "--labels",
                                                  "none"], expect="ok", copy_tree={"src": P["src_classes"]},
        chmod={"src/b": 0o000}, needs_permissions=True, needle_out="b/: folder not readable")
    # 6. memory on zip bombs: 12 members of 256 MB, 8 threads
    add("zipbomb", "dataset-zip-bomb", ["dataset", "--source", P["bomb_zip"], "--dest", "o.zip", "--resolution",
                                        "16", "--workers", "8"])
    # 7. crash leftovers: ours go, the user's stay
    add("leftovers", "stale-temporaries", base + ["--kimg", "0.024"], expect="ok", copy_run=True,
        write={"runs/base/.network-snapshot-000000.safetensors.k2j4x.tmp": "x" * 100,
               "runs/base/.training-state-000000016.safetensors.a1b2.tmp": "x", "runs/base/stats.jsonl.tmp": "x",
               "runs/base/.fakes000000.png.tmp": "x", "runs/base/notes.tmp": "mine", "runs/base/.mine.tmp": "mine"},
        left_tmp=[".mine.tmp", "notes.tmp"], needle_out="Removed 4 temporary file(s)")
    # 8. rerunning a finished run
    add("rerun", "finished-run", base + ["--kimg", "0.016"], expect="ok", copy_run=True, same_stats=True,
        needle_out="This run is complete")
    return C


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile")
    fx = root / "fx"
    fx.mkdir()
    from adagan.config import DiscriminatorConfig, GeneratorConfig

    def g_cfg(**kw):
        base = dict(z_dim=8, w_dim=8, img_resolution=16, channel_base=128, channel_max=8, map_layers=2,
                    architecture="orig", num_fp16_res=0, conv_clamp=None)
        return GeneratorConfig(**{**base, **kw})

    def d_cfg(**kw):
        return DiscriminatorConfig(**{**dict(img_resolution=16, channel_base=128, channel_max=8, cmap_dim=8,
                                             map_layers=2, mbstd_group_size=2, num_fp16_res=0, conv_clamp=None), **kw})

    P = _build_fixtures(fx, (g_cfg, d_cfg))
    cases = _cases(P, fx)
    for c in cases:  # folders a case starts from are copied here, before the child runs
        for rel, src in c.pop("copy_tree", {}).items():
            shutil.copytree(src, Path(c["cwd"]) / rel)
    (root / "cases.json").write_text(json.dumps(cases))
    env = dict(os.environ, OMP_NUM_THREADS="1", MALLOC_ARENA_MAX="2", TQDM_DISABLE="1",
               ADAGAN_CACHE=str(root / "cache"), PYTHONPATH=os.pathsep.join(
                   [str(Path(__file__).resolve().parents[1] / "src"), os.environ.get("PYTHONPATH", "")]))
    (root / "driver.py").write_text(DRIVER)
    done: list = []
    while len(done) < len(cases):  # a case that kills the child (a C++ abort on a failed allocation) is recorded
        proc = subprocess.run([sys.executable, str(root / "driver.py"), str(root / "cases.json"),
                               str(root / "res.json"), str(fx), str(MEM_CAP), str(len(done))],
                              env=env, capture_output=True, text=True, timeout=600)
        done = json.loads((root / "res.json").read_text()) if (root / "res.json").exists() else []
        if len(done) < len(cases):
            done.append({**cases[len(done)], "code": proc.returncode, "stdout": proc.stdout[-3000:],
                         "stderr": proc.stderr[-3000:], "traceback": f"the child died ({proc.returncode})",
                         "touched": [], "peak_mb": 0.0})
            (root / "res.json").write_text(json.dumps(done))
    return {r["name"]: r for r in done}


def _check(results, cls):
    rs = [r for r in results.values() if r["cls"] == cls]
    assert rs
    skipped = [r["name"] for r in rs if r.get("skipped")]
    for r in rs:
        if r.get("skipped"):
            continue
        where = f"{r['name']}: {r['stderr'][-600:]}{r['traceback'] or ''}"
        assert r["traceback"] is None, where
        assert "Traceback" not in r["stderr"], where
        errors = [ln for ln in r["stderr"].splitlines() if ln.startswith("Error:")]
        if r["expect"] == "error":
            assert r["code"] not in (0, -1) and len(errors) == 1, where
        elif r["expect"] == "ok":
            assert r["code"] == 0, where
        else:
            assert r["code"] == 0 or len(errors) == 1, where
        if r.get("needle"):
            assert r["needle"] in errors[0], where
        if r.get("needle_out"):
            assert r["needle_out"] in r["stdout"] + r["stderr"], where
        if r.get("range_message"):  # the message names the valid values
            assert any(s in errors[0] for s in ("in [", "in (", "one of", "at most", "at least", "must be")), where
        assert not r["touched"], f"{r['name']} touched files outside its folder: {r['touched'][:3]}"
        assert r["peak_mb"] < MEM_CAP / 2**20, where
        here = Path(r["cwd"])
        if r.get("count_pngs"):
            assert len(list((here / "out").glob("*.png"))) == r["count_pngs"]
        if r.get("exists"):
            assert (here / r["exists"]).is_file(), where
        if r.get("same_stats"):  # nothing trained: the base run's two ticks only
            assert len((here / "runs" / "base" / "stats.jsonl").read_text().splitlines()) == 2, where
        if r.get("left_tmp") is not None:
            assert sorted(p.name for p in (here / "runs" / "base").iterdir() if p.name.endswith(".tmp")) == \
                r["left_tmp"]
    return skipped


def test_unbounded_work_is_refused_or_streamed(results):
    _check(results, "unbounded")


def test_metadata_is_validated_before_anything_is_built(results):
    _check(results, "metadata")


def test_labels_are_bounded_and_finite(results):
    _check(results, "labels")


def test_flags_and_overrides_are_range_checked(results):
    _check(results, "flags")


def test_files_and_environment(results):
    skipped = _check(results, "files")
    if skipped:
        pytest.skip(f"as root without user namespaces: {skipped} not run (permissions cannot be taken away)")


def test_zip_bomb_memory_is_bounded(results):
    _check(results, "zipbomb")


def test_crash_leftovers_are_removed(results):
    _check(results, "leftovers")


def test_rerunning_a_finished_run_trains_nothing(results):
    _check(results, "rerun")
