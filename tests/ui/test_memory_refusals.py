"""The window's Grow from seeds and Prompt tasks check memory before the heavy work: without
room, the existing error message says so and the work never starts."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import Qt

from helpers import drag

from segstudio.io import decode_memory

SHIFT = Qt.KeyboardModifier.ShiftModifier


def test_grow_from_seeds_without_room_says_so_and_never_grows(window, tmp_path, qtbot,
                                                              monkeypatch):
    from segstudio.ui.controllers import grow_seeds

    folder = tmp_path / "imgs"
    folder.mkdir()
    image = np.full((120, 160), 60, np.uint8)
    image[30:90, 40:120] = 200
    Image.fromarray(image).save(folder / "square.png")
    window.open_paths([folder])
    qtbot.waitUntil(window.is_idle, timeout=30_000)
    grown = []
    monkeypatch.setattr(grow_seeds, "grow_from_seeds", lambda *a, **k: grown.append(1))
    monkeypatch.setattr(decode_memory, "available_memory", lambda: 100_000)
    grow = window.smart.grow
    qtbot.keyClick(window.canvas, Qt.Key.Key_S, SHIFT)
    assert grow.active
    window.legend.select_class(1)
    drag(window.canvas, [(70, 60), (80, 60)])
    window.legend.select_class(0)
    drag(window.canvas, [(5, 110), (60, 112)])
    qtbot.waitUntil(lambda: window.is_idle() and grow.task is None, timeout=30_000)
    message = window.statusBar().currentMessage()
    assert message == ("Grow from seeds: not enough memory for growing 160×120 pixels: needs "
                       "about 518.4 kB, 100.0 kB available")
    assert not grown and grow.preview is None


def test_the_prompt_embedding_without_room_says_so_and_never_encodes(window, image_folder,
                                                                     tmp_path, qtbot,
                                                                     monkeypatch):
    pytest.importorskip("segment_anything")
    from prompt_doubles import DiskNetwork

    from segstudio.models.prompted import PromptedSegmenter

    weights = tmp_path / "double.pth"
    weights.write_bytes(b"stands for a weights file")
    window.settings.setValue("prompt/weights", str(weights))
    network = DiskNetwork()
    window.prompt.segmenter, window.prompt._segmenter_path = (PromptedSegmenter(network),
                                                              str(weights))
    window.open_paths([image_folder])
    window.show_row(1)
    qtbot.waitUntil(window.is_idle, timeout=30_000)
    monkeypatch.setattr(decode_memory, "available_memory", lambda: 1_000)
    qtbot.keyClick(window.canvas, Qt.Key.Key_Q)
    qtbot.waitUntil(window.is_idle, timeout=30_000)
    message = window.statusBar().currentMessage()
    assert message.startswith("Prompted segmenter: not enough memory for the image embedding "
                              "of 130×90 pixels: needs about ")
    assert network.seen == [] and window.prompt.embedding is None


def test_a_growth_that_runs_out_of_memory_anyway_is_said_in_words(window, tmp_path, qtbot,
                                                                  monkeypatch):
    from segstudio.ui.controllers import grow_seeds

    folder = tmp_path / "imgs"
    folder.mkdir()
    Image.fromarray(np.full((120, 160), 60, np.uint8)).save(folder / "flat.png")
    window.open_paths([folder])
    qtbot.waitUntil(window.is_idle, timeout=30_000)

    def no_room(*_a, **_k):
        raise MemoryError()

    monkeypatch.setattr(grow_seeds, "grow_from_seeds", no_room)
    grow = window.smart.grow
    qtbot.keyClick(window.canvas, Qt.Key.Key_S, SHIFT)
    window.legend.select_class(1)
    drag(window.canvas, [(70, 60), (80, 60)])
    window.legend.select_class(0)
    drag(window.canvas, [(5, 110), (60, 112)])
    qtbot.waitUntil(lambda: window.is_idle() and grow.task is None, timeout=30_000)
    assert window.statusBar().currentMessage() == (
        "Grow from seeds: not enough memory for growing 160×120 pixels")
    assert grow.preview is None
