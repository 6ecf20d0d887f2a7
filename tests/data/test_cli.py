"""`adagan dataset`: help, report, exit codes, one-line errors."""

import zipfile


def test_help_has_an_example(run_cli):
    code, out, _ = run_cli("dataset", "--help")
    assert code == 0 and "adagan dataset --source" in out and "--transform" in out


def test_messy_folder_end_to_end(run_cli, messy_dir, tmp_path):
    dest = tmp_path / "out.zip"
    code, out, err = run_cli("dataset", "--source", messy_dir, "--dest", dest, "--resolution", "32")
    assert code == 0, err
    assert "Wrote 10 images (32x32 RGB)" in out and "unreadable: 3" in out and "Duplicates: 1 skipped" in out
    assert "Converting" in err  # progress bar on stderr
    assert len([n for n in zipfile.ZipFile(dest).namelist() if n.endswith(".png")]) == 10
    code, out, err = run_cli("dataset", "--source", messy_dir, "--dest", dest)
    assert code == 1 and err.startswith("Error: ") and "--force" in err and "Traceback" not in err
    code, out, err = run_cli("dataset", "--source", messy_dir, "--dest", dest, "--force", "--verbose",
                             "--channels", "1", "--transform", "pad", "--max-images", "4")
    assert code == 0 and "Wrote 4 images (64x64 grayscale)" in out and "--resolution not given" in err
    assert "converted to grayscale" in out


def test_errors_are_one_line(run_cli, tmp_path, malicious_zip):
    code, _, err = run_cli("dataset", "--source", tmp_path / "missing", "--dest", tmp_path / "o.zip")
    assert code == 1 and err.count("\n") == 1 and err.startswith("Error: ")
    code, out, err = run_cli("dataset", "--source", malicious_zip, "--dest", tmp_path / "m.zip")
    assert code == 0 and "unsafe path: 3" in out
    code, _, err = run_cli("dataset", "--source", malicious_zip, "--dest", tmp_path / "m2.zip",
                           "--background", "plaid")
    assert code == 1 and "unknown colour" in err
