"""Objects on the canvas, through the real widgets: the issue's scenario from photos to export.

Open a folder of photos, run the bundled Mask R-CNN, fix one object's class, split a merged
pair, delete a false one, export, and ``SegmentationObject/`` holds exactly what the canvas
shows.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import Qt

from helpers import click, drag, press, release
from segstudio.core.objectmap import compact_ids
from segstudio.io.workspace import ItemStatus
from segstudio.train.synth import make_sample
from segstudio.train.synth_shapes import shapes_classes
from segstudio.ui.launchers import export_voc_dialog


def _centre(ids, k):
    ys, xs = np.nonzero(ids == k)
    inside = np.flatnonzero(ids[ys, xs] == k)
    i = inside[len(inside) // 2]                     # a pixel of the object, not just its box
    return float(xs[i]) + 0.5, float(ys[i]) + 0.5


@pytest.fixture
def photos(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    for i in (1, 2):
        Image.fromarray(make_sample("shapes", i, size=160, seed=7).image).save(
            folder / f"photo_{i}.png")
    return folder


def _run_mask_rcnn(window, qtbot):
    window.models.panel.precision_combo.setCurrentText("fp32")
    window.models.start()
    qtbot.waitUntil(lambda: window.models._catalog_loaded, timeout=120_000)
    qtbot.waitUntil(window.is_idle, timeout=60_000)
    panel = window.models.panel
    index = next(i for i, e in enumerate(panel.entries) if e.choice.arch == "maskrcnn"
                 and e.trained)
    panel.select_entry(index)
    assert window.models.run_current()
    qtbot.waitUntil(lambda: window.doc.prediction is not None and window.is_idle(),
                    timeout=180_000)


def test_fix_split_delete_and_export_what_the_canvas_shows(window, photos, qtbot, tmp_path):
    assert window.open_paths([photos], classes=shapes_classes())
    qtbot.waitUntil(lambda: window.doc is not None)
    _run_mask_rcnn(window, qtbot)
    doc = window.doc
    objects = doc.labels.objects
    assert objects is not None and len(objects.classes()) >= 4
    assert doc.item.status is ItemStatus.PREDICTED
    from segstudio.io.object_store import load_objects
    stored = load_objects(window.workspace, doc.item)
    assert np.array_equal(stored, objects.array)                  # written by the model worker
    assert np.array_equal(load_objects(window.workspace, doc.item, predicted=True), stored)
    canvas = window.canvas
    window.set_tool("Select object")

    # Fix one object's class: select it on the canvas, pick a class, give it that class.
    first = min(objects.classes())
    click(canvas, *_centre(objects.array, first))
    assert window.objects.selected == [first]
    assert f"object {first}" in window.statusBar().currentMessage()
    new_class = 3 if objects.class_of(first) != 3 else 1
    window.legend.select_class(new_class)
    qtbot.keyClick(window, Qt.Key.Key_K, Qt.KeyboardModifier.ShiftModifier)
    assert objects.class_of(first) == new_class
    assert (doc.labels.array[objects.array == first] == new_class).all()

    # A merged pair: two objects made one (Shift+click, Shift+M), then split along a line.
    a, b = sorted(k for k in objects.classes() if k != first)[:2]
    pixels_a, pixels_b = objects.array == a, objects.array == b
    click(canvas, *_centre(objects.array, a))
    press(canvas, *_centre(objects.array, b), Qt.KeyboardModifier.ShiftModifier)
    release(canvas, *_centre(objects.array, b))
    assert window.objects.selected == [a, b]
    qtbot.keyClick(window, Qt.Key.Key_M, Qt.KeyboardModifier.ShiftModifier)
    assert b not in objects.classes() and (objects.array[pixels_b] == a).all()
    window.set_tool("Split object")
    (xa, ya), (xb, yb) = (_centre(p.astype(np.uint8), 1) for p in (pixels_a, pixels_b))
    mx, my, dx, dy = (xa + xb) / 2, (ya + yb) / 2, xb - xa, yb - ya
    drag(canvas, [(mx - dy * 2, my + dx * 2), (mx + dy * 2, my - dx * 2)])   # across the join
    pieces = window.objects.selected
    assert len(pieces) >= 2 and a in pieces
    split = [set(np.unique(objects.array[p])) for p in (pixels_a, pixels_b)]
    assert split[0].isdisjoint(split[1])             # the two shapes are apart again

    # Delete a false one: the least confident detection, Delete on the selection.
    window.set_tool("Select object")
    scores = doc.prediction.objects
    false = min((k for k in objects.classes() if k <= len(scores) and k not in (first, a, b)),
                key=lambda k: scores[k - 1][1])
    click(canvas, *_centre(objects.array, false))
    qtbot.keyClick(window, Qt.Key.Key_Delete)
    assert false not in objects.classes()
    rows = window.objects.panel.rows()
    assert sorted(k for _, k, _ in rows) == sorted(objects.classes())
    assert {k: n for _, k, n in rows} == objects.counts()

    # Undo and redo take classes and objects back together.
    window.undo()
    assert false in objects.classes()
    window.redo()
    assert false not in objects.classes()

    window.discard_changes_on_close = False
    assert window.save_current()
    dialog = export_voc_dialog(window)
    qtbot.addWidget(dialog)
    dialog.out_edit.setText(str(tmp_path / "export"))
    dialog.val_spin.setValue(0.0)
    dialog.start()
    qtbot.waitUntil(lambda: dialog.task is None, timeout=60_000)
    assert dialog.result is not None and dialog.result.count == 1, dialog.message.text()
    voc = dialog.result.voc_dir
    exported = np.array(Image.open(voc / "SegmentationObject" / f"{doc.item.id}.png"))
    assert np.array_equal(exported, compact_ids(objects.array))
    assert np.array_equal(np.array(Image.open(voc / "SegmentationClass" / f"{doc.item.id}.png")),
                          doc.labels.array)
    # The command line exports the same objects as the window.
    from segstudio.cli import main

    assert main(["export-voc", str(window.workspace.root), "--out", str(tmp_path / "cli"),
                 "--val-fraction", "0"]) == 0
    cli = tmp_path / "cli" / "VOCdevkit" / "VOC2012"
    assert sorted(p.name for p in (cli / "SegmentationObject").iterdir()) == [f"{doc.item.id}.png"]
    assert np.array_equal(np.array(Image.open(cli / "SegmentationObject" / f"{doc.item.id}.png")),
                          exported)


def test_object_brush_paints_a_new_object_and_grows_it_eraser_shrinks_it(window, photos, qtbot):
    assert window.open_paths([photos], classes=shapes_classes())
    qtbot.waitUntil(lambda: window.doc is not None)
    window.legend.select_class(2)
    window.objects.clear_selection()
    window.set_tool("Object brush")
    window.tools["Object brush"].set_size(5)
    drag(window.canvas, [(20, 20), (40, 20)])
    objects = window.doc.labels.objects
    assert objects.classes() == {1: 2} and window.objects.selected == [1]
    shot = window.canvas.grab().toImage()                   # the selection is outlined
    yellow = sum(shot.pixelColor(x, y).getRgb()[:3] == (255, 230, 0)
                 for x in range(0, shot.width(), 2) for y in range(0, shot.height(), 2))
    assert yellow > 10
    size = objects.counts()[1]
    drag(window.canvas, [(20, 30), (40, 30)])             # the selected object grows
    assert objects.classes() == {1: 2} and objects.counts()[1] > size
    window.set_tool("Object eraser")
    drag(window.canvas, [(30, 15), (30, 35)])
    assert objects.at(30, 20) == 0 and window.doc.labels.at(30, 20) == 0
    window.set_tool("Object polygon")
    window.objects.clear_selection()
    for x, y in [(80, 80), (110, 80), (110, 110), (80, 110)]:
        click(window.canvas, x, y)
    window.tools["Object polygon"].close()
    assert objects.classes() == {1: 2, 2: 2}
    window.undo()                                           # the polygon, both maps at once
    assert objects.classes() == {1: 2} and window.doc.labels.at(95, 95) == 0
    assert window.save_current()
    from segstudio.io.object_store import load_objects
    assert np.array_equal(load_objects(window.workspace, window.doc.item), objects.array)


def test_object_actions_without_a_selection_only_say_what_to_do(window, photos, qtbot):
    assert window.open_paths([photos], classes=shapes_classes())
    qtbot.waitUntil(lambda: window.doc is not None)
    before = window.doc.labels.revision
    qtbot.keyClick(window, Qt.Key.Key_Delete)
    assert "Select an object first" in window.statusBar().currentMessage()
    qtbot.keyClick(window, Qt.Key.Key_M, Qt.KeyboardModifier.ShiftModifier)
    assert "Select two objects" in window.statusBar().currentMessage()
    assert window.doc.labels.revision == before and not window.doc.dirty
