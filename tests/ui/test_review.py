from PySide6.QtCore import Qt

from helpers import drag
from segstudio.io.workspace import ItemStatus, Workspace


def test_review_mode_accepts_and_rejects_with_keys(window, image_folder, qtbot):
    window.open_paths([image_folder])
    ws = window.workspace
    qtbot.keyClick(window.canvas, Qt.Key.Key_F2)
    assert window.review.active and window.canvas.tool is None
    drag(window.canvas, [(10, 10), (50, 50)])                 # no tool: nothing painted
    assert window.doc.labels.array.max() == 0
    qtbot.keyClick(window.canvas, Qt.Key.Key_Y)               # accept item 0
    assert ws.items[0].status is ItemStatus.REVIEWED
    assert window.doc.row == 1
    window.ws_writer.flush()
    assert Workspace.open(image_folder).items[0].status is ItemStatus.REVIEWED   # saved at once
    assert (ws.load_labels(ws.items[0]) == 0).all()
    qtbot.keyClick(window.canvas, Qt.Key.Key_X)               # reject item 1: edit it
    assert not window.review.active and window.canvas.tool.name == "Brush"
    window.legend.select_class(1)
    drag(window.canvas, [(10, 10), (50, 50)])
    qtbot.keyClick(window.canvas, Qt.Key.Key_S, Qt.KeyboardModifier.ControlModifier)
    assert ws.items[1].status is ItemStatus.CORRECTED
    qtbot.keyClick(window.canvas, Qt.Key.Key_N)               # next unreviewed
    assert window.doc.row == 2
    qtbot.keyClick(window.canvas, Qt.Key.Key_N)
    assert window.doc.row == 1                                # wraps to the first unreviewed


def test_arrow_keys_step_only_in_review_mode(window, image_folder, qtbot):
    window.open_paths([image_folder])
    qtbot.keyClick(window.canvas, Qt.Key.Key_Right)
    assert window.doc.row == 0
    window.review.set_active(True)
    qtbot.keyClick(window.canvas, Qt.Key.Key_Right)
    assert window.doc.row == 1
    qtbot.keyClick(window.canvas, Qt.Key.Key_Left)
    assert window.doc.row == 0
