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
