"""The Prompt tool embeds the next items in advance: moving on shows a mask on the first click;
the advance work is bounded, waits for nothing, and gives way when the encoder is needed."""

import threading

import numpy as np
import pytest
import torch
from PIL import Image
from PySide6.QtCore import Qt

from helpers import click
from prompt_doubles import DiskNetwork

pytest.importorskip("segment_anything")


@pytest.fixture(autouse=True)
def _fp32_encoder(monkeypatch):
    """Not about precision: one fp32 encoder pass per embedding."""
    from segstudio.models import prompt_precision

    monkeypatch.setattr(prompt_precision, "auto_candidate", lambda device: None)


@pytest.fixture
def five_images(tmp_path):
    folder = tmp_path / "five"
    folder.mkdir()
    rng = np.random.default_rng(3)
    for i in range(5):
        Image.fromarray(rng.integers(0, 256, (60, 80, 3), dtype=np.uint8)).save(
            folder / f"im{i}.png")
    return folder


class RecordingNetwork(DiskNetwork):
    """The disk double, noting which thread ran each encoder pass. With ``hold`` set, every
    pass after the first (the on-demand one) waits inside its first block until the event is
    set: the advance work is caught on its first item however fast the machine is."""

    def __init__(self) -> None:
        super().__init__()
        self.threads: list[str] = []
        self.hold: threading.Event | None = None

    def encode(self, image, on_block):
        self.threads.append(threading.current_thread().name)
        self.seen.append(image.clone())
        for i in range(4):
            on_block(i, 4)
            if self.hold is not None and len(self.seen) > 1:
                self.hold.wait(5)
        return torch.zeros(self.embedding_shape)

    def decode(self, *args):
        self.decode_threads = torch.get_num_threads()
        return super().decode(*args)


def _use(window, network, tmp_path):
    from segstudio.models.prompted import PromptedSegmenter

    weights = tmp_path / "double.pth"
    weights.write_bytes(b"stands for a weights file")
    window.settings.setValue("prompt/weights", str(weights))
    window.prompt.segmenter = PromptedSegmenter(network)
    window.prompt._segmenter_path = str(weights)


def _settled(window, qtbot):
    qtbot.waitUntil(lambda: window.is_idle() and not window.prompt.prefetch.running(),
                    timeout=30_000)


def _held_on_item_1(window, folder, tmp_path, qtbot) -> RecordingNetwork:
    """Item 0 embedded on demand, and the advance work held inside item 1's encoder pass until
    the test sets ``net.hold``."""
    net = RecordingNetwork()
    net.hold = threading.Event()
    _use(window, net, tmp_path)
    window.open_paths([folder])
    qtbot.keyClick(window.canvas, Qt.Key.Key_Q)
    qtbot.waitUntil(window.is_idle, timeout=30_000)
    qtbot.waitUntil(lambda: window.prompt.prefetch.busy_row == 1 and len(net.seen) == 2,
                    timeout=10_000)
    return net


def test_the_next_items_are_embedded_in_advance_and_the_first_click_needs_no_encoder(
        window, five_images, tmp_path, qtbot):
    net = RecordingNetwork()
    _use(window, net, tmp_path)
    window.open_paths([five_images])
    qtbot.keyClick(window.canvas, Qt.Key.Key_Q)
    _settled(window, qtbot)
    session = window.prompt
    # The image on screen, then the two after it — no more (bounded), in the background.
    assert len(net.seen) == 3 and session.prefetch.done == [1, 2]
    assert session.cache.hits["computed"] == 3
    window.show_row(1)
    # No task: the embedding came from memory at once, and the click has its mask.
    assert session.task is None and session.embedding is not None
    click(window.canvas, 40, 30)
    assert session.tool.prediction is not None and session.tool.prediction.mask(0)[30, 40]
    _settled(window, qtbot)
    # Moving on by one asked for one more item (3), not the ones already made again.
    assert len(net.seen) == 4 and session.cache.hits["computed"] == 4
    # What the advance work embedded is exactly what the window shows.
    shown = window.doc.display_rgb8()
    from segstudio.models.prompt_cache import image_key

    assert any(k[1] == image_key(shown) for k in session.cache._memory)


def test_going_elsewhere_cancels_the_advance_work_and_the_image_on_screen_comes_first(
        window, five_images, tmp_path, qtbot):
    net = _held_on_item_1(window, five_images, tmp_path, qtbot)
    session = window.prompt
    window.show_row(4)                    # not among the next items: the encoder is needed
    net.hold.set()
    _settled(window, qtbot)
    assert session.embedding is not None and session._embedded[0].row == 4
    # Item 2 was never started: the advance work stopped at item 1's next block. After item 4
    # there is nothing left to embed.
    assert len(net.seen) == 3 and session.prefetch.done == []
    click(window.canvas, 20, 20)
    assert session.tool.prediction is not None


def test_moving_to_the_item_being_embedded_in_advance_waits_for_it_instead_of_starting_over(
        window, five_images, tmp_path, qtbot):
    net = _held_on_item_1(window, five_images, tmp_path, qtbot)
    session = window.prompt
    window.show_row(1)
    assert session.task is None and "started in advance" in session.hint() + \
        window.statusBar().currentMessage()
    net.hold.set()
    qtbot.waitUntil(lambda: session.embedding is not None, timeout=10_000)
    _settled(window, qtbot)
    assert session._embedded[0].row == 1
    # Each image went through the encoder once: 0 on demand, 1 and 2 and 3 in advance.
    assert len(net.seen) == 4 and session.cache.hits["computed"] == 4


def test_closing_the_window_during_the_advance_work_stops_it(window, five_images, tmp_path,
                                                             qtbot):
    net = _held_on_item_1(window, five_images, tmp_path, qtbot)
    task = window.prompt.prefetch.task
    window.close()
    assert task.isFinished() and len(net.seen) == 2


def test_new_weights_drop_the_advance_work(window, five_images, tmp_path, qtbot):
    net = _held_on_item_1(window, five_images, tmp_path, qtbot)
    task = window.prompt.prefetch.task
    other = tmp_path / "other.pth"
    other.write_bytes(b"not weights")
    window.prompt.set_weights(other)
    net.hold.set()
    qtbot.waitUntil(task.isFinished, timeout=10_000)
    assert task.was_cancelled and window.prompt.prefetch.done == []


def test_the_tracking_folder_serves_the_prompt_tool_on_still_images(window, five_images,
                                                                    tmp_path, qtbot):
    """Only a SAM 2 folder chosen (for tracking): the Prompt tool uses it, and its mask is the
    one the library gives for the same click on the picture as shown."""
    pytest.importorskip("transformers")
    from sam2_doubles import save_tiny_sam2
    from transformers import Sam2Model, Sam2Processor

    folder = save_tiny_sam2(tmp_path / "sam2")
    window.settings.setValue("sam2/folder", str(folder))
    names = [a.text().replace("&", "") for m in window.menuBar().actions() if m.menu()
             for a in m.menu().actions()]
    assert "Prompted segmenter: SAM 2 folder…" in names
    window.open_paths([five_images])
    window.show_row(2)
    qtbot.keyClick(window.canvas, Qt.Key.Key_Q)
    assert window.prompt.hint() == "" or "embedding" in window.prompt.hint()
    _settled(window, qtbot)
    session = window.prompt
    assert session.segmenter is not None and "SAM 2" in session.segmenter.name
    click(window.canvas, 50, 20)
    mine = session.tool.prediction
    model = Sam2Model.from_pretrained(folder, local_files_only=True).eval()
    processor = Sam2Processor.from_pretrained(folder, local_files_only=True)
    rgb = window.doc.display_rgb8()
    inputs = processor(images=rgb, input_points=[[[[50, 20]]]], input_labels=[[[1]]],
                       return_tensors="pt")
    with torch.no_grad():
        out = model(**inputs)
    theirs = processor.post_process_masks(out.pred_masks, inputs["original_sizes"])[0][0]
    best = int(out.iou_scores[0, 0].argmax())
    assert np.array_equal(mine.mask(0), theirs[best].numpy())
    assert mine.scores[0] == pytest.approx(float(out.iou_scores[0, 0, best]), abs=1e-5)
    # The next two items were embedded in advance with the same network.
    assert session.prefetch.done == [3, 4]


def test_the_quiet_gate_holds_work_while_the_person_clicks_and_lets_a_cancel_through():
    import time

    from segstudio.ui.controllers.prompt_prefetch import QuietGate

    gate = QuietGate(quiet_s=0.3)
    start = time.monotonic()
    assert gate.wait(lambda: False) is False and time.monotonic() - start < 0.05
    gate.touch()
    start = time.monotonic()
    assert gate.wait(lambda: False) is False
    assert 0.25 <= time.monotonic() - start < 2.0
    gate.touch()
    start = time.monotonic()
    assert gate.wait(lambda: True) is True and time.monotonic() - start < 0.05


def test_a_click_holds_the_advance_work_until_the_clicks_pause(window, five_images, tmp_path,
                                                               qtbot):
    import time

    net = RecordingNetwork()
    _use(window, net, tmp_path)
    window.open_paths([five_images])
    session = window.prompt
    session.prefetch.gate.quiet_s = 1.5
    net.hold = threading.Event()                      # the advance pass waits in its block 0
    qtbot.keyClick(window.canvas, Qt.Key.Key_Q)
    qtbot.waitUntil(window.is_idle, timeout=30_000)
    qtbot.waitUntil(lambda: session.prefetch.busy_row == 1 and len(net.seen) == 2,
                    timeout=10_000)
    import os

    from segstudio.models.device import default_num_threads

    before = torch.get_num_threads()
    clicked = time.monotonic()
    click(window.canvas, 30, 30)                      # the person clicks the image on screen
    assert session.tool.prediction is not None
    # The click's decoder took the cores the advance work leaves, and gave them back.
    assert net.decode_threads == max(1, (os.cpu_count() or 1) - default_num_threads())
    assert torch.get_num_threads() == before
    net.hold.set()
    qtbot.waitUntil(lambda: not session.prefetch.running(), timeout=20_000)
    # Items 1 and 2 were finished only after the clicks had paused for the gate's time.
    assert session.prefetch.done == [1, 2]
    assert time.monotonic() - clicked >= 1.45


def test_nothing_is_embedded_in_advance_while_a_model_run_has_the_machine(window, five_images,
                                                                          tmp_path, qtbot,
                                                                          monkeypatch):
    net = RecordingNetwork()
    _use(window, net, tmp_path)
    window.open_paths([five_images])
    monkeypatch.setattr(type(window.models.runner), "busy", property(lambda self: True))
    qtbot.keyClick(window.canvas, Qt.Key.Key_Q)
    qtbot.waitUntil(lambda: window.prompt.embedding is not None, timeout=30_000)
    qtbot.wait(200)
    assert len(net.seen) == 1 and not window.prompt.prefetch.running()


def test_esc_while_the_image_waits_for_the_advance_work_stops_it(window, five_images, tmp_path,
                                                                qtbot):
    net = _held_on_item_1(window, five_images, tmp_path, qtbot)
    session = window.prompt
    task = session.prefetch.task
    window.show_row(1)
    assert session.hint() == "Prompt tool: making the image embedding… (Esc cancels)"
    qtbot.keyClick(window.canvas, Qt.Key.Key_Escape)
    net.hold.set()
    qtbot.waitUntil(task.isFinished, timeout=10_000)
    assert task.was_cancelled and session.embedding is None and session.hint() == ""


def test_the_advance_work_asks_for_memory_first_and_without_room_makes_nothing(
        window, five_images, tmp_path, qtbot, monkeypatch):
    from segstudio.models import prompt_memory

    net = RecordingNetwork()
    _use(window, net, tmp_path)
    # The image on screen fits; once it is embedded (the advance work's turn), an embedding
    # is estimated at more than any machine has.
    estimate = prompt_memory.embed_bytes
    monkeypatch.setattr(prompt_memory, "embed_bytes",
                        lambda *a: estimate(*a) if not net.seen else 10 ** 18)
    errors = []
    monkeypatch.setattr(window, "show_error", errors.append)
    window.open_paths([five_images])
    qtbot.keyClick(window.canvas, Qt.Key.Key_Q)
    _settled(window, qtbot)
    assert window.prompt.embedding is not None
    # Item 1 was refused before its encoder ran: nothing made in advance, nothing shown
    # (the image on screen is fine; the refusal is said if the person goes there).
    assert len(net.seen) == 1 and window.prompt.prefetch.done == [] and errors == []
    window.show_row(1)
    _settled(window, qtbot)
    assert any("not enough memory for the image embedding" in e for e in errors)
    assert len(net.seen) == 1
