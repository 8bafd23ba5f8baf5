"""Two segstudios writing one workspace at once: two real ``segstudio import-labels`` processes,
each bringing a new class, and the window saving while a command imports. Every writer takes
the workspace lock and merges, so no class, status or item record is lost and no label comes to
mean another class."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from segstudio.core.classes import voc21
from segstudio.io.workspace import ItemStatus, Workspace

ROOT = Path(__file__).resolve().parents[2]
ITEMS = 40
ROUNDS = 3


def _workspace(root: Path) -> Path:
    """40 tiny images and a workspace file with VOC's 21 classes (a new class gets index 21)."""
    root.mkdir(parents=True)
    for i in range(ITEMS):
        Image.fromarray(np.full((8, 10, 3), 40 + i, np.uint8)).save(root / f"img{i:02d}.png")
    Workspace.open(root, classes=voc21()).save()
    return root


def _labelme_folder(folder: Path, ids: range, label: str) -> Path:
    """labelme files that paint a square of the class ``label`` on each of ``ids``."""
    folder.mkdir(parents=True)
    for i in ids:
        (folder / f"img{i:02d}.json").write_text(json.dumps({
            "version": "5.4.1", "imagePath": f"img{i:02d}.png", "imageHeight": 8,
            "imageWidth": 10, "imageData": None,
            "shapes": [{"label": label, "points": [[2, 2], [7, 2], [7, 5], [2, 5]],
                        "shape_type": "polygon"}]}))
    return folder


def _import(root: Path, source: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "segstudio", "import-labels", str(root),
                             str(source)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})


def _finish(proc: subprocess.Popen) -> str:
    out, err = proc.communicate(timeout=180)
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    return out


def _meaning(ws: Workspace, item) -> set[str]:
    """The class names the item's saved labels use, background left out."""
    labels = ws.load_labels(item)
    assert labels is not None, item.id
    return {ws.classes[int(v)].name for v in np.unique(labels) if v not in (0, 255)}


@pytest.mark.slow
def test_two_imports_at_once_keep_both_classes_and_every_label_meaning(tmp_path):
    for round_ in range(ROUNDS):
        root = _workspace(tmp_path / f"round{round_}" / "ws")
        lynxes = _labelme_folder(tmp_path / f"round{round_}" / "lynxes", range(ITEMS // 2),
                                 "lynx")
        otters = _labelme_folder(tmp_path / f"round{round_}" / "otters",
                                 range(ITEMS // 2, ITEMS), "otter")
        first, second = _import(root, lynxes), _import(root, otters)
        outputs = _finish(first) + _finish(second)
        assert outputs.count("imported the labels of 20 item(s)") == 2
        ws = Workspace.open(root)
        names = ws.classes.names
        assert names[:21] == voc21().names
        assert sorted(names[21:]) == ["lynx", "otter"], f"round {round_}: classes {names[21:]}"
        for item in ws.items:
            expected = "lynx" if int(item.id[3:]) < ITEMS // 2 else "otter"
            assert _meaning(ws, item) == {expected}, f"round {round_}: {item.id}"
            assert item.status is ItemStatus.CORRECTED and item.updated_by == "import"


@pytest.mark.slow
def test_the_window_saving_while_a_command_imports_keeps_both(window, qtbot, tmp_path):
    root = _workspace(tmp_path / "ws")
    lynxes = _labelme_folder(tmp_path / "lynxes", range(0, ITEMS, 2), "lynx")
    assert window.open_paths([root])
    ws = window.workspace
    window.show_row(1)
    window.doc.labels.paint_mask(np.ones((8, 10), bool), 20)        # an edit, saved
    assert window.save_document(window.doc)
    proc = _import(root, lynxes)
    reviewed = []
    for row in range(3, ITEMS, 4):                                  # saves while it imports
        if proc.poll() is not None and len(reviewed) >= 2:
            break
        ws.set_status(ws.items[row], ItemStatus.REVIEWED, by="window")
        reviewed.append(row)
        qtbot.wait(150)
    _finish(proc)
    ws.set_status(ws.items[ITEMS - 1], ItemStatus.REVIEWED, by="window")   # once it is done
    reviewed.append(ITEMS - 1)
    assert window.ws_writer.flush()
    qtbot.waitUntil(lambda: "lynx" in window.classes.names, timeout=10000)
    assert window.legend.classes == window.classes == ws.classes

    data = json.loads((root / Workspace.FILE_NAME).read_text(encoding="utf-8"))
    records = {r["source"]: r for r in data["items"]}
    assert [c["name"] for c in data["classes"]["classes"]][21:] == ["lynx"]
    assert records["img01.png"]["status"] == "corrected"                    # the window's edit
    for row in reviewed:
        assert records[f"img{row:02d}.png"]["status"] == "reviewed", row
    for i in range(0, ITEMS, 2):                                            # the command's
        assert records[f"img{i:02d}.png"]["updated_by"] == "import", i
    again = Workspace.open(root)
    assert _meaning(again, again.items[1]) == {"tvmonitor"}
    assert all(_meaning(again, again.items[i]) == {"lynx"} for i in range(0, ITEMS, 2))


def test_a_class_set_changed_by_both_is_reported_by_the_window_and_nothing_written(
        window, qtbot, tmp_path):
    root = _workspace(tmp_path / "ws")
    assert window.open_paths([root])
    other = Workspace.open(root)                       # another segstudio, meanwhile
    other.classes = other.classes.with_class("otter")
    other.save()
    before = (root / Workspace.FILE_NAME).read_bytes()
    with qtbot.waitSignal(window.ws_writer.failed, timeout=10000) as failed:
        window.set_classes(window.classes.with_class("lynx"))
    assert "changed by another segstudio" in failed.args[0]
    assert "here: lynx; there: otter" in failed.args[0]
    window.ws_writer.flush()
    assert (root / Workspace.FILE_NAME).read_bytes() == before


@pytest.mark.slow
def test_a_lock_held_too_long_is_reported_by_the_window_not_a_hang(window, qtbot, tmp_path,
                                                                    monkeypatch):
    import segstudio.io.workspace_lock as workspace_lock

    root = _workspace(tmp_path / "ws")
    assert window.open_paths([root])
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\n"
         "from pathlib import Path\n"
         "from segstudio.io.workspace_lock import workspace_lock\n"
         "with workspace_lock(Path(sys.argv[1])):\n"
         "    print('held', flush=True)\n"
         "    time.sleep(60)\n", str(root / Workspace.FILE_NAME)],
        stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        assert holder.stdout.readline().strip() == "held"
        monkeypatch.setattr(workspace_lock, "LOCK_TIMEOUT_S", 0.5)
        with qtbot.waitSignal(window.ws_writer.failed, timeout=10000) as failed:
            window.workspace.set_status(window.workspace.items[0], ItemStatus.REVIEWED)
        assert f"being changed by another segstudio (pid {holder.pid}); try again" in \
            failed.args[0]
    finally:
        holder.kill()
        holder.wait()
    window.workspace.set_status(window.workspace.items[0], ItemStatus.REVIEWED)
    assert window.ws_writer.flush()
    records = json.loads((root / Workspace.FILE_NAME).read_text(encoding="utf-8"))["items"]
    assert [r["status"] for r in records if r["source"] == "img00.png"] == ["reviewed"]


def test_restoring_an_autosave_keeps_what_another_segstudio_wrote_meanwhile(
        window, image_folder, qtbot, monkeypatch):
    from segstudio.io import recovery
    from segstudio.paths import user_data_dir
    from segstudio.ui.background.autosave import restore_session
    from tests.ui.helpers import drag

    assert window.open_paths([image_folder])
    window.legend.select_class(1)
    drag(window.canvas, [(10, 10), (40, 10)])
    assert window.autosave.flush() == 1 and window.autosave.wait()
    monkeypatch.setattr(recovery, "_alive", lambda pid: False)     # as if this one had crashed
    session = recovery.orphans(user_data_dir() / "recovery")[0]
    load = recovery.RecoveredItem.load

    def load_while_another_writes(item):
        other = Workspace.open(image_folder)                      # between reading and saving
        other.classes = other.classes.with_class("otter")
        other.set_status(other.items[2], ItemStatus.REVIEWED, by="other")
        return load(item)

    monkeypatch.setattr(recovery.RecoveredItem, "load", load_while_another_writes)
    assert restore_session(window, session) == 1
    data = json.loads((image_folder / Workspace.FILE_NAME).read_text(encoding="utf-8"))
    records = {r["source"]: r for r in data["items"]}
    assert records["c_deep.png"]["updated_by"] == "other"
    assert records["a_gradient.png"]["updated_by"] == "recovered autosave"
    assert data["classes"]["classes"][-1]["name"] == "otter"
