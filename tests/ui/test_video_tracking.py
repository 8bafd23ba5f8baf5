"""Tracking an object through a video in the window: Prompt-tool clicks, the Video panel's Track
button, a tiny random SAM 2 folder; corrected frames keep their labels, a later click
re-tracks from there."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PySide6.QtCore import Qt

from helpers import click
from sam2_doubles import decoded_frames, moving_frames, save_tiny_sam2, write_video

pytest.importorskip("transformers")

FRAMES = 24


@pytest.fixture
def clip_window(window, tmp_path, qtbot):
    folder = tmp_path / "clips"
    folder.mkdir()
    write_video(folder / "square.avi", moving_frames(FRAMES))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    assert window.open_paths([folder])
    window._model_dir = save_tiny_sam2(tmp_path / "sam2.1-tiny-random")
    yield window
    torch.set_num_threads(threads)


def _row(window, frame):
    return next(r for r, it in enumerate(window.workspace.items) if it.frame == frame)


def _reference(window, prompts, first):
    """frame → object map, from the tracker run directly on the decoded frames."""
    from segstudio.models.sam2_video import Sam2VideoTracker

    frames = decoded_frames(window.workspace.root / "square.avi")
    tracker = Sam2VideoTracker.from_folder(window._model_dir, torch.device("cpu"))
    return {r.index: r.object_map() for r in tracker.track(lambda i: frames[i], len(frames),
                                                           prompts, first, FRAMES - 1)}


def _track_from(window, qtbot, frame, x, y):
    window.show_row(_row(window, frame))
    if window.canvas.tool.name != "Prompt":
        qtbot.keyClick(window.canvas, Qt.Key.Key_Q)
    click(window.canvas, x + 0.5, y + 0.5)
    assert window.prompt.tool.points == [(x, y, 1)]
    panel = window.video
    panel.tracking.track_button.click()
    assert panel.task is not None
    qtbot.waitUntil(lambda: panel.task is None, timeout=120_000)


def test_track_writes_each_frame_as_a_prediction_and_keeps_corrected_frames(clip_window,
                                                                            qtbot):
    from segstudio.io.object_store import load_objects
    from segstudio.io.workspace import ItemStatus
    from segstudio.models.sam2_video import TrackPrompt

    window = clip_window
    ws = window.workspace
    mine = np.zeros((64, 64), np.uint8)
    mine[40:50, 40:50] = 3
    corrected = ws.items[_row(window, 10)]
    ws.save_labels(corrected, mine)                       # a person's labels on frame 10
    corrected_bytes = ws.label_path(corrected).read_bytes()
    window.video.tracking.set_folder(window._model_dir)
    window.legend.select_class(2)

    _track_from(window, qtbot, 2, 12, 20)
    assert "done: 22 frame(s)" in window.video.message.text()
    expected = _reference(window, [TrackPrompt(2, 1, [(12.0, 20.0)], [1])], 2)
    assert sorted(expected) == list(range(2, FRAMES))
    assert sum(int((m > 0).sum()) for m in expected.values()) > 0
    for frame in range(FRAMES):
        item = ws.items[_row(window, frame)]
        if frame < 2:
            assert not ws.label_path(item).exists() and item.status != ItemStatus.PREDICTED
            continue
        np.testing.assert_array_equal(ws.load_prediction(item),
                                      np.where(expected[frame] > 0, 2, 0))
        if frame == 10:
            assert ws.label_path(item).read_bytes() == corrected_bytes
            assert item.status == ItemStatus.CORRECTED
            continue
        assert item.status == ItemStatus.PREDICTED and item.updated_by.startswith("SAM 2")
        np.testing.assert_array_equal(ws.load_labels(item), np.where(expected[frame] > 0, 2, 0))
        objects = load_objects(ws, item)
        np.testing.assert_array_equal(objects if objects is not None else 0, expected[frame])
    # The frame on screen follows, classes and objects together.
    np.testing.assert_array_equal(window.doc.labels.array, np.where(expected[2] > 0, 2, 0))

    # A click on frame 14 re-tracks from there; frames 2..13 keep what they have.
    before = {f: ws.label_path(ws.items[_row(window, f)]).read_bytes() for f in range(2, 14)}
    _track_from(window, qtbot, 14, 36, 22)
    again = _reference(window, [TrackPrompt(2, 1, [(12.0, 20.0)], [1]),
                                TrackPrompt(14, 1, [(36.0, 22.0)], [1])], 14)
    assert sorted(again) == list(range(14, FRAMES))
    for frame in range(2, 14):
        assert ws.label_path(ws.items[_row(window, frame)]).read_bytes() == before[frame]
    for frame in range(14, FRAMES):
        np.testing.assert_array_equal(ws.load_labels(ws.items[_row(window, frame)]),
                                      np.where(again[frame] > 0, 2, 0))


def test_track_without_a_folder_or_clicks_says_what_to_do(clip_window, qtbot):
    window = clip_window
    window.show_row(_row(window, 3))
    panel = window.video
    assert not panel.tracking.track()
    assert "no SAM 2 model folder" in window.statusBar().currentMessage()
    not_a_model = window._model_dir.parent / "empty"
    not_a_model.mkdir()
    panel.tracking.set_folder(not_a_model)
    assert "no config.json" in window.statusBar().currentMessage()
    assert panel.tracking.folder() is None
    panel.tracking.set_folder(window._model_dir)
    assert not panel.tracking.track()
    assert "click the object with the Prompt tool" in window.statusBar().currentMessage()
    assert panel.task is None


def test_cancel_stops_tracking_and_keeps_the_frames_done(clip_window, qtbot, monkeypatch):
    import threading
    import time

    window = clip_window
    ws = window.workspace
    panel = window.video
    panel.tracking.set_folder(window._model_dir)
    window.legend.select_class(1)
    loaded = panel.tracking.tracker_for
    holding = threading.Event()

    class Held:
        """The real tracker, holding after its third frame until the run is cancelled."""

        def __init__(self, tracker):
            self.tracker = tracker

        def __getattr__(self, name):
            return getattr(self.tracker, name)

        def track(self, *args, **kwargs):
            cancelled = args[-1]
            for i, result in enumerate(self.tracker.track(*args, **kwargs)):
                yield result
                if i == 2:
                    holding.set()
                    deadline = time.monotonic() + 30
                    while not cancelled() and time.monotonic() < deadline:
                        time.sleep(0.01)

    monkeypatch.setattr(panel.tracking, "tracker_for", lambda folder: Held(loaded(folder)))
    window.show_row(_row(window, 4))
    qtbot.keyClick(window.canvas, Qt.Key.Key_Q)
    click(window.canvas, 20.5, 20.5)
    panel.tracking.track_button.click()
    qtbot.waitUntil(holding.is_set, timeout=60_000)
    assert panel.cancel_button.isEnabled()
    panel.cancel_button.click()
    qtbot.waitUntil(lambda: panel.task is None, timeout=60_000)
    assert "cancelled after 3 frame(s)" in panel.message.text()
    labelled = [f for f in range(FRAMES) if ws.label_path(ws.items[_row(window, f)]).exists()]
    assert labelled == [4, 5, 6]
    assert panel.run_button.isEnabled() and not panel.cancel_button.isEnabled()


def test_a_second_object_keeps_each_objects_class(clip_window, qtbot):
    from segstudio.io.object_store import load_objects
    from segstudio.models.sam2_video import TrackPrompt

    window = clip_window
    ws = window.workspace
    panel = window.video
    panel.tracking.set_folder(window._model_dir)
    window.legend.select_class(2)
    _track_from(window, qtbot, 2, 12, 20)
    panel.tracking.obj_spin.setValue(2)
    window.legend.select_class(3)
    _track_from(window, qtbot, 2, 44, 44)
    expected = _reference(window, [TrackPrompt(2, 1, [(12.0, 20.0)], [1]),
                                   TrackPrompt(2, 2, [(44.0, 44.0)], [1])], 2)
    both = 0
    for frame in range(2, FRAMES):
        item = ws.items[_row(window, frame)]
        ids = expected[frame]
        np.testing.assert_array_equal(load_objects(ws, item), ids)
        np.testing.assert_array_equal(ws.load_labels(item),
                                      np.select([ids == 1, ids == 2], [2, 3], 0))
        both += (ids == 1).any() and (ids == 2).any()
    assert both > 0


def test_the_clicks_are_kept_and_a_correction_after_reopening_builds_on_them(clip_window,
                                                                            qtbot, tmp_path):
    from PySide6.QtCore import QSettings

    from segstudio.models.sam2_video import TrackPrompt
    from segstudio.ui.main_window import MainWindow

    window = clip_window
    window.video.tracking.set_folder(window._model_dir)
    window.legend.select_class(2)
    _track_from(window, qtbot, 2, 12, 20)
    root = window.workspace.root
    assert (root / "segstudio-tracking.json").is_file()
    window.close()

    again = MainWindow(settings=QSettings(str(tmp_path / "again.ini"),
                                          QSettings.Format.IniFormat))
    again.interactive, again.discard_changes_on_close = False, True
    qtbot.addWidget(again)
    again.resize(1000, 700)
    again.show()
    qtbot.waitExposed(again)
    assert again.open_paths([root])
    again._model_dir = window._model_dir
    again.video.tracking.set_folder(window._model_dir)
    again.legend.select_class(2)
    again.activateWindow()
    qtbot.waitUntil(again.isActiveWindow, timeout=5_000)    # Q reaches the new window
    _track_from(again, qtbot, 14, 36, 22)
    # The result is SAM 2's for both clicks: the one kept from before and the correction.
    expected = _reference(again, [TrackPrompt(2, 1, [(12.0, 20.0)], [1]),
                                  TrackPrompt(14, 1, [(36.0, 22.0)], [1])], 14)
    alone = _reference(again, [TrackPrompt(14, 1, [(36.0, 22.0)], [1])], 14)
    assert any(not np.array_equal(expected[f], alone[f]) for f in range(14, FRAMES))
    ws = again.workspace
    for frame in range(14, FRAMES):
        np.testing.assert_array_equal(ws.load_labels(ws.items[_row(again, frame)]),
                                      np.where(expected[frame] > 0, 2, 0))
    again.close()


def test_a_damaged_tracking_file_is_named_kept_and_tracking_still_runs(clip_window, qtbot):
    window = clip_window
    kept = window.workspace.root / "segstudio-tracking.json"
    kept.write_bytes(b"{damaged")
    window.video.tracking.set_folder(window._model_dir)
    window.legend.select_class(2)
    messages = []
    window.statusBar().messageChanged.connect(messages.append)
    _track_from(window, qtbot, 2, 12, 20)
    assert "done: 22 frame(s)" in window.video.message.text()
    assert any("segstudio-tracking.json: cannot be read" in m for m in messages)
    assert kept.read_bytes() == b"{damaged"
