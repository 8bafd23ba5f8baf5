"""The SAM 2 clicks kept in the workspace: written under the lock and merged by video, checked
as read, and a damaged file kept and never overwritten."""

import json
import threading

import pytest

from segstudio.io.track_prompts import (FILE_NAME, TrackPromptsError, load_video,
                                        save_video)
from segstudio.io.workspace_lock import workspace_lock

CLICK = {"frame": 3, "obj_id": 2, "points": [(10.5, 20.0)], "labels": [1], "box": None}
BOX = {"frame": 7, "obj_id": 1, "points": [], "labels": [], "box": (1.0, 2.0, 30.0, 40.0)}


def test_clicks_and_class_names_come_back_as_they_were_kept(tmp_path):
    save_video(tmp_path, "clips/walk.mp4", [CLICK, BOX], {2: "person", 1: "dog"})
    prompts, classes = load_video(tmp_path, "clips/walk.mp4")
    assert prompts == [{**CLICK, "points": [(10.5, 20.0)]}, BOX]
    assert classes == {2: "person", 1: "dog"}
    assert load_video(tmp_path, "other.mp4") == ([], {})
    assert load_video(tmp_path / "nothing-here", "clips/walk.mp4") == ([], {})


def test_each_video_is_replaced_alone_and_other_videos_entries_stay(tmp_path):
    save_video(tmp_path, "a.mp4", [CLICK], {2: "person"})
    save_video(tmp_path, "b.mp4", [BOX], {1: "dog"})
    save_video(tmp_path, "a.mp4", [BOX], {1: "cat"})
    assert load_video(tmp_path, "a.mp4") == ([BOX], {1: "cat"})
    assert load_video(tmp_path, "b.mp4") == ([BOX], {1: "dog"})


def test_a_save_waits_for_the_workspace_lock(tmp_path):
    (tmp_path / "segstudio-workspace.json").write_text("{}")
    done = threading.Event()
    with workspace_lock(tmp_path / "segstudio-workspace.json"):
        worker = threading.Thread(target=lambda: (save_video(tmp_path, "a.mp4", [CLICK], {}),
                                                  done.set()))
        worker.start()
        assert not done.wait(0.5) and not (tmp_path / FILE_NAME).exists()
    worker.join(10)
    assert done.is_set() and load_video(tmp_path, "a.mp4")[0]


@pytest.mark.parametrize("content", [
    b"{not json", b"\xff\xfe", b"[]", json.dumps({"version": 9, "videos": {}}).encode(),
    json.dumps({"version": 1, "videos": {"a.mp4": {"prompts": [
        {"frame": -1, "obj_id": 1, "points": [[1, 1]], "labels": [1]}]}}}).encode(),
    json.dumps({"version": 1, "videos": {"a.mp4": {"prompts": [
        {"frame": 0, "obj_id": 255, "points": [[1, 1]], "labels": [1]}]}}}).encode(),
    json.dumps({"version": 1, "videos": {"a.mp4": {"prompts": [
        {"frame": 0, "obj_id": 1, "points": [[1, "x"]], "labels": [1]}]}}}).encode(),
    json.dumps({"version": 1, "videos": {"a.mp4": {"prompts": [
        {"frame": 0, "obj_id": 1, "points": [[1, 1]], "labels": [3]}]}}}).encode(),
    json.dumps({"version": 1, "videos": {"a.mp4": {"prompts": [], "classes": {"x": 1}}}}).encode(),
    b'{"version": 1, "videos": {"a.mp4": {"prompts": [{"frame": 0, "obj_id": 1, "points": '
    b'[[NaN, 1]], "labels": [1]}]}}}',
], ids=["broken", "not text", "a list", "another version", "negative frame", "id 255",
        "a word for a number", "label 3", "a class that is no name", "NaN"])
def test_a_damaged_file_is_named_kept_and_never_overwritten(tmp_path, content):
    path = tmp_path / FILE_NAME
    path.write_bytes(content)
    with pytest.raises(TrackPromptsError, match=FILE_NAME):
        load_video(tmp_path, "a.mp4")
    with pytest.raises(TrackPromptsError, match=FILE_NAME):
        save_video(tmp_path, "a.mp4", [CLICK], {})
    assert path.read_bytes() == content


def test_clicks_no_click_can_be_are_refused_before_anything_is_written(tmp_path):
    with pytest.raises(TrackPromptsError):
        save_video(tmp_path, "a.mp4", [{**CLICK, "obj_id": 0}], {})
    assert not (tmp_path / FILE_NAME).exists()
