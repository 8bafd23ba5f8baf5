"""Importing existing labels: PNG folders, VOC trees and labelme JSON (shapes rasterised)."""

from __future__ import annotations

import base64
import io
import json

import numpy as np
import pytest
from PIL import Image

from segstudio.core.classes import ClassSet
from segstudio.io.workspace import ItemStatus, Workspace
from segstudio.io.labels import (
    LabelImportError,
    import_label_folder,
    import_labelme_folder,
    import_voc_tree,
    read_labelme_json,
)
from segstudio.io.voc import VocSample, save_label_png, write_voc

CLASSES = ClassSet(["background", "cat", "dog"], title="pets")


@pytest.fixture
def ws(tmp_path):
    root = tmp_path / "images"
    root.mkdir()
    for name in ("a", "b", "c"):
        Image.fromarray(np.full((10, 12, 3), 50, np.uint8)).save(root / f"{name}.png")
    return Workspace.open(root, classes=CLASSES)


def _labelme(tmp_path, shapes, h=10, w=12, name="a.json"):
    path = tmp_path / name
    path.write_text(json.dumps({"version": "5.4.1", "shapes": shapes, "imagePath": "a.png",
                                "imageHeight": h, "imageWidth": w, "imageData": None}))
    return path


def test_polygon_is_filled_including_its_outline(tmp_path):
    path = _labelme(tmp_path, [{"label": "cat", "points": [[2, 2], [6, 2], [6, 5], [2, 5]],
                                "shape_type": "polygon"}])
    labels, new = read_labelme_json(path, CLASSES)
    assert new == [] and labels.shape == (10, 12)
    expected = np.zeros((10, 12), np.uint8)
    expected[2:6, 2:7] = 1
    np.testing.assert_array_equal(labels, expected)


def test_rectangle_and_circle_are_rasterised(tmp_path):
    path = _labelme(tmp_path, [
        {"label": "dog", "points": [[8, 6], [3, 1]], "shape_type": "rectangle"},
        {"label": "cat", "points": [[10, 8], [10, 6]], "shape_type": "circle"},
    ])
    labels, _ = read_labelme_json(path, CLASSES)
    assert (labels[1:7, 3:9] == 2).sum() > 30 and labels[1, 3] == 2 and labels[6, 8] == 2
    assert labels[8, 10] == 1 and labels[8, 8] == 1 and labels[8, 7] == 0  # radius 2 around (10, 8)
    assert labels[0, 0] == 0


def test_later_shapes_paint_over_earlier_ones_and_ignore_is_void(tmp_path):
    path = _labelme(tmp_path, [
        {"label": "cat", "points": [[0, 0], [11, 9]], "shape_type": "rectangle"},
        {"label": "__ignore__", "points": [[0, 0], [3, 3]], "shape_type": "rectangle"},
        {"label": "_background_", "points": [[8, 0], [11, 3]], "shape_type": "rectangle"},
    ])
    labels, _ = read_labelme_json(path, CLASSES)
    assert labels[1, 1] == 255 and labels[1, 9] == 0 and labels[8, 5] == 1


def test_unknown_labels_become_new_classes_in_order(tmp_path):
    path = _labelme(tmp_path, [
        {"label": "bird", "points": [[0, 0], [2, 2]], "shape_type": "rectangle"},
        {"label": "fish", "points": [[5, 5], [7, 7]], "shape_type": "rectangle"},
        {"label": "bird", "points": [[9, 0], [10, 1]], "shape_type": "rectangle"},
    ])
    labels, new = read_labelme_json(path, CLASSES)
    assert new == ["bird", "fish"]
    assert labels[1, 1] == 3 and labels[6, 6] == 4 and labels[0, 10] == 3


def test_polygon_of_one_point_is_an_error_naming_the_shape(tmp_path):
    path = _labelme(tmp_path, [
        {"label": "cat", "points": [[0, 0], [3, 0], [3, 3]], "shape_type": "polygon"},
        {"label": "dog", "points": [[4, 4]], "shape_type": "polygon"},
    ])
    with pytest.raises(LabelImportError,
                       match=r"^a\.json: shape 2 \('dog', polygon\): a polygon needs at least 3 "
                             r"points, this one has 1"):
        read_labelme_json(path, CLASSES)


def test_mask_shape_is_placed_at_its_box(tmp_path):
    mask = np.zeros((3, 4), np.uint8)
    mask[1:, 1:] = 1
    buf = io.BytesIO()
    Image.fromarray(mask * 255).save(buf, format="PNG")
    path = _labelme(tmp_path, [{"label": "dog", "points": [[5, 2], [8, 4]], "shape_type": "mask",
                                "mask": base64.b64encode(buf.getvalue()).decode()}])
    labels, _ = read_labelme_json(path, CLASSES)
    assert np.argwhere(labels == 2).min(axis=0).tolist() == [3, 6]
    assert (labels == 2).sum() == 6


@pytest.mark.parametrize("content, message", [
    ("{broken", "not readable labelme JSON"),
    ("[1, 2]", "expected a JSON object"),
    (json.dumps({"shapes": []}), "imageHeight and imageWidth"),
    (json.dumps({"shapes": [], "imageHeight": 10**7, "imageWidth": 5}), "outside"),
    (json.dumps({"shapes": [{"label": "cat", "points": "x"}], "imageHeight": 4,
                 "imageWidth": 4}), "points"),
    (json.dumps({"shapes": [{"label": "cat", "points": [[0, 0], [1, 1]],
                             "shape_type": "cube"}], "imageHeight": 4, "imageWidth": 4}),
     "shape type 'cube' is not supported"),
    (json.dumps({"shapes": [{"points": [[0, 0], [1, 1]]}], "imageHeight": 4,
                 "imageWidth": 4}), "has no label"),
])
def test_bad_labelme_files_are_clear_errors(tmp_path, content, message):
    (tmp_path / "bad.json").write_text(content)
    with pytest.raises(LabelImportError, match=message) as info:
        read_labelme_json(tmp_path / "bad.json", CLASSES)
    assert str(info.value).startswith("bad.json: ")


def test_label_folder_import_saves_labels_and_reports_the_rest(ws, tmp_path):
    folder = tmp_path / "old-labels"
    folder.mkdir()
    good = np.zeros((10, 12), np.uint8)
    good[3:6, 4:9] = 2
    save_label_png(folder / "a.png", good, CLASSES)
    Image.fromarray(np.zeros((5, 5), np.uint8)).save(folder / "b.png")
    Image.fromarray(np.full((10, 12), 7, np.uint8)).save(folder / "c.png")
    Image.fromarray(np.zeros((10, 12), np.uint8)).save(folder / "zzz.png")
    report = import_label_folder(folder, ws, by="import from old-labels")
    assert report.imported == ["a"] and report.unmatched == ["zzz.png"]
    assert report.problems == [
        "b.png: the labels are 5×5 but the image b.png is 12×10",
        "c.png: label value 7 is not a class of pets (0..2, or 255 for void)",
    ]
    np.testing.assert_array_equal(ws.load_labels(ws.items[0]), good)
    assert ws.items[0].status is ItemStatus.CORRECTED
    assert ws.items[0].updated_by == "import from old-labels"
    assert ws.items[1].status is ItemStatus.UNLABELLED


def test_voc_tree_import_matches_ids(ws, tmp_path):
    labels = np.zeros((10, 12), np.uint8)
    labels[:, :6] = 1
    samples = [VocSample("b", np.zeros((10, 12, 3), np.uint8), labels),
               VocSample("other", np.zeros((10, 12, 3), np.uint8), labels)]
    write_voc(tmp_path / "voc", samples, CLASSES, val_fraction=0.5)
    report = import_voc_tree(tmp_path / "voc", ws, status=ItemStatus.REVIEWED)
    assert report.imported == ["b"] and report.unmatched == ["other.png"]
    np.testing.assert_array_equal(ws.load_labels(ws.items[1]), labels)
    assert ws.items[1].status is ItemStatus.REVIEWED
    with pytest.raises(LabelImportError, match="no Pascal VOC tree"):
        import_voc_tree(tmp_path / "images", ws)


def test_labelme_folder_import_adds_new_classes(ws, tmp_path):
    folder = tmp_path / "lm"
    folder.mkdir()
    _labelme(folder, [{"label": "hamster", "points": [[1, 1], [4, 4]],
                       "shape_type": "rectangle"}], name="c.json")
    _labelme(folder, [{"label": "cat", "points": [[1, 1], [4, 4]], "shape_type": "rectangle"}],
             h=5, w=5, name="a.json")
    report = import_labelme_folder(folder, ws)
    assert report.imported == ["c"] and report.new_classes == ["hamster"]
    assert report.problems == ["a.json: the labels are 5×5 but the image a.png is 12×10"]
    assert ws.classes.names == ("background", "cat", "dog", "hamster")
    assert ws.load_labels(ws.items[2])[2, 2] == 3
    assert Workspace.open(ws.root).classes.names[-1] == "hamster"


def test_a_voc_tree_of_other_class_numbers_is_read_by_class_name(ws, tmp_path):
    """A tree exported from a workspace that numbers its classes otherwise (dog 1, cat 2,
    hamster 3) keeps each pixel's class name; the name the workspace lacks is added."""
    other = ClassSet(["background", "dog", "cat", "hamster"], title="other pets")
    labels = np.zeros((10, 12), np.uint8)
    labels[:, :4] = 1                    # dog
    labels[:, 4:8] = 2                   # cat
    labels[:, 8:] = 3                    # hamster
    labels[0, 0] = 255
    write_voc(tmp_path / "voc", [VocSample("a", np.zeros((10, 12, 3), np.uint8), labels)],
              other, val_fraction=0.0)
    report = import_voc_tree(tmp_path / "voc", ws)
    assert report.imported == ["a"] and report.new_classes == ["hamster"]
    assert ws.classes.names == ("background", "cat", "dog", "hamster")
    got = ws.load_labels(ws.items[0])
    names = {(int(v)): ("void" if v == 255 else ws.classes[int(v)].name) for v in np.unique(got)}
    assert names[got[5, 1]] == "dog" and names[got[5, 5]] == "cat" and names[got[5, 9]] == "hamster"
    assert got[0, 0] == 255
    assert Workspace.open(ws.root).classes.names == ws.classes.names
