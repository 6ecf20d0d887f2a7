"""training/distributed.py: the collectives it lends the metrics (the only torch.distributed user)."""

import numpy as np
import torch
import torch.distributed as dist

from adagan.metrics.stats import broadcast_object, gather_rows, shard, use_collectives
from adagan.training import distributed


class TwoRanks:
    """Rank 0 of a pretend two-process group whose rank 1 holds `other`."""

    def __init__(self, other: torch.Tensor):
        self.other = other

    def all_gather(self, tensor):
        return [tensor, self.other]

    def broadcast_object(self, obj, src=0):
        return {"from": src, "obj": obj}


def test_metrics_gather_rows_over_lent_collectives():
    n = 5
    mine = np.full([len(shard(n, 0, 2)), 3], 0.0, np.float32)  # rank 0: rows 0-1, rank 1: rows 2-4
    other = torch.ones([3, 3])  # rank 1's rows, padded to the longest shard
    with use_collectives(TwoRanks(other)):
        rows = gather_rows(mine, n, rank=0, world_size=2, device="cpu")
        assert broadcast_object("x", world_size=2) == {"from": 0, "obj": "x"}
    assert rows.shape == (5, 3) and rows[:2].sum() == 0 and rows[2:].sum() == 9
    # Outside the block (or with one process) every rank keeps its own rows.
    assert gather_rows(mine, n, rank=0, world_size=2, device="cpu") is mine


def test_torch_collectives_in_a_one_process_group():
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{distributed.free_port()}", rank=0, world_size=1)
    try:
        coll = distributed.Collectives(distributed.Context())
        t = torch.arange(6.0).reshape(2, 3)
        (out,) = coll.all_gather(t)
        assert torch.equal(out, t) and coll.broadcast_object({"a": 1}) == {"a": 1}
    finally:
        distributed.shutdown()



LECAM_WORKER = """
import numpy as np
import torch

from adagan.training import distributed
from adagan.training.loss import LeCam


def run(ctx, out_dir):
    lecam = LeCam(decay=0.9, all_reduce=distributed.all_reduce_sum(ctx))
    real = torch.full([4, 1], float(ctx.rank))  # batch means 0 and 1 on the two ranks: 0.5 overall
    fake = torch.full([4, 1], -2.0 * (ctx.rank + 1))  # -2 and -4: -3 overall
    lecam.update(real, fake)
    np.save(f"{out_dir}/rank{ctx.rank}.npy", lecam.ema.numpy())
"""


def test_lecam_batch_means_are_the_same_on_every_rank(tmp_path, monkeypatch):
    # Two gloo processes with different scores: each holds the averages of the whole batch. The worker lives in a
    # module on sys.path because spawned processes import it by name (pytest imports test files by path).
    import importlib

    (tmp_path / "lecam_ranks.py").write_text(LECAM_WORKER)
    monkeypatch.syspath_prepend(str(tmp_path))
    worker = importlib.import_module("lecam_ranks")
    distributed.launch(2, "cpu", worker.run, str(tmp_path))
    ranks = [np.load(tmp_path / f"rank{r}.npy") for r in (0, 1)]
    np.testing.assert_allclose(ranks[0], [0.5, -3.0], rtol=1e-6)
    assert np.array_equal(ranks[0], ranks[1])
