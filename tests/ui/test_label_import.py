import json

import numpy as np

from segstudio.core.classes import chest_xray
from segstudio.io.voc import save_label_png
from segstudio.ui.dialogs.label_import import import_labels


def _run(window, qtbot, kind, folder):
    task = import_labels(window, kind, folder)
    assert task is not None
    qtbot.waitUntil(lambda: task.result is not None or task.isFinished(), timeout=30_000)
    qtbot.waitUntil(window.is_idle, timeout=30_000)
    return task.result


def test_importing_a_label_png_folder_shows_the_labels(window, image_folder, qtbot, tmp_path):
    window.open_paths([image_folder])
    labels = np.zeros((120, 160), np.uint8)
    labels[20:40, 30:90] = 2
    src = tmp_path / "old-labels"
    src.mkdir()
    save_label_png(src / "a_gradient.png", labels, chest_xray())
    save_label_png(src / "unknown_item.png", labels, chest_xray())
    save_label_png(src / "b_picture.png", np.zeros((5, 5), np.uint8), chest_xray())   # wrong size
    report = _run(window, qtbot, "png", src)
    assert report.imported == ["a_gradient"] and report.unmatched == ["unknown_item.png"]
    assert any("b_picture" in p for p in report.problems)
    np.testing.assert_array_equal(window.doc.labels.array, labels)
    assert "Imported the labels of 1 item" in window.statusBar().currentMessage()


def test_labelme_json_polygons_become_labels_and_new_classes(window, image_folder, qtbot, tmp_path):
    window.open_paths([image_folder])
    src = tmp_path / "labelme"
    src.mkdir()
    shape = {"label": "nodule", "points": [[10, 10], [50, 10], [50, 40], [10, 40]],
             "shape_type": "polygon"}
    (src / "a_gradient.json").write_text(json.dumps(
        {"shapes": [shape], "imageHeight": 120, "imageWidth": 160, "imagePath": "a_gradient.png"}))
    report = _run(window, qtbot, "labelme", src)
    assert report.new_classes == ["nodule"]
    assert window.classes.names[-1] == "nodule"
    idx = window.classes.index_of("nodule")
    assert (window.doc.labels.array[15:35, 15:45] == idx).all()


def test_a_voc_tree_brings_its_objects_onto_the_canvas(window, image_folder, qtbot, tmp_path):
    from segstudio.io.voc import VocSample, write_voc

    window.open_paths([image_folder])
    labels = np.zeros((120, 160), np.uint8)
    ids = np.zeros((120, 160), np.uint8)
    labels[10:40, 10:50], ids[10:40, 10:50] = 1, 1
    labels[60:90, 70:120], ids[60:90, 70:120] = 1, 2
    rgb = np.zeros((120, 160, 3), np.uint8)
    tree = write_voc(tmp_path / "voc", [VocSample("a_gradient", rgb, labels, instances=ids)],
                     window.classes, val_fraction=0.0)
    report = _run(window, qtbot, "voc", tree.root)
    assert report.imported == ["a_gradient"] and not report.problems
    qtbot.waitUntil(lambda: window.doc is not None and window.doc.labels.objects is not None)
    objects = window.doc.labels.objects
    assert objects.classes() == {1: 1, 2: 1} and objects.counts() == {1: 1200, 2: 1500}
    qtbot.waitUntil(lambda: len(window.objects.panel.rows()) == 2, timeout=5_000)


# -- items a person corrected or reviewed ---------------------------------------------------------
def _answer(choice: str, seen: list[str], boxes: int) -> None:
    """Click ``choice`` in the first message box that opens and close the ones after it (the
    summary), recording each box's text, until ``boxes`` were seen."""
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication, QMessageBox

    handled = []

    def poll() -> None:
        box = QApplication.activeModalWidget()
        if isinstance(box, QMessageBox) and box.isVisible() and box not in handled:
            handled.append(box)
            seen.append(box.text())
            button = next((b for b in box.buttons() if b.text().replace("&", "") == choice),
                          None)
            if len(seen) == 1 and button is not None:
                button.click()
            else:
                box.done(0)
        if len(seen) < boxes:
            QTimer.singleShot(20, poll)

    QTimer.singleShot(0, poll)


def _reviewed_workspace(image_folder, tmp_path):
    """a_gradient reviewed by a person; a source with other labels for it and for b_picture."""
    from segstudio.io.workspace import ItemStatus, Workspace

    ws = Workspace.open(image_folder, classes=chest_xray())
    person = np.zeros((120, 160), np.uint8)
    person[60:100, 20:60] = 1
    ws.save_labels(ws.items[0], person, status=ItemStatus.REVIEWED, by="hand")
    src = tmp_path / "other-labels"
    src.mkdir()
    imported = np.zeros((120, 160), np.uint8)
    imported[5:25, 100:150] = 2
    save_label_png(src / "a_gradient.png", imported, chest_xray())
    save_label_png(src / "b_picture.png", np.ones((90, 130), np.uint8), chest_xray())
    return person, imported, src, ws.label_path(ws.items[0])


def test_reviewed_labels_are_kept_when_the_confirmation_says_keep(window, image_folder, qtbot,
                                                                  tmp_path):
    from segstudio.io.workspace import ItemStatus

    person, _, src, label_file = _reviewed_workspace(image_folder, tmp_path)
    before = label_file.read_bytes()
    window.open_paths([image_folder])
    window.interactive = True
    seen: list[str] = []
    _answer("Keep them", seen, boxes=2)
    report = _run(window, qtbot, "png", src)
    assert "a_gradient" in seen[0] and "Replace" in seen[0]
    assert report.kept == ["a_gradient"] and report.imported == ["b_picture"]
    assert "Kept 1 item(s) a person corrected or reviewed: a_gradient." in seen[1]
    assert label_file.read_bytes() == before
    assert window.workspace.items[0].status is ItemStatus.REVIEWED
    np.testing.assert_array_equal(window.doc.labels.array, person)


def test_reviewed_labels_are_replaced_when_the_confirmation_says_replace(window, image_folder,
                                                                         qtbot, tmp_path):
    from segstudio.io.workspace import ItemStatus

    _, imported, src, _ = _reviewed_workspace(image_folder, tmp_path)
    window.open_paths([image_folder])
    window.interactive = True
    seen: list[str] = []
    _answer("Replace", seen, boxes=2)
    report = _run(window, qtbot, "png", src)
    assert "a_gradient" in seen[0]
    assert report.imported == ["a_gradient", "b_picture"] and report.kept == []
    assert window.workspace.items[0].status is ItemStatus.CORRECTED
    np.testing.assert_array_equal(window.doc.labels.array, imported)


def test_cancelling_the_confirmation_imports_nothing_and_a_window_that_cannot_ask_keeps(
        window, image_folder, qtbot, tmp_path):
    from segstudio.io.workspace import ItemStatus

    person, _, src, label_file = _reviewed_workspace(image_folder, tmp_path)
    before = label_file.read_bytes()
    window.open_paths([image_folder])
    window.interactive = True
    seen: list[str] = []
    _answer("Cancel", seen, boxes=1)
    task = import_labels(window, "png", src)
    if task is not None:                  # an import that did not ask: let it end, then fail
        qtbot.waitUntil(window.is_idle, timeout=30_000)
    assert task is None
    assert "a_gradient" in seen[0]
    assert window.workspace.items[1].status is ItemStatus.UNLABELLED      # nothing imported

    window.interactive = False                     # no dialog can be answered: keep
    report = _run(window, qtbot, "png", src)
    assert report.kept == ["a_gradient"] and report.imported == ["b_picture"]
    assert label_file.read_bytes() == before
    np.testing.assert_array_equal(window.doc.labels.array, person)
