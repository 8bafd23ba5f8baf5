import cv2
import numpy as np
from PySide6.QtCore import Qt

from segstudio.io.workspace import ItemStatus


def _moving_square_clip(path, frames=6, step=3):
    """A textured square moving right by ``step`` px a frame over a textured background."""
    rng = np.random.default_rng(0)
    bg = cv2.GaussianBlur((rng.random((96, 128)) * 120).astype(np.uint8), (5, 5), 1.2)
    tex = (rng.random((30, 30)) * 80 + 160).astype(np.uint8)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (128, 96))
    truth = []
    for i in range(frames):
        img = bg.copy()
        x = 20 + step * i
        img[30:60, x:x + 30] = tex
        lab = np.zeros((96, 128), np.uint8)
        lab[30:60, x:x + 30] = 2
        truth.append(lab)
        writer.write(cv2.cvtColor(img, cv2.COLOR_GRAY2BGR))
    writer.release()
    return truth


def _iou(a, b):
    return ((a == 2) & (b == 2)).sum() / ((a == 2) | (b == 2)).sum()


def test_carry_forward_copies_the_previous_frame_as_one_undo_step(window, tmp_path, qtbot):
    folder = tmp_path / "clip"
    folder.mkdir()
    truth = _moving_square_clip(folder / "sq.avi")
    window.open_paths([folder])
    window.doc.labels.replace(truth[0])                # frame 0 labelled on screen
    window.show_row(1)
    qtbot.keyClick(window.canvas, Qt.Key.Key_F,
                   Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    np.testing.assert_array_equal(window.doc.labels.array, truth[0])
    qtbot.keyClick(window.canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert window.doc.labels.array.max() == 0


def test_propagation_follows_the_object_and_keeps_corrected_frames(window, tmp_path, qtbot):
    folder = tmp_path / "clip"
    folder.mkdir()
    truth = _moving_square_clip(folder / "sq.avi")
    window.open_paths([folder])
    ws = window.workspace
    ws.save_labels(ws.items[3], truth[3])               # a person corrected frame 3
    window.doc.labels.replace(truth[0])                # frame 0 labelled on screen
    assert window.frame_labels.propagate(5, "dis")
    qtbot.waitUntil(lambda: window.frame_labels.task is None and window.is_idle(), timeout=60_000)
    for row in (1, 2, 4, 5):
        item = ws.items[row]
        assert item.status is ItemStatus.PREDICTED and "propagated from frame 0" in item.updated_by
        assert _iou(ws.load_labels(item), truth[row]) > 0.7, row
    assert ws.items[3].status is ItemStatus.CORRECTED
    np.testing.assert_array_equal(ws.load_labels(ws.items[3]), truth[3])


def test_carry_forward_outside_a_video_says_why(window, image_folder, qtbot):
    window.open_paths([image_folder])
    assert not window.frame_labels.carry_forward()
    assert "video frame" in window.statusBar().currentMessage()


def test_propagate_through_the_edit_menu_dialog(window, tmp_path, qtbot):
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication, QSpinBox

    folder = tmp_path / "clip"
    folder.mkdir()
    truth = _moving_square_clip(folder / "sq.avi", frames=4)
    window.open_paths([folder])
    window.doc.labels.replace(truth[0])

    def fill_and_accept():
        dialog = QApplication.activeModalWidget()
        dialog.findChild(QSpinBox).setValue(2)
        dialog.accept()

    QTimer.singleShot(200, fill_and_accept)
    act = next(a for a in window.actions() if a.text().startswith("Propagate labels"))
    act.trigger()
    qtbot.waitUntil(lambda: window.frame_labels.task is None and window.is_idle(), timeout=60_000)
    ws = window.workspace
    assert [i.status for i in ws.items[1:3]] == [ItemStatus.PREDICTED] * 2
    assert ws.items[3].status is ItemStatus.UNLABELLED            # only the 2 asked for
    assert _iou(ws.load_labels(ws.items[2]), truth[2]) > 0.7
