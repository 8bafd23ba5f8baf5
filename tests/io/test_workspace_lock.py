"""The workspace file's lock and three-way merge: two workspaces opened on one folder (as two
segstudios would) never overwrite each other's changes, a class set changed on both sides is
refused, and a lock held elsewhere is a clear error after the timeout, never a hang."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import segstudio.io.workspace_lock as workspace_lock
import segstudio.io.workspace_merge as workspace_merge
from segstudio.core.classes import ClassSet
from segstudio.io.voc import write_voc
from segstudio.io.workspace import ItemStatus, Workspace, WorkspaceError

ROOT = Path(__file__).resolve().parents[2]
CLASSES = ClassSet(["background", "lung", "heart"], title="chest")


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "ws"
    root.mkdir()
    for name in ("a", "b", "c", "d"):
        Image.fromarray(np.full((6, 7, 3), 90, np.uint8)).save(root / f"{name}.png")
    Workspace.open(root, classes=CLASSES).save()
    return root


def _records(root: Path) -> dict:
    data = json.loads((root / Workspace.FILE_NAME).read_text(encoding="utf-8"))
    return {r["source"]: r for r in data["items"]}


def _names(root: Path) -> list[str]:
    data = json.loads((root / Workspace.FILE_NAME).read_text(encoding="utf-8"))
    return [c["name"] for c in data["classes"]["classes"]]


def test_an_unchanged_file_is_replaced_by_the_snapshot_without_a_merge(folder, monkeypatch):
    ws = Workspace.open(folder)
    ws.save_labels(ws.items[0], np.ones((6, 7), np.uint8), by="ana")

    def no_merge(*args):
        raise AssertionError("the file was unchanged: nothing to merge")

    monkeypatch.setattr(workspace_lock, "merge_workspace_data", no_merge)
    ws.set_status(ws.items[1], ItemStatus.REVIEWED, by="ana")
    text = (folder / Workspace.FILE_NAME).read_text(encoding="utf-8")
    assert json.loads(text) == json.loads(json.dumps(ws.to_dict()))
    assert set(_records(folder)) == {"a.png", "b.png"}


def test_items_and_statuses_another_process_added_are_kept(folder):
    mine = Workspace.open(folder)
    other = Workspace.open(folder)                  # a second segstudio, opened meanwhile
    other.save_labels(other.items[0], np.full((6, 7), 2, np.uint8), by="other")
    other.set_status(other.items[2], ItemStatus.REVIEWED, by="other")
    mine.save_labels(mine.items[1], np.ones((6, 7), np.uint8), by="mine")
    records = _records(folder)
    assert records["a.png"]["updated_by"] == "other" and records["a.png"]["status"] == "corrected"
    assert records["c.png"]["status"] == "reviewed"
    assert records["b.png"]["updated_by"] == "mine"
    # this workspace took the other's records in, so its next save keeps them too
    assert mine.items[0].status is ItemStatus.CORRECTED
    assert mine.items[2].status is ItemStatus.REVIEWED
    mine.set_status(mine.items[3], ItemStatus.REVIEWED, by="mine")
    assert set(_records(folder)) == {"a.png", "b.png", "c.png", "d.png"}


def test_the_records_of_files_not_here_now_that_another_process_wrote_are_kept(folder):
    mine = Workspace.open(folder)
    other = Workspace.open(folder)
    data = other.to_dict()
    data["items"].append({"source": "gone/e.png", "frame": None, "status": "corrected",
                          "updated": "2026-01-01T00:00:00+00:00", "updated_by": "other",
                          "label": "labels/gone/e.png"})
    other.write_file(data)
    mine.set_status(mine.items[0], ItemStatus.REVIEWED, by="mine")
    assert set(_records(folder)) == {"a.png", "gone/e.png"}
    mine.set_status(mine.items[1], ItemStatus.REVIEWED, by="mine")
    assert set(_records(folder)) == {"a.png", "b.png", "gone/e.png"}


def test_where_both_changed_one_record_the_later_change_wins(folder):
    mine = Workspace.open(folder)
    other = Workspace.open(folder)
    mine.items[0].status, mine.items[0].updated = ItemStatus.CORRECTED, "2026-03-01T10:00:00+00:00"
    other.items[0].status, other.items[0].updated = ItemStatus.REVIEWED, "2026-03-01T11:00:00+00:00"
    other.save()
    mine.save()                                    # older than the other's change: theirs stays
    assert _records(folder)["a.png"]["status"] == "reviewed"
    assert mine.items[0].status is ItemStatus.REVIEWED
    mine.set_status(mine.items[0], ItemStatus.CORRECTED, by="mine")   # theirs unchanged since
    assert _records(folder)["a.png"]["status"] == "corrected"


def test_both_adding_a_class_is_refused_and_nothing_is_written(folder):
    mine = Workspace.open(folder)
    other = Workspace.open(folder)
    other.classes = other.classes.with_class("cat")
    other.save()
    before = (folder / Workspace.FILE_NAME).read_bytes()
    mine.classes = mine.classes.with_class("dog")
    with pytest.raises(WorkspaceError, match=r"class set was changed by another segstudio.*"
                                             r"here: dog; there: cat"):
        mine.save()
    assert (folder / Workspace.FILE_NAME).read_bytes() == before
    assert not list(folder.glob(".*.part"))


def test_a_class_set_changed_on_one_side_only_is_taken_in(folder):
    mine = Workspace.open(folder)
    other = Workspace.open(folder)
    other.classes = other.classes.with_class("cat")
    other.save()
    mine.set_status(mine.items[0], ItemStatus.REVIEWED, by="mine")
    assert _names(folder) == ["background", "lung", "heart", "cat"]
    assert mine.classes.names == ("background", "lung", "heart", "cat")


def test_a_class_set_that_only_appends_to_the_other_wins(folder):
    mine = Workspace.open(folder)
    other = Workspace.open(folder)
    other.classes = other.classes.with_class("cat").with_class("dog")
    other.save()
    mine.classes = mine.classes.with_class("cat")
    mine.save()
    assert _names(folder) == ["background", "lung", "heart", "cat", "dog"]


def test_a_transaction_sees_the_class_another_process_added_and_numbers_after_it(folder):
    first = Workspace.open(folder)
    second = Workspace.open(folder)
    with first.transaction():
        first.classes = first.classes.with_class("cat")
        first.save_labels(first.items[0], np.full((6, 7), 3, np.uint8), by="first")
    with second.transaction():
        assert second.classes.names[-1] == "cat"
        second.classes = second.classes.with_class("dog")
        second.save_labels(second.items[1], np.full((6, 7), 4, np.uint8), by="second")
    again = Workspace.open(folder)
    assert again.classes.names[3:] == ("cat", "dog")
    assert again.classes[int(again.load_labels(again.items[0])[0, 0])].name == "cat"
    assert again.classes[int(again.load_labels(again.items[1])[0, 0])].name == "dog"


def test_the_merge_of_the_file_contents_alone():
    base = {"scan": "folder", "classes": CLASSES.to_dict(), "items": [
        {"source": "a.png", "frame": None, "status": "predicted", "updated": "2026-01-01"}]}
    ours = dict(base, items=base["items"] + [
        {"source": "b.png", "frame": None, "status": "corrected", "updated": "2026-01-02"}])
    theirs = dict(base, classes=CLASSES.with_class("cat").to_dict(), items=[
        {"source": "a.png", "frame": None, "status": "reviewed", "updated": "2026-01-03"},
        {"source": "v.mp4", "frame": 3, "status": "corrected", "updated": "2026-01-03"}])
    merged = workspace_merge.merge_workspace_data(base, ours, theirs)
    assert [(r["source"], r["status"]) for r in merged["items"]] == [
        ("a.png", "reviewed"), ("b.png", "corrected"), ("v.mp4", "corrected")]
    assert merged["classes"]["classes"][-1]["name"] == "cat"


def test_a_lock_held_elsewhere_is_a_clear_error_after_the_timeout(folder, monkeypatch):
    ws = Workspace.open(folder)
    before = (folder / Workspace.FILE_NAME).read_bytes()
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\n"
         "from pathlib import Path\n"
         "from segstudio.io.workspace_lock import workspace_lock\n"
         "with workspace_lock(Path(sys.argv[1])):\n"
         "    print('held', flush=True)\n"
         "    time.sleep(60)\n", str(folder / Workspace.FILE_NAME)],
        stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        assert holder.stdout.readline().strip() == "held"
        monkeypatch.setattr(workspace_lock, "LOCK_TIMEOUT_S", 0.5)
        start = time.monotonic()
        with pytest.raises(WorkspaceError, match=rf"segstudio-workspace.json in ws is being "
                                                 rf"changed by another segstudio \(pid "
                                                 rf"{holder.pid}\); try again"):
            ws.set_status(ws.items[0], ItemStatus.REVIEWED)
        assert time.monotonic() - start < 10
        with pytest.raises(WorkspaceError, match="another segstudio"):
            with Workspace.locked(folder):
                pass
        assert (folder / Workspace.FILE_NAME).read_bytes() == before
    finally:
        holder.kill()
        holder.wait()
    ws.set_status(ws.items[0], ItemStatus.REVIEWED)     # free again: the save goes through
    assert _records(folder)["a.png"]["status"] == "reviewed"


def test_the_lock_file_is_hidden_and_never_an_item_a_label_or_a_leftover(folder, tmp_path):
    ws = Workspace.open(folder)
    ws.save_labels(ws.items[0], np.ones((6, 7), np.uint8))
    lock = workspace_lock.lock_path(ws.file_path())
    owner = workspace_lock.owner_path(ws.file_path())
    assert lock.parent == folder and lock.name.startswith(".") and lock.is_file()
    assert owner.parent == folder and owner.name.startswith(".")
    assert ws.remove_stale_temporary_files() == 0 and lock.exists()
    again = Workspace.open(folder)
    assert [it.source.as_posix() for it in again.items] == ["a.png", "b.png", "c.png", "d.png"]
    assert all(again.label_path(it).parent.name == "labels" for it in again.items)
    out = write_voc(tmp_path / "out", again.samples(), again.classes, val_fraction=0.0)
    exported = [p.name for p in out.root.rglob("*")]
    assert not any(n.startswith(".segstudio") for n in exported)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")
def test_a_pipe_planted_as_the_lock_owner_note_never_holds_up_a_save(folder):
    note = workspace_lock.owner_path(folder / Workspace.FILE_NAME)
    note.unlink()
    os.mkfifo(note)
    ws = Workspace.open(folder)
    ws.set_status(ws.items[0], ItemStatus.REVIEWED)
    assert _records(folder)["a.png"]["status"] == "reviewed"


def test_changing_the_class_set_by_name_holds_the_lock_throughout(folder):
    import threading

    from segstudio.io.relabel import relabel_by_name

    ws = Workspace.open(folder)
    ws.save_labels(ws.items[0], np.full((6, 7), 2, np.uint8))
    refused = []

    def another_writer(done, total):
        def attempt():
            try:
                with workspace_lock.workspace_lock(ws.file_path(), timeout=0.2):
                    refused.append(False)
            except WorkspaceError:
                refused.append(True)
        thread = threading.Thread(target=attempt)
        thread.start()
        thread.join()

    relabel_by_name(ws, ClassSet(["background", "heart", "lung"], title="chest"),
                    progress=another_writer)
    assert refused == [True]
    assert (Workspace.open(folder).load_labels(ws.items[0]) == 1).all()


def test_two_snapshots_taken_before_the_first_is_written_land_in_order(folder):
    """A window changes its class set twice before its background writer writes the first
    change: the second snapshot's base predates the first write, yet the first write was its
    own. The second lands whole; it is not mistaken for a change on both sides."""
    ws = Workspace.open(folder)
    ws.classes = ws.classes.with_class("nodule")
    first = ws.snapshot()
    ws.classes = ClassSet(["background", "aeroplane", "bicycle"], title="other")
    second = ws.snapshot()
    ws.write_file(first)
    ws.write_file(second)
    assert Workspace.open(folder).classes.names == ("background", "aeroplane", "bicycle")


def test_a_snapshot_older_than_what_this_workspace_wrote_is_not_written_again(folder):
    ws = Workspace.open(folder)
    ws.classes = ws.classes.with_class("nodule")
    stale = ws.snapshot()
    ws.set_status(ws.items[0], ItemStatus.REVIEWED)        # written at once, after the snapshot
    assert ws.write_file(stale) is None
    again = Workspace.open(folder)
    assert again.items[0].status is ItemStatus.REVIEWED and "nodule" in again.classes.names
