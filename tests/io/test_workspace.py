"""Workspace: scanning, labels on disk, statuses that survive reopening, videos, export samples."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from PIL import Image

from segstudio.core.classes import chest_xray, voc21
from segstudio.io.workspace import Item, ItemStatus, Workspace, WorkspaceError
from segstudio.io import atomic


def _png(path, h=6, w=8, value=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((h, w, 3), value, np.uint8)).save(path)
    return path


@pytest.fixture
def folder(tmp_path):
    _png(tmp_path / "b.png", value=20)
    _png(tmp_path / "a.jpg", value=10)
    _png(tmp_path / "sub" / "c.png", value=30)
    (tmp_path / "notes.txt").write_text("not an image")
    _png(tmp_path / ".hidden" / "x.png")
    return tmp_path


def _labels(h=6, w=8, value=1):
    return np.full((h, w), value, np.uint8)


def test_open_scans_images_sorted_and_skips_hidden_and_other_files(folder):
    ws = Workspace.open(folder)
    assert [it.source.as_posix() for it in ws.items] == ["a.jpg", "b.png", "sub/c.png"]
    assert [it.id for it in ws.items] == ["a", "b", "c"]
    assert all(it.status is ItemStatus.UNLABELLED for it in ws.items)
    assert ws.classes == voc21()


def test_save_labels_writes_palette_png_and_status(folder):
    ws = Workspace.open(folder)
    item = ws.items[2]
    ws.save_labels(item, _labels(value=3), by="ana")
    path = ws.label_path(item)
    assert path == folder / "labels" / "sub" / "c.png"
    assert Image.open(path).mode == "P"
    np.testing.assert_array_equal(ws.load_labels(item), _labels(value=3))
    assert item.status is ItemStatus.CORRECTED and item.updated_by == "ana" and item.updated


def test_statuses_and_classes_survive_reopening(folder):
    ws = Workspace.open(folder, classes=chest_xray())
    ws.save_labels(ws.items[0], _labels(value=2), status=ItemStatus.PREDICTED, by="model fcn")
    ws.save_labels(ws.items[1], _labels(value=1), by="ana")
    ws.set_status(ws.items[1], ItemStatus.REVIEWED, by="ben")
    again = Workspace.open(folder)  # classes come from the file, not the default
    assert again.classes == chest_xray()
    assert [it.status for it in again.items] == [
        ItemStatus.PREDICTED, ItemStatus.REVIEWED, ItemStatus.UNLABELLED]
    assert again.items[1].updated_by == "ben" and again.items[0].updated_by == "model fcn"
    np.testing.assert_array_equal(again.load_labels(again.items[0]), _labels(value=2))
    assert again.load_labels(again.items[2]) is None


def test_workspace_file_is_documented_json(folder):
    ws = Workspace.open(folder)
    ws.save_labels(ws.items[0], _labels(), by="ana")
    data = json.loads((folder / Workspace.FILE_NAME).read_text())
    assert data["format"] == "segstudio-workspace" and data["version"] == 1
    assert data["classes"]["classes"][1]["name"] == "aeroplane"
    assert data["items"] == [{"source": "a.jpg", "frame": None, "status": "corrected",
                              "updated": ws.items[0].updated, "updated_by": "ana",
                              "label": "labels/a.png"}]


def test_atomic_save_keeps_the_old_workspace_file_when_writing_fails(folder, monkeypatch):
    ws = Workspace.open(folder)
    ws.save_labels(ws.items[0], _labels(), by="ana")
    before = (folder / Workspace.FILE_NAME).read_bytes()

    real_open = atomic.atomic_open

    def failing_write(path, data):
        with real_open(path) as f:
            f.write(data[: len(data) // 2])
            raise OSError(28, "No space left on device")

    monkeypatch.setattr(atomic, "atomic_write_bytes", failing_write)
    ws.items[1].status = ItemStatus.REVIEWED
    with pytest.raises(WorkspaceError, match="No space left"):
        ws.save()
    assert (folder / Workspace.FILE_NAME).read_bytes() == before
    assert not [p for p in folder.iterdir() if p.name.endswith(".part")]


def test_same_stem_with_other_suffix_gets_its_own_label_file(tmp_path):
    _png(tmp_path / "scan.png")
    _png(tmp_path / "scan.jpg")
    ws = Workspace.open(tmp_path)
    paths = {ws.label_path(it).name for it in ws.items}
    assert paths == {"scan.png", "scan_png.png"}
    for k, it in enumerate(ws.items):
        ws.save_labels(it, _labels(value=k + 1))
    again = Workspace.open(tmp_path)
    got = [int(again.load_labels(it)[0, 0]) for it in again.items]
    assert got == [1, 2]


def test_label_file_without_a_record_counts_as_corrected(folder):
    (folder / "labels").mkdir()
    Image.fromarray(_labels()).save(folder / "labels" / "b.png")
    ws = Workspace.open(folder)
    assert ws.items[1].status is ItemStatus.CORRECTED
    assert [it.id for it in ws.items] == ["a", "b", "c"]  # labels/ itself is never scanned


def test_labels_outside_the_class_set_are_refused(folder):
    ws = Workspace.open(folder, classes=chest_xray())
    with pytest.raises(WorkspaceError, match="label value 9 is not a class"):
        ws.save_labels(ws.items[0], _labels(value=9))
    ws.save_labels(ws.items[0], _labels(value=255))  # void is always allowed
    assert not (folder / "labels" / "b.png").exists()


def test_from_paths_uses_the_common_folder_and_remembers_its_files(folder):
    ws = Workspace.from_paths([folder / "sub" / "c.png", folder / "b.png"])
    assert ws.root == folder and ws.scan == "files"
    assert [it.source.as_posix() for it in ws.items] == ["b.png", "sub/c.png"]
    ws.save_labels(ws.items[0], _labels())
    again = Workspace.from_paths([folder / "b.png"])
    assert [it.source.as_posix() for it in again.items] == ["b.png", "sub/c.png"]
    assert again.items[0].status is ItemStatus.CORRECTED


def test_from_paths_keeps_records_of_the_rest_of_a_folder_workspace(folder):
    ws = Workspace.open(folder)
    ws.save_labels(ws.items[0], _labels(), by="ana")
    loose = Workspace.from_paths([folder / "b.png"])
    loose.save_labels(loose.items[0], _labels(value=2), by="ben")
    again = Workspace.open(folder)
    assert [it.updated_by for it in again.items] == ["ana", "ben", None]


def test_from_paths_rejects_unknown_files(folder):
    with pytest.raises(WorkspaceError, match="notes.txt: not an image or video"):
        Workspace.from_paths([folder / "notes.txt"])
    with pytest.raises(WorkspaceError, match="gone.png: does not exist"):
        Workspace.from_paths([folder / "gone.png"])


def test_damaged_or_newer_workspace_file_is_a_clear_error(folder):
    (folder / Workspace.FILE_NAME).write_text("{not json")
    with pytest.raises(WorkspaceError, match="damaged.*move it aside"):
        Workspace.open(folder)
    (folder / Workspace.FILE_NAME).write_text(json.dumps({"format": "segstudio-workspace",
                                                          "version": 99}))
    with pytest.raises(WorkspaceError, match="newer segstudio"):
        Workspace.open(folder)
    (folder / Workspace.FILE_NAME).write_text(json.dumps({
        "format": "segstudio-workspace", "version": 1,
        "items": [{"source": "../../etc/passwd", "frame": None}]}))
    with pytest.raises(WorkspaceError, match="item list is damaged"):
        Workspace.open(folder)


def test_recorded_label_path_outside_the_root_is_ignored(folder):
    (folder / Workspace.FILE_NAME).write_text(json.dumps({
        "format": "segstudio-workspace", "version": 1,
        "items": [{"source": "b.png", "frame": None, "status": "corrected",
                   "label": "../outside.png"}]}))
    ws = Workspace.open(folder)
    assert ws.label_path(ws.items[1]) == folder / "labels" / "b.png"


def test_not_a_folder_is_an_error(tmp_path):
    with pytest.raises(WorkspaceError, match="not a folder"):
        Workspace.open(tmp_path / "missing")


def _video(path, n=5):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 5.0, (16, 8))
    for i in range(n):
        writer.write(np.full((8, 16, 3), 40 * i, np.uint8))
    writer.release()


def test_video_becomes_one_item_per_frame(tmp_path):
    _video(tmp_path / "clip.avi")
    ws = Workspace.open(tmp_path)
    assert [it.id for it in ws.items] == [f"clip_{i:06d}" for i in range(5)]
    image = ws.read_image(ws.items[3])
    assert image.pixels.shape == (8, 16, 3) and abs(float(image.pixels.mean()) - 120) < 4
    assert image.notes == ["frame 4 of 5"]           # counted from 1 for people
    ws.save_labels(ws.items[3], np.ones((8, 16), np.uint8))
    assert ws.label_path(ws.items[3]).name == "clip_000003.png"
    samples = list(ws.samples())
    assert [s.id for s in samples] == ["clip_000003"]
    ws.close()


def test_broken_video_is_skipped_with_a_problem_message(tmp_path):
    (tmp_path / "bad.mp4").write_text("nope" * 100)
    _png(tmp_path / "a.png")
    ws = Workspace.open(tmp_path)
    assert [it.id for it in ws.items] == ["a"]
    assert ws.problems and ws.problems[0].startswith("bad.mp4: ")


def test_samples_yield_labelled_items_with_rgb_images(folder):
    ws = Workspace.open(folder)
    ws.save_labels(ws.items[1], _labels(value=4))
    ws.save_labels(ws.items[2], _labels(value=5), status=ItemStatus.PREDICTED)
    got = list(ws.samples())
    assert [s.id for s in got] == ["b", "c"]
    assert got[0].image.shape == (6, 8, 3) and got[0].image.dtype == np.uint8
    assert int(got[0].image[0, 0, 0]) == 20 and int(got[0].labels[0, 0]) == 4
    only_checked = list(ws.samples([ItemStatus.CORRECTED, ItemStatus.REVIEWED]))
    assert [s.id for s in only_checked] == ["b"]


def test_samples_report_labels_of_the_wrong_size(folder):
    ws = Workspace.open(folder)
    ws.save_labels(ws.items[0], np.zeros((3, 3), np.uint8))
    with pytest.raises(WorkspaceError, match=r"a: labels are 3×3 but the image is 8×6"):
        list(ws.samples())


def test_damaged_label_file_is_a_workspace_error(folder):
    ws = Workspace.open(folder)
    ws.label_path(ws.items[0]).parent.mkdir(parents=True, exist_ok=True)
    ws.label_path(ws.items[0]).write_text("garbage")
    with pytest.raises(WorkspaceError, match=r"^a: a\.png: "):
        ws.load_labels(ws.items[0])


def test_item_id_of_a_frame_is_padded():
    assert Item(source=__import__("pathlib").Path("v/run.mp4"), frame=12).id == "run_000012"
