"""The Prompt tool in the window: clicks, boxes, candidates, Enter/Esc, guard, cache, cancel."""

import threading

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QEvent, Qt

from helpers import _send, click, drag, widget_pos
from prompt_doubles import DiskNetwork, save_small_sam

pytest.importorskip("segment_anything")


def _use_double(window, tmp_path, network=None, ahead=0):
    """Weights remembered as a file, with the network replaced by the disk double. These tests
    count encoder passes, so nothing is embedded in advance unless ``ahead`` says so (the
    prefetch has tests of its own)."""
    from segstudio.models.prompted import PromptedSegmenter

    window.prompt.prefetch.ahead = ahead

    weights = tmp_path / "double.pth"
    weights.write_bytes(b"stands for a weights file")
    window.settings.setValue("prompt/weights", str(weights))
    network = network or DiskNetwork(radius=24.0)
    session = window.prompt
    session.segmenter, session._segmenter_path = PromptedSegmenter(network), str(weights)
    return network


def _ready(window, qtbot, row=1):
    window.open_paths([window._test_folder])
    window.show_row(row)
    qtbot.keyClick(window.canvas, Qt.Key.Key_Q)
    assert window.canvas.tool.name == "Prompt"
    qtbot.waitUntil(window.is_idle, timeout=30_000)
    assert window.prompt.embedding is not None
    return window.doc


@pytest.fixture(autouse=True)
def _fp32_encoder(monkeypatch):
    """These tests are not about precision: the encoder stays in fp32 (a CPU without native
    bf16 units), so each embedding is one encoder pass."""
    from segstudio.models import prompt_precision

    monkeypatch.setattr(prompt_precision, "auto_candidate", lambda device: None)


@pytest.fixture
def prompt_window(window, image_folder, tmp_path):
    window._test_folder = image_folder
    return window


def right_click(canvas, x, y):
    pos = widget_pos(canvas, x, y)
    _send(canvas, QEvent.Type.MouseButtonPress, pos, Qt.MouseButton.RightButton,
          Qt.MouseButton.RightButton)
    _send(canvas, QEvent.Type.MouseButtonRelease, pos, Qt.MouseButton.RightButton,
          Qt.MouseButton.NoButton)


def test_click_then_enter_paints_the_mask_as_one_undo_step(prompt_window, qtbot, tmp_path):
    window = prompt_window
    _use_double(window, tmp_path)
    doc = _ready(window, qtbot)
    window.legend.select_class(2)
    click(window.canvas, 60.3, 45.8)
    tool = window.prompt.tool
    assert tool.prediction is not None and len(tool.prediction) == 3
    assert doc.labels.array.max() == 0                  # nothing painted before Enter
    qtbot.keyClick(window.canvas, Qt.Key.Key_Return)
    painted = doc.labels.array == 2
    assert painted[45, 60] and painted.shape == (90, 130)
    ys, xs = np.nonzero(painted)
    assert abs(xs.mean() - 60) < 1.5 and abs(ys.mean() - 45) < 1.5
    assert tool.prediction is None and not tool.points
    qtbot.keyClick(window.canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert doc.labels.array.max() == 0


def test_background_point_box_and_esc(prompt_window, qtbot, tmp_path):
    window = prompt_window
    _use_double(window, tmp_path, DiskNetwork(radius=60.0))
    doc = _ready(window, qtbot)
    tool = window.prompt.tool
    window_before = doc.window
    click(window.canvas, 60, 45)
    right_click(window.canvas, 70, 45)
    assert [p[2] for p in tool.points] == [1, 0]
    assert doc.window == window_before and window.canvas._window_from is None
    mask = tool.prediction.mask(tool.choice)
    assert mask[45, 55] and not mask[45, 70]
    qtbot.keyClick(window.canvas, Qt.Key.Key_Escape)
    assert tool.prediction is None and not tool.points
    assert doc.labels.array.max() == 0
    drag(window.canvas, [(20, 10), (50, 30), (80, 60)])
    assert tool.box == (20, 10, 80, 60)
    ys, xs = np.nonzero(tool.prediction.mask(0))
    assert (xs.min(), ys.min()) == (20, 10) and abs(xs.max() - 80) <= 1 and abs(ys.max() - 60) <= 1


def test_candidates_are_shown_and_cycled_and_the_chosen_one_is_kept(prompt_window, qtbot,
                                                                    tmp_path):
    window = prompt_window
    _use_double(window, tmp_path, DiskNetwork(radius=12.0))
    doc = _ready(window, qtbot)
    tool, chooser = window.prompt.tool, window.prompt.chooser
    window.legend.select_class(1)
    click(window.canvas, 65, 45)
    assert chooser.isVisible()
    assert [b.text() for b in chooser.buttons] == ["1: 0.90", "2: 0.70", "3: 0.50"]
    areas = [tool.prediction.mask(i).sum() for i in range(3)]
    qtbot.keyClick(window.canvas, Qt.Key.Key_Q, Qt.KeyboardModifier.ShiftModifier)
    assert tool.choice == 1 and chooser.buttons[1].isChecked()
    chooser.buttons[2].click()
    assert tool.choice == 2
    qtbot.keyClick(window.canvas, Qt.Key.Key_Return)
    assert (doc.labels.array == 1).sum() == areas[2]
    assert not chooser.isVisible()


def test_the_paint_options_guard_applies(prompt_window, qtbot, tmp_path):
    window = prompt_window
    _use_double(window, tmp_path, DiskNetwork(radius=60.0))
    doc = _ready(window, qtbot)
    left = np.zeros(doc.labels.shape, bool)
    left[:, :60] = True
    doc.labels.paint_mask(left, 3)
    window.paint_options.only_box.setChecked(True)
    window.paint_options.only_class.setCurrentIndex(3)
    window.legend.select_class(1)
    click(window.canvas, 60, 45)
    qtbot.keyClick(window.canvas, Qt.Key.Key_Return)
    labels = doc.labels.array
    assert (labels[:, 60:] != 1).all()                  # only over class 3
    assert (labels[45, 50:60] == 1).all() and (labels == 1).sum() > 100


def test_a_16_bit_image_goes_in_as_displayed_and_the_mask_comes_back_full_size(
        prompt_window, qtbot, tmp_path):
    window = prompt_window
    net = _use_double(window, tmp_path)
    window.open_paths([window._test_folder])
    window.show_row(2)
    doc = window.doc
    assert doc.image.pixels.dtype == np.uint16
    window.levels.set(20000, 10000)
    qtbot.keyClick(window.canvas, Qt.Key.Key_Q)
    qtbot.waitUntil(window.is_idle, timeout=30_000)
    shown = doc.display_rgb8()
    h, w = net.seen[-1].shape[2:]
    expected = np.asarray(Image.fromarray(shown).resize((w, h), Image.Resampling.BILINEAR))
    assert np.array_equal(net.seen[-1][0].permute(1, 2, 0).numpy().astype(np.uint8), expected)
    click(window.canvas, 100, 60)
    mask = window.prompt.tool.prediction.mask(0)
    assert mask.shape == (120, 160) and mask[60, 100]
    # Another display window is another image for the network: a new embedding.
    window.levels.set(30000, 10000)
    click(window.canvas, 100, 60)
    qtbot.waitUntil(window.is_idle, timeout=30_000)
    assert len(net.seen) == 2 and window.prompt.tool.prediction is not None


def test_revisiting_an_image_reuses_its_embedding(prompt_window, qtbot, tmp_path):
    window = prompt_window
    net = _use_double(window, tmp_path)
    _ready(window, qtbot, row=1)
    window.show_row(0)
    qtbot.waitUntil(window.is_idle, timeout=30_000)
    window.show_row(1)
    qtbot.waitUntil(window.is_idle, timeout=30_000)
    assert len(net.seen) == 2 and window.prompt.cache.hits["memory"] == 1
    assert window.prompt.embedding is not None
    from segstudio.paths import user_data_dir

    assert len(list((user_data_dir() / "prompt-embeddings").glob("*/*.pt"))) == 2


def test_esc_cancels_the_embedding(prompt_window, qtbot, tmp_path):
    window = prompt_window
    net = DiskNetwork()
    net.gate = threading.Event()
    _use_double(window, tmp_path, net)
    window.open_paths([window._test_folder])
    qtbot.keyClick(window.canvas, Qt.Key.Key_Q)
    assert window.prompt.task is not None
    qtbot.keyClick(window.canvas, Qt.Key.Key_Escape)
    net.gate.set()
    qtbot.waitUntil(window.is_idle, timeout=30_000)
    assert window.prompt.embedding is None
    assert "cancelled" in window.statusBar().currentMessage()


def test_without_weights_the_tool_says_where_to_get_them(prompt_window, qtbot):
    window = prompt_window
    window.open_paths([window._test_folder])
    qtbot.keyClick(window.canvas, Qt.Key.Key_Q)
    assert "Model ▸ Prompted segmenter" in window.statusBar().currentMessage()
    click(window.canvas, 20, 20)
    assert window.doc.labels.array.max() == 0 and window.prompt.task is None
    act = window.tool_actions["Prompt"]
    assert act.shortcut().toString() == "Q" and "Segment Anything" in act.toolTip()


def test_a_damaged_weights_file_is_named_in_the_message(prompt_window, qtbot, tmp_path):
    window = prompt_window
    bad = tmp_path / "sam_vit_b_01ec64.pth"
    bad.write_bytes(b"\x80\x02 not really")
    window.open_paths([window._test_folder])
    window.prompt.set_weights(bad)
    qtbot.waitUntil(window.is_idle, timeout=30_000)
    assert "sam_vit_b_01ec64.pth" in window.statusBar().currentMessage()
    assert window.prompt.segmenter is None


def test_a_small_sam_file_works_end_to_end(prompt_window, qtbot, tmp_path):
    window = prompt_window
    weights = save_small_sam(tmp_path / "small_sam.pth", wrap=True)
    window.open_paths([window._test_folder])
    window.show_row(1)
    window.prompt.set_weights(weights)
    qtbot.waitUntil(window.is_idle, timeout=60_000)
    assert window.settings.value("prompt/weights") == str(weights)
    qtbot.keyClick(window.canvas, Qt.Key.Key_Q)
    qtbot.waitUntil(window.is_idle, timeout=60_000)
    click(window.canvas, 60, 45)
    assert window.prompt.tool.prediction.mask(0).shape == (90, 130)


def test_clicks_during_the_embedding_get_their_mask_when_it_is_ready(prompt_window, qtbot,
                                                                      tmp_path):
    window = prompt_window
    net = DiskNetwork()
    net.gate = threading.Event()
    _use_double(window, tmp_path, net)
    window.open_paths([window._test_folder])
    window.show_row(1)
    qtbot.keyClick(window.canvas, Qt.Key.Key_Q)
    click(window.canvas, 60, 45)
    tool = window.prompt.tool
    assert tool.points == [(60, 45, 1)] and tool.prediction is None
    net.gate.set()
    qtbot.waitUntil(window.is_idle, timeout=30_000)
    assert tool.prediction is not None and tool.prediction.mask(0)[45, 60]


def test_switching_images_during_an_embedding_embeds_the_new_one(prompt_window, qtbot, tmp_path):
    window = prompt_window
    net = DiskNetwork()
    net.gate = threading.Event()
    _use_double(window, tmp_path, net)
    window.open_paths([window._test_folder])
    qtbot.keyClick(window.canvas, Qt.Key.Key_Q)
    window.show_row(1)                       # the first image's embedding is cancelled
    net.gate.set()
    qtbot.waitUntil(window.is_idle, timeout=30_000)
    session = window.prompt
    assert session.embedding is not None and session._embedded[0] is window.doc
    assert session.embedding.original_size == (90, 130)


def test_auto_encoder_precision_is_measured_on_the_first_image_and_said(prompt_window, qtbot,
                                                                        tmp_path, monkeypatch):
    from dataclasses import replace

    from segstudio.models import prompt_precision

    # A CPU with native bf16 units on which bf16 runs twice as fast; agreement measured.
    monkeypatch.setattr(prompt_precision, "auto_candidate", lambda device: "bf16")
    real = prompt_precision.decide
    monkeypatch.setattr(prompt_precision, "decide", lambda *a, **k: replace(
        real(*a, **k), fp32_ms=200.0, candidate_ms=100.0))
    window = prompt_window
    net = _use_double(window, tmp_path)
    _ready(window, qtbot, row=1)
    assert len(net.seen) == 2                       # one pass in fp32, one in bf16
    assert window.prompt.embedding.precision == "fp32"
    said = window.statusBar().currentMessage()
    assert "this image's embedding in fp32, the next in bf16 (image encoder bf16: 2.0× " \
           "faster, 100.00 % agreement" in said
    window.show_row(2)
    qtbot.waitUntil(window.is_idle, timeout=30_000)
    assert len(net.seen) == 3 and window.prompt.embedding.precision == "bf16"
    assert "(encoder bf16)" in window.statusBar().currentMessage()
