"""Import NVIDIA's StyleGAN2-ADA / StyleGAN3 (`--cfg=stylegan2`) PyTorch pickles without running their code.

An official `network-snapshot-*.pkl` is a pickled dict {'G', 'D', 'G_ema', 'augment_pipe',
'training_set_kwargs', ...}. Each network is a "persistent" object: pickle rebuilds it by calling
`torch_utils.persistence._reconstruct_persistent_obj(meta)`, where `meta` holds the class's whole
source code (`module_src`, which the official loader imports and runs), `class_name`, and `state`:
the module's `__dict__`, i.e. `_init_kwargs` (its constructor arguments), `_parameters`, `_buffers`
and `_modules` (sub-networks, themselves persistent objects). Tensors use torch's own reduction:
`torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)` (wrapped in `_rebuild_parameter`
for parameters), with each storage written as `torch.storage._load_from_bytes(bytes)`, bytes that are
a small `torch.save` file.

`OfficialUnpickler` resolves only a whitelist of globals: the persistence hook becomes a plain
`PersistentRecord` holding `meta` (the source is never compiled), tensor and storage rebuilders are
served by `torch.load(..., weights_only=True)`, numpy arrays, OrderedDict and EasyDict (as a dict).
Anything else (os.system, builtins.eval, any class) stops the load with a CheckpointError before it
can be called. Before anything is unpickled, `safe_pickle.scan` checks that no declared length (of a
bytes string, a frame, each storage's data) runs past the end of the file, so the load allocates at
most about the file's size. The records' tensors are then renamed to ours by an explicit table, and
our networks are built from the recorded constructor arguments, after `limits.check_network` and a
build on the meta device have shown that those arguments imply exactly the stored tensor shapes.
"""

from __future__ import annotations

import collections
import io
import os
import pickle
import re
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from adagan import safe_pickle
from adagan.config import DiscriminatorConfig, GeneratorConfig
from adagan.errors import CheckpointError, ConfigError
from adagan.limits import check_network
from adagan.netfiles import save_networks
from adagan.networks.discriminator import ARCHITECTURES as D_ARCHITECTURES
from adagan.networks.generator import ARCHITECTURES as G_ARCHITECTURES

# -- the restricted unpickler ------------------------------------------------------------------------


@dataclass
class PersistentRecord:
    """What `_reconstruct_persistent_obj(meta)` would have built, as inert data."""

    class_name: str
    version: Any
    state: dict
    module_src_len: int = 0  # the source is kept out: we only note that it was there

    def tensors(self, prefix: str = "") -> dict[str, torch.Tensor]:
        """Flattened parameters and buffers, `state_dict`-style: {'mapping.fc0.weight': tensor, ...}."""
        out: dict[str, torch.Tensor] = {}
        for group in ("_parameters", "_buffers"):
            for name, t in (self.state.get(group) or {}).items():
                if t is None:
                    continue
                if not isinstance(t, torch.Tensor):
                    raise CheckpointError(f"official pickle: {prefix}{name} is a {type(t).__name__}, not a tensor")
                out[prefix + name] = t
        for name, sub in (self.state.get("_modules") or {}).items():
            if sub is None:
                continue
            if not isinstance(sub, PersistentRecord):
                raise CheckpointError(f"official pickle: sub-network {prefix}{name} is not a persistent network "
                                      f"object ({type(sub).__name__})")
            out.update(sub.tensors(f"{prefix}{name}."))
        return out

    @property
    def init_kwargs(self) -> dict:
        return dict(self.state.get("_init_kwargs") or {})


def _reconstruct_persistent_obj(meta):
    if not isinstance(meta, dict) or meta.get("type") != "class" or not isinstance(meta.get("state"), dict):
        raise CheckpointError("official pickle: a persistent object has an unexpected layout "
                              "(expected meta with type='class' and a state dict)")
    return PersistentRecord(class_name=str(meta.get("class_name")), version=meta.get("version"),
                            state=dict(meta["state"]), module_src_len=len(meta.get("module_src") or ""))


class EasyDict(dict):
    """Stand-in for dnnlib.EasyDict: a plain dict (attribute access is not needed here)."""


# Bytes per element of the storage types a legacy `torch.save` names.
_ELEMENT_SIZE = {"FloatStorage": 4, "DoubleStorage": 8, "HalfStorage": 2, "BFloat16Storage": 2, "LongStorage": 8,
                 "IntStorage": 4, "ShortStorage": 2, "CharStorage": 1, "ByteStorage": 1, "BoolStorage": 1,
                 "UntypedStorage": 1}


class _StorageHeader(pickle.Unpickler):
    """Reads the pickles at the start of a legacy `torch.save` file and only notes each storage's declared
    size: a persistent id ('storage', <type>, key, location, numel, ...)."""

    def __init__(self, f, declared: list):
        super().__init__(f)
        self.declared = declared

    def find_class(self, module, name):
        if module == "torch" and name in _ELEMENT_SIZE:
            return name
        raise pickle.UnpicklingError(f"{module}.{name} in a storage")

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage" and pid[1] in _ELEMENT_SIZE
                and isinstance(pid[4], int) and pid[4] >= 0):
            raise pickle.UnpicklingError("unexpected storage record")
        self.declared.append(pid[4] * _ELEMENT_SIZE[pid[1]])
        return None


def _load_storage_from_bytes(b: bytes):
    """torch.storage._load_from_bytes, after checking that the storages it declares fit in `b` (torch
    allocates a storage's declared size before reading its data)."""
    if not isinstance(b, bytes | bytearray):
        raise CheckpointError("official pickle: a storage is not stored as bytes")
    if b[:2] == b"PK":  # zip format: members must be stored, not compressed, and within the bytes
        import zipfile

        try:
            infos = zipfile.ZipFile(io.BytesIO(b)).infolist()
        except (zipfile.BadZipFile, ValueError) as e:
            raise CheckpointError(f"official pickle: a storage is a damaged zip ({e})") from None
        if any(i.compress_type != zipfile.ZIP_STORED for i in infos) or sum(i.file_size for i in infos) > len(b):
            raise CheckpointError("official pickle: a storage declares more data than it holds")
    else:  # legacy format: five pickles (magic, protocol, system info, the storages, their keys), then data
        try:
            safe_pickle.scan_all(b, 5)
            f, declared = io.BytesIO(b), []
            for _ in range(5):
                _StorageHeader(f, declared).load()
        except (ValueError, pickle.UnpicklingError, EOFError, TypeError, IndexError) as e:
            raise CheckpointError(f"official pickle: a storage is damaged or not plain data ({e})") from None
        if sum(declared) > len(b):
            raise CheckpointError(f"official pickle: a storage declares {sum(declared):,} bytes but holds "
                                  f"{len(b):,}")
    return torch.load(io.BytesIO(b), weights_only=True)


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None,
                       metadata=None):
    if not isinstance(storage, torch.storage.TypedStorage | torch.UntypedStorage):
        raise CheckpointError("official pickle: a tensor's storage is not a torch storage")
    return torch._utils._rebuild_tensor_v2(storage, storage_offset, size, stride, False, collections.OrderedDict())


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None, state=None):
    if not isinstance(data, torch.Tensor):
        raise CheckpointError("official pickle: a parameter does not hold a tensor")
    return data


SAFE_GLOBALS: dict[tuple[str, str], Any] = {
    ("torch_utils.persistence", "_reconstruct_persistent_obj"): _reconstruct_persistent_obj,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("torch.storage", "_load_from_bytes"): _load_storage_from_bytes,
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("dnnlib.util", "EasyDict"): EasyDict,
    ("dnnlib", "EasyDict"): EasyDict,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("torch", "Size"): torch.Size,
    ("torch", "device"): torch.device,
    **safe_pickle.numpy_globals(),
}


class OfficialUnpickler(pickle.Unpickler):
    """A pickle.Unpickler that resolves only SAFE_GLOBALS (and torch dtypes); everything else is refused."""

    def __init__(self, file, source: str = "pickle"):
        super().__init__(file)
        self.source = source

    def find_class(self, module: str, name: str):
        fn = SAFE_GLOBALS.get((module, name))
        if fn is not None:
            return fn
        if module == "torch" and isinstance(getattr(torch, name, None), torch.dtype):
            return getattr(torch, name)
        if module.startswith("dnnlib.tflib"):
            raise CheckpointError(f"{self.source}: refusing to load: this is a TensorFlow StyleGAN pickle; only "
                                  "StyleGAN2-ADA PyTorch pickles (stylegan2-ada-pytorch, stylegan3) are supported")
        raise CheckpointError(
            f"{self.source}: refusing to load: it asks for {module}.{name}, which is not a tensor, array or "
            "plain container (official network pickles need nothing else; this file may try to run code)")

    def persistent_load(self, pid):
        raise CheckpointError(f"{self.source}: refusing to load: unexpected persistent id (not an official "
                              "network pickle)")


def load_official_pickle(path: str | os.PathLike) -> Any:
    """Unpickle an official snapshot with OfficialUnpickler; networks come back as PersistentRecords."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"official network pickle not found: {path}")
    if not path.is_file():
        raise CheckpointError(f"{path} is not a regular file; pass an official network-snapshot-*.pkl")
    try:
        with open(path, "rb") as f:
            try:
                safe_pickle.scan(f)
            except ValueError as e:
                raise CheckpointError(f"{path} is not a readable network pickle ({e})") from None
            f.seek(0)
            return OfficialUnpickler(f, source=str(path)).load()
    except CheckpointError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError,
            RuntimeError, OSError, RecursionError, MemoryError) as e:
        raise CheckpointError(f"{path} is not a readable network pickle ({type(e).__name__}: {str(e)[:200]})") \
            from None


# -- renaming and configs ----------------------------------------------------------------------------

# Official name pattern -> our name (\g<n> groups); None = dropped (the FIR filter buffers, which we
# rebuild from the architecture and check against). Every official tensor must match one row.
G_NAME_TABLE: list[tuple[str, str | None]] = [
    (r"mapping\.embed\.(weight|bias)", r"mapping.embed.\1"),
    (r"mapping\.fc(\d+)\.(weight|bias)", r"mapping.fc\1.\2"),
    (r"mapping\.w_avg", "mapping.w_avg"),
    (r"synthesis\.b(\d+)\.const", r"synthesis.b\1.const"),
    (r"synthesis\.b(\d+)\.(conv0|conv1)\.(weight|bias|noise_strength|noise_const)", r"synthesis.b\1.\2.\3"),
    (r"synthesis\.b(\d+)\.(conv0|conv1|torgb)\.affine\.(weight|bias)", r"synthesis.b\1.\2.affine.\3"),
    (r"synthesis\.b(\d+)\.torgb\.(weight|bias)", r"synthesis.b\1.torgb.\2"),
    (r"synthesis\.b(\d+)\.skip\.weight", r"synthesis.b\1.skip.weight"),  # resnet G
    (r"synthesis\.b(\d+)(\.conv0|\.conv1|\.skip)?\.resample_filter", None),
]
D_NAME_TABLE: list[tuple[str, str | None]] = [
    # fromrgb: the top block's; in a skip D also every other block's and the epilogue's (b4.fromrgb).
    (r"b(\d+)\.(fromrgb|conv0|conv1)\.(weight|bias)", r"b\1.\2.\3"),
    (r"b(\d+)\.skip\.weight", r"b\1.skip.weight"),
    (r"b4\.(conv|fc|out)\.(weight|bias)", r"b4.\1.\2"),
    (r"mapping\.embed\.(weight|bias)", r"mapping.embed.\1"),
    (r"mapping\.fc(\d+)\.(weight|bias)", r"mapping.fc\1.\2"),
    (r"b(\d+)(\.fromrgb|\.conv0|\.conv1|\.skip|\.conv)?\.resample_filter", None),
]


def _rename(tensors: dict[str, torch.Tensor], table, what: str, source) -> dict[str, torch.Tensor]:
    from adagan.networks.layers import FIR
    from adagan.ops import setup_filter

    fir = setup_filter(FIR)
    out = {}
    for name, t in tensors.items():
        for pattern, repl in table:
            if re.fullmatch(pattern, name):
                if repl is None:
                    if t.shape != fir.shape or not torch.allclose(t.float(), fir):
                        raise CheckpointError(f"{source}: {what}.{name} is not the [1,3,3,1] filter; networks with "
                                              "other resampling filters cannot be imported")
                else:
                    out[re.sub(pattern, repl, name)] = t
                break
        else:
            hint = (" It looks like an alias-free StyleGAN3 network (stylegan3-t/r); only StyleGAN2 networks "
                    "(stylegan2-ada-pytorch, or stylegan3 with --cfg=stylegan2) can be imported."
                    if name.startswith("synthesis.input") or re.match(r"synthesis\.L\d+_", name) else "")
            raise CheckpointError(f"{source}: unexpected tensor {what}.{name} (not a StyleGAN2 {what} parameter)."
                                  + hint)
    return out


def _get(kwargs: dict, key: str, default):
    v = kwargs.get(key, default)
    return default if v is None else v


@contextmanager
def _constructor_args(source: str, what: str):
    """The official constructor arguments of `what` (G or D) are read inside this: a missing key or a value that is
    no number becomes one CheckpointError naming the file."""
    try:
        yield
    except KeyError as e:
        raise CheckpointError(f"{source}: {what} constructor arguments lack {e}; not an official StyleGAN2 {what}") \
            from None
    except (TypeError, ValueError, OverflowError) as e:
        raise CheckpointError(f"{source}: {what} constructor arguments are not numbers where numbers belong ({e})") \
            from None


def _architecture(arch, allowed: tuple[str, ...], source: str, what: str) -> str:
    if arch not in allowed:
        raise CheckpointError(f"{source}: {what} architecture {arch!r} is not a StyleGAN2 one ({', '.join(allowed)})")
    return arch


def generator_config(init_kwargs: dict, source="pickle") -> GeneratorConfig:
    """Our GeneratorConfig from the official Generator's constructor arguments."""
    kw = dict(init_kwargs)
    mk, sk = (dict(kw.get(k) or {}) for k in ("mapping_kwargs", "synthesis_kwargs"))
    with _constructor_args(source, "G"):
        w_dim = int(kw["w_dim"])
        arch = _architecture(sk.get("architecture", "skip"), G_ARCHITECTURES, source, "G")
        for k in ("embed_features", "layer_features"):
            if mk.get(k) not in (None, w_dim):
                raise CheckpointError(f"{source}: G mapping {k}={mk[k]} differs from w_dim; not supported")
        if mk.get("activation", "lrelu") != "lrelu":
            raise CheckpointError(f"{source}: G mapping activation {mk['activation']!r} not supported")
        return GeneratorConfig(
            z_dim=int(kw["z_dim"]), w_dim=w_dim, c_dim=int(kw.get("c_dim", 0)),
            img_resolution=int(kw["img_resolution"]), img_channels=int(kw["img_channels"]),
            channel_base=int(_get(sk, "channel_base", 32768)), channel_max=int(_get(sk, "channel_max", 512)),
            map_layers=int(_get(mk, "num_layers", 8)), map_lr_mul=float(_get(mk, "lr_multiplier", 0.01)),
            w_avg_beta=float(_get(mk, "w_avg_beta", 0.995)), num_fp16_res=int(_get(sk, "num_fp16_res", 0)),
            conv_clamp=None if sk.get("conv_clamp") is None else float(sk["conv_clamp"]), architecture=arch)


def discriminator_config(init_kwargs: dict, source="pickle") -> DiscriminatorConfig:
    """Our DiscriminatorConfig from the official Discriminator's constructor arguments."""
    kw = dict(init_kwargs)
    mk, ek = (dict(kw.get(k) or {}) for k in ("mapping_kwargs", "epilogue_kwargs"))
    with _constructor_args(source, "D"):
        res = int(kw["img_resolution"])
        channel_base, channel_max = int(_get(kw, "channel_base", 32768)), int(_get(kw, "channel_max", 512))
        cmap_dim = kw.get("cmap_dim")
        if cmap_dim is None:  # official default: the channels at 4x4
            cmap_dim = min(channel_base // 4, channel_max)
        arch = _architecture(kw.get("architecture", "resnet"), D_ARCHITECTURES, source, "D")
        return DiscriminatorConfig(
            c_dim=int(kw.get("c_dim", 0)), img_resolution=res, img_channels=int(kw["img_channels"]),
            channel_base=channel_base, channel_max=channel_max, architecture=arch,
            mbstd_group_size=int(_get(ek, "mbstd_group_size", 4)),
            mbstd_num_channels=int(_get(ek, "mbstd_num_channels", 1)), cmap_dim=int(cmap_dim),
            map_layers=int(_get(mk, "num_layers", 8)), map_lr_mul=float(_get(mk, "lr_multiplier", 0.01)),
            num_fp16_res=int(_get(kw, "num_fp16_res", 0)),
            conv_clamp=None if kw.get("conv_clamp") is None else float(kw["conv_clamp"]))


def _build(record: PersistentRecord, what: str, source):
    from adagan.networks import Discriminator, Generator

    if not isinstance(record.state.get("_init_kwargs") or {}, dict):
        raise CheckpointError(f"{source}: {what} constructor arguments are not a dict")
    cfg = (discriminator_config if what == "D" else generator_config)(record.init_kwargs, source)
    try:
        check_network(cfg)
    except ConfigError as e:
        raise CheckpointError(f"{source}: its {what} configuration cannot be used ({e})") from None
    tensors = _rename(record.tensors(), D_NAME_TABLE if what == "D" else G_NAME_TABLE, what, source)
    Net = Discriminator if what == "D" else Generator
    with torch.device("meta"):  # the shapes the arguments imply, checked before anything is allocated
        expected = Net(cfg).state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    if missing or unexpected:
        raise CheckpointError(f"{source}: {what} parameters do not match its recorded configuration "
                              f"(missing: {missing[:3]}, unexpected: {unexpected[:3]})")
    for k, ref in expected.items():
        if tuple(tensors[k].shape) != tuple(ref.shape):
            raise CheckpointError(f"{source}: {what}.{k} has shape {list(tensors[k].shape)}, "
                                  f"expected {list(ref.shape)} from its configuration")
        tensors[k] = tensors[k].to(ref.dtype)
    net = Net(cfg)
    net.load_state_dict(tensors, strict=True)
    return net.eval().requires_grad_(False)


@dataclass
class OfficialNetworks:
    G: Any = None
    D: Any = None
    G_ema: Any = None
    extra: dict = field(default_factory=dict)  # e.g. training_set_kwargs, as plain data


def convert_official(path: str | os.PathLike) -> OfficialNetworks:
    """Read an official snapshot pickle and return our G, D, G_ema (those present)."""
    try:
        return _convert(path)
    except RecursionError:
        raise CheckpointError(f"{path}: networks nested too deeply; not an official network pickle") from None


def _convert(path) -> OfficialNetworks:
    data = load_official_pickle(path)
    if isinstance(data, PersistentRecord):  # a pickle of a single network
        data = {"G_ema" if data.class_name == "Generator" else "D": data}
    if not isinstance(data, dict) or not any(k in data for k in ("G", "D", "G_ema")):
        raise CheckpointError(f"{path}: no 'G', 'D' or 'G_ema' in this pickle; not an official network snapshot")
    if all(data.get(k) is None for k in ("G", "D", "G_ema")):
        raise CheckpointError(f"{path}: its G, D and G_ema are all empty; not an official network snapshot")
    out = OfficialNetworks()
    for name in ("G", "D", "G_ema"):
        rec = data.get(name)
        if rec is None:
            continue
        if not isinstance(rec, PersistentRecord):
            raise CheckpointError(f"{path}: {name} is a {type(rec).__name__}, not an official network object")
        setattr(out, name, _build(rec, "D" if name == "D" else "G", path))
    kwargs = data.get("training_set_kwargs")
    if isinstance(kwargs, dict):
        out.extra["training_set_kwargs"] = {k: v for k, v in kwargs.items()
                                            if isinstance(v, str | int | float | bool | type(None))}
    return out


def import_official(source: str | os.PathLike, dest: str | os.PathLike) -> OfficialNetworks:
    """Convert an official pickle into an adagan network file (usable by every command and `train --resume`)."""
    nets = convert_official(source)
    if nets.G is None and nets.G_ema is not None:
        nets.G = nets.G_ema  # G_ema-only pickles: fine-tuning starts G from the averaged weights
    save_networks(dest, G=nets.G, D=nets.D, G_ema=nets.G_ema if nets.G_ema is not nets.G else None,
                  metadata={"source": "official-stylegan2-ada-pickle", "source_file": Path(source).name,
                            **nets.extra})
    return nets
