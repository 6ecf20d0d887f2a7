"""The only module that touches torch.distributed.

One process per device. Processes come from `torchrun` (RANK/WORLD_SIZE/LOCAL_RANK in
the environment, any number of nodes) or from `launch()` for `--gpus N` on one machine.
Backend: NCCL on CUDA, gloo on CPU. Gradients are all-reduced by hand (flattened, summed,
divided by the world size) rather than through the DDP wrapper, because R1 and the
path-length penalty need double backward, which DDP's hooks do not support.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.distributed as dist

from adagan.errors import AdaganError


@dataclass(frozen=True)
class Context:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def env_world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def init_from_env(device_kind: str) -> Context:
    """Join the process group described by torchrun's environment variables (or run alone)."""
    world = env_world_size()
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = _device(device_kind, local_rank)
    if world > 1 and not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend, init_method="env://", rank=rank, world_size=world)
    return Context(rank, world, local_rank, device)


def _device(kind: str, local_rank: int) -> torch.device:
    if kind == "cuda":
        torch.cuda.set_device(local_rank)
        return torch.device("cuda", local_rank)
    return torch.device(kind)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _spawned(rank: int, world: int, port: int, device_kind: str, fn: Callable, args: tuple) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank))
    ctx = init_from_env(device_kind)
    try:
        fn(ctx, *args)
        # All ranks finish before any tears its gloo group down: a rank that destroys the group while a
        # peer still uses it can abort the peer ("terminate called without an active exception").
        barrier(ctx)
    finally:
        shutdown()


def launch(world: int, device_kind: str, fn: Callable, *args):
    """Run fn(ctx, *args) in `world` processes on this machine; world == 1: in this process, returning
    what fn returns (None otherwise)."""
    if world == 1:
        return fn(init_from_env(device_kind), *args)
    import torch.multiprocessing as mp

    mp.spawn(_spawned, args=(world, free_port(), device_kind, fn, args), nprocs=world, join=True)


def shutdown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_sum(ctx: Context) -> Callable[[torch.Tensor], None] | None:
    """An in-place sum over ranks (None when running alone); moves CPU tensors for NCCL."""
    if not ctx.distributed:
        return None

    def reduce(t: torch.Tensor) -> None:
        buf = t.to(ctx.device) if ctx.device.type == "cuda" else t
        dist.all_reduce(buf, op=dist.ReduceOp.SUM)
        if buf is not t:
            t.copy_(buf.to(t.device))

    return reduce


def average_gradients(ctx: Context, params: list[torch.nn.Parameter]) -> None:
    """Average .grad over ranks (flattened into one buffer) and sanitise non-finite values."""
    params = [p for p in params if p.grad is not None]
    if not params:
        return
    flat = torch.cat([p.grad.flatten() for p in params])
    if ctx.distributed:
        dist.all_reduce(flat, op=dist.ReduceOp.SUM)
        flat /= ctx.world_size
    # As the official training loop: NaN -> 0, +-inf -> +-1e5 before every optimizer step.
    torch.nan_to_num(flat, nan=0, posinf=1e5, neginf=-1e5, out=flat)
    offset = 0
    for p in params:
        n = p.numel()
        p.grad.copy_(flat[offset: offset + n].reshape(p.shape))
        offset += n


def broadcast_module(ctx: Context, module: torch.nn.Module) -> None:
    """Make every rank start from rank 0's parameters and buffers."""
    if not ctx.distributed:
        return
    for t in list(module.parameters()) + list(module.buffers()):
        dist.broadcast(t.data, src=0)


def barrier(ctx: Context) -> None:
    if ctx.distributed:
        dist.barrier()


def any_rank(ctx: Context, flag: bool) -> bool:
    """True on every rank if `flag` is true on any (e.g. a stop signal seen by one process)."""
    if not ctx.distributed:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=ctx.device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)


def check_in_sync(ctx: Context, *nets: torch.nn.Module) -> None:
    """Every rank must hold the same weights; compares a float64 checksum per network."""
    if not ctx.distributed:
        return
    sums = torch.stack([torch.stack([p.detach().double().sum() for p in n.parameters()]).sum() for n in nets])
    lo, hi = sums.clone(), sums.clone()
    dist.all_reduce(lo, op=dist.ReduceOp.MIN)
    dist.all_reduce(hi, op=dist.ReduceOp.MAX)
    if not torch.equal(lo, hi):
        raise AdaganError(f"processes are out of sync (weight checksums {lo.tolist()} vs {hi.tolist()}); "
                          "this is a bug, please report it")


class Collectives:
    """torch.distributed behind the interface the metrics declare (adagan.metrics.stats.Collectives)."""

    def __init__(self, ctx: Context):
        self.world_size = ctx.world_size

    def all_gather(self, tensor: torch.Tensor) -> list[torch.Tensor]:
        out = [torch.empty_like(tensor) for _ in range(self.world_size)]
        dist.all_gather(out, tensor)
        return out

    def broadcast_object(self, obj, src: int = 0):
        box = [obj]
        dist.broadcast_object_list(box, src=src)
        return box[0]
