"""Label paths: recorded ones are kept only in their safe form; derived ones are unique and fit."""

from __future__ import annotations

import os

import pytest

from segstudio.core.label_paths import (NAME_MAX_BYTES, LabelPathError, assign_labels,
                                        checked_file, derive_label, prediction_of, recorded_label)


@pytest.mark.parametrize("value", ["labels/a.png", "labels/ward 2/scan07.PNG",
                                   "labels/old-layout/a_labels.png", "labels/名前.png"])
def test_plain_paths_under_labels_are_kept(value):
    assert recorded_label(value) == value


@pytest.mark.parametrize("value", [
    "b.png", "./b.png", "segstudio-workspace.json", "labels/../b.png", "labels/./a.png",
    "labels//a.png", "labels/a\x00.png", "labels/a\n.png", "labels/" + "x" * 300 + ".png",
    "/labels/a.png", "labels\\a.png", "labels/.a.png.1234-abcdefgh.part", "labels/a.jpg",
    "labels/.png", "labels", "predictions/a.png", "Labels/a.png", "C:labels/a.png",
    "labels/\ud800.png", "", None, 5, ["labels/a.png"]])
def test_anything_else_is_ignored(value):
    assert recorded_label(value) is None


def test_two_records_sharing_a_file_leave_it_to_the_item_it_is_named_after():
    entries = [("a.png", "a", "labels/b.png"), ("b.png", "b", "labels/b.png")]
    assert assign_labels(entries, sources=["a.png", "b.png"]) == ["labels/a.png", "labels/b.png"]


def test_a_record_naming_a_source_or_a_reserved_path_gets_a_fresh_path():
    entries = [("labels/x.png", "x", None), ("x.png", "x", "labels/x.png"), ("y.png", "y", None)]
    paths = assign_labels(entries, sources=["labels/x.png", "x.png", "y.png"],
                          reserved=["labels/y.png", "../nope.png"])
    assert "labels/x.png" not in paths and "labels/y.png" not in paths
    assert len({p.casefold() for p in paths}) == 3
    assert all(recorded_label(p) == p for p in paths)


def test_long_names_are_shortened_apart_and_fit_the_file_system():
    stem = "é" * 200                                        # 400 bytes in UTF-8
    taken: set[str] = set()
    first = derive_label(f"clip/{stem}.mp4", f"{stem}_000001", taken)
    taken.add(first.casefold())
    second = derive_label(f"clip/{stem}.mp4", f"{stem}_000002", taken)
    for path in (first, second):
        assert path.startswith("labels/clip/") and path.endswith(".png")
        assert len(os.fsencode(path.rsplit("/", 1)[1])) <= NAME_MAX_BYTES
        assert recorded_label(path) == path
    assert first != second


def test_prediction_mirrors_the_label():
    assert prediction_of("labels/ward2/a.png") == "predictions/ward2/a.png"


def test_a_linked_labels_folder_is_refused_and_a_real_one_is_not(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    root = tmp_path / "ws"
    root.mkdir()
    assert checked_file(root, "labels/sub/a.png") == root.resolve() / "labels" / "sub" / "a.png"
    (root / "labels").symlink_to(outside, target_is_directory=True)
    with pytest.raises(LabelPathError, match=r"labels/ is a link .*neither reads nor writes"):
        checked_file(root, "labels/a.png")
    (root / "labels").unlink()
    (root / "labels").mkdir()
    (root / "labels" / "sub").symlink_to(root, target_is_directory=True)   # back into the root
    with pytest.raises(LabelPathError, match="labels/sub/ is a link"):
        checked_file(root, "labels/sub/a.png")
    (root / "labels" / "b.png").symlink_to(root / "source.png")
    with pytest.raises(LabelPathError, match="leading out of labels/"):
        checked_file(root, "labels/b.png")
