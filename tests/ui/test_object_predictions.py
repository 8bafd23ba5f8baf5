"""An instance model's objects fill the object map beside the classes, and are stored."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from segstudio.io.workspace import ItemStatus
from segstudio.io.object_store import load_objects
from segstudio.models.engine import Prediction
from segstudio.train.synth_shapes import shapes_classes


@pytest.fixture
def shapes_window(window, qtbot, tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("one.png", "two.png"):
        Image.fromarray(np.full((40, 60, 3), 90, np.uint8)).save(folder / name)
    assert window.open_paths([folder], classes=shapes_classes())
    qtbot.waitUntil(lambda: window.doc is not None)
    return window


def _prediction(h=40, w=60):
    instances = np.zeros((h, w), np.uint16)
    instances[5:15, 5:20] = 1
    instances[20:35, 30:50] = 2
    labels = np.zeros((h, w), np.uint8)
    labels[instances == 1] = 1
    labels[instances == 2] = 2
    probs = np.stack([(labels == c).astype(np.float32) for c in range(4)])
    return Prediction(probs, labels, instances, "cpu", "fp32", True,
                      objects=[(1, 0.9), (2, 0.8)])


def test_a_prediction_fills_both_maps_saves_them_and_undoes_as_one_step(shapes_window):
    win = shapes_window
    win.models.apply(0, _prediction())
    doc = win.doc
    objects = doc.labels.objects
    assert objects is not None and objects.classes() == {1: 1, 2: 2}
    assert win.workspace.items[0].status is ItemStatus.PREDICTED
    stored = load_objects(win.workspace, win.workspace.items[0])
    assert np.array_equal(stored, objects.array)
    doc.labels.undo()
    assert not objects.has_objects() and not doc.labels.array.any()


def test_corrected_objects_are_not_replaced_by_a_later_prediction(shapes_window):
    win = shapes_window
    win.models.apply(0, _prediction())
    objects = win.doc.labels.objects
    objects.delete(2)
    assert win.save_document(win.doc)                       # corrected by hand
    again = _prediction()
    again.instances[again.instances == 1] = 0
    win.models.apply(0, again)
    assert objects.classes() == {1: 1}
    assert set(np.unique(load_objects(win.workspace, win.workspace.items[0]))) == {0, 1}
    assert win.workspace.items[0].status is ItemStatus.CORRECTED


def test_scores_and_statistics_count_objects(shapes_window, qtbot):
    from segstudio.ui.launchers import statistics_dialog

    win = shapes_window
    win.models.apply(0, _prediction())
    objects = win.doc.labels.objects
    line = win.objects.scores.label
    qtbot.waitUntil(lambda: line.isVisible(), timeout=5_000)
    assert "precision 100.0%" in line.text() and "recall 100.0%" in line.text()
    objects.delete(2)                                  # a false detection, by the corrector
    qtbot.waitUntil(lambda: "1 false" in line.text(), timeout=5_000)
    assert "precision 50.0%" in line.text() and "recall 100.0%" in line.text()
    assert win.save_document(win.doc)
    dialog = statistics_dialog(win)
    qtbot.addWidget(dialog)
    qtbot.waitUntil(lambda: dialog.result is not None, timeout=30_000)
    assert dialog.objects.per_item == {"one": 1} and dialog.objects.total == 1
    assert dialog.classes.item(1, 4).text() == "1" and dialog.classes.item(2, 4).text() == "0"
    assert dialog.items.item(0, 4).text() == "1"
    assert "1 object(s)" in dialog.summary.text()


def test_a_damaged_object_map_is_reported_and_never_deleted(shapes_window, qtbot):
    win = shapes_window
    win.models.apply(0, _prediction())
    root = win.workspace.root
    path = root / "objects" / "one.png"
    for damage in (b"not a png", None):
        if damage is None:                                 # readable, but of the wrong size
            Image.fromarray(np.zeros((5, 5), np.uint8)).save(path)
        else:
            path.write_bytes(damage)
        before = path.read_bytes()
        win.open_paths([root], classes=shapes_classes())
        assert win.doc is None or win.doc.item.id != "one"
        assert "one: " in win.statusBar().currentMessage(), win.statusBar().currentMessage()
        assert path.read_bytes() == before                 # still there, untouched


def test_score_the_workspace_counts_objects_of_corrected_items(shapes_window, qtbot):
    win = shapes_window
    win.models.apply(0, _prediction())
    from segstudio.io.object_store import save_objects

    ws = win.workspace                              # what the model worker keeps beside them
    pred = _prediction()
    ws.save_prediction(ws.items[0], pred.labels)
    save_objects(ws, ws.items[0], pred.instances.astype(np.uint8), predicted=True)
    win.doc.labels.objects.delete(2)                # a false detection, removed by hand
    assert win.save_document(win.doc)
    assert (ws.root / "predicted-objects" / "one.png").is_file()
    win.metrics.score_button.click()
    line = win.objects.scores.workspace_label
    qtbot.waitUntil(lambda: line.isVisible(), timeout=10_000)
    assert "1 item(s)" in line.text() and "precision 50.0%" in line.text()
