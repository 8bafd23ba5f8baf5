"""Object maps in the workspace: where they go, when they are written, what the export holds."""

from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image

from segstudio.core.classes import voc21
from segstudio.io.workspace import ItemStatus, Workspace, WorkspaceError
from segstudio.io.object_store import load_objects, object_path, save_objects
from segstudio.io.voc import write_voc


@pytest.fixture
def ws(tmp_path):
    (tmp_path / "sub").mkdir()
    for name in ("a.png", "sub/b.png"):
        Image.fromarray(np.zeros((12, 16, 3), np.uint8)).save(tmp_path / name)
    return Workspace.open(tmp_path, classes=voc21())


def _maps():
    labels = np.zeros((12, 16), np.uint8)
    ids = np.zeros((12, 16), np.uint8)
    labels[1:4, 1:4], ids[1:4, 1:4] = 15, 4          # a person with id 4: a gap before it
    labels[6:10, 6:12], ids[6:10, 6:12] = 12, 9
    return labels, ids


def test_objects_are_stored_beside_labels_and_read_back(ws):
    item = ws.items[1]
    labels, ids = _maps()
    save_objects(ws, item, ids)
    ws.save_labels(item, labels)
    path = object_path(ws, item)
    assert path == ws.root / "objects" / "sub" / "b.png"
    assert Image.open(path).mode == "P"
    again = Workspace.open(ws.root)
    assert np.array_equal(load_objects(again, again.items[1]), ids)
    assert [i.id for i in again.items] == ["a", "b"]          # objects/ is never scanned


def test_items_without_objects_have_no_file_and_a_stale_one_goes(ws):
    item = ws.items[0]
    save_objects(ws, item, np.zeros((12, 16), np.uint8))
    assert not (ws.root / "objects").exists()
    save_objects(ws, item, _maps()[1])
    assert object_path(ws, item).is_file()
    save_objects(ws, item, np.zeros((12, 16), np.uint8))
    assert not object_path(ws, item).exists() and load_objects(ws, item) is None


def test_the_object_path_ignores_the_workspace_file_and_refuses_links(ws, tmp_path):
    item = ws.items[0]
    item.label = "labels/a.png"
    outside = tmp_path.parent / f"{tmp_path.name}-elsewhere"
    outside.mkdir()
    os.symlink(outside, ws.root / "objects")
    with pytest.raises(WorkspaceError, match="link"):
        save_objects(ws, item, _maps()[1])
    assert not any(outside.iterdir())


def test_export_writes_segmentation_object_with_compact_ids(ws, tmp_path):
    item = ws.items[0]
    labels, ids = _maps()
    save_objects(ws, item, ids)
    ws.save_labels(item, labels, status=ItemStatus.CORRECTED)
    ws.save_labels(ws.items[1], labels, status=ItemStatus.CORRECTED)   # no objects
    result = write_voc(tmp_path / "out", ws.samples(), ws.classes, val_fraction=0.0)
    objects = result.voc_dir / "SegmentationObject"
    assert sorted(p.name for p in objects.iterdir()) == ["a.png"]
    got = np.array(Image.open(objects / "a.png"))
    assert got[2, 2] == 1 and got[7, 7] == 2 and got[0, 0] == 0


def test_voc_import_reads_segmentation_object_and_labelme_group_ids(ws, tmp_path):
    import json

    from segstudio.io.labels import import_labelme_folder, import_voc_tree

    labels, ids = _maps()
    src = Workspace.open(ws.root)
    save_objects(src, src.items[0], ids)
    src.save_labels(src.items[0], labels)
    tree = write_voc(tmp_path / "voc", src.samples(), src.classes, val_fraction=0.0)
    save_objects(ws, ws.items[0], None)
    ws.save_labels(ws.items[0], np.zeros((12, 16), np.uint8))
    report = import_voc_tree(tree.root, ws, replace=True)        # a's labels were corrected
    assert report.imported == ["a"] and not report.problems
    got = load_objects(ws, ws.items[0])
    assert got[2, 2] == 1 and got[7, 7] == 2 and got[0, 0] == 0

    folder = tmp_path / "lm"
    folder.mkdir()
    def square(x0, y0, label, group):
        return {"label": label, "group_id": group, "shape_type": "polygon",
                "points": [[x0, y0], [x0 + 2, y0], [x0 + 2, y0 + 2], [x0, y0 + 2]]}
    (folder / "b.json").write_text(json.dumps({
        "shapes": [square(1, 1, "cat", 7), square(5, 1, "cat", 7), square(9, 1, "cat", None),
                   square(1, 6, "dog", 7)],
        "imageHeight": 12, "imageWidth": 16}))
    report = import_labelme_folder(folder, ws)
    assert report.imported == ["b"], report.problems
    got = load_objects(ws, ws.items[1])
    assert got[2, 2] == got[2, 6] == 1                  # one cat in two parts (group 7)
    assert got[2, 10] == 2 and got[7, 2] == 3           # an ungrouped cat; the dog of group 7
    (folder / "b.json").write_text(json.dumps({"shapes": [square(1, 1, "cat", None)],
                                               "imageHeight": 12, "imageWidth": 16}))
    import_labelme_folder(folder, ws, replace=True)
    assert load_objects(ws, ws.items[1]) is None        # no group ids: classes only


def test_import_labels_command(ws, tmp_path_factory, capsys):
    from segstudio.cli import main

    labels, ids = _maps()
    src = Workspace.open(ws.root)
    save_objects(src, src.items[0], ids)
    src.save_labels(src.items[0], labels)
    tmp_path = tmp_path_factory.mktemp("elsewhere")       # outside the workspace
    tree = write_voc(tmp_path / "voc", src.samples(), src.classes, val_fraction=0.0)
    save_objects(ws, ws.items[0], None)
    assert main(["import-labels", str(ws.root), str(tree.root)]) == 0
    assert "kept 1 item(s) a person corrected or reviewed: a" in capsys.readouterr().out
    assert main(["import-labels", str(ws.root), str(tree.root), "--replace"]) == 0
    out = capsys.readouterr().out
    assert "imported the labels of 1 item(s)" in out and "Pascal VOC" in out
    assert load_objects(Workspace.open(ws.root), ws.items[0])[7, 7] == 2
    (tmp_path / "stray").mkdir()
    Image.fromarray(np.zeros((3, 3), np.uint8)).save(tmp_path / "stray" / "zzz.png")
    assert main(["import-labels", str(ws.root), str(tmp_path / "stray")]) == 2
    captured = capsys.readouterr()
    assert "zzz.png" in captured.out and "nothing was imported" in captured.err
    assert main(["import-labels", str(ws.root), str(tmp_path / "missing")]) == 2
    assert "Traceback" not in capsys.readouterr().err
