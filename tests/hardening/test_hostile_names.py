"""Hostile names (ids from file names, class names) never escape or collide on disk."""
from pathlib import Path

import numpy as np
from PIL import Image

from segstudio.core.classes import ClassSet
from segstudio.io.workspace import Workspace
from segstudio.io.voc import VocSample, read_voc, sanitize_id, write_voc

HOSTILE_IDS = ["../../escape", "/etc/passwd", "C:\\Windows\\evil", "CON", "nul.txt", "com1",
               "..", ".", "", "a" * 500, "ümlaut_日本", "x", "X", "x", "  spaced  ", "a/b/c",
               "..\\..\\up", "name:stream", "trailing.", "LPT9"]


def _sample(ident: str, value: int) -> VocSample:
    image = np.full((4, 5, 3), value, np.uint8)
    labels = np.full((4, 5), value % 2, np.uint8)
    return VocSample(ident, image, labels)


def test_voc_export_keeps_every_hostile_id_inside_the_tree_and_apart(tmp_path):
    classes = ClassSet(["bg", "fg"])
    samples = [_sample(ident, i) for i, ident in enumerate(HOSTILE_IDS)]
    result = write_voc(tmp_path / "out", samples, classes, val_fraction=0.0)
    tree = result.voc_dir.resolve()
    written = sorted(p for p in tmp_path.rglob("*") if p.is_file())
    assert all(tree in p.resolve().parents for p in written), written
    images = list((tree / "JPEGImages").iterdir())
    assert len(images) == len(HOSTILE_IDS)  # nothing overwrote anything
    assert len({p.name.casefold() for p in images}) == len(HOSTILE_IDS)
    for p in images:
        assert len(p.name) <= 130
        assert p.stem.split(".")[0].lower() not in {"con", "nul", "com1", "lpt9"}
    # each pair holds the pixels of its own sample
    pairs = read_voc(tmp_path / "out", "train")
    values = sorted(round(float(np.asarray(Image.open(img)).mean())) for _, img, _ in pairs)
    assert values == list(range(len(HOSTILE_IDS)))


def test_sanitized_ids_are_plain_stems():
    for ident in HOSTILE_IDS:
        clean = sanitize_id(ident)
        assert clean and "/" not in clean and "\\" not in clean and ":" not in clean
        assert not clean.startswith(".") and ".." not in clean
        assert Path(clean).name == clean


def test_same_file_name_in_two_subfolders_gets_two_label_files(tmp_path):
    for sub in ("a", "b", "b/deeper"):
        (tmp_path / sub).mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.zeros((3, 3, 3), np.uint8)).save(tmp_path / sub / "x.png")
    Image.fromarray(np.zeros((3, 3, 3), np.uint8)).save(tmp_path / "b" / "x.jpg")
    ws = Workspace.open(tmp_path, classes=ClassSet(["bg", "fg", "other", "more"]))
    assert len(ws.items) == 4
    paths = [ws.label_path(it).resolve() for it in ws.items]
    assert len(set(paths)) == 4
    for n, item in enumerate(ws.items):
        ws.save_labels(item, np.full((3, 3), n, np.uint8))
    reopened = Workspace.open(tmp_path)
    for n, item in enumerate(reopened.items):
        assert int(reopened.load_labels(item)[0, 0]) == n
        assert tmp_path.resolve() in reopened.label_path(item).resolve().parents


def test_non_ascii_and_reserved_file_names_round_trip(tmp_path):
    names = ["ümlaut 日本.png", "CON.png", "nul.png", "émoji_😀.png"]
    for i, name in enumerate(names):
        Image.fromarray(np.full((2, 2, 3), i, np.uint8)).save(tmp_path / name)
    ws = Workspace.open(tmp_path, classes=ClassSet(["a", "b", "c", "d"]))
    for n, item in enumerate(ws.items):
        ws.save_labels(item, np.full((2, 2), n, np.uint8))
    again = Workspace.open(tmp_path)
    assert [int(again.load_labels(it)[0, 0]) for it in again.items] == list(range(len(names)))
    result = write_voc(tmp_path / "export", list(again.samples()), again.classes,
                       val_fraction=0.0)
    assert result.count == len(names)


def test_recorded_label_paths_that_leave_the_workspace_are_ignored(tmp_path):
    Image.fromarray(np.zeros((2, 2, 3), np.uint8)).save(tmp_path / "img.png")
    ws = Workspace.open(tmp_path, classes=ClassSet(["a", "b"]))
    data = ws.to_dict()
    data["items"] = [{"source": "img.png", "frame": None, "status": "corrected",
                      "label": "../../outside.png"}]
    ws.write_file(data)
    again = Workspace.open(tmp_path)
    label = again.label_path(again.items[0]).resolve()
    assert tmp_path.resolve() in label.parents
    again.save_labels(again.items[0], np.ones((2, 2), np.uint8))
    assert not (tmp_path.parent.parent / "outside.png").exists()


HOSTILE_CLASSES = ["background", "../../etc", "CON", "名前", "a\nb", 'quote"s', "x" * 300,
                   "/abs", "tab\there", "\u202eevil"]


def test_hostile_class_names_round_trip_and_never_become_paths(tmp_path):
    import cv2

    classes = ClassSet(HOSTILE_CLASSES)
    for sub in ("one", "two"):  # two videos with the same stem in different folders
        (tmp_path / sub).mkdir()
        writer = cv2.VideoWriter(str(tmp_path / sub / "clip.avi"),
                                 cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (16, 12))
        for k in range(3):
            writer.write(np.full((12, 16, 3), 30 * k, np.uint8))
        writer.release()
    ws = Workspace.open(tmp_path, classes=classes)
    assert len(ws.items) == 6
    assert len({ws.label_path(it).resolve() for it in ws.items}) == 6
    for n, item in enumerate(ws.items):
        ws.save_labels(item, np.full((12, 16), n % len(classes), np.uint8))
    again = Workspace.open(tmp_path)
    assert again.classes.names == classes.names
    assert [int(again.load_labels(it)[0, 0]) for it in again.items] == list(range(6))
    result = write_voc(tmp_path / "export", again.samples(), again.classes, val_fraction=0.0)
    from segstudio.io.voc import read_voc_classes
    assert read_voc_classes(tmp_path / "export").names == classes.names
    inside = {p.resolve() for p in tmp_path.rglob("*")}
    assert not any(name in {"etc", "abs"} for name in (p.name for p in inside))
    assert result.count == 6
