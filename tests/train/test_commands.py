"""``segstudio demo-data`` and ``segstudio train`` from the command line."""

import torch

from segstudio.cli import main
from segstudio.io import voc
from segstudio.models.checkpoint import read_meta


def test_demo_data_writes_a_voc_tree_with_its_class_set(tmp_path, capsys):
    assert main(["demo-data", "--kind", "context", "--n", "10", "--size", "48", "--seed", "4",
                 "--out", str(tmp_path / "ctx")]) == 0
    assert "10 context images (8 train, 2 val)" in capsys.readouterr().out
    assert len(voc.read_voc(tmp_path / "ctx", "train")) == 8
    classes = voc.read_voc_classes(tmp_path / "ctx")
    assert classes.names == ("background", "water", "road", "boat", "car")


def test_demo_data_refuses_to_overwrite_and_bad_sizes(tmp_path, capsys):
    args = ["demo-data", "--kind", "xray", "--n", "2", "--size", "40", "--out", str(tmp_path)]
    assert main(args) == 0
    assert main(args) == 2
    assert "already holds a VOC2012 export" in capsys.readouterr().err
    assert main(args + ["--overwrite"]) == 0
    assert main(["demo-data", "--kind", "xray", "--n", "2", "--size", "5",
                 "--out", str(tmp_path / "b")]) == 2
    assert "--size: must be between 32 and 2048, not 5" in capsys.readouterr().err


def test_train_command_prints_one_line_per_epoch_and_records_itself(tmp_path, capsys):
    torch.set_num_threads(1)
    main(["demo-data", "--kind", "xray", "--n", "10", "--size", "48", "--out", str(tmp_path)])
    out = tmp_path / "m.pt"
    assert main(["train", "--model", "unet", "--data", str(tmp_path), "--epochs", "2",
                 "--batch-size", "4", "--crop", "48", "--device", "cpu", "--out",
                 str(out)]) == 0
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("epoch ")]
    assert [ln.split()[1] for ln in lines] == ["1/2", "2/2"] and "val mIoU" in lines[0]
    meta = read_meta(out)
    assert meta.training["command"].startswith("segstudio train --model unet --config lite")
    assert meta.classes.title == "Chest X-ray"
    assert main(["train", "--model", "unet", "--data", str(tmp_path / "none"), "--epochs", "1",
                 "--out", str(out)]) == 2
    assert "no such dataset folder" in capsys.readouterr().err
