"""`adagan report`: plots and HTML from a run directory."""

import json

import numpy as np
from PIL import Image


def _fake_run(path):
    path.mkdir()
    with open(path / "stats.jsonl", "w") as f:
        for i in range(1, 6):
            f.write(json.dumps({"Progress/tick": i, "Progress/kimg": 4.0 * i, "Progress/augment": 0.01 * i,
                                "Progress/r_t": 0.6, "Loss/G/loss": 1.0 / i, "Loss/D/loss": 1.2,
                                "Timing/sec_per_kimg": 10.0}) + "\n")
        f.write('{"Progress/kimg": 2')  # a line cut short by a kill is ignored
    (path / "metric-kid1k.jsonl").write_text(json.dumps({"kimg": 20.0, "results": {"kid1k": 0.05}}) + "\n")
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(path / "fakes000020.png")


def test_report_writes_png_and_html(run_cli, tmp_path):
    run = tmp_path / "run"
    _fake_run(run)
    code, out, err = run_cli("report", run)
    assert code == 0, err
    png = Image.open(run / "report.png")
    assert png.size[0] > 300
    page = (run / "report.html").read_text()
    assert "data:image/png;base64," in page and "fakes000020.png" in page


def test_lecam_averages_share_the_d_scores_panel():
    from adagan.report import panel_series

    rows = [{"Progress/kimg": 1.0, "Loss/scores/real": 2.0, "Loss/scores/fake": -1.0, "Loss/lecam/ema_real": 1.5,
             "Loss/lecam/ema_fake": -0.5, "Loss/lecam/penalty": 3.0}]
    panels = dict(panel_series(rows, {}))
    assert list(panels["D scores"]) == ["Loss/scores/real", "Loss/scores/fake", "Loss/lecam/ema_real",
                                        "Loss/lecam/ema_fake"]
    assert panels["Regularization"] == {"Loss/lecam/penalty": [(1.0, 3.0)]}
    off = dict(panel_series([{"Progress/kimg": 1.0, "Loss/scores/real": 2.0}], {}))
    assert list(off["D scores"]) == ["Loss/scores/real"]  # without LeCam nothing else is drawn


def test_report_on_empty_dir_is_a_clear_error(run_cli, tmp_path):
    code, _, err = run_cli("report", tmp_path)
    assert code == 1 and "no stats.jsonl" in err and "Traceback" not in err
