"""NVIDIA's train.py spellings (its click options, /work/official/train.py): accepted with the official meaning, or
refused with one line that names what adagan does instead."""

import json

import pytest
import torch

TINY = ["--cfg", "cpu", "--G.z_dim=8", "--G.w_dim=8", "--G.channel_base=128", "--G.channel_max=8",
        "--D.channel_base=128", "--D.channel_max=8", "--D.mbstd_group_size=2", "--batch", "4", "--batch-gpu", "2",
        "--tick", "0.004", "--threads", "1"]


def _dry(run_cli, data, tmp_path, *args):
    code, out, err = run_cli("train", "--data", data, "--outdir", tmp_path, "-n", "--batch", "4", *args)
    assert code == 0, err
    config = json.loads(out[: out.rindex("}") + 1])
    return config, out.splitlines()[-1]


@pytest.mark.parametrize("spelling, value", [(["--mirror"], True), (["--mirror=1"], True), (["--mirror", "1"], True),
                                             (["--mirror=true"], True), (["--mirror=0"], False),
                                             (["--mirror", "false"], False), ([], False)])
def test_boolean_flags_as_values_and_as_switches(run_cli, dataset_zip, tmp_path, spelling, value):
    config, _ = _dry(run_cli, dataset_zip, tmp_path, *spelling, "--cond=1")
    assert config["mirror"] is value and config["cond"] is True


def test_performance_flags_have_the_official_meaning(run_cli, dataset_zip, tmp_path):
    base, where = _dry(run_cli, dataset_zip, tmp_path, "--cfg", "auto")
    assert base["G"]["num_fp16_res"] == 4 and base["cudnn_benchmark"] and not base["allow_tf32"]
    # --fp32: official num_fp16_res = 0 and conv_clamp = None in G and D
    config, _ = _dry(run_cli, dataset_zip, tmp_path, "--cfg", "auto", "--fp32")
    assert [config[n]["num_fp16_res"] for n in "GD"] == [0, 0] and [config[n]["conv_clamp"] for n in "GD"] == [None] * 2
    assert _dry(run_cli, dataset_zip, tmp_path, "--cfg", "auto", "--fp32=0")[0] == base
    config, where2 = _dry(run_cli, dataset_zip, tmp_path, "--cfg", "auto", "--nhwc=1", "--nobench=1", "--allow-tf32")
    assert config["channels_last"] and not config["cudnn_benchmark"] and config["allow_tf32"]
    assert where2 == where  # execution options: the same run (resumable with or without them)
    # the user's own overrides come after the official flags and win
    config, _ = _dry(run_cli, dataset_zip, tmp_path, "--cfg", "auto", "--fp32", "--G.num_fp16_res=2")
    assert config["G"]["num_fp16_res"] == 2 and config["D"]["num_fp16_res"] == 0


@pytest.mark.parametrize("args, says", [
    (["--workers", "3"], "--workers: adagan has no DataLoader workers"),
    (["--aug", "noaug", "--augpipe", "bgcfnc"], "--augpipe cannot be given with --aug noaug"),
    (["--p", "0.3"], "--p can only be given with --aug fixed"),
    (["--aug", "noaug", "--p", "0.3"], "--p can only be given with --aug fixed"),
    (["--aug", "fixed", "--p", "0.3", "--target", "0.5"], "--target can only be given with --aug ada"),
])
def test_official_combinations_it_refuses_are_refused(run_cli, dataset_zip, tmp_path, args, says):
    code, _, err = run_cli("train", "--data", dataset_zip, "--outdir", tmp_path, "-n", "--batch", "4", *args)
    assert code != 0 and says in err and len(err.strip().splitlines()) == 1, err


def test_a_value_that_is_not_a_boolean_is_a_usage_error(run_cli, dataset_zip, tmp_path):
    code, _, err = run_cli("train", "--data", dataset_zip, "--outdir", tmp_path, "-n", "--mirror=maybe")
    assert code == 2 and "'maybe' is not a valid boolean" in err.strip().splitlines()[-1]


def test_noresume_and_a_run_with_official_flags(run_cli, dataset_zip, tmp_path):
    before = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32, torch.backends.cudnn.benchmark)
    try:
        code, out, err = run_cli("train", "--data", dataset_zip, "--outdir", tmp_path, "--name", "r", "--kimg",
                                 "0.004", "--resume", "noresume", "--mirror=1", "--cond", "1", "--fp32=1",
                                 "--allow-tf32=1", *TINY)
        assert code == 0, err
        assert torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32  # what the run set
    finally:
        (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32,
         torch.backends.cudnn.benchmark) = before
    config = json.loads((tmp_path / "r" / "config.json").read_text())
    assert config["mirror"] and config["cond"] and config["allow_tf32"]
