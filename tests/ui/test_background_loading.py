"""Large pictures decode in a background task: the window stays responsive, keeps the previous
item on screen meanwhile, and a picture that cannot fit in memory is refused with a message."""

from __future__ import annotations

import os
import threading

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QTimer

import segstudio.ui.controllers.document_loader as loader_module
from segstudio.io.workspace import Workspace
from segstudio.io import decode_memory


@pytest.fixture
def folder(tmp_path):
    """a_small.png (40×30) and b_large.png (300×200), 'large' once the threshold is lowered."""
    folder = tmp_path / "pics"
    folder.mkdir()
    Image.fromarray(np.full((30, 40), 90, np.uint8)).save(folder / "a_small.png")
    big = np.zeros((200, 300, 3), np.uint8)
    big[:, 150:] = (200, 30, 30)
    Image.fromarray(big).save(folder / "b_large.png")
    return folder


@pytest.fixture
def gated(monkeypatch):
    """Pictures over 10,000 pixels are 'large'; reading one waits until ``gate`` is set."""
    monkeypatch.setattr(loader_module, "BACKGROUND_PIXELS", 10_000)
    gate = threading.Event()
    real = Workspace.read_image

    def slow_read(self, item):
        if item.id == "b_large":
            assert gate.wait(30)
        return real(self, item)

    monkeypatch.setattr(Workspace, "read_image", slow_read)
    return gate


def test_a_large_picture_loads_while_the_window_stays_responsive(window, folder, gated, qtbot):
    assert window.open_paths([folder])
    assert window.doc.item.id == "a_small"
    assert window.show_row(1)                         # started, not finished
    assert window.doc.item.id == "a_small" and not window.is_idle()
    assert "Opening b_large.png (300×200" in window.statusBar().currentMessage()
    ticks = []
    timer = QTimer(window, interval=10)
    timer.timeout.connect(lambda: ticks.append(1))
    timer.start()
    qtbot.waitUntil(lambda: len(ticks) >= 5, timeout=5000)   # the event loop runs meanwhile
    assert window.doc.item.id == "a_small"
    gated.set()
    qtbot.waitUntil(lambda: window.doc.item.id == "b_large", timeout=20000)
    timer.stop()
    qtbot.waitUntil(window.is_idle, timeout=5000)
    assert (window.doc.image.width, window.doc.image.height) == (300, 200)
    assert window.canvas._image.size().width() == 300


def test_choosing_another_item_while_one_loads_keeps_the_new_choice(window, folder, gated,
                                                                    qtbot):
    assert window.open_paths([folder])
    assert window.show_row(1)
    assert window.show_row(0)                         # back to the small one at once
    gated.set()
    qtbot.waitUntil(window.is_idle, timeout=20000)
    assert window.doc.item.id == "a_small"


def test_a_large_item_chosen_while_another_decodes_is_shown_after_it(window, folder, gated,
                                                                     qtbot):
    Image.fromarray(np.full((200, 300), 40, np.uint8)).save(folder / "c_large.png")
    assert window.open_paths([folder])
    assert window.show_row(1)                         # b_large: decoding (held at the gate)
    assert window.show_row(2)                         # c_large: waits for it, one at a time
    assert window.loader.task is not None and window.loader.pending_row == 2
    gated.set()
    qtbot.waitUntil(lambda: window.doc.item.id == "c_large" and window.is_idle(), timeout=20000)
    assert window.doc.image.is_grey and window.canvas._image.width() == 300


def test_a_picture_that_cannot_fit_in_memory_is_refused_with_a_message(window, folder,
                                                                        monkeypatch, qtbot):
    monkeypatch.setattr(loader_module, "BACKGROUND_PIXELS", 10_000)
    assert window.open_paths([folder])
    monkeypatch.setattr(decode_memory, "available_memory", lambda: 500_000)
    assert not window.show_row(1)
    assert window.doc.item.id == "a_small" and window.is_idle()
    message = window.statusBar().currentMessage()
    assert "b_large.png (300×200)" in message and "of memory but only" in message


def test_a_damaged_large_picture_is_a_message_and_the_window_carries_on(window, folder,
                                                                        monkeypatch, qtbot):
    monkeypatch.setattr(loader_module, "BACKGROUND_PIXELS", 10_000)
    data = (folder / "b_large.png").read_bytes()
    (folder / "b_large.png").write_bytes(data[:len(data) // 2])
    assert window.open_paths([folder])
    assert window.show_row(1)
    qtbot.waitUntil(window.is_idle, timeout=20000)
    assert window.doc.item.id == "a_small"
    assert "b_large.png" in window.statusBar().currentMessage()


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_opening_a_folder_with_a_pipe_named_like_an_image_does_not_hang(window, folder):
    os.mkfifo(folder / "0_pipe.png")
    assert window.open_paths([folder])                # returns: the pipe is never opened
    assert [it.id for it in window.workspace.items] == ["a_small", "b_large"]
    assert "0_pipe.png" in window.statusBar().currentMessage()
