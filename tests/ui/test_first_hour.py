"""A newcomer's first hour through the real window: the unsaved marker means what quitting would
lose, video frames are counted one way, the window fits a 720 px screen, the pixel readout is
whole, passing notices pass, and seeds show on a dark image."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QPoint, QRect, QSettings, QSize, Qt
from PySide6.QtGui import QFont

from helpers import drag, move
from segstudio.io.workspace import ItemStatus
from segstudio.ui.launchers import open_demo


# -- 7: the title's [*] -------------------------------------------------------------------------
def test_the_unsaved_marker_means_exactly_that_quitting_would_lose_something(window, qtbot,
                                                                              monkeypatch):
    assert open_demo(window, "chest")
    qtbot.waitUntil(lambda: window.doc is not None and window.doc.prediction is not None
                    and window.is_idle(), timeout=180_000)
    qtbot.wait(20)
    # The demo's prediction was written to disk: nothing to lose, nothing marked.
    assert window.doc.item.status is ItemStatus.PREDICTED
    assert not window.dirty_documents()
    assert not window.isWindowModified()

    window.legend.select_class(2)
    drag(window.canvas, [(40, 40), (80, 40)])
    assert window.dirty_documents() and window.isWindowModified()
    assert window.save_current()
    qtbot.wait(20)
    assert not window.isWindowModified()

    # A save that fails leaves the edit unsaved, and marked.
    drag(window.canvas, [(40, 60), (80, 60)])

    def full_disk(*_args, **_kwargs):
        raise OSError("No space left on device")

    monkeypatch.setattr(window.workspace, "save_labels", full_disk)
    assert not window.save_current()
    qtbot.wait(20)
    assert window.doc.save_failed and window.isWindowModified()


# -- 9: one way of counting frames ---------------------------------------------------------------
def test_a_video_frame_has_the_same_number_in_the_dock_status_bar_and_spin_boxes(window, tmp_path,
                                                                                 qtbot):
    import cv2

    folder = tmp_path / "clip"
    folder.mkdir()
    writer = cv2.VideoWriter(str(folder / "walk.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 10.0,
                             (64, 48))
    for i in range(12):
        writer.write(np.full((48, 64, 3), 20 * i, np.uint8))
    writer.release()
    assert window.open_paths([folder])
    panel = window.video
    panel.go_to(3)                                            # the fourth frame (index 3)
    qtbot.waitUntil(lambda: window.doc.item.frame == 3)
    assert "frame 4 of 12" in panel.title.text()
    assert "frame 4 of 12" in window.statusBar().currentMessage()
    assert panel.frame_spin.text() == "4"
    assert (panel.first_spin.text(), panel.last_spin.text()) == ("1", "12")
    assert "(frame 4)" in window.files.model.data(window.files.model.index(3),
                                                  Qt.ItemDataRole.ToolTipRole)
    # Typing a frame number means the same frame.
    panel.frame_spin.setFocus()
    panel.frame_spin.selectAll()
    qtbot.keyClicks(panel.frame_spin, "10")
    qtbot.keyClick(panel.frame_spin, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: window.doc.item.frame == 9)
    assert "frame 10 of 12" in panel.title.text()
    assert window.doc.item.id == "walk_000009"               # the label file keeps the index


# -- 11: a 720 px screen ---------------------------------------------------------------------------
@pytest.fixture
def desktop_font(qapp):
    """An 11 pt interface font, as desktops use (the headless default is 9 pt)."""
    old = QFont(qapp.font())
    font = QFont(old)
    font.setPointSizeF(11.0)
    qapp.setFont(font)
    yield font
    qapp.setFont(old)


def _new_window(qtbot, settings):
    from segstudio.ui.main_window import MainWindow

    win = MainWindow(settings=settings)
    win.interactive = False
    win.discard_changes_on_close = True
    qtbot.addWidget(win)
    return win


def test_the_window_fits_a_720_px_screen_and_remembers_its_size(desktop_font, qtbot, tmp_path):
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    screen = QRect(0, 0, 1280, 720)
    win = _new_window(qtbot, settings)
    win.place_on(screen)                           # first start: the 1280×800 default, cut
    win.show()
    qtbot.waitExposed(win)
    qtbot.waitUntil(lambda: win.isVisible())
    hint = win.minimumSizeHint()
    assert hint.width() <= 1200 and hint.height() <= 680, hint
    # Every part of the window is on that screen, title bar room included.
    assert screen.contains(win.geometry()) and win.height() <= 720 - 40
    status = win.statusBar()
    assert status.isVisible()
    assert screen.contains(QRect(status.mapTo(win, QPoint(0, 0)) + win.geometry().topLeft(),
                                 status.size()))
    # It can be made smaller than the screen, and opens at that size next time.
    win.resize(1000, 600)
    qtbot.waitUntil(lambda: (win.width(), win.height()) == (1000, 600))
    win.move(40, 30)
    win.close()
    again = _new_window(qtbot, settings)
    again.place_on(screen)
    assert (again.width(), again.height()) == (1000, 600)
    # A size remembered from a larger monitor is cut to this screen, and moved onto it.
    settings.setValue("window/rect", QRect(1500, 900, 1900, 1150))
    third = _new_window(qtbot, settings)
    third.place_on(screen)
    third.show()
    qtbot.waitExposed(third)
    assert screen.contains(third.geometry()), third.geometry()
    # An explicit --size is honoured where it fits.
    fourth = _new_window(qtbot, settings)
    fourth.place_on(screen, QSize(900, 560))
    assert (fourth.width(), fourth.height()) == (900, 560)
    # With a video's timeline open under the canvas too.
    import cv2

    (tmp_path / "clip").mkdir()
    writer = cv2.VideoWriter(str(tmp_path / "clip" / "c.avi"),
                             cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (64, 48))
    for i in range(3):
        writer.write(np.full((48, 64, 3), 60 * i, np.uint8))
    writer.release()
    fourth.show()
    assert fourth.open_paths([tmp_path / "clip"])
    qtbot.waitUntil(fourth.video.dock.isVisible)
    hint = fourth.minimumSizeHint()
    assert hint.width() <= 1200 and hint.height() <= 680, hint


# -- 12: the pixel readout, passing notices, seeds -------------------------------------------------
@pytest.fixture
def at_1280(window, image_folder, qtbot):
    window.resize(1280, 720)
    qtbot.waitUntil(lambda: window.width() == 1280)
    assert window.open_paths([image_folder])
    return window


def test_the_pixel_readout_is_whole_on_a_16_bit_image(at_1280, qtbot):
    window = at_1280
    window.show_row(2)                                       # the 16-bit picture
    qtbot.waitUntil(lambda: window.doc.item.id == "c_deep")
    move(window.canvas, 150.5, 60.5, held=False)
    readout = window.pixel_label
    whole = readout.toolTip()
    assert whole.startswith("x 150, y 60") and "shown" in whole and whole.endswith("(background)")
    assert readout.text() == whole                           # nothing cut off
    assert readout.fontMetrics().horizontalAdvance(whole) <= readout.width()
    assert "Nothing to undo" not in window.statusBar().currentMessage()
    window.undo()                                            # messages keep their room
    room = min(w.x() for w in (readout, window.zoom_label, window.device_label))
    assert window.statusBar().fontMetrics().horizontalAdvance("Nothing to undo") < room


def test_a_long_readout_keeps_position_and_class_and_tells_the_rest_in_its_tooltip(
        at_1280, qtbot):
    window = at_1280
    window.resize(700, 600)
    qtbot.waitUntil(lambda: window.width() <= 760)
    readout = window.pixel_label
    readout.show_readout("x 150, y 60", "stored 12345   modality -1234.5 HU   shown 200",
                         "class 3 (a class with a rather long descriptive name)")
    assert readout.text().startswith("x 150, y 60") and readout.text().endswith("name)")
    assert "…" in readout.text()
    assert readout.toolTip() == ("x 150, y 60   stored 12345   modality -1234.5 HU   shown 200"
                                 "   class 3 (a class with a rather long descriptive name)")
    assert readout.fontMetrics().horizontalAdvance(readout.text()) <= readout.width()


def test_saved_goes_by_itself_and_an_error_stays(at_1280, qtbot):
    window = at_1280
    notice = window.notice
    notice.passing_ms = 300
    window.legend.select_class(1)
    drag(window.canvas, [(10, 10), (40, 10)])
    assert window.save_current()
    assert notice.isVisible() and "Saved" in notice.text()
    qtbot.waitUntil(lambda: not notice.isVisible(), timeout=5000)
    window.show_error("The labels could not be written: disk full")
    qtbot.wait(2500)
    assert notice.isVisible() and "disk full" in notice.text()
    qtbot.mouseClick(notice.close_button, Qt.MouseButton.LeftButton)
    assert not notice.isVisible()


def _grey_image(folder, value):
    folder.mkdir()
    Image.fromarray(np.full((120, 160), value, np.uint8)).save(folder / "plain.png")


def _stroke_column(window, qtbot, cls, y=60):
    grow = window.smart.grow
    grow.start()
    window.tools["Grow from seeds"].set_size(9)
    window.legend.select_class(cls)
    drag(window.canvas, [(30, y), (130, y)])
    qtbot.waitUntil(window.is_idle, timeout=30_000)
    canvas = window.canvas
    shot = canvas.grab().toImage()
    ratio = shot.width() / canvas.width()
    top = canvas.to_widget(QPoint(80, y - 4).toPointF())        # the stroke's upper edge
    x = round(top.x() * ratio)
    edge = round(top.y() * ratio)
    above = [shot.pixelColor(x, edge - k).lightness() for k in range(1, 6)]
    inside = shot.pixelColor(x, round(canvas.to_widget(QPoint(80, y).toPointF()).y()
                                      * ratio)).lightness()
    return above, inside, ratio


def test_background_seeds_are_ringed_so_they_show_on_a_dark_image(window, tmp_path, qtbot):
    _grey_image(tmp_path / "dark", 25)                       # dark lungs
    assert window.open_paths([tmp_path / "dark"])
    window.canvas.zoom_by(2.0)
    above, inside, ratio = _stroke_column(window, qtbot, 0)   # black: the background class
    assert inside < 20                                        # the seed itself is black …
    light = [v for v in above if v > 180]
    assert len(light) >= 2 * ratio, above                    # … in a light ring ≥ 2 px wide


def test_seeds_of_a_light_class_get_a_dark_ring_on_a_bright_image(window, tmp_path, qtbot):
    from segstudio.core.classes import ClassSet

    _grey_image(tmp_path / "bright", 235)
    assert window.open_paths([tmp_path / "bright"])
    window.set_classes(ClassSet(["background", "bone"], [(0, 0, 0), (250, 250, 230)]))
    window.canvas.zoom_by(2.0)
    above, inside, ratio = _stroke_column(window, qtbot, 1)
    assert inside > 220
    dark = [v for v in above if v < 60]
    assert len(dark) >= 2 * ratio, above
