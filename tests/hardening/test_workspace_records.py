"""A hostile or careless workspace file: whatever it records, saving an item writes only that
item's own label file inside ``labels/``; a damaged file is one clear error, not a traceback."""
import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from segstudio.cli import main
from segstudio.core.classes import ClassSet
from segstudio.io.workspace import Workspace, WorkspaceError
from segstudio.io.workspace_lock import lock_path, owner_path
from segstudio.io.voc import load_label_png

CLASSES = ClassSet(["bg", "fg", "edge"])


def _folder(root, names=("a.png", "b.png")):
    root.mkdir(exist_ok=True)
    for i, name in enumerate(names):
        Image.fromarray(np.full((6, 7, 3), 40 * i + 10, np.uint8)).save(root / name)
    return root


def _record(root, records):
    (root / Workspace.FILE_NAME).write_text(json.dumps({
        "format": "segstudio-workspace", "version": 1, "scan": "folder",
        "classes": CLASSES.to_dict(), "items": records}), encoding="utf-8")


def _snapshot(root):
    """Every file but labels and the hidden lock files that any save of the workspace makes."""
    lock = {f(root / Workspace.FILE_NAME) for f in (lock_path, owner_path)}
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and "labels" not in p.parts and p not in lock}


HOSTILE_LABELS = ["b.png", "./b.png", "segstudio-workspace.json", "labels/b.png",
                  "labels/a\x00.png", "labels/" + "z" * 300 + ".png", "labels/../b.png",
                  "labels/./b.png", "labels\\..\\b.png", "predictions/b.png"]


@pytest.mark.parametrize("label", HOSTILE_LABELS)
def test_a_hostile_label_record_never_makes_a_save_write_anything_but_the_items_own_file(
        tmp_path, label):
    root = _folder(tmp_path / "ws")
    _record(root, [{"source": "a.png", "frame": None, "status": "corrected", "label": label},
                   {"source": "b.png", "frame": None, "status": "corrected",
                    "label": "labels/b.png"}])
    sources = _snapshot(root)
    ws = Workspace.open(root)
    a, b = ws.items
    assert ws.label_path(a) == root / "labels" / "a.png"
    assert ws.label_path(b) == root / "labels" / "b.png"
    ws.save_labels(b, np.full((6, 7), 2, np.uint8))
    ws.save_labels(a, np.ones((6, 7), np.uint8))                 # Ctrl+S on item a
    ws.save_prediction(a, np.ones((6, 7), np.uint8))
    after = _snapshot(root)
    assert after.pop(Workspace.FILE_NAME) != sources.pop(Workspace.FILE_NAME)
    after.pop("predictions/a.png")
    assert after == sources                                      # the images are untouched
    assert sorted(p.name for p in (root / "labels").iterdir()) == ["a.png", "b.png"]
    again = Workspace.open(root)                                 # the file is valid JSON
    assert (again.load_labels(again.items[0]) == 1).all()
    assert (again.load_labels(again.items[1]) == 2).all()
    assert [r["label"] for r in json.loads(ws.file_path().read_text())["items"]] == [
        "labels/a.png", "labels/b.png"]


def test_a_label_recorded_at_an_older_path_inside_labels_is_still_read_and_written(tmp_path):
    root = _folder(tmp_path / "ws")
    old = root / "labels" / "2024" / "a-mask.png"
    old.parent.mkdir(parents=True)
    Image.fromarray(np.full((6, 7), 2, np.uint8), mode="L").save(old)
    _record(root, [{"source": "a.png", "frame": None, "status": "corrected",
                    "label": "labels/2024/a-mask.png"}])
    ws = Workspace.open(root)
    assert (ws.load_labels(ws.items[0]) == 2).all()
    ws.save_labels(ws.items[0], np.ones((6, 7), np.uint8))
    assert (load_label_png(old) == 1).all()
    assert not (root / "labels" / "a.png").exists()


def test_a_three_hundred_character_label_record_exports(tmp_path, capsys):
    root = _folder(tmp_path / "ws")
    ws = Workspace.open(root, classes=CLASSES)
    ws.save_labels(ws.items[1], np.ones((6, 7), np.uint8))      # labels/ exists
    data = ws.to_dict()
    data["items"].append({"source": "a.png", "frame": None, "status": "corrected",
                          "label": "labels/" + "q" * 300 + ".png"})
    ws.write_file(data)
    assert main(["export-voc", str(root), "--out", str(tmp_path / "out")]) == 0
    assert "wrote 1 items" in capsys.readouterr().out


def test_long_file_names_save_and_export(tmp_path, capsys):
    names = ("y" * 245 + ".png", "y" * 245 + ".jpg")            # same stem, longest names
    root = _folder(tmp_path / "ws", names)
    ws = Workspace.open(root, classes=CLASSES)
    for i, item in enumerate(ws.items):
        ws.save_labels(item, np.full((6, 7), i + 1, np.uint8))
    assert len({ws.label_path(it) for it in ws.items}) == 2
    again = Workspace.open(root)
    assert [int(again.load_labels(it)[0, 0]) for it in again.items] == [1, 2]
    assert main(["export-voc", str(root), "--out", str(tmp_path / "out")]) == 0
    assert "wrote 2 items" in capsys.readouterr().out


@pytest.mark.parametrize("folder", ["labels", "predictions"])
def test_a_labels_folder_linked_outside_the_workspace_is_never_written(tmp_path, folder):
    root = _folder(tmp_path / "ws")
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (root / folder).symlink_to(outside, target_is_directory=True)
    ws = Workspace.open(root, classes=CLASSES)
    with pytest.raises(WorkspaceError, match=f"a: {folder}/ is a link .*neither reads nor writes"):
        if folder == "labels":
            ws.save_labels(ws.items[0], np.ones((6, 7), np.uint8))
        else:
            ws.save_prediction(ws.items[0], np.ones((6, 7), np.uint8))
    assert list(outside.iterdir()) == []


def test_export_through_a_linked_labels_folder_is_one_clear_line(tmp_path, capsys):
    root = _folder(tmp_path / "ws")
    Workspace.open(root, classes=CLASSES).save_labels(
        Workspace.open(root).items[0], np.ones((6, 7), np.uint8))
    (root / "labels").rename(tmp_path / "moved")
    (root / "labels").symlink_to(tmp_path / "moved", target_is_directory=True)
    assert main(["export-voc", str(root), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("segstudio export-voc: error: a: labels/ is a link")


DAMAGED = {
    "nested 100k deep": '{"format": "segstudio-workspace", "version": 1, "items": '
                        + "[" * 100_000 + "]" * 100_000 + "}",
    "nested 200 deep": '{"format": "segstudio-workspace", "version": 1, "x": '
                       + "[" * 200 + "]" * 200 + "}",
    "5,000-digit integer": '{"format": "segstudio-workspace", "version": 1, "items": '
                           '[{"source": "a.png", "frame": ' + "9" * 5000 + "}]}",
    "5,000-digit version": '{"format": "segstudio-workspace", "version": ' + "9" * 5000 + "}",
    "4,000-digit version": '{"format": "segstudio-workspace", "version": ' + "9" * 4000 + "}",
    "version as a string": '{"format": "segstudio-workspace", "version": "1"}',
    "version true": '{"format": "segstudio-workspace", "version": true}',
    "version Infinity": '{"format": "segstudio-workspace", "version": Infinity}',
    "version 0": '{"format": "segstudio-workspace", "version": 0}',
    "not UTF-8": b'{"format": "segstudio-workspace", "version": 1, "x": "\xff"}',
}


@pytest.mark.parametrize("case", sorted(DAMAGED))
def test_a_damaged_workspace_file_is_one_clear_line(tmp_path, capsys, case):
    root = _folder(tmp_path / "ws")
    text = DAMAGED[case]
    path = root / Workspace.FILE_NAME
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(WorkspaceError) as caught:
        Workspace.open(root)
    message = str(caught.value)
    assert message.startswith(f"{Workspace.FILE_NAME}: the workspace file is damaged (")
    assert "\n" not in message and len(message) < 400 and "newer" not in message
    assert main(["export-voc", str(root), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_a_damaged_workspace_file_is_a_dialog_in_the_window(window, tmp_path, capfd):
    root = _folder(tmp_path / "ws")
    (root / Workspace.FILE_NAME).write_text('{"format": "segstudio-workspace", "version": "1"}')
    assert not window.open_paths([root])
    assert "format version must be a whole number" in window.statusBar().currentMessage()
    assert "Traceback" not in capfd.readouterr().err


def test_a_newer_version_still_says_so(tmp_path):
    root = _folder(tmp_path / "ws")
    (root / Workspace.FILE_NAME).write_text('{"format": "segstudio-workspace", "version": 2}')
    with pytest.raises(WorkspaceError, match=r"newer segstudio \(format version 2\)"):
        Workspace.open(root)


def test_the_command_line_refuses_a_damaged_file_without_a_traceback(tmp_path):
    root = _folder(tmp_path / "ws")
    (root / Workspace.FILE_NAME).write_text(DAMAGED["nested 100k deep"])
    proc = subprocess.run([sys.executable, "-m", "segstudio", "export-voc", str(root), "--out",
                           str(tmp_path / "out")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip() == ("segstudio export-voc: error: segstudio-workspace.json: the "
                                   "workspace file is damaged (its brackets are nested too "
                                   "deeply); repair it or move it aside to start the workspace "
                                   "afresh")


@pytest.mark.parametrize("label", ["b.png", "./b.png", "segstudio-workspace.json"])
def test_ctrl_s_in_the_window_writes_only_the_items_own_label_file(window, qtbot, tmp_path,
                                                                   label):
    from PySide6.QtCore import Qt

    from tests.ui.helpers import drag

    root = _folder(tmp_path / "ws")
    _record(root, [{"source": "a.png", "frame": None, "status": "corrected", "label": label}])
    sources = _snapshot(root)
    assert window.open_paths([root])
    window.legend.select_class(1)
    drag(window.canvas, [(1, 1), (5, 4)])
    qtbot.keyClick(window.canvas, Qt.Key.Key_S, Qt.KeyboardModifier.ControlModifier)
    assert not window.doc.dirty
    window.ws_writer.flush()
    after = _snapshot(root)
    assert after.pop(Workspace.FILE_NAME) != sources.pop(Workspace.FILE_NAME)
    assert after == sources
    labels = load_label_png(root / "labels" / "a.png")
    np.testing.assert_array_equal(labels, window.doc.labels.array)
    assert Workspace.open(root).items[0].label == "labels/a.png"


@pytest.mark.skipif(sys.platform != "linux", reason="file names are bytes only on Linux")
def test_a_file_name_that_is_not_utf8_saves_and_reopens(tmp_path):
    import os

    root = tmp_path / "ws"
    root.mkdir()
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(os.fsencode(root) + b"/caf\xe9.png")
    ws = Workspace.open(root, classes=CLASSES)
    ws.save_labels(ws.items[0], np.ones((4, 4), np.uint8))
    assert os.listdir(os.fsencode(root / "labels")) == [b"caf\xe9.png"]
    again = Workspace.open(root)
    assert again.items[0].status.value == "corrected"
    assert (again.load_labels(again.items[0]) == 1).all()
