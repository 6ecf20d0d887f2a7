"""An endless, seeded, resumable and shardable stream of dataset indices.

The global stream is epoch after epoch of permutations of range(size), epoch e being
`numpy.random.Generator(PCG64([seed mod 2^64, e])).permutation(size)`. Position g of the stream
(g = 0, 1, ...) is `perm(g // size)[g % size]`. Rank r of R takes positions start + r, start + r + R,
..., so the ranks draw disjoint, interleaved shares of one stream that depends only on (seed, size):
training saves `position` and resumes bit-exactly with any batch split.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch.utils.data


class InfiniteSampler(torch.utils.data.Sampler):
    """Iterator over dataset indices for one rank.

    start: global number of samples already consumed, over all ranks (0 for a fresh run).
    position: global position after what this rank has drawn so far: start + num_replicas * drawn.
      With every rank drawing the same count (as the training loop does), all ranks agree on it.
    """

    def __init__(self, size: int, *, rank: int = 0, num_replicas: int = 1, seed: int = 0, start: int = 0):
        if size <= 0:
            raise ValueError(f"InfiniteSampler needs a non-empty dataset, got size {size}")
        if num_replicas < 1 or not 0 <= rank < num_replicas:
            raise ValueError(f"rank {rank} must be in [0, num_replicas={num_replicas})")
        if start < 0:
            raise ValueError(f"start must be >= 0, got {start}")
        self.size = int(size)
        self.rank = int(rank)
        self.num_replicas = int(num_replicas)
        self.seed = int(seed)
        self.start = int(start)
        self._drawn = 0
        self._epoch = -1
        self._perm: np.ndarray | None = None

    @property
    def position(self) -> int:
        return self.start + self.num_replicas * self._drawn

    def permutation(self, epoch: int) -> np.ndarray:
        """The order of epoch `epoch` (the same on every rank)."""
        if epoch != self._epoch:
            rng = np.random.Generator(np.random.PCG64([self.seed % 2**64, epoch]))
            self._perm = rng.permutation(self.size)
            self._epoch = epoch
        return self._perm  # type: ignore[return-value]

    def index_at(self, g: int) -> int:
        """The dataset index at global stream position g."""
        return int(self.permutation(g // self.size)[g % self.size])

    def __iter__(self) -> Iterator[int]:
        while True:
            g = self.position + self.rank
            self._drawn += 1
            yield self.index_at(g)

    def __len__(self) -> int:  # endless; DataLoader only calls this when asked for len()
        raise TypeError("InfiniteSampler is endless and has no length")

    def state_dict(self) -> dict:
        return {"position": self.position, "seed": self.seed, "size": self.size}

    def load_state_dict(self, state: dict) -> None:
        """Continue the stream at state["position"] (rank and number of replicas may differ from the saver's)."""
        self.start, self._drawn = int(state["position"]), 0
