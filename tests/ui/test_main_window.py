import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QPointF, Qt

from helpers import click, drag, move, wheel, widget_pos
from segstudio.io.workspace import ItemStatus


def _open(window, folder, qtbot):
    assert window.open_paths([folder])
    qtbot.waitUntil(lambda: window.doc is not None)
    return window.doc


def test_opening_a_folder_lists_its_images_and_shows_the_first(window, image_folder, qtbot):
    doc = _open(window, image_folder, qtbot)
    assert window.files.model.rowCount() == 3
    assert doc.item.id == "a_gradient"
    assert window.canvas.image_size == (160, 120)


def test_brush_paints_the_current_class_along_a_fast_stroke(window, image_folder, qtbot):
    doc = _open(window, image_folder, qtbot)
    window.set_tool("Brush")
    window.tools["Brush"].set_size(5)
    window.legend.select_class(2)
    drag(window.canvas, [(10, 60), (150, 60)])     # one jump across the image
    row = doc.labels.array[60]
    assert (row[10:150] == 2).all()
    assert doc.labels.array[40].max() == 0
    assert len(doc.labels.history) == 1            # a stroke is one undo step


def test_undo_and_redo_shortcuts_restore_the_map(window, image_folder, qtbot):
    doc = _open(window, image_folder, qtbot)
    window.legend.select_class(1)
    drag(window.canvas, [(20, 20), (60, 20)])
    painted = doc.labels.array.copy()
    qtbot.keyClick(window.canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert doc.labels.array.max() == 0
    qtbot.keyClick(window.canvas, Qt.Key.Key_Z,
                   Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    np.testing.assert_array_equal(doc.labels.array, painted)


def test_eraser_paints_background_and_void_with_shift(window, image_folder, qtbot):
    doc = _open(window, image_folder, qtbot)
    window.legend.select_class(3)
    window.tools["Brush"].set_size(9)
    drag(window.canvas, [(30, 30), (100, 30)])
    window.set_tool("Eraser")
    window.tools["Eraser"].set_size(3)
    drag(window.canvas, [(50, 30), (52, 30)])
    assert doc.labels.array[30, 51] == 0
    drag(window.canvas, [(80, 30), (82, 30)], Qt.KeyboardModifier.ShiftModifier)
    assert doc.labels.array[30, 81] == 255


def test_fill_and_polygon_tools(window, image_folder, qtbot):
    doc = _open(window, image_folder, qtbot)
    window.legend.select_class(1)
    window.set_tool("Polygon")
    for x, y in [(20, 20), (60, 20), (60, 50), (20, 50)]:
        click(window.canvas, x + 0.5, y + 0.5)
    qtbot.keyClick(window.canvas, Qt.Key.Key_Return)
    assert (doc.labels.array[20:51, 20:61] == 1).all()
    assert doc.labels.class_counts()[1] == 41 * 31
    window.legend.select_class(2)
    window.set_tool("Fill")
    click(window.canvas, 30, 30)                   # inside the polygon: fills just it
    assert doc.labels.class_counts()[2] == 41 * 31
    assert doc.labels.array[5, 5] == 0


def test_wheel_zooms_about_the_cursor(window, image_folder, qtbot):
    _open(window, image_folder, qtbot)
    canvas = window.canvas
    anchor = widget_pos(canvas, 40, 30)
    before = canvas.scale
    wheel(canvas, anchor.x(), anchor.y(), 2)
    assert canvas.scale == pytest.approx(before * 1.25 ** 2)
    after = canvas.to_image(anchor)
    assert after.x() == pytest.approx(40, abs=1e-6) and after.y() == pytest.approx(30, abs=1e-6)
    canvas.fit_to_window()
    assert canvas.scale == pytest.approx(before)


def test_ctrl_wheel_and_brackets_resize_the_brush(window, image_folder, qtbot):
    _open(window, image_folder, qtbot)
    brush = window.tools["Brush"]
    brush.set_size(20)
    wheel(window.canvas, 100, 100, 1, Qt.KeyboardModifier.ControlModifier)
    assert brush.size == 23
    qtbot.keyClick(window.canvas, Qt.Key.Key_BracketLeft)
    assert brush.size < 23


def test_status_bar_shows_the_pixel_under_the_cursor(window, image_folder, qtbot):
    _open(window, image_folder, qtbot)
    window.legend.select_class(2)
    drag(window.canvas, [(70, 40), (71, 40)])
    move(window.canvas, 70.5, 40.5, held=False)
    text = window.pixel_label.text()
    assert "x 70, y 40" in text
    assert f"value {(70 + 40) % 256}" in text
    assert "heart" in text


def test_sixteen_bit_values_are_shown_raw(window, image_folder, qtbot):
    _open(window, image_folder, qtbot)
    window.show_row(2)
    move(window.canvas, 100.5, 10.5, held=False)
    assert "value 40000" in window.pixel_label.text()


def test_legend_hides_renames_and_shows_shares(window, image_folder, qtbot):
    doc = _open(window, image_folder, qtbot)
    window.legend.select_class(1)
    window.tools["Brush"].set_size(40)
    drag(window.canvas, [(80, 60), (81, 60)])
    window.refresh_counts()
    share = float(window.legend.share_text(1).rstrip("%"))
    expected = 100.0 * doc.labels.class_counts()[1] / doc.labels.array.size
    assert share == pytest.approx(expected, abs=0.06)
    x, y = 80, 60
    pixel_before = window.doc.overlay.image.pixel(x, y)
    window.legend.set_hidden(1, True)
    assert 1 in window.hidden and window.doc.overlay.image.pixel(x, y) == 0
    assert pixel_before != 0
    window.legend.rename_class(1, "lung fields")
    assert window.classes[1].name == "lung fields"


def test_overlay_toggle_key_and_modes(window, image_folder, qtbot):
    _open(window, image_folder, qtbot)
    assert window.canvas.overlay_visible
    qtbot.keyClick(window.canvas, Qt.Key.Key_V)
    assert not window.canvas.overlay_visible
    window.mode_combo.setCurrentIndex(1)   # contour
    assert window.doc.overlay.mode.value == "contour"


def test_number_keys_pick_the_class(window, image_folder, qtbot):
    _open(window, image_folder, qtbot)
    qtbot.keyClick(window.canvas, Qt.Key.Key_3)
    assert window.current_class() == 3


def test_save_writes_a_palette_png_and_marks_the_item_corrected(window, image_folder, qtbot):
    doc = _open(window, image_folder, qtbot)
    window.legend.select_class(2)
    drag(window.canvas, [(10, 10), (30, 10)])
    assert doc.dirty
    assert window.save_current()
    assert not doc.dirty
    path = window.workspace.label_path(doc.item)
    saved = Image.open(path)
    assert saved.mode == "P"
    np.testing.assert_array_equal(np.array(saved), doc.labels.array)
    assert doc.item.status == ItemStatus.CORRECTED


def test_next_and_previous_keep_each_items_edits(window, image_folder, qtbot):
    doc = _open(window, image_folder, qtbot)
    window.legend.select_class(1)
    drag(window.canvas, [(10, 10), (30, 10)])
    qtbot.keyClick(window.canvas, Qt.Key.Key_D)
    assert window.doc.row == 1 and window.doc.labels.array.max() == 0
    qtbot.keyClick(window.canvas, Qt.Key.Key_A)
    assert window.doc is doc and doc.labels.array[10, 20] == 1
    qtbot.keyClick(window.canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert doc.labels.array.max() == 0              # undo history kept per image


def test_an_item_pushed_out_of_the_kept_documents_is_saved_not_lost(window, image_folder, qtbot):
    for i in range(3, 6):                        # six items, room for two kept documents
        Image.fromarray(np.full((40, 50), 30 * i, np.uint8)).save(image_folder / f"d{i}.png")
    first = _open(window, image_folder, qtbot)
    window.documents.kept.limit = 2
    window.legend.select_class(1)
    drag(window.canvas, [(10, 10), (30, 10)])
    edited = first.labels.array.copy()
    for row in (1, 2):
        window.show_row(row)
    assert window.document_for(0) is first and first.dirty   # kept, still unsaved
    window.show_row(3)                                        # row 0 is now the oldest of three
    assert window.document_for(0) is None and not first.dirty
    assert first.item.status == ItemStatus.CORRECTED
    np.testing.assert_array_equal(np.array(Image.open(window.workspace.label_path(first.item))),
                                  edited)
    window.show_row(0)                                        # read back from the saved file
    assert window.doc is not first
    np.testing.assert_array_equal(window.doc.labels.array, edited)


def test_a_corrupt_file_gives_a_message_and_the_rest_still_opens(window, image_folder, qtbot):
    (image_folder / "d_broken.png").write_bytes(b"\x89PNG\r\n\x1a\nthis is not a png")
    _open(window, image_folder, qtbot)
    assert not window.show_row(3)
    assert "d_broken.png" in window.statusBar().currentMessage()
    assert window.show_row(1)


def test_recent_files_remember_what_was_opened(window, image_folder, qtbot):
    _open(window, image_folder, qtbot)
    assert window.recent_paths()[0] == str(image_folder.resolve())


def test_right_drag_changes_the_display_window_not_the_data(window, image_folder, qtbot):
    from PySide6.QtCore import QEvent
    from PySide6.QtGui import QMouseEvent
    from PySide6.QtWidgets import QApplication

    _open(window, image_folder, qtbot)
    window.show_row(2)                                   # the 16-bit image
    doc = window.doc
    before = window.levels.current()
    pixels = doc.image.pixels.copy()
    canvas = window.canvas
    p0, p1 = QPointF(300, 300), QPointF(400, 250)
    for kind, pos, button, buttons in (
            (QEvent.Type.MouseButtonPress, p0, Qt.MouseButton.RightButton, Qt.MouseButton.RightButton),
            (QEvent.Type.MouseMove, p1, Qt.MouseButton.NoButton, Qt.MouseButton.RightButton),
            (QEvent.Type.MouseButtonRelease, p1, Qt.MouseButton.RightButton, Qt.MouseButton.NoButton)):
        QApplication.sendEvent(canvas, QMouseEvent(kind, pos, canvas.mapToGlobal(pos), button,
                                                   buttons, Qt.KeyboardModifier.NoModifier))
    centre, width = window.levels.current()
    assert width > before[1] and centre < before[0]     # right: wider; up: lower level
    np.testing.assert_array_equal(doc.image.pixels, pixels)
    qtbot.waitUntil(lambda: "Window: level" in window.statusBar().currentMessage())
    window.levels.reset()
    assert window.levels.current() == pytest.approx(before)


def test_paint_options_preserve_other_classes_and_threshold(window, image_folder, qtbot):
    doc = _open(window, image_folder, qtbot)
    window.legend.select_class(1)
    window.tools["Brush"].set_size(11)
    drag(window.canvas, [(20, 60), (140, 60)])            # a band of class 1
    opts = window.paint_options
    opts.only_box.setChecked(True)
    opts.only_class.setCurrentIndex(0)                     # paint only over background
    window.legend.select_class(2)
    window.tools["Brush"].set_size(31)
    drag(window.canvas, [(80, 20), (80, 100)])
    assert (doc.labels.array[60, 21:140] == 1).all()       # the band survived
    assert doc.labels.array[30, 80] == 2
    opts.only_box.setChecked(False)
    opts.range_box.setChecked(True)
    opts.low.setValue(200)
    opts.high.setValue(255)                                # gradient (x + y) % 256 in 200..255
    window.legend.select_class(3)
    window.tools["Brush"].set_size(61)
    drag(window.canvas, [(120, 100), (121, 100)])
    painted = doc.labels.array == 3
    ys, xs = np.nonzero(painted)
    assert painted.any() and (((xs + ys) % 256) >= 200).all()


def test_class_sets_load_save_add_and_persist(window, image_folder, qtbot, tmp_path):
    from segstudio.core.classes import voc21
    from segstudio.io.class_files import load_class_set
    from segstudio.io.workspace import Workspace

    _open(window, image_folder, qtbot)
    assert window.legend.add_button.isVisible()
    assert window.legend.add_class("nodule")
    assert window.classes.names[-1] == "nodule" and window.current_class() == 4
    path = tmp_path / "set.json"
    assert window.legend.save_classes(str(path))
    assert load_class_set(path) == window.classes
    window.legend.replace_classes(voc21())
    assert window.classes == voc21() and window.legend.table.rowCount() == 21
    window.ws_writer.flush()
    assert Workspace.open(image_folder).classes == voc21()      # recorded in the workspace
    assert window.legend.load_classes(str(path))
    assert window.classes.names[-1] == "nodule"
    (tmp_path / "bad.json").write_text("{}")
    assert not window.legend.load_classes(str(tmp_path / "bad.json"))
    assert "bad.json" in window.statusBar().currentMessage() or "class set" in \
        window.statusBar().currentMessage()


def test_ctrl_drag_sizes_the_brush_and_each_tool_keeps_its_size(window, image_folder, qtbot):
    doc = _open(window, image_folder, qtbot)
    brush, eraser = window.tools["Brush"], window.tools["Eraser"]
    brush.set_size(10)
    eraser.set_size(4)
    drag(window.canvas, [(50, 50), (60, 50), (70, 50)], Qt.KeyboardModifier.ControlModifier)
    assert brush.size == 50 and doc.labels.array.max() == 0     # sized, nothing painted
    window.set_tool("Eraser")
    assert window.canvas.tool.size == 4
    window.set_tool("Brush")
    assert window.canvas.tool.size == 50


def test_fill_connectivity_is_a_menu_choice(window, image_folder, qtbot):
    doc = _open(window, image_folder, qtbot)
    labels = np.ones((120, 160), np.uint8)
    labels[10, 10] = labels[11, 11] = 0                   # diagonal neighbours
    doc.labels.replace(labels)
    window.set_tool("Fill")
    window.legend.select_class(2)
    click(window.canvas, 10.5, 10.5)
    assert doc.labels.array[11, 11] == 0
    qtbot.keyClick(window.canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    act = next(a for a in window.actions() if a.text().startswith("Fill through diagonal"))
    act.trigger()
    click(window.canvas, 10.5, 10.5)
    assert doc.labels.array[11, 11] == 2
