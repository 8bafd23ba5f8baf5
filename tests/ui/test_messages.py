"""Messages a user can see at 1280×720: status-bar messages beside the pixel readout, and the
notice for what matters (saved, failed, finished, untrained): passing news for a few seconds,
warnings and errors until dismissed."""

import numpy as np
import pytest
from PySide6.QtCore import QEvent, QPointF, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QApplication

from helpers import drag, widget_pos


@pytest.fixture
def small(window, image_folder, qtbot):
    window.resize(1280, 720)
    qtbot.waitUntil(lambda: window.width() == 1280)
    assert window.open_paths([image_folder])
    return window


def status_visible(window, text: str) -> bool:
    """The status bar holds ``text`` and leaves it room left of the permanent widgets."""
    bar = window.statusBar()
    room = min(w.x() for w in (window.pixel_label, window.zoom_label, window.device_label))
    return (bar.isVisible() and bar.currentMessage().startswith(text)
            and bar.fontMetrics().horizontalAdvance(bar.currentMessage()) < room)


def notice_visible(window, text: str) -> bool:
    notice = window.notice
    inside = window.canvas.rect().contains(notice.geometry())
    return notice.isVisible() and text in notice.text() and inside


def test_readout_leaves_room_for_messages(small, qtbot):
    small._show_pixel(5.5, 5.5)
    assert small.pixel_label.text().startswith("x 5, y 5")
    small.undo()
    assert status_visible(small, "Nothing to undo")
    small.show_row(1)
    assert status_visible(small, "b_picture: 130×90")


def test_window_level_values_show_while_dragging(small, qtbot):
    canvas = small.canvas
    start = widget_pos(canvas, 20, 20)
    for kind, pos, buttons in ((QEvent.Type.MouseButtonPress, start, Qt.MouseButton.RightButton),
                               (QEvent.Type.MouseMove, start + QPointF(30, 10),
                                Qt.MouseButton.RightButton)):
        QApplication.sendEvent(canvas, QMouseEvent(kind, pos, canvas.mapToGlobal(pos),
                                                   Qt.MouseButton.RightButton, buttons,
                                                   Qt.KeyboardModifier.NoModifier))
    qtbot.waitUntil(lambda: status_visible(small, "Window: level"), timeout=2000)


def test_saving_leaves_a_notice_for_a_few_seconds_or_until_dismissed(small, qtbot):
    small.legend.select_class(2)
    drag(small.canvas, [(10, 10), (40, 10)])
    assert small.isWindowModified()
    small.save_current()
    assert notice_visible(small, "Saved the labels of a_gradient")
    assert not small.isWindowModified()
    qtbot.wait(50)
    assert small.notice.isVisible()                 # longer than a moment
    qtbot.mouseClick(small.notice.close_button, Qt.MouseButton.LeftButton)
    assert not small.notice.isVisible()


def test_a_failure_leaves_an_error_notice(small, qtbot):
    small.show_error("The labels could not be written: disk full")
    assert notice_visible(small, "disk full")
    assert small.notice.level.value == "error"


def test_grabcut_result_is_visible(small, qtbot):
    small.show_row(1)
    small.legend.select_class(2)
    qtbot.keyClick(small.canvas, Qt.Key.Key_G)
    drag(small.canvas, [(33, 24), (70, 50), (96, 66)])
    qtbot.waitUntil(small.is_idle, timeout=30_000)
    assert status_visible(small, "GrabCut")
    assert "pixels changed" in small.statusBar().currentMessage()


def test_untrained_prediction_leaves_a_warning_notice(small, qtbot):
    small.models.start()
    qtbot.waitUntil(lambda: small.models._catalog_loaded, timeout=120_000)
    qtbot.waitUntil(small.is_idle, timeout=60_000)
    panel = small.models.panel
    panel.select_entry(next(i for i, e in enumerate(panel.entries)
                            if e.choice.arch == "unet" and not e.trained))
    assert small.models.run_current()
    qtbot.waitUntil(small.is_idle, timeout=120_000)
    assert notice_visible(small, "UNTRAINED")
    assert small.notice.level.value == "warning"


def test_propagation_finished_is_a_notice(window, tmp_path, qtbot):
    import cv2

    window.resize(1280, 720)
    folder = tmp_path / "clip"
    folder.mkdir()
    writer = cv2.VideoWriter(str(folder / "sq.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 10.0,
                             (64, 48))
    rng = np.random.default_rng(0)
    for i in range(6):
        img = (rng.random((48, 64)) * 200).astype(np.uint8)
        writer.write(cv2.cvtColor(img, cv2.COLOR_GRAY2BGR))
    writer.release()
    window.open_paths([folder])
    labels = np.zeros((48, 64), np.uint8)
    labels[10:30, 10:30] = 1
    window.doc.labels.replace(labels)
    assert window.frame_labels.propagate(5, "dis")
    qtbot.waitUntil(lambda: window.frame_labels.task is None and window.is_idle(), timeout=60_000)
    assert notice_visible(window, "Propagation finished: labels carried to 5 of 5 frame(s)")


def test_title_marks_unsaved_labels_and_clears_on_save_and_switch(small, qtbot):
    assert "[*]" in small.windowTitle() and not small.isWindowModified()
    small.legend.select_class(1)
    drag(small.canvas, [(10, 10), (30, 30)])
    assert small.isWindowModified()
    small.show_row(1)                                # the edited item is kept, still unsaved
    assert small.isWindowModified()
    small.show_row(0)
    small.save_current()
    assert not small.isWindowModified()


def test_a_batch_run_shows_its_progress_and_a_finished_notice(window, tmp_path, qtbot):
    from PIL import Image

    window.resize(1280, 720)
    folder = tmp_path / "many"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(4):
        Image.fromarray(rng.integers(0, 255, (40, 40), dtype=np.uint8)).save(folder / f"{i}.png")
    window.open_paths([folder])
    window.models.start()
    qtbot.waitUntil(lambda: window.models._catalog_loaded, timeout=120_000)
    qtbot.waitUntil(window.is_idle, timeout=60_000)
    window.explain.parentWidget().raise_()           # the Model panel is behind another tab
    seen = []
    window.statusBar().messageChanged.connect(seen.append)
    assert window.models.run_all()
    qtbot.waitUntil(window.is_idle, timeout=120_000)
    assert any(m.startswith("Running the model: ") and "of 4 items" in m for m in seen)
    assert notice_visible(window, "Model run finished: 4 of 4 items segmented")


def test_a_notice_stays_at_the_bottom_of_the_canvas_when_the_window_is_resized(window, qtbot):
    from segstudio.ui.notice import MARGIN, Level

    window.resize(1280, 720)
    qtbot.wait(50)
    window.notice.show_notice("A warning that stays until it is dismissed", Level.WARNING)
    window.resize(900, 600)
    qtbot.waitUntil(lambda: window.canvas.width() < 1000, timeout=5_000)
    bar, canvas = window.notice, window.canvas
    assert bar.width() == canvas.width() - 2 * MARGIN
    assert bar.y() + bar.height() == canvas.height() - MARGIN
