"""Numeric options out of range are refused where argparse reads them: one error line naming
the option, exit status 2, nothing started."""

from __future__ import annotations

import pytest

from segstudio.cli import main


def _run(argv, capsys):
    code = main(argv)
    return code, capsys.readouterr().err


@pytest.mark.parametrize("argv, says", [
    (["demo-data", "--kind", "xray", "--out", "{tmp}", "--seed", "-1"],
     "argument --seed: must be between 0 and 4294967295, not -1"),
    (["demo-data", "--kind", "xray", "--out", "{tmp}", "--n", "0"],
     "argument --n: must be at least 1"),
    (["demo-data", "--kind", "xray", "--out", "{tmp}", "--size", "5000"],
     "argument --size: must be between 32 and 2048"),
    (["demo-data", "--kind", "xray", "--out", "{tmp}", "--val-fraction", "nan"],
     "argument --val-fraction: must be a finite number in [0, 1)"),
    (["export-voc", "{tmp}", "--out", "{tmp}/o", "--seed", "-1"],
     "argument --seed: must be between"),
    (["export-voc", "{tmp}", "--out", "{tmp}/o", "--val-fraction", "1"], "argument --val-fraction"),
    (["train", "--model", "unet", "--data", "{tmp}", "--out", "{tmp}/u.pt", "--lr", "nan"],
     "argument --lr: must be a finite number in (0, ∞), not 'nan'"),
    (["train", "--model", "unet", "--data", "{tmp}", "--out", "{tmp}/u.pt", "--lr", "-1"],
     "argument --lr: must be a finite number in (0, ∞), not '-1'"),
    (["train", "--model", "unet", "--data", "{tmp}", "--out", "{tmp}/u.pt", "--workers", "-1"],
     "argument --workers: must be between 0 and 128, not -1"),
    (["train", "--model", "unet", "--data", "{tmp}", "--out", "{tmp}/u.pt", "--epochs", "0"],
     "argument --epochs: must be at least 1, not 0"),
    (["train", "--model", "unet", "--data", "{tmp}", "--out", "{tmp}/u.pt", "--epochs", "-1"],
     "argument --epochs: must be at least 1, not -1"),
    (["train", "--model", "unet", "--data", "{tmp}", "--out", "{tmp}/u.pt", "--batch-size", "0"],
     "argument --batch-size: must be at least 1"),
    (["train", "--model", "unet", "--data", "{tmp}", "--out", "{tmp}/u.pt", "--crop", "8"],
     "argument --crop: must be between 16 and 8192"),
    (["train", "--model", "unet", "--data", "{tmp}", "--out", "{tmp}/u.pt", "--threads", "0"],
     "argument --threads: must be between 1 and 1024"),
    (["predict", "{tmp}", "--out", "{tmp}/p", "--model", "unet", "--tile-size", "64"],
     "argument --tile-size: must be at least 129"),
    (["eval", "--pred", "{tmp}", "--gt", "{tmp}", "--iou", "1.5"],
     "argument --iou: must be a finite number in (0, 1], not '1.5'"),
    (["eval", "--pred", "{tmp}", "--gt", "{tmp}", "--iou", "0"], "argument --iou"),
    (["overlay-video", "{tmp}", "--out", "{tmp}/v.mp4", "--opacity", "inf"], "argument --opacity"),
    (["rf", "--model", "unet", "--input-size", "0", "64"],
     "argument --input-size: must be between 1 and 100000, not 0"),
    (["rf", "--model", "unet", "--input-size", "9" * 30, "64"], "argument --input-size"),
    (["demo-data", "--kind", "xray", "--out", "{tmp}", "--seed", "1" * 5000], "not a whole number"),
])
def test_out_of_range_numbers_are_one_error_line_and_exit_2(tmp_path, capsys, argv, says):
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    code, err = _run(argv, capsys)
    assert code == 2
    lines = [line for line in err.splitlines() if "error:" in line]
    assert len(lines) == 1 and lines[0].startswith(f"segstudio {argv[0]}: error: ")
    assert says in lines[0], lines[0]
    assert "Traceback" not in err and sorted(p.name for p in tmp_path.iterdir()) == []


def test_a_batch_of_one_for_a_network_with_global_pooling_batch_norm_is_a_clean_error(
        tmp_path, capsys):
    assert main(["demo-data", "--kind", "xray", "--n", "4", "--size", "32",
                 "--out", str(tmp_path / "d")]) == 0
    code, err = _run(["train", "--model", "pspnet", "--epochs", "1", "--batch-size", "1",
                      "--device", "cpu", "--data", str(tmp_path / "d" / "VOCdevkit" / "VOC2012"),
                      "--out", str(tmp_path / "p.pt")], capsys)
    assert code == 2 and "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("segstudio train: error: a batch of 1 image")
    assert "--batch-size 2" in err and not (tmp_path / "p.pt").exists()
