"""``segstudio export-voc``: a workspace becomes a VOC tree; mistakes are clean exit-2 errors."""

from __future__ import annotations

import numpy as np
from PIL import Image

from segstudio.cli import main
from segstudio.core.classes import chest_xray
from segstudio.io.workspace import ItemStatus, Workspace
from segstudio.io.voc import load_label_png, read_voc


def _workspace(root, n=5):
    root.mkdir()
    for i in range(n):
        Image.fromarray(np.full((8, 10, 3), 20 * i, np.uint8)).save(root / f"x{i}.png")
    ws = Workspace.open(root, classes=chest_xray())
    for i, item in enumerate(ws.items[:4]):
        status = ItemStatus.REVIEWED if i < 2 else ItemStatus.PREDICTED
        ws.save_labels(item, np.full((8, 10), i % 4, np.uint8), status=status)
    return ws


def test_export_writes_the_labelled_items_and_reports_progress(tmp_path, capsys):
    _workspace(tmp_path / "ws")
    code = main(["export-voc", str(tmp_path / "ws"), "--out", str(tmp_path / "out"),
                 "--val-fraction", "0.25", "--seed", "4", "--include-predicted"])
    out, err = capsys.readouterr()
    assert code == 0
    assert "exporting 4/4" in err
    assert "wrote 4 items (3 train, 1 val)" in out
    pairs = read_voc(tmp_path / "out", "trainval")
    assert [p[0] for p in pairs] == ["x0", "x1", "x2", "x3"]
    assert int(load_label_png(pairs[3][2])[0, 0]) == 3


def test_status_filter_exports_only_reviewed_items(tmp_path, capsys):
    _workspace(tmp_path / "ws")
    assert main(["export-voc", str(tmp_path / "ws"), "--out", str(tmp_path / "out"),
                 "--status", "reviewed", "--val-fraction", "0"]) == 0
    assert [p[0] for p in read_voc(tmp_path / "out", "train")] == ["x0", "x1"]


def test_unreviewed_predictions_stay_out_by_default_as_in_the_window(tmp_path, capsys):
    _workspace(tmp_path / "ws")          # x0, x1 reviewed; x2, x3 predicted
    assert main(["export-voc", str(tmp_path / "ws"), "--out", str(tmp_path / "out"),
                 "--val-fraction", "0"]) == 0
    out = capsys.readouterr().out
    assert [p[0] for p in read_voc(tmp_path / "out", "trainval")] == ["x0", "x1"]
    assert "left out 2 item(s)" in out and "--include-predicted" in out


def test_only_predictions_is_a_clean_error_that_names_the_flag(tmp_path, capsys):
    root = tmp_path / "ws"
    root.mkdir()
    Image.fromarray(np.zeros((8, 10, 3), np.uint8)).save(root / "p.png")
    ws = Workspace.open(root, classes=chest_xray())
    ws.save_labels(ws.items[0], np.ones((8, 10), np.uint8), status=ItemStatus.PREDICTED)
    assert main(["export-voc", str(root), "--out", str(tmp_path / "out")]) == 2
    assert "--include-predicted" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
    assert main(["export-voc", str(root), "--out", str(tmp_path / "out"),
                 "--include-predicted"]) == 0


def test_second_export_needs_overwrite(tmp_path, capsys):
    _workspace(tmp_path / "ws")
    args = ["export-voc", str(tmp_path / "ws"), "--out", str(tmp_path / "out")]
    assert main(args) == 0
    assert main(args) == 2
    assert "already holds a VOC2012 export" in capsys.readouterr().err
    assert main([*args, "--overwrite"]) == 0


def test_bad_inputs_are_clean_errors(tmp_path, capsys):
    assert main(["export-voc", str(tmp_path / "missing"), "--out", str(tmp_path / "o")]) == 2
    assert "not a folder" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["export-voc", str(tmp_path / "empty"), "--out", str(tmp_path / "o")]) == 2
    assert "nothing to export" in capsys.readouterr().err
    _workspace(tmp_path / "ws")
    assert main(["export-voc", str(tmp_path / "ws"), "--out", str(tmp_path / "o"),
                 "--val-fraction", "1.5"]) == 2
    assert "--val-fraction" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_damaged_item_aborts_without_leaving_a_tree(tmp_path, capsys):
    ws = _workspace(tmp_path / "ws")
    (ws.root / "x2.png").write_bytes(b"\x89PNG broken")
    assert main(["export-voc", str(tmp_path / "ws"), "--out", str(tmp_path / "o"),
                 "--include-predicted"]) == 2
    err = capsys.readouterr().err
    assert "x2.png" in err and "nothing was exported" in err
    assert not (tmp_path / "o").exists()


def test_every_frame_of_a_video_lands_in_the_same_split(tmp_path, capsys):
    import cv2

    root = tmp_path / "ws"
    root.mkdir()
    writer = cv2.VideoWriter(str(root / "clip.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 10.0,
                             (16, 12))
    for i in range(10):
        writer.write(np.full((12, 16, 3), 20 * i, np.uint8))
    writer.release()
    for i in range(6):
        Image.fromarray(np.full((12, 16, 3), 30 * i, np.uint8)).save(root / f"still{i}.png")
    ws = Workspace.open(root, classes=chest_xray())
    assert sum(it.frame is not None for it in ws.items) == 10
    for item in ws.items:
        ws.save_labels(item, np.ones((12, 16), np.uint8), status=ItemStatus.CORRECTED)
    ws.close()
    for seed in range(6):
        out = tmp_path / f"out{seed}"
        assert main(["export-voc", str(root), "--out", str(out), "--seed", str(seed),
                     "--val-fraction", "0.4"]) == 0
        val = {p[0] for p in read_voc(out, "val")}
        frames = {f"clip_{i:06d}" for i in range(10)}
        assert val & frames in (set(), frames), f"seed {seed}: the video was split"
        assert val
