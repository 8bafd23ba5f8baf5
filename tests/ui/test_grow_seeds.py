"""Smart ▸ Grow from seeds through the real window: seed strokes, background preview, Accept
as one undo step, Esc; the outline clean-ups; GrabCut on a 16-bit image says what it changed."""

from __future__ import annotations

import numpy as np
from PIL import Image
from PySide6.QtCore import Qt

from helpers import drag

SHIFT = Qt.KeyboardModifier.ShiftModifier
CTRL = Qt.KeyboardModifier.ControlModifier


def _discs(folder, deep=False):
    """Two noisy discs (classes 1 and 2) on a darker field, as 8-bit or 16-bit grey."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:120, 0:160]
    truth = np.zeros((120, 160), np.uint8)
    truth[(xx - 45) ** 2 + (yy - 45) ** 2 < 25 ** 2] = 1
    truth[(xx - 110) ** 2 + (yy - 75) ** 2 < 30 ** 2] = 2
    image = np.choose(truth, [60.0, 140.0, 210.0]) + rng.normal(0, 12, truth.shape)
    if deep:
        image = np.clip(image * 128, 0, 65535).astype(np.uint16)
    else:
        image = np.clip(image, 0, 255).astype(np.uint8)
    folder.mkdir(exist_ok=True)
    Image.fromarray(image).save(folder / "discs.png")
    return truth


def _status(window) -> str:
    return window.statusBar().currentMessage()


def test_grow_from_seeds_previews_in_the_background_and_accepts_as_one_undo_step(
        window, tmp_path, qtbot):
    truth = _discs(tmp_path / "imgs")
    window.open_paths([tmp_path / "imgs"])
    doc, grow = window.doc, window.smart.grow
    qtbot.keyClick(window.canvas, Qt.Key.Key_S, SHIFT)
    assert window.canvas.tool.name == "Grow from seeds" and grow.active
    assert grow.bar.isVisible()
    window.legend.select_class(1)
    drag(window.canvas, [(40, 45), (50, 46)])
    qtbot.waitUntil(window.is_idle, timeout=30_000)
    assert grow.preview is None and "another class" in _status(window)
    window.legend.select_class(2)
    drag(window.canvas, [(105, 75), (115, 80)])
    window.legend.select_class(0)
    drag(window.canvas, [(5, 110), (60, 112)])
    qtbot.waitUntil(lambda: window.is_idle() and grow.preview is not None
                    and (grow.seeds.array == 0).any() and grow.task is None, timeout=30_000)
    qtbot.waitUntil(window.is_idle, timeout=30_000)
    # Seeds show on top, outlined so the black background seeds show on the dark field.
    mask = grow._seed_mask.image
    assert mask.pixelColor(20, 111).alpha() > 0 and mask.pixelColor(20, 60).alpha() == 0
    # The preview is on screen; the labels themselves are untouched until Accept.
    assert window.canvas._overlay is grow._preview_overlay.image
    assert (grow.preview == truth).mean() > 0.99
    assert not doc.labels.array.any() and not doc.dirty
    assert "preview" in _status(window)

    qtbot.keyClick(window.canvas, Qt.Key.Key_Return, CTRL)
    qtbot.waitUntil(lambda: not grow.active, timeout=30_000)
    assert (doc.labels.array == truth).mean() > 0.99
    assert "pixels changed" in _status(window)
    assert window.canvas._overlay is doc.overlay.image and window.canvas.tool.name == "Brush"
    grown = np.array(doc.labels.array)
    qtbot.keyClick(window.canvas, Qt.Key.Key_Z, CTRL)            # one step undoes it all
    assert not doc.labels.array.any()
    window.redo()
    assert (doc.labels.array == grown).all()


def test_moving_a_seed_regrows_and_escape_cancels_without_touching_labels(
        window, tmp_path, qtbot):
    _discs(tmp_path / "imgs")
    window.open_paths([tmp_path / "imgs"])
    doc, grow = window.doc, window.smart.grow
    window.smart.grow.start()
    window.legend.select_class(1)
    drag(window.canvas, [(40, 45), (50, 46)])
    window.legend.select_class(0)
    drag(window.canvas, [(105, 75), (115, 80)])              # "background" inside disc 2
    qtbot.waitUntil(lambda: window.is_idle() and grow.preview is not None, timeout=30_000)
    assert (grow.preview[75, 110]) == 0
    # Move that seed: rub it out with Shift, paint class 2 there instead, and a real
    # background seed in the corner.
    drag(window.canvas, [(105, 75), (115, 80)], SHIFT)
    assert not (grow.seeds.array == 0).any() and (grow.seeds.array == 1).any()
    # Ctrl+Z takes back seed strokes here (the rubbing out), not label edits.
    qtbot.keyClick(window.canvas, Qt.Key.Key_Z, CTRL)
    assert (grow.seeds.array == 0).any()
    qtbot.keyClick(window.canvas, Qt.Key.Key_Z, CTRL | SHIFT)
    assert not (grow.seeds.array == 0).any()
    qtbot.waitUntil(lambda: window.is_idle() and grow.task is None, timeout=30_000)
    window.legend.select_class(2)
    drag(window.canvas, [(108, 72), (112, 78)])
    window.legend.select_class(0)
    drag(window.canvas, [(5, 110), (60, 112)])
    qtbot.waitUntil(lambda: window.is_idle() and grow.preview is not None
                    and grow.preview[75, 110] == 2 and grow.task is None, timeout=30_000)
    assert grow.preview[5, 5] == 0
    qtbot.keyClick(window.canvas, Qt.Key.Key_Escape)
    assert not grow.active and not grow.bar.isVisible()
    assert "cancelled" in _status(window)
    assert not doc.labels.array.any() and not doc.dirty
    assert window.canvas._overlay is doc.overlay.image
    assert window.undo_action.isEnabled() and not grow.undo_seed_action.isEnabled()


def test_outline_clean_ups_are_one_undo_step_each_and_say_what_they_changed(
        window, tmp_path, qtbot):
    _discs(tmp_path / "imgs")
    window.open_paths([tmp_path / "imgs"])
    doc = window.doc
    window.legend.select_class(3)
    blob = np.zeros(doc.labels.shape, bool)
    blob[20:60, 20:60] = True
    blob[80:84, 100:104] = True                   # a second, smaller region
    doc.labels.paint_mask(blob, 3)
    start = np.array(doc.labels.array)
    assert window.smart.keep_largest()
    qtbot.waitUntil(window.is_idle, timeout=30_000)
    assert not (doc.labels.array[80:84, 100:104] == 3).any()
    assert window.smart.last_changed == 16 and "16 pixels changed" in _status(window)
    assert window.smart.margin(3)
    qtbot.waitUntil(window.is_idle, timeout=30_000)
    assert (doc.labels.array[17:63, 20:60] == 3).all() and doc.labels.array[16, 40] == 0
    assert window.smart.smooth("opening", 9)
    qtbot.waitUntil(window.is_idle, timeout=30_000)
    assert window.smart.last_changed > 0                  # the square's corners are rounded
    for _ in range(3):
        window.undo()
    assert (doc.labels.array == start).all()


def test_smoothing_dialog_gives_an_odd_kernel(window, qtbot):
    from segstudio.ui.controllers.smart_tools import SmoothDialog

    dialog = SmoothDialog("closing", 7, window)
    qtbot.addWidget(dialog)
    assert dialog.method() == "closing" and dialog.size() == 7
    dialog.size_spin.setValue(10)
    assert dialog.size() == 11


def test_grabcut_on_a_16_bit_image_changes_pixels_and_says_how_many(window, tmp_path, qtbot):
    truth = _discs(tmp_path / "deep", deep=True)
    window.open_paths([tmp_path / "deep"])
    doc = window.doc
    assert doc.image.pixels.dtype != np.uint8
    window.legend.select_class(2)
    qtbot.keyClick(window.canvas, Qt.Key.Key_G)
    drag(window.canvas, [(76, 41), (110, 75), (144, 109)])
    qtbot.waitUntil(window.is_idle, timeout=30_000)
    painted = doc.labels.array == 2
    assert (painted & (truth == 2)).sum() / (painted | (truth == 2)).sum() > 0.85
    assert window.smart.last_changed == painted.sum()
    assert f"GrabCut: {painted.sum():,} pixels changed" in _status(window)


def test_showing_another_image_ends_the_session_and_the_actions_are_listed(
        window, tmp_path, qtbot):
    _discs(tmp_path / "imgs")
    Image.fromarray(np.zeros((50, 70), np.uint8)).save(tmp_path / "imgs" / "plain.png")
    window.open_paths([tmp_path / "imgs"])
    grow = window.smart.grow
    first = window.doc
    grow.start()
    window.legend.select_class(1)
    drag(window.canvas, [(40, 45), (50, 46)])
    window.legend.select_class(0)
    drag(window.canvas, [(5, 110), (60, 112)])
    window.show_row(1)
    assert not grow.active and "the image changed" in _status(window)
    qtbot.waitUntil(window.is_idle, timeout=30_000)
    assert not first.labels.array.any() and not first.dirty
    assert window.canvas._overlay is window.doc.overlay.image
    # Real actions with keys and explanations, so the shortcut sheet lists them.
    tool = window.tool_actions["Grow from seeds"]
    assert tool.shortcut().toString() == "Shift+S" and "seeds" in tool.toolTip()
    assert grow.accept_action.shortcut().toString() == "Ctrl+Return"
    assert grow.accept_action.iconText() == "Accept"          # the tool bar's button
    assert all(a in window.actions() for a in (tool, grow.accept_action, grow.cancel_action))
    smart = next(m for m in window.menuBar().findChildren(type(window.help_menu))
                 if m.title() == "&Smart")
    assert {tool, grow.accept_action} <= set(smart.actions())


def test_grabcut_that_changes_nothing_says_so_and_why(window, tmp_path, qtbot):
    _discs(tmp_path / "deep", deep=True)
    window.open_paths([tmp_path / "deep"])
    doc = window.doc
    window.legend.select_class(0)            # painting background over background
    assert window.smart.grabcut_box((76, 41, 144, 109))
    qtbot.waitUntil(window.is_idle, timeout=30_000)
    assert window.smart.last_changed == 0 and not doc.labels.array.any()
    assert "GrabCut changed no pixels: nothing in the box" in _status(window)
