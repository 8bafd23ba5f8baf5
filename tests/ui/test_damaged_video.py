"""A video cut short: the panel shows an error for each frame that cannot be decoded, never
another frame's picture, and playback stops at the first such frame with one message."""

from __future__ import annotations

import numpy as np
import pytest
from truncated_mp4 import cut, write_mp4

FRAMES = 250


@pytest.fixture
def cut_video(tmp_path):
    folder = tmp_path / "clips"
    folder.mkdir()
    cut(write_mp4(tmp_path / "whole.mp4", FRAMES), folder / "half.mp4")
    return folder


def _row(window, frame):
    return next(r for r, it in enumerate(window.workspace.items) if it.frame == frame)


def test_a_frame_past_the_cut_is_an_error_for_that_frame(window, cut_video):
    assert window.open_paths([cut_video])
    assert len(window.workspace.items) == FRAMES
    panel = window.video
    assert panel.go_to(10) and window.doc.item.frame == 10
    before = np.array(window.doc.image.pixels)
    assert not panel.go_to(200)
    assert "frame 200 cannot be decoded" in window.statusBar().currentMessage()
    assert window.doc.item.frame == 10                       # still frame 10, and its picture
    np.testing.assert_array_equal(window.doc.image.pixels, before)


def test_playback_stops_at_the_first_frame_that_cannot_be_decoded(window, cut_video, qtbot,
                                                                  monkeypatch):
    assert window.open_paths([cut_video])
    messages = []
    real = window.show_error
    monkeypatch.setattr(window, "show_error", lambda m: (messages.append(m), real(m)))
    ws = window.workspace
    video = ws._video(ws.source_path(ws.items[0]))
    first_lost = next(i for i in range(FRAMES) if video.is_lost(i))
    panel = window.video
    assert panel.go_to(first_lost - 3)
    panel.play()
    qtbot.waitUntil(lambda: not panel.playing, timeout=20000)
    assert window.doc.item.frame < first_lost
    assert len(messages) == 1 and "cannot be decoded" in messages[0]
