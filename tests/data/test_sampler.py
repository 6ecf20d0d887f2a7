"""InfiniteSampler: seeded epochs, exact resume from `position`, disjoint interleaved ranks."""

import itertools

import numpy as np
import pytest

from adagan.data import InfiniteSampler


def take(sampler, n):
    it = iter(sampler)
    return [next(it) for _ in range(n)]


def test_epochs_are_seeded_permutations():
    s = InfiniteSampler(10, seed=3)
    xs = take(s, 30)
    for e in range(3):
        assert sorted(xs[10 * e: 10 * e + 10]) == list(range(10))
    assert xs[:10] != xs[10:20]  # a new order every epoch
    assert take(InfiniteSampler(10, seed=3), 30) == xs
    assert take(InfiniteSampler(10, seed=4), 30) != xs
    assert s.position == 30


@pytest.mark.parametrize("world", [1, 2, 3])
def test_resume_from_position_is_exact(world):
    full = [take(InfiniteSampler(7, rank=r, num_replicas=world, seed=1), 20) for r in range(world)]
    first = [InfiniteSampler(7, rank=r, num_replicas=world, seed=1) for r in range(world)]
    heads = [take(s, 8) for s in first]
    assert {s.position for s in first} == {8 * world}
    start = first[0].position
    tails = [take(InfiniteSampler(7, rank=r, num_replicas=world, seed=1, start=start), 12)
             for r in range(world)]
    assert [h + t for h, t in zip(heads, tails, strict=True)] == full


def test_ranks_share_one_stream_disjointly():
    single = take(InfiniteSampler(9, seed=5), 36)
    per_rank = [take(InfiniteSampler(9, rank=r, num_replicas=3, seed=5), 12) for r in range(3)]
    interleaved = list(itertools.chain.from_iterable(zip(*per_rank, strict=True)))
    assert interleaved == single
    # Within each epoch the ranks draw disjoint sets.
    for e in range(4):
        chunk = interleaved[9 * e: 9 * e + 9]
        assert sorted(chunk) == list(range(9))


def test_resume_with_a_different_world_size_continues_the_stream():
    single = take(InfiniteSampler(5, seed=2), 20)
    a = [take(InfiniteSampler(5, rank=r, num_replicas=2, seed=2, start=10), 5) for r in range(2)]
    assert list(itertools.chain.from_iterable(zip(*a, strict=True))) == single[10:20]


def test_bad_arguments():
    for kw in ({"size": 0}, {"size": 3, "rank": 2, "num_replicas": 2}, {"size": 3, "start": -1}):
        with pytest.raises(ValueError):
            InfiniteSampler(**kw)
    assert isinstance(InfiniteSampler(3).index_at(4), int)
    a, b = InfiniteSampler(4, seed=9), InfiniteSampler(4, seed=9)
    assert np.array_equal(a.permutation(1), b.permutation(1))
