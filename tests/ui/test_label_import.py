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
