"""benchmarks/vs_official_swap.py without the official code: the official-order sampler, the run plan and the
summary that turns r_t differences into p differences."""

import itertools

import pytest


@pytest.fixture(scope="module")
def swap(load_benchmark):
    return load_benchmark("vs_official_swap")  # it puts benchmarks/ on sys.path for official_cpu itself


def test_window_sampler_is_seeded_and_not_an_epoch_permutation(swap):
    n = 170
    a = list(itertools.islice(iter(swap.WindowSampler(n, seed=3)), 5 * n))
    assert a == list(itertools.islice(iter(swap.WindowSampler(n, seed=3)), 5 * n))
    assert a != list(itertools.islice(iter(swap.WindowSampler(n, seed=4)), 5 * n))
    assert sorted(a[:n]) != list(range(n))  # wrapped swaps bring some indices twice within one pass
    assert set(a) == set(range(n))
    # a yielded index moves at most window - 1 places back, so it returns after at least size - window + 1 draws
    last = {}
    gaps = []
    for k, i in enumerate(a):
        if i in last:
            gaps.append(k - last[i])
        last[i] = k
    assert min(gaps) == n - round(n / 2) + 1
    # window 0 (no swaps): the shuffled order, repeated
    b = list(itertools.islice(iter(swap.WindowSampler(10, seed=0, window_size=0.0)), 30))
    assert b[:10] == b[10:20] == b[20:] and sorted(b[:10]) == list(range(10))


def test_plan_runs_every_configuration_then_the_calibration(swap):
    runs = swap.plan(0.2, 0.05, [0, 1])
    assert runs[:3] == [("adagan", 0.2, 0), ("official-pipe", 0.2, 0), ("official-sampler", 0.2, 0)]
    assert ("adagan", 0.15, 1) in runs and ("adagan", 0.25, 1) in runs and len(runs) == 10
    assert len(swap.plan(0.2, 0, [0])) == 3


def test_summary_pairs_by_seed_and_converts_to_p(swap):
    rows = []
    for seed, base in ((0, 0.65), (1, 0.60)):
        rows += [{"config": "adagan", "p": 0.2, "seed": seed, "r_t": base},
                 {"config": "official-pipe", "p": 0.2, "seed": seed, "r_t": base - 0.02},
                 {"config": "adagan", "p": 0.15, "seed": seed, "r_t": base + 0.05},
                 {"config": "adagan", "p": 0.25, "seed": seed, "r_t": base - 0.05}]
    s = swap.summarise(rows, 0.2, 0.05)
    assert s["slope"] == pytest.approx(-1.0)
    pipe = s["configs"]["official-pipe"]
    assert pipe["diff"] == pytest.approx(-0.02) and pipe["diff_per_seed"] == pytest.approx([-0.02, -0.02])
    assert pipe["as_p"] == pytest.approx(-0.02)  # a D that overfits less at equal p: ADA settles 0.02 lower
    assert s["configs"]["adagan"]["r_t"] == pytest.approx(0.625) and s["configs"]["adagan"]["diff"] is None
    assert s["configs"]["official-sampler"]["r_t"] is None and s["configs"]["official-sampler"]["as_p"] is None


def test_missing_start_is_one_line(swap, tmp_path):
    with pytest.raises(SystemExit, match="--start .* does not exist"):
        swap.main(["--official", str(tmp_path), "--start", str(tmp_path / "none.safetensors")])


def test_run_one_trains_at_fixed_p_and_repeats_exactly(swap, tmp_path):
    """Two iterations of adagan's loop from the built-in network (a `cpu`-preset G, D and G_ema), with adagan's
    sampler and with the official order: r_t is a mean of signs, and the same seed gives the same run."""
    import argparse

    from adagan.pretrained import BUILTIN_DIR

    def one(config):
        args = argparse.Namespace(config=config, official=str(tmp_path), start=BUILTIN_DIR / "twemoji32.safetensors",
                                  p=0.2, kimg=0.064, seed=0, threads=1)
        return swap.run_one(args)

    a, b, c = one("adagan"), one("adagan"), one("official-sampler")
    assert a["iterations"] == 2 and -1 <= a["r_t"] <= 1 and a["config"] == "adagan" and a["p"] == 0.2
    assert a["r_t"] == b["r_t"]
    assert c["config"] == "official-sampler" and -1 <= c["r_t"] <= 1
