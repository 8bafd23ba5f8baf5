"""Importing labels never destroys a person's work: corrected and reviewed items are kept unless
replacing them was asked for, a name several files share is never guessed, an object map that
cannot be read is kept byte for byte, and a file claiming a huge image allocates nothing."""

from __future__ import annotations

import json
import struct
import tracemalloc
import zlib

import numpy as np
import pytest
from PIL import Image

from segstudio.core.classes import ClassSet
from segstudio.io import labels as importers
from segstudio.io.labels import import_label_folder, import_labelme_folder, import_voc_tree
from segstudio.io.object_store import load_objects, object_path, save_objects
from segstudio.io.voc import VocSample, save_label_png, write_voc
from segstudio.io.workspace import ItemStatus, Workspace, WorkspaceError

CLASSES = ClassSet(["background", "cat", "dog"], title="pets")
H, W = 10, 12


@pytest.fixture
def ws(tmp_path):
    root = tmp_path / "images"
    root.mkdir()
    for name in ("a", "b", "c"):
        Image.fromarray(np.full((H, W, 3), 50, np.uint8)).save(root / f"{name}.png")
    return Workspace.open(root, classes=CLASSES)


def _labels(value: int) -> np.ndarray:
    labels = np.zeros((H, W), np.uint8)
    labels[2:6, 3:9] = value
    return labels


def _ids() -> np.ndarray:
    ids = np.zeros((H, W), np.uint8)
    ids[2:6, 3:9] = 1
    return ids


def _source(tmp_path, names=("a", "b", "c"), value=2):
    folder = tmp_path / "source"
    folder.mkdir(exist_ok=True)
    for name in names:
        save_label_png(folder / f"{name}.png", _labels(value), CLASSES)
    return folder


def _person_made(ws):
    """a reviewed with objects, b corrected, c only predicted."""
    a, b, c = ws.items
    save_objects(ws, a, _ids())
    ws.save_labels(a, _labels(1), status=ItemStatus.REVIEWED, by="hand")
    ws.save_labels(b, _labels(1), status=ItemStatus.CORRECTED, by="hand")
    ws.save_labels(c, _labels(1), status=ItemStatus.PREDICTED, by="model")
    return {p: p.read_bytes() for p in (ws.label_path(a), ws.label_path(b), object_path(ws, a))}


# -- corrected and reviewed items ----------------------------------------------------------------
def test_items_a_person_corrected_or_reviewed_are_kept_and_listed(ws, tmp_path):
    before = _person_made(ws)
    report = import_label_folder(_source(tmp_path), ws)
    assert report.imported == ["c"] and report.kept == ["a", "b"] and not report.problems
    assert {p: p.read_bytes() for p in before} == before        # labels and objects untouched
    again = Workspace.open(ws.root)
    assert [i.status for i in again.items] == [ItemStatus.REVIEWED, ItemStatus.CORRECTED,
                                               ItemStatus.CORRECTED]
    assert again.items[0].updated_by == "hand"
    np.testing.assert_array_equal(again.load_labels(again.items[2]), _labels(2))


def test_replace_overwrites_them_and_they_count_as_corrected_by_the_import(ws, tmp_path):
    _person_made(ws)
    report = import_label_folder(_source(tmp_path), ws, by="import", replace=True)
    assert report.imported == ["a", "b", "c"] and report.kept == []
    again = Workspace.open(ws.root)
    for item in again.items:
        np.testing.assert_array_equal(again.load_labels(item), _labels(2))
        assert item.status is ItemStatus.CORRECTED and item.updated_by == "import"
    assert load_objects(again, again.items[0]) is None          # the source has no objects


def test_labelme_and_voc_imports_keep_person_made_items_too(ws, tmp_path):
    before = _person_made(ws)
    folder = tmp_path / "lm"
    folder.mkdir()
    for name in ("a", "c"):
        (folder / f"{name}.json").write_text(json.dumps({
            "shapes": [{"label": "hamster", "points": [[0, 0], [3, 3]],
                        "shape_type": "rectangle"}], "imageHeight": H, "imageWidth": W}))
    report = import_labelme_folder(folder, ws)
    assert report.imported == ["c"] and report.kept == ["a"]
    tree = write_voc(tmp_path / "voc", [VocSample("b", np.zeros((H, W, 3), np.uint8), _labels(2),
                                                  instances=_ids())], CLASSES, val_fraction=0.0)
    report = import_voc_tree(tree.root, ws)
    assert report.imported == [] and report.kept == ["b"]
    assert {p: p.read_bytes() for p in before} == before
    assert importers.kept_by_import("labelme", folder, ws) == ["a", "c"]     # c now imported
    assert importers.kept_by_import("voc", tree.root, ws) == ["b"]


def test_command_keeps_reviewed_labels_and_replace_overwrites_them(ws, tmp_path, capsys):
    from segstudio.cli import main

    before = _person_made(ws)
    source = _source(tmp_path)
    assert main(["import-labels", str(ws.root), str(source)]) == 0
    out = capsys.readouterr().out
    assert "imported the labels of 1 item(s) from source (label PNGs): c" in out
    assert ("kept 2 item(s) a person corrected or reviewed: a, b; use --replace to overwrite "
            "them") in out
    assert {p: p.read_bytes() for p in before} == before
    assert Workspace.open(ws.root).items[0].status is ItemStatus.REVIEWED

    assert main(["import-labels", str(ws.root), str(source), "--replace"]) == 0
    assert "kept" not in capsys.readouterr().out
    again = Workspace.open(ws.root)
    assert [i.status for i in again.items] == [ItemStatus.CORRECTED] * 3
    np.testing.assert_array_equal(again.load_labels(again.items[0]), _labels(2))


def test_command_with_only_person_made_matches_says_so_and_succeeds(ws, tmp_path, capsys):
    from segstudio.cli import main

    _person_made(ws)
    assert main(["import-labels", str(ws.root), str(_source(tmp_path, names=("a",)))]) == 0
    captured = capsys.readouterr()
    assert "imported the labels of 0 item(s)" in captured.out
    assert "kept 1 item(s) a person corrected or reviewed: a;" in captured.out
    assert captured.err == ""


# -- ambiguous names -----------------------------------------------------------------------------
def test_several_files_for_one_item_are_named_and_none_is_imported(ws, tmp_path):
    source = tmp_path / "source"
    for sub, value in (("x", 1), ("y", 2)):
        (source / sub).mkdir(parents=True)
        save_label_png(source / sub / "a.png", _labels(value), CLASSES)
    save_label_png(source / "b.png", _labels(1), CLASSES)
    report = import_label_folder(source, ws)
    assert report.imported == ["b"]
    assert report.problems == ["2 files match item a: x/a.png, y/a.png; none of them was "
                               "imported (keep one, or import the others from a folder of "
                               "their own)"]
    assert ws.load_labels(ws.items[0]) is None and ws.items[0].status is ItemStatus.UNLABELLED

    lm = tmp_path / "lm"
    for sub in ("one", "two"):
        (lm / sub).mkdir(parents=True)
        (lm / sub / "c.json").write_text(json.dumps({"shapes": [], "imageHeight": H,
                                                     "imageWidth": W}))
    report = import_labelme_folder(lm, ws)
    assert report.imported == [] and report.problems[0].startswith(
        "2 files match item c: one/c.json, two/c.json; none of them was imported")


def test_a_file_matching_several_items_is_named_and_not_imported(tmp_path, capsys):
    from segstudio.cli import main

    root = tmp_path / "images"
    (root / "sub").mkdir(parents=True)
    for name in ("a.png", "sub/a.png"):
        Image.fromarray(np.zeros((H, W, 3), np.uint8)).save(root / name)
    Workspace.open(root, classes=CLASSES).save()
    source = _source(tmp_path, names=("a",))
    assert main(["import-labels", str(root), str(source)]) == 2
    err = capsys.readouterr().err
    assert "problem: a.png matches 2 items named a (a.png, sub/a.png); it was not imported" in err
    assert not (root / "labels").exists()


# -- object maps that cannot be read -------------------------------------------------------------
def _damage(path, how: str) -> None:
    if how == "another size":
        Image.fromarray(np.ones((H + 3, W), np.uint8), mode="L").save(path)
    elif how == "RGB":
        Image.fromarray(np.ones((H, W, 3), np.uint8)).save(path)
    elif how == "16-bit over 255":
        Image.fromarray(np.full((H, W), 300, np.uint16)).save(path)
    else:
        path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(200)))


DAMAGES = ["another size", "RGB", "16-bit over 255", "undecodable"]


@pytest.mark.parametrize("how", DAMAGES)
def test_an_object_map_that_cannot_be_read_is_kept_byte_for_byte_and_named(ws, tmp_path, how):
    a = ws.items[0]
    save_objects(ws, a, _ids())
    ws.save_labels(a, _labels(1), status=ItemStatus.PREDICTED)
    maps = object_path(ws, a)
    _damage(maps, how)
    damaged, labels = maps.read_bytes(), ws.label_path(a).read_bytes()

    png = import_label_folder(_source(tmp_path), ws)                  # no objects: would delete
    tree = write_voc(tmp_path / "voc", [VocSample("a", np.zeros((H, W, 3), np.uint8), _labels(2),
                                                  instances=_ids())], CLASSES, val_fraction=0.0)
    voc = import_voc_tree(tree.root, ws)                              # objects: would overwrite
    lm = tmp_path / "lm"
    lm.mkdir()
    (lm / "a.json").write_text(json.dumps({"shapes": [
        {"label": "cat", "group_id": 1, "points": [[0, 0], [3, 3]], "shape_type": "rectangle"}],
        "imageHeight": H, "imageWidth": W}))
    labelme = import_labelme_folder(lm, ws)
    for report in (png, voc, labelme):
        assert "a" not in report.imported
        assert [p for p in report.problems if "objects/a.png" in p and "kept as it is" in p]
    assert png.imported == ["b", "c"]
    assert maps.read_bytes() == damaged and ws.label_path(a).read_bytes() == labels
    assert ws.items[0].status is ItemStatus.PREDICTED


@pytest.mark.parametrize("how", DAMAGES)
def test_saving_objects_never_removes_or_replaces_a_map_it_cannot_read(ws, how):
    a = ws.items[0]
    save_objects(ws, a, _ids())
    _damage(object_path(ws, a), how)
    damaged = object_path(ws, a).read_bytes()
    for ids, more in ((np.zeros((H, W), np.uint8), {}), (_ids(), {}), (None, {"shape": (H, W)})):
        with pytest.raises(WorkspaceError, match=r"^a: the object map objects/a\.png .*kept as "
                                                 r"it is"):
            save_objects(ws, a, ids, **more)
    assert object_path(ws, a).read_bytes() == damaged
    save_objects(ws, a, _ids(), predicted=True)          # the model's own maps are replaced
    save_objects(ws, a, None, predicted=True)


# -- sizes checked before anything is allocated --------------------------------------------------
def test_a_labelme_file_declaring_a_huge_image_allocates_nothing(ws, tmp_path):
    folder = tmp_path / "lm"
    folder.mkdir()
    text = json.dumps({"version": "5.4.1", "shapes": [], "imagePath": "a.png",
                       "imageHeight": 50_000, "imageWidth": 50_000, "imageData": None})
    (folder / "a.json").write_text(text)
    assert len(text) < 200
    tracemalloc.start()
    try:
        report = import_labelme_folder(folder, ws)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert report.problems == ["a.json: the labels are 50000×50000 but the image a.png is 12×10"]
    assert peak < 20_000_000, f"{peak / 1e9:.1f} GB traced"


def _png_header_only(width: int, height: int) -> bytes:
    """A grey PNG whose header claims width × height, with the pixels of one row only."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
            + chunk(b"IDAT", zlib.compress(b"\x00" * (width + 1))) + chunk(b"IEND", b""))


def test_a_label_png_claiming_a_huge_size_is_refused_from_its_header(ws, tmp_path, monkeypatch):
    source = tmp_path / "source"
    source.mkdir()
    (source / "a.png").write_bytes(_png_header_only(16_000, 16_000))
    tree_ids = tmp_path / "voc"
    tree = write_voc(tree_ids, [VocSample("b", np.zeros((H, W, 3), np.uint8), _labels(2),
                                          instances=_ids())], CLASSES, val_fraction=0.0)
    (tree.voc_dir / "SegmentationObject" / "b.png").write_bytes(_png_header_only(16_000, 16_000))
    decoded = []
    real = importers.load_label_png
    monkeypatch.setattr(importers, "load_label_png",
                        lambda path, **kw: decoded.append(path.name) or real(path, **kw))
    report = import_label_folder(source, ws)
    assert report.problems == ["a.png: the labels are 16000×16000 but the image a.png is 12×10"]
    voc = import_voc_tree(tree.root, ws)
    assert voc.problems == ["b.png (SegmentationObject): the objects are 16000×16000 but the "
                            "labels 12×10"]
    assert decoded == ["b.png"]                  # the class labels of b only, never a claim


def test_the_item_size_comes_from_the_image_header(ws, tmp_path, monkeypatch):
    def no_decode(item):
        raise AssertionError(f"{item.id} was decoded to learn its size")

    monkeypatch.setattr(ws, "read_image", no_decode)
    report = import_label_folder(_source(tmp_path), ws)
    assert report.imported == ["a", "b", "c"] and not report.problems


def test_an_exif_turned_picture_takes_labels_of_its_shown_size(tmp_path):
    root = tmp_path / "images"
    root.mkdir()
    exif = Image.Exif()
    exif[0x0112] = 6                                   # turned a quarter: shown 10 wide, 12 high
    Image.fromarray(np.zeros((H, W, 3), np.uint8)).save(root / "a.jpg", exif=exif.tobytes())
    ws = Workspace.open(root, classes=CLASSES)
    source = tmp_path / "source"
    source.mkdir()
    save_label_png(source / "a.png", np.zeros((W, H), np.uint8), CLASSES)
    assert import_label_folder(source, ws).imported == ["a"]
    save_label_png(source / "a.png", np.zeros((H, W), np.uint8), CLASSES)
    report = import_label_folder(source, ws, replace=True)
    assert report.problems == ["a.png: the labels are 12×10 but the image a.jpg is 10×12"]
