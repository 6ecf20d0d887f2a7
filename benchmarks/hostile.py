"""Hostile-input run: every command fed corrupt and malicious files, tampered metadata, absurd flags and
memory bombs, each in its own process under a memory cap and a timeout; then kill -9 at random moments
of a tiny training run, each followed by a resume.

    python benchmarks/hostile.py                       # all cases, 4 GiB cap, 90 s timeout, 10 kills
    python benchmarks/hostile.py --src /path/to/src    # another checkout's code (e.g. before a fix)
    python benchmarks/hostile.py --only train --kills 0 --json out.json

A case expects an error (non-zero exit with exactly one line starting `Error:` and no traceback) or
success (exit 0). It is counted as a traceback (any Python traceback on stderr), a hang (timeout), a
bad exit (an error that was accepted with exit 0, a success that failed, a messy error without one
`Error:` line, a kill by a signal or the memory cap), a memory failure (an otherwise clean case whose
peak memory passed half the cap: it survived by luck, e.g. by swallowing MemoryErrors) or a check
failure (a case-specific check of what the command left behind, and for every case: no file outside
the case's own folder changed). `--summarize results.json` prints the table of an earlier run again.
Nothing here is a test: the numbers go into the closing notes of reliability work (issue 16).
"""

from __future__ import annotations

import argparse
import collections
import copy
import gzip
import io
import json
import os
import pickle
import random
import shutil
import signal
import struct
import subprocess
import sys
import tarfile
import tempfile
import time
import types
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

# The child: cap the address space, optionally give up root's permission override (a user namespace
# keeps file ownership but drops CAP_DAC_OVERRIDE, so chmod'ed files are really unreadable), run the CLI.
RUNNER = r"""
import os, resource, sys
lim = int(os.environ["HOSTILE_MEM"])
resource.setrlimit(resource.RLIMIT_AS, (lim, lim))
if os.environ.get("HOSTILE_NOROOT") == "1" and os.geteuid() == 0:
    import ctypes
    if ctypes.CDLL(None, use_errno=True).unshare(0x10000000) != 0:
        print("HOSTILE: cannot drop root", file=sys.stderr)
        sys.exit(97)
from adagan.cli.main import main
main(sys.argv[1:])
"""

TINY = ["--G.channel_base=256", "--G.channel_max=16", "--D.channel_base=256", "--D.channel_max=16",
        "--G.z_dim=16", "--G.w_dim=16", "--D.mbstd_group_size=2"]


@dataclass
class Case:
    name: str
    group: str  # the class: flags, metadata, labels, files, zipbomb, unbounded, leftovers, rerun, ...
    cmd: list[str]
    expect: str = "error"  # error | ok | any
    check: object = None  # fn(case_dir, result) -> problem str or None
    setup: object = None  # fn(case_dir) before the run
    noroot: bool = False  # run without root's permission override
    timeout: float | None = None
    stdin: bytes | None = None


@dataclass
class Result:
    name: str
    group: str
    outcome: str  # ok | traceback | hang | bad-exit | memory | check
    rc: int | None
    seconds: float
    peak_mb: float
    detail: str = ""
    stderr_tail: str = ""


# ---------------------------------------------------------------------------------------------------------
# Fixtures: small, hostile files built once in FX (never modified by a case; checked after each one).

def png_bytes(arr) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def write_dataset_zip(path: Path, n=24, res=16, labels=None, class_names=None, ours=True, extra=None,
                      images=None, json_override=None):
    import numpy as np

    rng = np.random.default_rng(0)
    names = [f"00000/img{i:08d}.png" for i in range(n)]
    meta = {"labels": None if labels is None else [[nm, lab] for nm, lab in zip(names, labels, strict=True)],
            "class_names": class_names or [], "license": "test", "source": "hostile",
            "resolution": res, "channels": 3}
    if ours:
        meta["created_by"] = "adagan dataset (format 1)"
    if json_override is not None:
        meta = json_override
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        for i, nm in enumerate(names):
            data = images[i] if images is not None else png_bytes(rng.integers(0, 256, [res, res, 3], np.uint8))
            zf.writestr(nm, data)
        zf.writestr("dataset.json", json.dumps(meta))
        for nm, data in (extra or {}).items():
            zf.writestr(nm, data)


def png_bomb(path: Path, side=30000, level=9):
    """A valid grayscale PNG of side x side pixels (900 MB decoded) that is about 1 MB on disk (zlib `level`:
    1 builds it faster and a little larger, as tests/test_reliability.py does)."""
    def chunk(tag, data):
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    comp = zlib.compressobj(level)
    row = b"\0" * (side + 1)
    body = b"".join(comp.compress(row) for _ in range(side)) + comp.flush()
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)))
        f.write(chunk(b"IDAT", body) + chunk(b"IEND", b""))


def zip_bomb(path: Path, members=12, member_mb=400, names=None, level=9):
    """A zip of `members` deflated members of member_mb MB of zeros each, compressed once (zlib `level`) and
    repeated."""
    size = member_mb * 2**20
    comp = zlib.compressobj(level, zlib.DEFLATED, -15)
    block = b"\0" * 2**20
    data = b"".join(comp.compress(block) for _ in range(member_mb)) + comp.flush()
    crc = 0
    for _ in range(member_mb):
        crc = zlib.crc32(block, crc)
    names = names or [f"img{i:02d}.png" for i in range(members)]
    out, central = bytearray(), bytearray()
    for nm in names:
        nb = nm.encode()
        off = len(out)
        out += struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 8, 0, 0x21, crc, len(data), size, len(nb), 0) + nb
        out += data
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, 8, 0, 0x21, crc, len(data), size,
                               len(nb), 0, 0, 0, 0, 0o644 << 16, off) + nb
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(names), len(names), len(central), len(out), 0)
    path.write_bytes(bytes(out + central + end))


def tiny_nets(arch="skip", c_dim=0, res=16):
    import torch

    from adagan.config import DiscriminatorConfig, GeneratorConfig
    from adagan.networks import Discriminator, Generator

    torch.manual_seed(0)
    g = GeneratorConfig(z_dim=16, w_dim=16, c_dim=c_dim, img_resolution=res, img_channels=3, channel_base=256,
                        channel_max=16, map_layers=2, num_fp16_res=0, conv_clamp=None, architecture=arch)
    d = DiscriminatorConfig(c_dim=c_dim, img_resolution=res, img_channels=3, channel_base=256, channel_max=16,
                            cmap_dim=16, map_layers=2, mbstd_group_size=2, num_fp16_res=0, conv_clamp=None)
    G = Generator(g).eval()
    return G, Discriminator(d).eval(), copy.deepcopy(G)


def retamper(src: Path, dst: Path, fn):
    """Copy a safetensors file, letting fn(meta: dict of str, tensors: dict) edit it."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(src), "pt") as f:
        meta = dict(f.metadata())
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    fn(meta, tensors)
    save_file(tensors, str(dst), metadata=meta)


def set_cfg(which, **changes):
    def fn(meta, tensors):
        cfg = json.loads(meta[f"config.{which}"])
        for k, v in changes.items():
            if v is _DEL:
                cfg.pop(k, None)
            else:
                cfg[k] = v
        meta[f"config.{which}"] = json.dumps(cfg)
    return fn


_DEL = object()


# -- official pickles (the official layout, written with stand-in modules that only exist while writing) --

class _Persistent:
    def __init__(self, hook, class_name, state):
        self.hook, self.meta = hook, dict(type="class", version=4, module_src="raise SystemExit", class_name=class_name,
                                          state=state)

    def __reduce__(self):
        return self.hook, (self.meta,)


def _official_modules():
    persistence = types.ModuleType("torch_utils.persistence")

    def _reconstruct_persistent_obj(meta):
        raise AssertionError

    _reconstruct_persistent_obj.__module__ = "torch_utils.persistence"
    _reconstruct_persistent_obj.__qualname__ = "_reconstruct_persistent_obj"
    persistence._reconstruct_persistent_obj = _reconstruct_persistent_obj
    sys.modules.update({"torch_utils": types.ModuleType("torch_utils"), "torch_utils.persistence": persistence})
    return _reconstruct_persistent_obj


def _as_official(module, hook, init_kwargs=None):
    import torch

    state = {"training": False, "_init_args": (), "_init_kwargs": dict(init_kwargs or {}),
             "_parameters": collections.OrderedDict(module._parameters.items()),
             "_buffers": collections.OrderedDict(module._buffers.items()),
             "_modules": collections.OrderedDict((k, _as_official(m, hook)) for k, m in module._modules.items()
                                                 if not isinstance(m, torch.nn.Identity))}
    return _Persistent(hook, type(module).__name__, state)


def official_pickle(path: Path, g_kw=None, d_kw=None, top=None):
    G, D, G_ema = tiny_nets()
    hook = _official_modules()
    c = G.cfg
    gk = dict(z_dim=c.z_dim, c_dim=0, w_dim=c.w_dim, img_resolution=16, img_channels=3,
              mapping_kwargs=dict(num_layers=c.map_layers),
              synthesis_kwargs=dict(channel_base=256, channel_max=16, num_fp16_res=0, conv_clamp=None))
    dk = dict(c_dim=0, img_resolution=16, img_channels=3, architecture="resnet", channel_base=256, channel_max=16,
              num_fp16_res=0, conv_clamp=None, cmap_dim=16, mapping_kwargs=dict(num_layers=2),
              epilogue_kwargs=dict(mbstd_group_size=2))
    gk.update(g_kw or {})
    dk.update(d_kw or {})
    data = top if top is not None else {"G": _as_official(G, hook, gk), "D": _as_official(D, hook, dk),
                                        "G_ema": _as_official(G_ema, hook, gk), "augment_pipe": None}
    with open(path, "wb") as f:
        pickle.dump(data, f)


class _Evil:
    def __reduce__(self):
        return (os.system, ("touch HOSTILE_PWNED",))


def raw_pickle(*ops: bytes) -> bytes:
    return b"\x80\x04" + b"".join(ops) + b"."


def build_fixtures(fx: Path) -> dict:
    import numpy as np
    import torch

    from adagan.io import save_networks

    fx.mkdir(parents=True, exist_ok=True)
    P: dict[str, str] = {}

    def p(name) -> Path:
        P[name] = str(fx / name)
        return fx / name

    # Datasets.
    write_dataset_zip(p("data.zip"))
    write_dataset_zip(p("data_cls.zip"), labels=[i % 2 for i in range(24)], class_names=["a", "b"])
    write_dataset_zip(p("labels_huge.zip"), labels=[0] * 23 + [10**9])
    write_dataset_zip(p("labels_nan.zip"), labels=[[float("nan"), 1.0]] * 24)
    write_dataset_zip(p("labels_inf.zip"), labels=[[1e39, 0.0]] * 24)
    write_dataset_zip(p("labels_neg.zip"), labels=[-1] * 24)
    write_dataset_zip(p("labels_vec_huge.zip"), labels=[[0.0] * 3] * 23 + [[0.0] * 300000])
    write_dataset_zip(p("classnames_huge.zip"), labels=[0] * 24, class_names=[str(i) for i in range(200000)])
    write_dataset_zip(p("meta_res_huge.zip"), json_override={"created_by": "adagan dataset (format 1)",
                                                             "resolution": 2**20, "channels": 3, "labels": None})
    write_dataset_zip(p("meta_res_neg.zip"), json_override={"created_by": "adagan dataset (format 1)",
                                                            "resolution": -16, "channels": 3, "labels": None})
    write_dataset_zip(p("meta_notobj.zip"), json_override=[1, 2, 3])
    zip_bomb(p("bomb.zip"))
    zip_bomb(p("bomb_ours.zip"), members=6, member_mb=300,
             names=[f"00000/img{i:08d}.png" for i in range(5)] + ["dataset.json"])
    # a dataset made by us whose PNG members claim 30000x30000 pixels
    bomb_png = fx / "_bomb.png"
    png_bomb(bomb_png)
    P["bomb.png"] = str(bomb_png)
    write_dataset_zip(p("pngbomb_ours.zip"), n=4, images=[bomb_png.read_bytes()] * 4)
    (fx / "trunc.png").write_bytes(png_bytes(np.zeros([64, 64, 3], np.uint8))[:100])
    P["trunc.png"] = str(fx / "trunc.png")
    (fx / "notimage.png").write_text("hello")
    P["notimage.png"] = str(fx / "notimage.png")
    (fx / "empty.bin").write_bytes(b"")
    P["empty"] = str(fx / "empty.bin")
    (fx / "random.bin").write_bytes(os.urandom(4096))
    P["random"] = str(fx / "random.bin")
    os.mkfifo(p("fifo"))

    # Source folders for `adagan dataset`.
    src = p("src_missing_json")
    src.mkdir()
    for i in range(4):
        (src / f"{i}.png").write_bytes(png_bytes(np.full([32, 32, 3], i * 40, np.uint8)))
    (src / "dataset.json").write_text(json.dumps({"labels": [[f"{i}.png", 0] for i in range(4)]
                                                  + [["gone.png", 1], ["also_gone.png", 1]]}))
    src = p("src_label_huge")
    src.mkdir()
    for i in range(4):
        (src / f"{i}.png").write_bytes(png_bytes(np.full([32, 32, 3], i * 40, np.uint8)))
    (src / "dataset.json").write_text(json.dumps({"labels": [[f"{i}.png", 10**9 if i == 3 else 0]
                                                             for i in range(4)]}))
    src = p("src_label_nan")
    src.mkdir()
    for i in range(4):
        (src / f"{i}.png").write_bytes(png_bytes(np.full([32, 32, 3], i * 40, np.uint8)))
    (src / "dataset.json").write_text('{"labels": [["0.png", NaN], ["1.png", 0], ["2.png", 1], ["3.png", 1]]}')
    src = p("src_unreadable")  # made unreadable per case (chmod), restored afterwards
    (src / "a").mkdir(parents=True)
    (src / "b").mkdir()
    for i in range(3):
        (src / "a" / f"{i}.png").write_bytes(png_bytes(np.full([32, 32, 3], i * 40, np.uint8)))
        (src / "b" / f"{i}.png").write_bytes(png_bytes(np.full([32, 32, 3], 200 - i * 40, np.uint8)))
    src = p("src_fifo")
    src.mkdir()
    for i in range(3):
        (src / f"{i}.png").write_bytes(png_bytes(np.full([32, 32, 3], i * 40, np.uint8)))
    os.mkfifo(src / "x.png")
    src = p("src_bomb")
    src.mkdir()
    shutil.copy(bomb_png, src / "bomb.png")
    (src / "ok.png").write_bytes(png_bytes(np.zeros([32, 32, 3], np.uint8)))
    # MNIST: a gzip that inflates to 1.2 GB of zeros behind a valid header.
    with gzip.open(p("big-images-idx3-ubyte.gz"), "wb", compresslevel=1) as f:
        n = 1_500_000
        f.write(struct.pack(">IIII", 0x803, n, 28, 28))
        block = b"\0" * (28 * 28 * 10000)
        for _ in range(n // 10000):
            f.write(block)
    (fx / "liar-images-idx3-ubyte").write_bytes(struct.pack(">IIII", 0x803, 4_000_000_000, 28, 28) + b"\0" * 100)
    P["liar-mnist"] = str(fx / "liar-images-idx3-ubyte")
    # CIFAR tarball whose batch pickle claims 10^12 bytes.
    with tarfile.open(p("cifar_bomb.tar.gz"), "w:gz") as tf:
        for name, blob in (("cifar-10-batches-py/data_batch_1",
                            raw_pickle(b"\x8e" + struct.pack("<Q", 10**12) + b"abc")),
                           ("cifar-10-batches-py/batches.meta", pickle.dumps({"label_names": ["a"]}))):
            info = tarfile.TarInfo(name)
            info.size = len(blob)
            tf.addfile(info, io.BytesIO(blob))

    # Networks.
    G, D, G_ema = tiny_nets()
    save_networks(p("net.safetensors"), G=G, D=D, G_ema=G_ema)
    save_networks(p("net_g.safetensors"), G=G)
    Go, Do, _ = tiny_nets(arch="orig")
    save_networks(p("net_orig.safetensors"), G=Go, D=Do, G_ema=copy.deepcopy(Go))
    Gc, Dc, _ = tiny_nets(c_dim=2)
    save_networks(p("net_cond.safetensors"), G=Gc, D=Dc, G_ema=copy.deepcopy(Gc))
    G32, D32, _ = tiny_nets(res=32)
    save_networks(p("net32.safetensors"), G=G32, D=D32, G_ema=copy.deepcopy(G32))
    net = fx / "net.safetensors"
    tampers = {
        "z_dim_1e12": set_cfg("G", z_dim=10**12), "z_dim_0": set_cfg("G", z_dim=0), "w_dim_neg": set_cfg("G", w_dim=-8),
        "chbase_1e9": set_cfg("G", channel_base=10**9), "chmax_1e9": set_cfg("G", channel_max=10**9),
        "chmax_neg": set_cfg("G", channel_max=-16), "chmax_0": set_cfg("G", channel_max=0),
        "maplayers_1e9": set_cfg("G", map_layers=10**9), "res_2p30": set_cfg("G", img_resolution=2**30),
        "res_33": set_cfg("G", img_resolution=33), "res_0": set_cfg("G", img_resolution=0),
        "res_neg": set_cfg("G", img_resolution=-16), "channels_0": set_cfg("G", img_channels=0),
        "channels_1e6": set_cfg("G", img_channels=10**6), "c_dim_1e9": set_cfg("G", c_dim=10**9),
        "arch_bogus": set_cfg("G", architecture="bogus"), "clamp_str": set_cfg("G", conv_clamp="abc"),
        "clamp_nan": lambda m, t: m.__setitem__("config.G", m["config.G"].replace('"conv_clamp": null',
                                                                               '"conv_clamp": NaN')),
        "zdim_float": set_cfg("G", z_dim=16.5), "zdim_str": set_cfg("G", z_dim="16"),
        "zdim_bool": set_cfg("G", z_dim=True), "missing_key": set_cfg("G", z_dim=_DEL),
        "extra_key": set_cfg("G", bogus=1), "fp16_1e9": set_cfg("G", num_fp16_res=10**9),
        "wavg_nan": set_cfg("G", w_avg_beta=float("nan")), "lrmul_0": set_cfg("G", map_lr_mul=0),
        "d_mbstd_0": set_cfg("D", mbstd_group_size=0), "d_mbstd_ch_1e9": set_cfg("D", mbstd_num_channels=10**9),
        "d_cmap_1e9": set_cfg("D", cmap_dim=10**9), "d_arch_bogus": set_cfg("D", architecture="bogus"),
        "d_res_2p30": set_cfg("D", img_resolution=2**30),
        "cfg_notobj": lambda m, t: m.__setitem__("config.G", "[1, 2]"),
        "cfg_badjson": lambda m, t: m.__setitem__("config.G", "{not json"),
        "cfg_missing": lambda m, t: m.pop("config.G"),
        "networks_notlist": lambda m, t: m.__setitem__("networks", '"G"'),
        "networks_bogus": lambda m, t: m.__setitem__("networks", '["X"]'),
        "format_version_9": lambda m, t: m.__setitem__("format_version", "9"),
        "no_format": lambda m, t: m.pop("format"),
        "tensor_shape": lambda m, t: t.__setitem__("G_ema.mapping.fc0.weight", torch.zeros(3, 3)),
        "tensor_missing": lambda m, t: t.pop("G_ema.mapping.fc0.weight"),
        "tensor_nan": lambda m, t: t["G_ema.mapping.fc0.weight"].fill_(float("nan")),
        "train_config_bad": lambda m, t: m.__setitem__("train_config", '{"cfg": 5, "loss": 3}'),
        "kimg_str": lambda m, t: m.__setitem__("meta.kimg", '"lots"'),
    }
    for name, fn in tampers.items():
        retamper(net, p(f"t_{name}.safetensors"), fn)
    raw = net.read_bytes()
    for cut in (4, 8, 100, len(raw) // 2, len(raw) - 1):
        (fx / f"trunc_{cut}.safetensors").write_bytes(raw[:cut])
        P[f"trunc_{cut}"] = str(fx / f"trunc_{cut}.safetensors")
    (fx / "hdr_huge.safetensors").write_bytes(struct.pack("<Q", 2**60) + b"{}")
    P["hdr_huge"] = str(fx / "hdr_huge.safetensors")
    header = json.dumps({"__metadata__": {"format": "adagan", "format_version": "1"},
                         "G.x": {"dtype": "F32", "shape": [10**6, 10**6], "data_offsets": [0, 4 * 10**12]}}).encode()
    (fx / "hdr_liar.safetensors").write_bytes(struct.pack("<Q", len(header)) + header + b"\0" * 64)
    P["hdr_liar"] = str(fx / "hdr_liar.safetensors")
    # A valid network whose declared config is huge but consistent with tiny tensors? Impossible: shapes
    # follow the config; instead a config at the edge: 1024 px G whose tensors are missing (built first?).
    retamper(net, p("t_res1024.safetensors"), set_cfg("G", img_resolution=1024))
    retamper(net, p("t_big_consistent.safetensors"), set_cfg("G", channel_base=2**16, channel_max=1024,
                                                                 img_resolution=1024, map_layers=16, w_dim=2048,
                                                                 z_dim=2048))
    with open(p("pickle.safetensors"), "wb") as f:
        pickle.dump({"G": 1}, f)

    # npz files for --projected-w.
    np.savez(p("w_ok.npz"), w=np.zeros([1, 6, 16], np.float32))  # num_ws of a 16 px G: 6
    np.savez(p("w_nan.npz"), w=np.full([1, 6, 16], np.nan, np.float32))
    np.savez(p("w_shape.npz"), w=np.zeros([1, 3, 3], np.float32))
    np.savez(p("w_obj.npz"), w=np.array([{"a": 1}], dtype=object))
    hdr = "{'descr': '<f4', 'fortran_order': False, 'shape': (100000000, 6, 16), }"
    hdr = hdr + " " * (63 - (len(hdr) + 10) % 64) + "\n"
    npy = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(hdr)) + hdr.encode() + b"\0" * 64
    with zipfile.ZipFile(p("w_bomb.npz"), "w") as zf:
        zf.writestr("w.npy", npy)

    # Official pickles.
    official_pickle(p("official.pkl"))
    for name, g_kw in {"img_res_2p30": dict(img_resolution=2**30), "z_dim_1e12": dict(z_dim=10**12),
                       "chbase_1e9": dict(synthesis_kwargs=dict(channel_base=10**9, channel_max=10**9)),
                       "maplayers_1e9": dict(mapping_kwargs=dict(num_layers=10**9)),
                       "res_33": dict(img_resolution=33), "neg_channels": dict(img_channels=-3),
                       "str_zdim": dict(z_dim="x"), "float_zdim": dict(z_dim=1e300),
                       "c_dim_1e9": dict(c_dim=10**9)}.items():
        official_pickle(p(f"o_{name}.pkl"), g_kw=g_kw)
    official_pickle(p("o_d_mbstd_1e9.pkl"), d_kw=dict(epilogue_kwargs=dict(mbstd_num_channels=10**9)))
    official_pickle(p("o_notdict.pkl"), top=[1, 2, 3])
    official_pickle(p("o_evil.pkl"), top={"G": _Evil()})
    official_pickle(p("o_no_nets.pkl"), top={"G": None, "training_set_kwargs": {"x": np.zeros(3)}})
    # numpy array state claiming 1e12 elements with 3 bytes of data
    buf = pickle.dumps({"G_ema": np.zeros(3)}, protocol=2)
    P["o_np_liar.pkl"] = str(fx / "o_np_liar.pkl")
    (fx / "o_np_liar.pkl").write_bytes(buf.replace(b"K\x03\x85", b"\x8a\x06\x00\x10\xa5\xd4\xe8\x00\x85", 1))
    # object-dtype array with a huge shape: numpy allocates the pointer array before filling it
    (fx / "o_np_obj.pkl").write_bytes(pickle.dumps({"G_ema": np.array([None, None], dtype=object)}, protocol=2)
                                      .replace(b"K\x02\x85", b"J\x00\xca\x9a\x3b\x85", 1))
    P["o_np_obj.pkl"] = str(fx / "o_np_obj.pkl")
    (fx / "o_bytes8.pkl").write_bytes(raw_pickle(b"\x8e" + struct.pack("<Q", 10**12) + b"abc"))
    P["o_bytes8.pkl"] = str(fx / "o_bytes8.pkl")
    (fx / "o_bytes_6g.pkl").write_bytes(raw_pickle(b"\x8e" + struct.pack("<Q", 6 * 2**30) + b"abc"))
    P["o_bytes_6g.pkl"] = str(fx / "o_bytes_6g.pkl")
    (fx / "o_frame.pkl").write_bytes(b"\x80\x04\x95" + struct.pack("<Q", 6 * 2**30) + b"N.")
    P["o_frame.pkl"] = str(fx / "o_frame.pkl")
    (fx / "o_memo.pkl").write_bytes(raw_pickle(b"N", b"r" + struct.pack("<I", 2**31 - 1)))
    P["o_memo.pkl"] = str(fx / "o_memo.pkl")
    (fx / "o_deep.pkl").write_bytes(b"\x80\x04" + b"]" * 200000 + b"a" * 199999 + b".")
    P["o_deep.pkl"] = str(fx / "o_deep.pkl")
    (fx / "o_trunc.pkl").write_bytes((fx / "official.pkl").read_bytes()[:5000])
    P["o_trunc.pkl"] = str(fx / "o_trunc.pkl")
    # a storage whose inner torch.save zip is a deflate bomb
    inner = io.BytesIO()
    torch.save(torch.zeros(4).untyped_storage(), inner)
    zin = zipfile.ZipFile(io.BytesIO(inner.getvalue()))
    bomb_inner = io.BytesIO()
    with zipfile.ZipFile(bomb_inner, "w") as zout:
        for info in zin.infolist():
            if info.filename.endswith("/data/0"):
                bomb = zipfile.ZipInfo(info.filename)
                bomb.compress_type = zipfile.ZIP_DEFLATED  # 2.5 GB of zeros in a few MB
                with zout.open(bomb, "w", force_zip64=True) as f:
                    for _ in range(2500):
                        f.write(b"\0" * 2**20)
            else:
                zout.writestr(info.filename, zin.read(info))
    blob = bomb_inner.getvalue()
    (fx / "o_storage_bomb.pkl").write_bytes(
        raw_pickle(b"\x8c\x0dtorch.storage\x94\x8c\x0f_load_from_bytes\x94\x93",
                   b"\x8e" + struct.pack("<Q", len(blob)) + blob, b"\x85R"))
    P["o_storage_bomb.pkl"] = str(fx / "o_storage_bomb.pkl")

    # Run directories with stats to report on.
    for name, text in {"stats_list": "[1, 2]\n\"x\"\n", "stats_nokimg": '{"Loss/G/loss": 1}\n',
                       "stats_strs": '{"Progress/kimg": "a", "Loss/G/loss": "b"}\n',
                       "stats_binary": "\udcff" * 0 + "\x00\x01garbage\n",
                       "stats_nan": '{"Progress/kimg": NaN, "Loss/G/loss": Infinity}\n',
                       "stats_ok_then_bad": '{"Progress/kimg": 1, "Loss/G/loss": 1}\n{"Progress/kimg": [1]}\n'
                                            '{"Progress/kimg": 2, "Loss/G/loss": {"a": 1}}\n',
                       "stats_empty": ""}.items():
        d = p(name)
        d.mkdir()
        (d / "stats.jsonl").write_text(text)
    d = p("stats_metric_bad")
    d.mkdir()
    (d / "stats.jsonl").write_text('{"Progress/kimg": 1, "Loss/G/loss": 1}\n')
    (d / "metric-fid1k_full.jsonl").write_text('{"kimg": "x", "results": [1]}\n{"results": {"fid": "a"}}\n5\n')
    d = p("stats_hugeline")
    d.mkdir()
    (d / "stats.jsonl").write_text('{"Progress/kimg": 1, "x": "' + "a" * 50_000_000 + '"}\n')
    d = p("stats_fifo")
    d.mkdir()
    os.mkfifo(d / "stats.jsonl")
    return P


def base_run(fx: Path, src_env: dict, py: str) -> Path:
    """A finished tiny training run (3 states, snapshots) that cases copy and damage."""
    out = fx / "runs"
    cmd = [py, "-m", "adagan", "train", "--data", str(fx / "data.zip"), "--outdir", str(out), "--name", "base",
           "--cfg", "cpu", "--batch", "4", "--kimg", "0.032", "--tick", "0.008", "--snap", "1", *TINY]
    r = subprocess.run(cmd, env=src_env, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"the base training run failed:\n{r.stderr[-3000:]}")
    return out / "base"


# ---------------------------------------------------------------------------------------------------------
# Cases.

def _states(run_dir: Path) -> list[Path]:
    return sorted(run_dir.glob("training-state-*.safetensors"))


def cases(P: dict, fx: Path) -> list[Case]:
    C: list[Case] = []
    net, data = P["net.safetensors"], P["data.zip"]
    train = ["train", "--data", data, "--outdir", "runs", "--cfg", "cpu", "--batch", "4", "--kimg", "0.008",
             "--tick", "0.008", *TINY]

    def add(group, name, cmd, **kw):
        C.append(Case(f"{group}/{name}", group, [str(c) for c in cmd], **kw))

    # 1. Unbounded work from one flag.
    gen = ["generate", "--network", net, "--outdir", "out"]
    for s in ("0-100000000", "0-4294967295", "0-99999999999999999999", "4294967296", "0-20000"):
        add("unbounded", f"generate-seeds-{s[:12]}", gen + ["--seeds", s])
    add("unbounded", "generate-grid-many", gen + ["--seeds", "0-5000", "--grid", "--yes"])
    add("unbounded", "generate-yes-streams", gen + ["--seeds", "0-1999", "--yes", "--batch", "64"], expect="ok",
        check=lambda d, r: None if len(list((d / "out").glob("*.png"))) == 2000 else "not 2000 images written")
    mix = ["mix", "--network", net, "--out", "mix.png"]
    add("unbounded", "mix-cols-1e8", mix + ["--rows", "0", "--cols", "0-100000000"])
    add("unbounded", "mix-rows-1e8", mix + ["--rows", "0-100000000", "--cols", "0"])
    add("unbounded", "mix-styles-1e8", mix + ["--rows", "0", "--cols", "1", "--styles", "0-100000000"])
    add("unbounded", "mix-grid-300x300", mix + ["--rows", "0-299", "--cols", "0-299"])
    vid = ["video", "--network", net, "--out", "v.gif"]
    add("unbounded", "video-frames-1e8", vid + ["--seeds", "0,1", "--frames-per-seed", "100000000"])
    add("unbounded", "video-seeds-1e8", vid + ["--seeds", "0-100000000", "--frames-per-seed", "1"])
    add("unbounded", "video-frames-2e4", vid + ["--seeds", "0,1", "--frames-per-seed", "10000"])
    proj = ["project", "--network", net, "--target", P["bomb.png"], "--outdir", "out"]
    add("unbounded", "project-steps-1e9", ["project", "--network", net, "--target", P["trunc.png"],
                                           "--outdir", "out", "--steps", "1000000000"])
    add("unbounded", "project-wavg-1e12", ["project", "--network", net, "--target", P["notimage.png"],
                                           "--outdir", "out", "--w-avg-samples", "1000000000000"])
    add("unbounded", "augpreview-rows-1e8", ["augment-preview", "--data", data, "--rows", "100000000",
                                             "--out", "a.png"])
    add("unbounded", "augpreview-num-1e8", ["augment-preview", "--data", data, "--num", "100000000", "--rows",
                                            "100000", "--out", "a.png"])
    add("unbounded", "fid-num-1e12", ["fid", data, data, "--num", "1000000000000", "--no-cache"])

    # 2. Metadata trusted blindly.
    for key in [k for k in P if k.startswith("t_")] + [k for k in P if k.startswith("trunc_")] + \
            ["hdr_huge", "hdr_liar", "pickle.safetensors", "empty", "random", "fifo"]:
        path = P[key]
        add("metadata", f"generate-{key}", ["generate", "--network", path, "--seeds", "0", "--outdir", "out"],
            expect="ok" if key in ("t_kimg_str.safetensors", "t_train_config_bad.safetensors") else "error",
            timeout=60)
    for key in ("t_z_dim_1e12.safetensors", "t_chbase_1e9.safetensors", "t_res_2p30.safetensors",
                "t_maplayers_1e9.safetensors", "t_missing_key.safetensors", "t_cfg_notobj.safetensors",
                "t_big_consistent.safetensors", "t_d_res_2p30.safetensors", "t_d_cmap_1e9.safetensors",
                "t_tensor_nan.safetensors"):
        path = P[key]
        add("metadata", f"export-{key}", ["export", "--network", path, "--torchscript", "g.pt"])
        add("metadata", f"info-{key}", ["info", path], expect="any")
        add("metadata", f"metrics-{key}", ["metrics", "--network", path, "--data", data, "--metrics", "kid1k_full"])
        add("metadata", f"resume-{key}", train + ["--resume", path])
    for key in ("t_cfg_missing.safetensors", "t_missing_key.safetensors", "t_train_config_bad.safetensors",
                "t_kimg_str.safetensors", "t_networks_notlist.safetensors", "t_cfg_notobj.safetensors"):
        add("metadata", f"info-{key}-plain", ["info", P[key]], expect="any")
    for key in [k for k in P if k.startswith("o_")]:
        add("metadata", f"import-{key}", ["import-official", "--source", P[key], "--dest", "x.safetensors"],
            check=lambda d, r: "the pickle ran code" if (d / "HOSTILE_PWNED").exists() else None)
    add("metadata", "import-ok", ["import-official", "--source", P["official.pkl"], "--dest", "x.safetensors"],
        expect="ok")
    add("metadata", "resume-orig-into-skip", train + ["--resume", P["net_orig.safetensors"]])
    add("metadata", "resume-skip-into-orig", train + ["--resume", P["net.safetensors"], "--G.architecture=orig"])
    add("metadata", "resume-32-into-16", train + ["--resume", P["net32.safetensors"]])
    add("metadata", "resume-cond-into-uncond", train + ["--resume", P["net_cond.safetensors"]])
    add("metadata", "resume-map-layers", train + ["--resume", P["net.safetensors"], "--G.map_layers=3"])
    add("metadata", "resume-ok", train + ["--resume", P["net.safetensors"]], expect="ok")
    for key in ("w_nan.npz", "w_shape.npz", "w_obj.npz", "w_bomb.npz", "random", "fifo"):
        add("metadata", f"projected-w-{key}", ["generate", "--network", net, "--projected-w", P[key],
                                               "--outdir", "out"], timeout=60)
    add("metadata", "projected-w-ok", ["generate", "--network", net, "--projected-w", P["w_ok.npz"], "--outdir",
                                       "out"], expect="ok")

    # 3. Labels.
    for key in ("labels_huge.zip", "labels_nan.zip", "labels_inf.zip", "labels_neg.zip", "labels_vec_huge.zip",
                "classnames_huge.zip"):
        # class_names longer than the class limit are ignored (classes then go by number; docs/limits.md)
        expect = "ok" if key == "classnames_huge.zip" else "error"
        add("labels", f"train-cond-{key}", train + ["--data", P[key], "--cond"], expect=expect)
        add("labels", f"dryrun-cond-{key}", train + ["--data", P[key], "--cond", "--dry-run"], expect=expect)
    for key in ("src_label_huge", "src_label_nan"):
        add("labels", f"dataset-{key}", ["dataset", "--source", P[key], "--dest", "o.zip", "--resolution", "16"])
    add("labels", "dataset-classnames_huge-zip", ["dataset", "--source", P["classnames_huge.zip"], "--dest", "o.zip",
                                                  "--resolution", "16"], expect="any")
    add("labels", "train-cond-ok", train + ["--data", P["data_cls.zip"], "--cond"], expect="ok")

    # 4. Flags and overrides.
    bad_flags = {
        "tick-0": ["--tick", "0"], "tick-neg": ["--tick", "-1"], "tick-nan": ["--tick", "nan"],
        "kimg-nan": ["--kimg", "nan"], "kimg-inf": ["--kimg", "inf"], "kimg-neg": ["--kimg", "-1"],
        "kimg-1e30": ["--kimg", "1e30"], "snap-neg": ["--snap", "-1"], "maxmin-neg": ["--max-minutes", "-1"],
        "maxmin-nan": ["--max-minutes", "nan"], "target-5": ["--target", "5"], "target-nan": ["--target", "nan"],
        "p-2": ["--aug", "fixed", "--p", "2"], "p-nan": ["--aug", "fixed", "--p", "nan"],
        "gamma-nan": ["--gamma", "nan"], "gamma-neg": ["--gamma", "-1"], "gamma-inf": ["--gamma", "inf"],
        "freezed-100": ["--freezed", "100"], "freezed-neg": ["--freezed", "-1"], "batch-0": ["--batch", "0"],
        "batch-huge": ["--batch", "1000000000"], "batchgpu-0": ["--batch-gpu", "0"], "gpus-0": ["--gpus", "0"],
        "gpus-1000": ["--gpus", "1000"], "seed-neg": ["--seed", "-1"], "seed-huge": ["--seed", str(2**70)],
        "subset-0": ["--subset", "0"], "subset-huge": ["--subset", "1000000000000"],
        "resolution-7": ["--resolution", "7"], "metrics-bogus": ["--metrics", "bogus"],
        "name-traversal": ["--name", "../escape"], "name-long": ["--name", "x" * 300],
        "name-empty": ["--name", ""], "data-builtin7": ["--data", "builtin:twemoji@7"],
        "data-builtin-bogus": ["--data", "builtin:nope"], "data-missing": ["--data", "nope.zip"],
        "outdir-file": ["--outdir", data], "outdir-devnull": ["--outdir", "/dev/null/x"],
    }
    bad_overrides = [
        "optim.lr_g=nan", "optim.lr_g=-1", "optim.lr_g=inf", "optim.lr_d=0", "optim.beta1=1", "optim.beta2=2",
        "optim.beta2=-0.1", "optim.eps=0", "optim.eps=nan", "G.z_dim=0", "G.z_dim=-5", "G.z_dim=1000000000000",
        "G.z_dim=abc", "G.w_dim=0", "G.channel_max=0", "G.channel_max=-1", "G.channel_base=0",
        "G.channel_base=100000000000", "G.map_layers=10000000", "G.map_layers=0", "G.map_layers=-1",
        "G.architecture=bogus", "D.architecture=bogus", "G.img_resolution=33", "G.img_channels=2",
        "G.conv_clamp=nan", "G.conv_clamp=-1", "G.num_fp16_res=-1", "G.w_avg_beta=2", "G.w_avg_beta=nan",
        "G.map_lr_mul=0", "G.map_lr_mul=nan", "G.c_dim=1000000000", "D.mbstd_group_size=0",
        "D.mbstd_group_size=-1", "D.mbstd_group_size=100000", "D.mbstd_num_channels=-1",
        "D.mbstd_num_channels=100000", "D.cmap_dim=0", "D.map_layers=100000000", "loss.r1_interval=-1",
        "loss.pl_interval=-1", "loss.pl_batch_shrink=0", "loss.style_mixing_prob=2",
        "loss.style_mixing_prob=nan", "loss.pl_decay=2", "loss.pl_weight=-1", "loss.pl_weight=nan",
        "loss.r1_gamma=nan", "ema_kimg=-1", "ema_kimg=0", "ema_kimg=nan", "ema_rampup=-1", "augment.interval=0",
        "augment.interval=-1", "augment.ada_kimg=0", "augment.ada_kimg=-1", "augment.p=2", "augment.target=7",
        "augment.mode=bogus", "augment.augpipe=bogus", "tick_kimg=0", "snap_ticks=-1", "kimg=-1", "gpus=0",
        "batch=0", "batch_gpu=0", "seed=-1", "freezed=-1", "freezed=1000", "cfg=bogus", "mirror=maybe",
        "unknown.field=1", "G=1", "G.unknown=1", "max_minutes=-5", "subset=-3", "amp_bf16=2",
    ]
    for name, extra in bad_flags.items():
        add("flags", f"train-{name}", train + extra + ["--dry-run"])
    for name in ("tick-0", "tick-neg", "snap-neg", "freezed-100", "kimg-nan", "target-5", "maxmin-neg"):
        add("flags", f"train-{name}-real", train + bad_flags[name])
    for ov in bad_overrides:
        add("flags", f"override-{ov}", train + [f"--{ov}", "--dry-run"])
    for ov in ("G.architecture=bogus", "D.mbstd_group_size=0", "loss.r1_interval=-1", "ema_kimg=-1",
               "G.z_dim=-5", "optim.beta2=2"):
        add("flags", f"override-{ov}-real", train + [f"--{ov}"])
    add("flags", "override-missing-value", train + ["--loss.r1_gamma"])
    add("flags", "override-positional", train + ["junk"])
    add("flags", "train-dry-run-ok", train + ["--dry-run"], expect="ok")
    gen1 = ["generate", "--network", net, "--outdir", "out", "--seeds", "0"]
    for name, extra in {"trunc-nan": ["--trunc", "nan"], "trunc-inf": ["--trunc", "inf"],
                        "trunc-1e300": ["--trunc", "1e300"], "batch-0": ["--batch", "0"],
                        "batch-1e9": ["--batch", "1000000000"], "class-uncond": ["--class", "3"],
                        "class-neg": ["--class", "-1"], "seeds-empty": ["--seeds", ""],
                        "seeds-neg": ["--seeds", "-5"], "seeds-back": ["--seeds", "5-1"],
                        "seeds-junk": ["--seeds", "a,b"], "noise-bogus": ["--noise-mode", "bogus"],
                        "device-bogus": ["--device", "tpu:9"], "outdir-file": ["--outdir", net]}.items():
        add("flags", f"generate-{name}", gen1 + extra)
    for name, extra in {"opset-999": ["--opset", "999"], "opset-1": ["--opset", "1"],
                        "opset-neg": ["--opset", "-1"]}.items():
        add("flags", f"export-{name}", ["export", "--network", net, "--onnx", "g.onnx"] + extra)
    add("flags", "export-nothing", ["export", "--network", net])
    for name, extra in {"p-2": ["--p", "2"], "p-nan": ["--p", "nan"], "p-neg": ["--p", "-1"],
                        "num-0": ["--num", "0"], "rows-neg": ["--rows", "-1"], "res-7": ["--resolution", "7"],
                        "augpipe-bogus": ["--augpipe", "bogus"], "out-txt": ["--out", "x.txt"]}.items():
        add("flags", f"augpreview-{name}", ["augment-preview", "--data", data, "--out", "a.png"] + extra)
    ds = ["dataset", "--source", P["src_missing_json"], "--dest", "o.zip", "--labels", "none"]
    for name, extra in {"res-33": ["--resolution", "33"], "res-0": ["--resolution", "0"],
                        "res-neg": ["--resolution", "-16"], "res-huge": ["--resolution", "100000"],
                        "workers-neg": ["--workers", "-3"], "workers-0": ["--workers", "0"],
                        "workers-huge": ["--workers", "100000"], "maxim-0": ["--max-images", "0"],
                        "maxpix-0": ["--max-pixels", "0"], "maxpix-huge": ["--max-pixels", str(10**18)],
                        "bg-bogus": ["--background", "ultraviolet"], "dest-txt": ["--dest", "o.txt"]}.items():
        add("flags", f"dataset-{name}", ds[:-4] + ["--dest", "o.zip", "--labels", "none"] + extra
            if name != "dest-txt" else ["dataset", "--source", P["src_missing_json"], "--dest", "o.txt"])
    vid1 = ["video", "--network", net, "--seeds", "0,1", "--out", "v.gif"]
    for name, extra in {"fps-0": ["--fps", "0"], "fps-nan": ["--fps", "nan"], "fps-inf": ["--fps", "inf"],
                        "fps-huge": ["--fps", "1e12"], "fpseed-0": ["--frames-per-seed", "0"],
                        "trunc-nan": ["--trunc", "nan"], "out-avi": ["--out", "v.avi"]}.items():
        add("flags", f"video-{name}", vid1 + extra)
    for name, extra in {"steps-0": ["--steps", "0"], "wavg-0": ["--w-avg-samples", "0"],
                        "seed-neg": ["--seed", "-1"]}.items():
        add("flags", f"project-{name}", ["project", "--network", net, "--target", P["trunc.png"], "--outdir", "o"]
            + extra)
    add("flags", "mix-trunc-nan", ["mix", "--network", net, "--rows", "0", "--cols", "1", "--trunc", "nan"])
    add("flags", "mix-out-txt", ["mix", "--network", net, "--rows", "0", "--cols", "1", "--out", "m.txt"])
    add("flags", "metrics-bogus", ["metrics", "--network", net, "--data", data, "--metrics", "fid0k"])
    add("flags", "metrics-batch-0", ["metrics", "--network", net, "--data", data, "--batch", "0"])
    add("flags", "metrics-subset-neg", ["metrics", "--network", net, "--data", data, "--metrics", "mem1k",
                                        "--subset", "-1"])
    add("flags", "fid-num-1", ["fid", data, data, "--num", "1"])
    add("flags", "fid-batch-0", ["fid", data, data, "--batch", "0"])
    add("flags", "weights-bogus", ["weights", "fetch", "bogus"])
    add("flags", "studio-port-huge", ["studio", "--port", "99999999", "--no-browser"], timeout=30)

    # 5. Files and environment.
    def readonly(d: Path):
        shutil.copytree(fx / "runs" / "base", d / "runs" / "base", symlinks=True)
        for p_ in (d / "runs" / "base").rglob("*"):
            p_.chmod(0o444 if p_.is_file() else 0o555)
        (d / "runs" / "base").chmod(0o555)

    def restore(d: Path):
        for p_ in [d, *d.rglob("*")]:
            if p_.is_dir() and not p_.is_symlink():
                p_.chmod(0o755)

    def base_args(kimg):
        return ["train", "--data", data, "--outdir", "runs", "--name", "base", "--cfg", "cpu", "--batch", "4",
                "--kimg", kimg, "--tick", "0.008", "--snap", "1", *TINY]

    base_cmd = base_args("0.064")
    add("files", "readonly-run-dir", base_cmd, setup=readonly, noroot=True)
    add("files", "readonly-outdir", train, noroot=True,
        setup=lambda d: ((d / "runs").mkdir(), (d / "runs").chmod(0o555)))

    def copy_base(d: Path) -> Path:
        shutil.copytree(fx / "runs" / "base", d / "runs" / "base")
        return d / "runs" / "base"

    def damage_progress(value):
        def setup(d):
            run = copy_base(d)
            newest = _states(run)[-1]
            retamper(newest, newest, lambda m, t: m.__setitem__("meta.progress", value))
        return setup

    for name, value in {"garbage": '"garbage"', "missing": '{}', "neg": '{"cur_nimg": -5, "cur_tick": 1, '
                        '"batch_idx": 1}', "str": '{"cur_nimg": "abc", "cur_tick": 1, "batch_idx": 1}',
                        "huge": '{"cur_nimg": 1e300, "cur_tick": 1, "batch_idx": 1}',
                        "float": '{"cur_nimg": 12.5, "cur_tick": 1, "batch_idx": 1}'}.items():
        add("files", f"progress-{name}", base_cmd, setup=damage_progress(value), expect="ok",
            check=lambda d, r: None if "Skipp" in r.stderr_tail + r.stdout_tail else "did not say what it skipped")

    def damage_meta(key, value):
        def setup(d):
            run = copy_base(d)
            newest = _states(run)[-1]
            retamper(newest, newest, lambda m, t: m.__setitem__(key, value))
        return setup

    for label, key, value in (("sampler-neg", "meta.sampler", '{"position": -7}'),
                              ("sampler-str", "meta.sampler", '"x"'), ("augment-p-str", "meta.augment", '{"p": "x"}'),
                              ("opt-groups", "meta.opt_G.param_groups", '[]')):
        add("files", f"state-{label}", base_cmd, setup=damage_meta(key, value), expect="ok",
            check=lambda d, r: None if "Skipp" in r.stderr_tail + r.stdout_tail else "did not say what it skipped")

    def truncate_newest(d):
        run = copy_base(d)
        newest = _states(run)[-1]
        newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 2])

    def check_fallback(d, r):
        text = r.stdout_tail + r.stderr_tail
        if "Skipp" not in text:
            return "did not say which damaged state it skipped"
        run = d / "runs" / "base"
        if not (run / "training-state-000000032.safetensors").exists() and \
                not (run / "training-state-000000032.safetensors.damaged").exists():
            return "deleted the damaged state"
        return None

    add("files", "truncated-newest-state", base_cmd, setup=truncate_newest, expect="ok", check=check_fallback)

    def truncate_all(d):
        run = copy_base(d)
        for s in _states(run):
            s.write_bytes(s.read_bytes()[:100])

    add("files", "all-states-truncated", base_cmd, setup=truncate_all)

    def foreign_state(d):
        run = copy_base(d)
        shutil.copy(_states(run)[0], run / "training-state-000000001.safetensors")
        retamper(run / "training-state-000000001.safetensors", run / "training-state-000000001.safetensors",
                  lambda m, t: m.__setitem__("train_config", m["train_config"].replace('"seed": 0', '"seed": 5')))

    add("files", "foreign-state-kept", base_cmd, setup=foreign_state, expect="ok",
        check=lambda d, r: None if (d / "runs/base/training-state-000000001.safetensors").exists()
        else "deleted a state it did not write")

    def state_dir(d):
        run = copy_base(d)
        (run / "training-state-000000999.safetensors").mkdir()

    add("files", "state-is-a-folder", base_cmd, setup=state_dir, expect="any")
    add("files", "project-target-bomb", proj)
    add("files", "project-target-trunc", ["project", "--network", net, "--target", P["trunc.png"], "--outdir", "o"])
    add("files", "project-target-fifo", ["project", "--network", net, "--target", P["fifo"], "--outdir", "o"],
        timeout=60)
    add("files", "project-target-missing", ["project", "--network", net, "--target", "nope.png", "--outdir", "o"])
    for key in ("stats_list", "stats_nokimg", "stats_strs", "stats_binary", "stats_nan", "stats_empty",
                "stats_metric_bad", "stats_hugeline", "stats_fifo"):
        add("files", f"report-{key}", ["report", "copy"], expect="any", timeout=60,
            setup=lambda d, key=key: shutil.copytree(P[key], d / "copy") if key != "stats_fifo" else
            ((d / "copy").mkdir(), os.mkfifo(d / "copy" / "stats.jsonl")))
    add("files", "report-ok-then-bad", ["report", "copy"], expect="ok",
        setup=lambda d: shutil.copytree(P["stats_ok_then_bad"], d / "copy"))
    add("files", "dataset-json-missing-files", ["dataset", "--source", P["src_missing_json"], "--dest", "o.zip",
                                                "--resolution", "16"])

    def unreadable(d):
        shutil.copytree(P["src_unreadable"], d / "src")
        (d / "src" / "b").chmod(0)

    add("files", "dataset-unreadable-subfolder", ["dataset", "--source", "src", "--dest", "o.zip", "--resolution",
                                                  "16"], setup=unreadable, noroot=True, expect="any",
        check=lambda d, r: None if "b" in r.stdout_tail and ("unreadable" in (r.stdout_tail + r.stderr_tail).lower()
                                                              or r.rc != 0) else "unreadable folder not reported")
    add("files", "dataset-fifo-member", ["dataset", "--source", P["src_fifo"], "--dest", "o.zip", "--resolution",
                                         "16"], expect="ok", timeout=60)
    add("files", "dataset-source-fifo", ["dataset", "--source", P["fifo"], "--dest", "o.zip"], timeout=60)
    add("files", "dataset-source-devzero", ["dataset", "--source", "/dev/zero", "--dest", "o.zip"], timeout=60)
    add("files", "dataset-dest-exists", ["dataset", "--source", P["src_missing_json"], "--dest", data])
    add("files", "dataset-dest-is-source", ["dataset", "--source", data, "--dest", data, "--force"])
    add("files", "dataset-mnist-liar", ["dataset", "--source", P["liar-mnist"], "--dest", "o.zip"])
    add("files", "dataset-bomb-png", ["dataset", "--source", P["src_bomb"], "--dest", "o.zip", "--resolution",
                                      "16", "--labels", "none"], expect="ok")
    add("files", "train-data-fifo", train[:2] + [P["fifo"]] + train[3:] + ["--dry-run"], timeout=60)
    add("files", "train-data-notzip", train[:2] + [P["random"]] + train[3:] + ["--dry-run"])
    add("files", "train-data-meta-res-huge", train[:2] + [P["meta_res_huge.zip"]] + train[3:])
    add("files", "train-data-meta-res-neg", train[:2] + [P["meta_res_neg.zip"]] + train[3:])
    add("files", "train-data-meta-notobj", train[:2] + [P["meta_notobj.zip"]] + train[3:])
    add("files", "train-resume-fifo", train + ["--resume", P["fifo"]], timeout=60)

    # 6. Memory on zip bombs and other decompressors.
    add("zipbomb", "dataset-zip-bomb-8-workers", ["dataset", "--source", P["bomb.zip"], "--dest", "o.zip",
                                                  "--resolution", "16", "--workers", "8"], expect="any")
    add("zipbomb", "dataset-zip-bomb", ["dataset", "--source", P["bomb.zip"], "--dest", "o.zip", "--resolution", "16"],
        expect="any")
    add("zipbomb", "train-data-zip-bomb", train[:2] + [P["bomb.zip"]] + train[3:])
    add("zipbomb", "train-data-bomb-ours", train[:2] + [P["bomb_ours.zip"]] + train[3:])
    add("zipbomb", "train-data-pngbomb-ours", train[:2] + [P["pngbomb_ours.zip"]] + train[3:])
    add("zipbomb", "augpreview-bomb-ours", ["augment-preview", "--data", P["bomb_ours.zip"], "--out", "a.png"])
    add("zipbomb", "fid-bomb", ["fid", P["bomb.zip"], data, "--no-cache"])
    add("zipbomb", "dataset-mnist-gzip-bomb", ["dataset", "--source", P["big-images-idx3-ubyte.gz"], "--dest",
                                               "o.zip"])
    add("zipbomb", "dataset-cifar-bomb", ["dataset", "--source", P["cifar_bomb.tar.gz"], "--dest", "o.zip"])

    # 7. Crash leftovers.
    def leftovers(d):
        run = copy_base(d)
        for nm in (".network-snapshot-000000.safetensors.abc123.tmp", ".training-state-000000008.safetensors.x.tmp",
                   ".fakes000000.png.tmp", "stats.jsonl.tmp"):
            (run / nm).write_bytes(b"\0" * 1000)
        (run / "notes.tmp").write_text("mine")
        (run / ".my-own.tmp").write_text("mine")

    def check_leftovers(d, r):
        run = d / "runs" / "base"
        left = [p_.name for p_ in run.iterdir() if p_.name.endswith(".tmp")]
        if sorted(left) != [".my-own.tmp", "notes.tmp"]:
            return f"temporaries after the run: {left}"
        return None

    add("leftovers", "stale-temporaries", base_cmd, setup=leftovers, expect="ok", check=check_leftovers)

    # 8. Rerunning a finished run.
    def finished(d):
        copy_base(d)

    def check_complete(d, r):
        run = d / "runs" / "base"
        lines = (run / "stats.jsonl").read_text().splitlines()
        if len(lines) != 4:
            return f"trained again: {len(lines)} ticks in stats.jsonl"
        if "complete" not in (r.stdout_tail + r.stderr_tail).lower():
            return "did not say the run is complete"
        return None

    add("rerun", "finished-run", base_args("0.032"), setup=finished, expect="ok", check=check_complete)
    return C


# ---------------------------------------------------------------------------------------------------------
# Running.

def run_case(case: Case, work: Path, env: dict, py: str, mem: int, timeout: float, fx_stat) -> Result:
    d = work / "cases" / case.name.replace("/", "__")
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True)
    if case.setup:
        case.setup(d)
    env = dict(env, HOSTILE_MEM=str(mem), HOSTILE_NOROOT="1" if case.noroot else "0")
    out, err = open(d / ".stdout", "wb"), open(d / ".stderr", "wb")
    t0 = time.time()
    proc = subprocess.Popen([py, "-c", RUNNER, *case.cmd], cwd=d, env=env, stdout=out, stderr=err,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    limit = case.timeout or timeout
    hung, status, usage = False, None, None
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.time() - t0 > limit:
            os.killpg(proc.pid, signal.SIGKILL)
            pid, status, usage = os.wait4(proc.pid, 0)
            hung = True
            break
        time.sleep(0.05)
    proc.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.time() - t0
    out.close()
    err.close()
    stdout = (d / ".stdout").read_bytes().decode(errors="replace")
    stderr = (d / ".stderr").read_bytes().decode(errors="replace")
    if case.noroot:
        for p_ in [d, *d.rglob("*")]:
            if p_.is_dir() and not p_.is_symlink():
                p_.chmod(0o755)
    r = Result(case.name, case.group, "ok", proc.returncode, round(seconds, 1), round(usage.ru_maxrss / 1024, 1))
    r.stdout_tail, r.stderr_tail = stdout[-4000:], stderr[-4000:]
    error_lines = [ln for ln in stderr.splitlines() if ln.startswith("Error:")]
    if hung:
        r.outcome, r.detail = "hang", f"killed after {limit:.0f} s"
    elif "Traceback (most recent call last)" in stderr:
        last = [ln for ln in stderr.strip().splitlines() if ln and not ln.startswith(" ")][-1:]
        r.outcome, r.detail = "traceback", (last[0] if last else "")[:200]
    elif proc.returncode < 0 or proc.returncode in (97, 134, 137, 139):
        r.outcome, r.detail = "bad-exit", f"killed by signal / exit {proc.returncode}"
    elif case.expect == "error" and proc.returncode == 0:
        r.outcome, r.detail = "bad-exit", "accepted (exit 0)"
    elif case.expect == "ok" and proc.returncode != 0:
        why = (error_lines or [stderr[-200:]])[0][:200]
        r.outcome, r.detail = "bad-exit", f"failed (exit {proc.returncode}): {why}"
    elif proc.returncode != 0 and len(error_lines) != 1:
        r.outcome, r.detail = "bad-exit", f"exit {proc.returncode} with {len(error_lines)} 'Error:' lines"
    if r.outcome == "ok" and r.peak_mb > mem / 2**20 / 2:
        r.outcome, r.detail = "memory", f"peak {r.peak_mb:.0f} MB, more than half the cap"
    if r.outcome == "ok" and case.check:
        problem = case.check(d, r)
        if problem:
            r.outcome, r.detail = "check", problem
    if r.outcome == "ok":
        changed = fx_stat(compare=True)
        if changed:
            r.outcome, r.detail = "check", f"touched a file outside its folder: {changed[:3]}"
    if proc.returncode != 0 and error_lines and r.outcome in ("ok", "check") and not r.detail:
        r.detail = error_lines[0][:200]
    elif r.outcome == "ok" and error_lines:
        r.detail = error_lines[0][:200]
    if r.outcome == "ok":
        shutil.rmtree(d, ignore_errors=True)  # keep the folders of failures only
    return r


def kill_trials(n: int, work: Path, fx: Path, env: dict, py: str, seed: int) -> list[Result]:
    """kill -9 a tiny training run at a random moment, then resume it with the same command."""
    from adagan.io import load_networks

    rng = random.Random(seed)
    results = []
    for i in range(n):
        d = work / "kills" / f"k{i}"
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)
        cmd = [py, "-m", "adagan", "train", "--data", str(fx / "data.zip"), "--outdir", "runs", "--name", "k",
               "--cfg", "cpu", "--batch", "4", "--tick", "0.004", "--snap", "1", *TINY]
        t_kill = rng.uniform(4.0, 20.0)
        t0 = time.time()
        p = subprocess.Popen(cmd + ["--kimg", "10"], cwd=d, env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, start_new_session=True)
        while time.time() - t0 < t_kill and p.poll() is None:
            time.sleep(0.01)
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()
        run = d / "runs" / "k"
        left_before = sorted(x.name for x in run.glob(".*.tmp")) if run.exists() else []
        states = _states(run) if run.exists() else []
        # the newest intact state is where training must continue
        intact = None
        for s in reversed(states):
            try:
                load_networks(s, ("G",))
                intact = s
                break
            except Exception:  # noqa: BLE001
                continue
        kimg_after_kill = int(intact.name.split("-")[-1].split(".")[0]) / 1000 if intact else 0.0
        t1 = time.time()
        r2 = subprocess.run(cmd + ["--kimg", f"{kimg_after_kill + 0.008:.3f}"], cwd=d, env=env, capture_output=True,
                            text=True, timeout=300)
        res = Result(f"kill/{i}@{t_kill:.1f}s", "kill", "ok", r2.returncode, round(time.time() - t1, 1), 0.0)
        res.stdout_tail, res.stderr_tail = r2.stdout[-2000:], r2.stderr[-2000:]
        problems = []
        if "Traceback" in r2.stderr:
            res.outcome = "traceback"
        elif r2.returncode != 0:
            res.outcome = "bad-exit"
            problems.append(f"resume failed: {r2.stderr.strip().splitlines()[-1:]}")
        else:
            if intact is not None and f"kimg {kimg_after_kill:.1f}" not in r2.stdout and \
                    f"at kimg {kimg_after_kill:.1f}" not in r2.stdout:
                problems.append(f"did not resume at kimg {kimg_after_kill}")
            left = sorted(x.name for x in run.glob(".*.tmp"))
            if left:
                problems.append(f"temporaries left after the resume: {left}")
            for f in sorted(run.glob("*.safetensors")):
                try:
                    load_networks(f)
                except Exception as e:  # noqa: BLE001
                    if f != (states[-1] if states else None):
                        problems.append(f"{f.name} unloadable ({e})"[:200])
            if problems:
                res.outcome = "check"
        res.detail = "; ".join(problems) + (f" (left by the kill: {left_before})" if left_before else "")
        results.append(res)
        if res.outcome == "ok":
            shutil.rmtree(d, ignore_errors=True)
    return results


def fx_snapshot(fx: Path):
    def stat_all():
        out = {}
        for p in fx.rglob("*"):
            try:
                st = p.lstat()
            except OSError:
                continue
            out[str(p)] = (st.st_size, st.st_mtime_ns, st.st_mode)
        return out

    base = stat_all()

    def fn(compare=False):
        now = stat_all()
        return sorted(k for k in set(base) | set(now) if base.get(k) != now.get(k))

    return fn


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--src", default=str(Path(__file__).resolve().parents[1] / "src"),
                    help="the adagan source folder to test (default: this checkout's)")
    ap.add_argument("--work", default=None, help="working folder (default: a new temporary one)")
    ap.add_argument("--mem-gb", type=float, default=4.0, help="address-space cap of every case")
    ap.add_argument("--timeout", type=float, default=90.0, help="seconds before a case counts as a hang")
    ap.add_argument("--kills", type=int, default=10, help="kill -9 trials")
    ap.add_argument("--only", default="", help="run the cases whose name contains this")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default=None, help="write every result here")
    ap.add_argument("-v", "--verbose", action="store_true", help="print every case as it finishes")
    ap.add_argument("--build-fixtures", default=None, help=argparse.SUPPRESS)  # internal: in a child process
    ap.add_argument("--summarize", default=None, metavar="JSON", help="print the table of an earlier --json")
    args = ap.parse_args()
    if args.summarize:
        rows = [Result(**{k: v for k, v in r.items() if k in Result.__dataclass_fields__})
                for r in json.loads(Path(args.summarize).read_text())]
        for r in rows:  # the memory rule, for runs recorded before it existed
            if r.outcome == "ok" and r.peak_mb > args.mem_gb * 1024 / 2:
                r.outcome = "memory"
        summarize(rows, args.mem_gb)
        return
    if args.build_fixtures:  # a separate process, so the bombs built here never inflate a case's peak memory
        sys.path.insert(0, args.src)
        fx = Path(args.build_fixtures)
        (fx / ".paths.json").parent.mkdir(parents=True, exist_ok=True)
        P = build_fixtures(fx)
        (fx / ".paths.json").write_text(json.dumps(P))
        return

    sys.path.insert(0, args.src)
    work = Path(args.work or tempfile.mkdtemp(prefix="hostile-"))
    work.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, PYTHONPATH=args.src, OMP_NUM_THREADS="1", MALLOC_ARENA_MAX="2",
               ADAGAN_CACHE=str(work / "cache"), PYTHONWARNINGS="ignore", TQDM_DISABLE="1")
    py = sys.executable
    fx = work / "fx"
    t0 = time.time()
    if not (fx / ".done").exists():
        shutil.rmtree(fx, ignore_errors=True)
        subprocess.run([py, __file__, "--src", args.src, "--build-fixtures", str(fx)], env=env, check=True)
        base_run(fx, env, py)
        (fx / ".done").write_text("")
    P = json.loads((fx / ".paths.json").read_text())
    print(f"fixtures in {fx} ({time.time() - t0:.0f} s); code under test: {args.src}", flush=True)
    fx_stat = fx_snapshot(fx)
    todo = [c for c in cases(P, fx) if args.only in c.name]
    results: list[Result] = []
    for i, case in enumerate(todo):
        r = run_case(case, work, env, py, int(args.mem_gb * 2**30), args.timeout, fx_stat)
        results.append(r)
        if args.verbose or r.outcome != "ok":
            print(f"[{i + 1}/{len(todo)}] {r.outcome:<9s} {r.name}  ({r.seconds} s, {r.peak_mb:.0f} MB) {r.detail}",
                  flush=True)
    if args.kills and (not args.only or "kill" in args.only):
        for r in kill_trials(args.kills, work, fx, env, py, args.seed):
            results.append(r)
            print(f"[kill] {r.outcome:<9s} {r.name}  {r.detail}", flush=True)

    summarize(results, args.mem_gb)
    print(f"{time.time() - t0:.0f} s in all; work folder {work}")
    if args.json:
        Path(args.json).write_text(json.dumps([r.__dict__ for r in results], indent=1))


def summarize(results: list[Result], mem_gb: float) -> None:
    groups = sorted({r.group for r in results})
    outcomes = ["ok", "traceback", "hang", "bad-exit", "memory", "check"]
    print(f"\n{'class':<12s} {'cases':>6s} " + " ".join(f"{o:>9s}" for o in outcomes))
    for g in groups + ["all"]:
        rs = [r for r in results if g in ("all", r.group)]
        print(f"{g:<12s} {len(rs):>6d} " + " ".join(f"{sum(r.outcome == o for r in rs):>9d}" for o in outcomes))
    peak = max((r.peak_mb for r in results), default=0)
    print(f"peak memory of a case: {peak:.0f} MB (cap {mem_gb:g} GiB)")


if __name__ == "__main__":
    main()
