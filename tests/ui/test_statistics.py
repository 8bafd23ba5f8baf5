import numpy as np

from helpers import drag
from segstudio.core.statistics import class_statistics
from segstudio.ui.launchers import statistics_dialog


def test_class_statistics_count_pixels_and_images():
    a = np.zeros((4, 4), np.uint8)
    a[0, :2] = 2
    b = np.full((2, 2), 255, np.uint8)
    b[0, 0] = 1
    s = class_statistics([a, b])
    assert s.labelled_images == 2
    assert s.pixels[2] == 2 and s.images[2] == 1 and s.images[0] == 1 and s.images[255] == 1
    assert s.share(2) == 2 / 17


def test_statistics_dialog_shows_classes_and_who_changed_each_item(window, image_folder, qtbot):
    window.open_paths([image_folder])
    window.legend.select_class(2)
    drag(window.canvas, [(10, 10), (40, 10)])
    window.save_current()
    dialog = statistics_dialog(window)
    qtbot.addWidget(dialog)
    qtbot.waitUntil(lambda: dialog.result is not None, timeout=30_000)
    labels = window.workspace.load_labels(window.workspace.items[0])
    assert dialog.result.pixels[2] == (labels == 2).sum()
    assert dialog.classes.item(2, 2).text() == "1"              # heart: in one image
    assert dialog.items.item(0, 1).text() == "corrected"
    assert dialog.items.item(0, 3).text() == "hand" and dialog.items.item(0, 2).text()
