"""benchmarks/vs_official_training.py without the official code: the draw feeder that hands adagan's augment pipe
the official pipe's random numbers, the checkpoints and the ADA-decision check."""

import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def vs(load_benchmark):
    sys.path.insert(0, str(ROOT / "benchmarks"))  # its sibling modules (official_cpu, vs_official_stats)
    try:
        yield load_benchmark("vs_official_training")
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))


def official_bgc_draws(n, gate, values):
    """(kind, tensor) in the official pipe's order for bgc: per transform its value draw, then its gate draw."""
    shapes = {"xint": [n, 2], "xfrac": [n, 2], "lumaflip": [n, 1, 1], "saturation": [n, 1, 1]}
    kinds = [("xflip", "u"), ("rotate90", "u"), ("xint", "u"), ("scale", "n"), ("rotate", "u"), ("aniso", "n"),
             ("rotate", "u"), ("xfrac", "n"), ("brightness", "n"), ("contrast", "n"), ("lumaflip", "u"), ("hue", "u"),
             ("saturation", "n")]
    out = []
    for name, kind in kinds:
        shape = shapes.get(name, [n])
        out.append((kind, torch.full(shape, values.get(name, 0.5 if kind == "u" else 0.0))))
        gshape = [n, 1] if name in ("xint", "xfrac") else ([n, 1, 1] if name in ("lumaflip", "saturation") else [n])
        out.append(("u", torch.full(gshape, gate)))
    return out


def run_fed(vs, draws, p):
    from adagan.augment import pipeline

    pipe = pipeline.AugmentPipe("bgc")
    pipe.p.fill_(p)
    x = torch.rand(2, 3, 8, 8) * 2 - 1
    original = pipeline._Draws
    vs.FedDraws.queue = [draws]
    pipeline._Draws = vs.FedDraws
    try:
        y = pipe(x)
    finally:
        pipeline._Draws = original
    assert vs.FedDraws.queue == []
    return x, y


def test_fed_draws_map_the_official_xflip_draw(vs):
    # gate 0 < p: every transform on; xflip's value 0.75 -> floor(0.75 * 2) = 1 (a flip), every other value the
    # identity: adagan's pipe must mirror the images exactly.
    x, y = run_fed(vs, official_bgc_draws(2, 0.0, {"xflip": 0.75, "rotate90": 0.0, "lumaflip": 0.0}), p=1.0)
    assert torch.equal(y, x.flip(3))


def test_fed_draws_gate_off_leaves_images(vs):
    x, y = run_fed(vs, official_bgc_draws(2, 0.9, {"xflip": 0.75, "brightness": 1.0}), p=0.5)
    assert torch.equal(y, x)


def test_fed_draws_refuse_a_kind_mismatch(vs):
    draws = official_bgc_draws(2, 0.0, {})
    draws[6] = ("u", draws[6][1])  # scale's value drawn as uniform: adagan asks for a normal
    with pytest.raises(RuntimeError, match="scale|draws n"):
        run_fed(vs, draws, p=1.0)


def test_checkpoints(vs):
    assert vs.checkpoints(64) == [1, 2, 4, 8, 16, 32, 64]
    assert vs.checkpoints(5) == [1, 2, 4, 5]


def test_check_p_allows_one_flipped_decision_only(vs, capsys):
    step = 0.0064
    official = [0.0] * 4 + [step] * 4 + [2 * step] * 4 + [3 * step]
    one_flip = [0.0] * 4 + [step] * 4 + [0.0] * 4 + [step]
    never_moves = [0.0] * 4 + [0.0] * 4 + [0.0] * 4 + [0.0]
    assert vs.check_p(official, official, official, 3) == 0
    assert vs.check_p(official, one_flip, official, 3) == 0
    assert vs.check_p(official, never_moves, official, 3) == 1
    assert "FAIL" in capsys.readouterr().out


def test_ada_kimg_reaches_both_loops_and_names_the_runs(vs, tmp_path):
    import official_cpu
    import vs_official_stats as st

    cfg = st._cfg(0, 60, 500)
    kw = official_cpu.loop_kwargs(cfg, "data", "run", total_kimg=60, snap_ticks=10, image_ticks=10)
    assert kw["ada_kimg"] == 500 and st._cfg(0, 60).augment.ada_kimg == 20
    assert st._run_dir(tmp_path, "official", 1, 500).name == "official-adakimg500-seed1"
    assert st._run_dir(tmp_path, "adagan", 1, None).name == "adagan-seed1"
    with pytest.raises(SystemExit):
        vs.main(["--which", "adagan", "--ada-kimg", "0"])
    (tmp_path / "official-seed0").mkdir()  # a run of the preset's ADA speed is not a run of --ada-kimg 500
    with pytest.raises(official_cpu.UsageError, match="adakimg500"):
        st.report(type("A", (), dict(out=str(tmp_path), ada_kimg=500.0, metrics="none", every=10, kimg=60))())


def test_metric_plan_reads_name_at_interval(vs):
    import official_cpu
    import vs_official_stats as st

    assert st._metric_plan("leak1k, kid1k@30,none") == [("leak1k", None), ("kid1k", 30)]
    with pytest.raises(official_cpu.UsageError, match="NAME@N"):
        st._metric_plan("kid1k@0")


def test_report_window_means_and_seed_spread_summary(vs):
    import vs_official_stats as st

    rows = [{"kimg": k, "r_t": 0.5 + 0.01 * k, "p": 0.1} for k in range(1, 21)]
    w = st._window(rows, 10, 20)
    assert w["r_t"] == pytest.approx(0.5 + 0.01 * 15.5) and w["p"] == pytest.approx(0.1)
    assert st._window(rows, 30, 40) == {"r_t": None, "p": None}
    table = [{"seed": s, "kimg": k, "official_p": 0.2 + 0.01 * s, "adagan_p": 0.3 + 0.01 * s,
              "official_kid1k": 0.1 if k == 20 else None, "adagan_kid1k": 0.11 - 0.02 * s if k == 20 else None}
             for s in (0, 1) for k in (10, 20)]
    by = {s["stat"]: s for s in st.summarise(table, last=10)}
    assert by["p"]["official"] == pytest.approx([0.2, 0.21]) and by["p"]["beyond_seed_spread"]
    assert by["kid1k"]["adagan"] == pytest.approx([0.11, 0.09]) and not by["kid1k"]["beyond_seed_spread"]
    assert st._shown("leak1k_hue") and st._shown("kid1k") and not st._shown("leak1k_sat")


def test_permutation_p_is_exact(vs):
    import vs_official_stats as st

    # 3 a side, fully separated: only the observed split and its mirror are as extreme -> 2/20.
    assert st.permutation_p([0.21, 0.20, 0.22], [0.30, 0.24, 0.25]) == pytest.approx(0.1)
    # 5 a side, fully separated: 2/252.
    assert st.permutation_p([1, 2, 3, 4, 5], [6, 7, 8, 9, 10]) == pytest.approx(2 / 252)
    # identical groups: every split is at least as extreme as a zero difference.
    assert st.permutation_p([1.0, 2.0], [1.0, 2.0]) == pytest.approx(1.0)
    assert st.permutation_p([1.0], [2.0, 3.0]) is None
    table = [{"seed": s, "kimg": 10, "official_p": 0.2 + 0.01 * s, "adagan_p": 0.3 + 0.01 * s} for s in (0, 1)]
    assert st.summarise(table, last=10)[0]["permutation_p"] == pytest.approx(2 / 6)
