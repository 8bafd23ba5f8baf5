"""A multi-frame DICOM (pydicom's own test files, never patient data) opens like a video: one
item per frame, each read on its own at full depth, labelled and saved apart; a workspace that
knew the file as one item keeps that item's labels on frame 0."""
from __future__ import annotations

import json
import shutil

import cv2
import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file

from segstudio.core.classes import chest_xray
from segstudio.io.workspace import ItemStatus, Workspace


def _dicom(name):
    path = get_testdata_file(name, download=False)
    if path is None:
        pytest.skip(f"pydicom does not ship {name} here")
    return path


def test_each_frame_is_an_item_read_on_its_own_and_labelled_apart(tmp_path):
    shutil.copy(_dicom("rtdose.dcm"), tmp_path / "dose.dcm")
    shutil.copy(_dicom("CT_small.dcm"), tmp_path / "ct.dcm")
    stored = pydicom.dcmread(tmp_path / "dose.dcm").pixel_array
    ws = Workspace.open(tmp_path, classes=chest_xray())
    ids = [it.id for it in ws.items]
    assert ids == ["ct"] + [f"dose_{k:06d}" for k in range(15)]
    assert [it.frame for it in ws.items] == [None, *range(15)]
    for item in ws.items[1:]:
        image = ws.read_image(item)
        np.testing.assert_array_equal(image.pixels, stored[item.frame].astype(np.float32))
        assert f"frame {item.frame + 1} of 15" in image.notes
    ws.save_labels(ws.items[3], np.full((10, 10), 1, np.uint8))
    ws.save_labels(ws.items[9], np.full((10, 10), 2, np.uint8))
    ws.close()
    again = Workspace.open(tmp_path)
    by_id = {it.id: it for it in again.items}
    assert (again.load_labels(by_id["dose_000002"]) == 1).all()
    assert (again.load_labels(by_id["dose_000008"]) == 2).all()
    assert by_id["dose_000002"].status is ItemStatus.CORRECTED
    assert again.load_labels(by_id["dose_000000"]) is None
    # the frames of one file share a split, like a video's
    groups = {s.id: s.group for s in again.samples()}
    assert groups == {"dose_000002": "dose.dcm", "dose_000008": "dose.dcm"}


def test_labels_of_a_multi_frame_dicom_known_as_one_item_move_to_its_first_frame(tmp_path):
    shutil.copy(_dicom("SC_rgb_rle_32bit_2frame.dcm"), tmp_path / "cine.dcm")
    (tmp_path / "labels").mkdir()
    from segstudio.io.voc import save_label_png

    save_label_png(tmp_path / "labels" / "cine.png", np.full((100, 100), 1, np.uint8),
                   chest_xray())
    record = {"source": "cine.dcm", "frame": None, "status": "reviewed", "updated": "2026-01-01",
              "updated_by": "ann", "label": "labels/cine.png"}
    (tmp_path / "segstudio-workspace.json").write_text(json.dumps(
        {"format": "segstudio-workspace", "version": 1, "scan": "folder",
         "classes": chest_xray().to_dict(), "items": [record]}), encoding="utf-8")
    ws = Workspace.open(tmp_path)
    first, second = ws.items
    assert (first.id, first.frame, second.frame) == ("cine_000000", 0, 1)
    assert first.status is ItemStatus.REVIEWED and first.updated_by == "ann"
    assert (ws.load_labels(first) == 1).all()
    assert second.status is ItemStatus.UNLABELLED and ws.load_labels(second) is None
    ws.save()
    saved = json.loads(ws.file_path().read_text())["items"]
    assert [(r["source"], r["frame"], r["label"]) for r in saved] == [
        ("cine.dcm", 0, "labels/cine.png")]


def test_overlay_video_counts_only_videos_not_dicom_frames(tmp_path):
    from segstudio.cli import main

    writer = cv2.VideoWriter(str(tmp_path / "clip.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 5.0,
                             (16, 8))
    for i in range(3):
        writer.write(np.full((8, 16, 3), 40 * i, np.uint8))
    writer.release()
    shutil.copy(_dicom("rtdose.dcm"), tmp_path / "dose.dcm")
    out = tmp_path / "out.mp4"
    assert main(["overlay-video", str(tmp_path), "--out", str(out)]) == 0
    assert out.is_file()
    assert main(["overlay-video", str(tmp_path), "--out", str(out), "--video", "dose.dcm"]) == 2
