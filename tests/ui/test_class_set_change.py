"""Changing the class set of a labelled workspace asks first and, by default, keeps every
label's class name (Pascal VOC 21 over chest labels: lungs never becomes aeroplane)."""

import numpy as np
import pytest

from segstudio.core.classes import voc21
from segstudio.io.workspace import Workspace

from helpers import drag


def _answer(button_text: str, seen: list[str]) -> None:
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication, QMessageBox

    def poll() -> None:
        box = QApplication.activeModalWidget()
        if isinstance(box, QMessageBox):
            seen.append(box.text())
            for b in box.buttons():
                if b.text().replace("&", "").startswith(button_text):
                    b.click()
                    return
        QTimer.singleShot(20, poll)

    QTimer.singleShot(0, poll)


@pytest.fixture
def painted(window, image_folder, qtbot):
    """A chest workspace with lungs painted and saved on its first item."""
    window.open_paths([image_folder])
    window.legend.select_class(1)                     # lungs
    drag(window.canvas, [(10, 10), (60, 10)])
    assert window.save_current()
    window.ws_writer.flush()
    window.interactive = True
    return window.doc.labels.array.copy()


def test_map_by_name_keeps_every_label_its_class_name(window, image_folder, qtbot, painted):
    seen: list[str] = []
    _answer("Map by name", seen)
    window.legend.replace_classes(voc21())
    qtbot.waitUntil(lambda: window.class_sets.task is None and window.is_idle(), timeout=30_000)
    assert "lungs → aeroplane" in seen[0]           # what keeping the numbers would do
    names = window.classes.names
    assert names[:21] == voc21().names and names[21:] == ("lungs", "heart", "clavicles")
    lungs = names.index("lungs")
    np.testing.assert_array_equal(window.doc.labels.array, np.where(painted == 1, lungs, painted))
    window.ws_writer.flush()
    ws = Workspace.open(image_folder)
    assert ws.classes.names == names
    saved = ws.load_labels(ws.items[0])
    assert {ws.classes[int(v)].name for v in np.unique(saved)} == {"background", "lungs"}


def test_keep_the_numbers_is_a_choice_said_before_it_happens(window, qtbot, painted):
    seen: list[str] = []
    _answer("Keep the numbers", seen)
    window.legend.replace_classes(voc21())
    assert window.classes == voc21()
    assert "lungs → aeroplane" in seen[0]
    np.testing.assert_array_equal(window.doc.labels.array, painted)


def test_cancel_leaves_the_class_set_and_labels_alone(window, qtbot, painted):
    before = window.classes
    seen: list[str] = []
    _answer("Cancel", seen)
    window.legend.replace_classes(voc21())
    assert seen and window.classes == before
    assert window.legend.classes == before
    np.testing.assert_array_equal(window.doc.labels.array, painted)


def test_an_unlabelled_workspace_takes_a_new_set_without_asking(window, image_folder, qtbot):
    window.open_paths([image_folder])
    window.interactive = True              # a question would block here
    window.legend.replace_classes(voc21())
    assert window.classes == voc21()
