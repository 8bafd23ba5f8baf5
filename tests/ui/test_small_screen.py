"""The window at 1280×720: the branch grid fills its dock's width without nested scrolling,
the class legend keeps its rows with the Video dock open, and the F1 sheet fits the screen."""

import numpy as np
import pytest
import torch
from PIL import Image
from PySide6.QtCore import QRect, Qt
from PySide6.QtWidgets import QScrollArea

torch.set_num_threads(1)


def _at_720(window, qtbot):
    window.resize(1280, 720)
    qtbot.waitUntil(lambda: window.width() == 1280 and window.height() == 720)


def _wait(qtbot, window):
    qtbot.waitUntil(lambda: not window.explain.session.busy and window.is_idle(), timeout=90000)


def test_branch_grid_adapts_its_columns_and_keeps_its_rows_after_a_click(window, image_folder,
                                                                        qtbot):
    _at_720(window, qtbot)
    assert window.open_paths([image_folder])
    dock = window.explain
    dock.parentWidget().raise_()
    combo = dock.picker.combo
    combo.setCurrentIndex(combo.findData("pspnet"))
    dock.picker.config_combo.setCurrentText("lite")
    dock.show_view(dock.branches)
    grid = dock.branches
    assert grid.show_grid()
    _wait(qtbot, window)
    qtbot.waitUntil(lambda: all(b.isVisible() for b in grid.thumbnails))
    assert not grid.findChildren(QScrollArea), "a scroll area inside the tab's scroll area"

    def per_row():
        tops = [b.geometry().top() for b in grid.thumbnails]
        return tops.count(tops[0])

    # Every row as full as the width allows: one more thumbnail would not fit.
    width = grid.width()
    first = grid.thumbnails[0].geometry()
    assert per_row() == grid.columns >= 2
    assert (grid.columns + 1) * first.width() > width - first.left()
    viewport = dock.tabs.currentWidget().viewport()
    assert grid.thumbnails[grid.columns - 1].geometry().right() <= viewport.width()

    heights = grid.grid_host.height()
    qtbot.mouseClick(grid.thumbnails[1], Qt.MouseButton.LeftButton)
    _wait(qtbot, window)
    assert grid.contribution is not None
    # No collapse to a strip (given the layout a moment to settle on a loaded machine).
    qtbot.waitUntil(lambda: grid.grid_host.height() >= heights, timeout=5000)
    assert per_row() == grid.columns

    # A wider dock holds more columns.
    narrow = grid.columns
    dock.parentWidget().setFloating(True)
    dock.parentWidget().resize(1100, 600)
    qtbot.waitUntil(lambda: grid.columns > narrow, timeout=5000)


def test_legend_keeps_its_rows_with_the_video_dock_open(window, tmp_path, qtbot):
    import cv2

    _at_720(window, qtbot)
    folder = tmp_path / "clip"
    folder.mkdir()
    writer = cv2.VideoWriter(str(folder / "c.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 10.0,
                             (64, 48))
    for i in range(4):
        writer.write(np.full((48, 64, 3), 40 * i, np.uint8))
    writer.release()
    legend_dock = window.legend.parentWidget()
    before = legend_dock.height()
    assert window.open_paths([folder])
    qtbot.waitUntil(lambda: window.video.dock.isVisible())
    qtbot.wait(50)
    # The Video dock sits under the canvas: the right column keeps its height.
    assert window.video.dock.geometry().right() < legend_dock.geometry().left()
    assert legend_dock.height() >= before - 2


def test_f1_sheet_is_grouped_with_gestures_and_fits_the_screen(window, qtbot):
    from segstudio.ui.dialogs.shortcut_sheet import ShortcutSheet

    _at_720(window, qtbot)
    sheet = ShortcutSheet(window)
    qtbot.addWidget(sheet)
    groups = list(sheet.rows)
    for task in ("Navigate and files", "Paint", "Classes", "Model", "Video", "Review",
                 "Teaching"):
        assert task in groups
    flat = {what: (group, keys) for group, rows in sheet.rows.items() for keys, what in rows}
    assert flat["Undo"][0] == "Paint" and flat["Review mode"] == ("Review", "F2")
    assert flat["Next frame"] == ("Video", ".")
    assert flat["Run on this image"][0] == "Model"
    assert flat["Receptive field tool"] == ("Teaching", "I")
    assert flat["Class 0 … 9"] == ("Classes", "0 … 9")
    keys = {keys for rows in sheet.rows.values() for keys, _ in rows}
    for gesture in ("Right-drag", "Middle-drag, Space+drag", "Shift+drag (Eraser)",
                    "Ctrl+wheel, Ctrl+drag"):
        assert gesture in keys
    # Generated from the actions: a shortcut added later shows up.
    window._action("Something new", lambda: None, "Ctrl+Alt+J")
    assert ("Ctrl+Alt+J", "Something new") in [r for rows in ShortcutSheet(window).rows.values()
                                               for r in rows]

    room = QRect(0, 0, 1280, 720 - 40)               # a 720 px screen less a panel
    sheet.fit_to(room)
    sheet.show()
    qtbot.waitExposed(sheet)
    assert sheet.height() <= room.height() and sheet.width() <= room.width()
    button = sheet.close_button
    assert button.isVisible()
    assert sheet.rect().contains(button.geometry().translated(
        button.parentWidget().mapTo(sheet, button.parentWidget().rect().topLeft())))
    # The list is taller than such a screen, so it scrolls.
    assert sheet.scroll.widget().sizeHint().height() > sheet.height()
    assert sheet.scroll.verticalScrollBar().maximum() > 0
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    assert not sheet.isVisible()

