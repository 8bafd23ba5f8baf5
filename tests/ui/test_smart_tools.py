import numpy as np
from PySide6.QtCore import Qt

from helpers import drag

OBJECT = (slice(30, 60), slice(40, 90))      # the green box of b_picture.png


def _truth(shape):
    t = np.zeros(shape, bool)
    t[OBJECT] = True
    return t


def _iou(a, b):
    return (a & b).sum() / (a | b).sum()


def _open_picture(window, image_folder, qtbot):
    window.open_paths([image_folder])
    window.show_row(1)
    return window.doc


def test_grabcut_box_tool_takes_the_object_in_the_dragged_box(window, image_folder, qtbot):
    doc = _open_picture(window, image_folder, qtbot)
    window.legend.select_class(2)
    qtbot.keyClick(window.canvas, Qt.Key.Key_G)
    assert window.canvas.tool.name == "GrabCut box"
    drag(window.canvas, [(33, 24), (70, 50), (96, 66)])
    qtbot.waitUntil(window.is_idle, timeout=30_000)
    assert _iou(doc.labels.array == 2, _truth(doc.labels.shape)) > 0.9
    qtbot.keyClick(window.canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert doc.labels.array.max() == 0


def test_grabcut_refine_tightens_a_rough_region(window, image_folder, qtbot):
    doc = _open_picture(window, image_folder, qtbot)
    window.legend.select_class(1)
    rough = np.zeros(doc.labels.shape, bool)
    rough[24:67, 33:97] = True
    doc.labels.paint_mask(rough, 1)
    before = _iou(doc.labels.array == 1, _truth(doc.labels.shape))
    assert window.smart.grabcut_refine()
    qtbot.waitUntil(window.is_idle, timeout=30_000)
    assert _iou(doc.labels.array == 1, _truth(doc.labels.shape)) > max(before, 0.9)


def test_remove_islands_and_fill_holes(window, image_folder, qtbot):
    doc = _open_picture(window, image_folder, qtbot)
    window.legend.select_class(3)
    blob = np.zeros(doc.labels.shape, bool)
    blob[10:70, 10:70] = True
    blob[30:35, 30:35] = False                        # a 25-pixel hole
    blob[80:83, 100:103] = True                       # a 9-pixel island
    doc.labels.paint_mask(blob, 3)
    assert window.smart.remove_islands(20)
    qtbot.waitUntil(window.is_idle, timeout=30_000)
    assert (doc.labels.array[80:83, 100:103] == 0).all()
    assert window.smart.fill_holes()
    qtbot.waitUntil(window.is_idle, timeout=30_000)
    assert (doc.labels.array[30:35, 30:35] == 3).all()
    assert (doc.labels.array[10:70, 10:70] == 3).all()


def test_dense_crf_runs_in_its_own_process_and_snaps_to_edges(window, image_folder, qtbot):
    doc = _open_picture(window, image_folder, qtbot)
    rough = np.zeros(doc.labels.shape, bool)
    rough[26:64, 36:94] = True                        # 4 px too large on every side
    doc.labels.paint_mask(rough, 2)
    before = _iou(doc.labels.array == 2, _truth(doc.labels.shape))
    assert window.smart.run_crf("labels")
    qtbot.waitUntil(window.is_idle, timeout=60_000)
    after = _iou(doc.labels.array == 2, _truth(doc.labels.shape))
    assert after > before
    assert f"{window.smart.last_changed:,} pixels changed" in window.statusBar().currentMessage()
    assert window.smart.last_changed > 0
    assert window.smart.crf is not None and window.smart.crf.pid is not None


def test_crf_settings_round_trip(window, qtbot):
    from segstudio.refine.crf import CrfParams
    from segstudio.ui.controllers.smart_tools import CrfSettingsDialog

    dialog = CrfSettingsDialog(CrfParams(iterations=7), window)
    qtbot.addWidget(dialog)
    assert dialog.params().iterations == 7
    dialog.spins["bilateral_srgb"].setValue(4.0)
    dialog.restore_defaults()
    assert dialog.params() == CrfParams()
