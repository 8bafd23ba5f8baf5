import numpy as np
import pytest
from PySide6.QtCore import QPointF, Qt

from helpers import move, widget_pos
from segstudio.ui.canvas.prediction_layers import Uncertainty, uncertainty_map


class FakePrediction:
    """The fields the window reads from a model's Prediction."""

    def __init__(self, probabilities):
        self.probabilities = probabilities
        self.labels = probabilities.argmax(0).astype(np.uint8)
        self.trained = True


def test_uncertainty_is_zero_when_sure_and_one_when_uniform():
    p = np.zeros((4, 2, 2), np.float32)
    p[1] = 1.0
    p[:, 1, 1] = 0.25
    for kind in (Uncertainty.MARGIN, Uncertainty.ENTROPY):
        u = uncertainty_map(p, kind)
        assert u[0, 0] == pytest.approx(0.0, abs=1e-5) and u[1, 1] == pytest.approx(1.0, abs=1e-5)


def _with_prediction(window, image_folder, qtbot):
    window.open_paths([image_folder])
    doc = window.doc
    h, w = doc.labels.shape
    probs = np.full((4, h, w), 0.002, np.float32)
    probs[2] = 0.994                               # the model says "heart" everywhere
    probs[:, :, w // 2:] = 0.25                    # … but is unsure on the right half
    doc.prediction = FakePrediction(probs)
    return doc


def test_swipe_shows_the_prediction_left_of_the_divider(window, image_folder, qtbot):
    _with_prediction(window, image_folder, qtbot)
    window.set_opacity(100)
    qtbot.keyClick(window.canvas, Qt.Key.Key_C)
    assert window.layers.compare
    move(window.canvas, 80, 60, held=False)           # divider at image x = 80
    img = window.canvas.grab().toImage()
    left = img.pixelColor(widget_pos(window.canvas, 40, 60).toPoint())
    right = img.pixelColor(widget_pos(window.canvas, 120, 60).toPoint())
    assert (left.red(), left.green(), left.blue()) == (220, 0, 0)      # predicted heart
    assert (right.red(), right.green()) != (220, 0)                    # labels: background (hidden)


def test_uncertainty_layer_marks_where_the_model_is_unsure(window, image_folder, qtbot):
    _with_prediction(window, image_folder, qtbot)
    window.toggle_overlay()                            # the layer alone
    before = window.canvas.grab().toImage()
    qtbot.keyClick(window.canvas, Qt.Key.Key_U)
    after = window.canvas.grab().toImage()
    sure = widget_pos(window.canvas, 20, 60).toPoint()
    unsure = widget_pos(window.canvas, 140, 60).toPoint()
    b, a = before.pixelColor(sure), after.pixelColor(sure)
    assert max(abs(b.red() - a.red()), abs(b.green() - a.green()), abs(b.blue() - a.blue())) <= 4
    c = after.pixelColor(unsure)
    assert c.red() > 200 and c.blue() < 60 and c != before.pixelColor(unsure)


def _two_touching_squares(h, w):
    """Two instances of one class side by side: one region in the class map."""
    instances = np.zeros((h, w), np.uint16)
    instances[20:60, 20:50] = 1
    instances[20:60, 50:80] = 2
    return instances


def test_instance_outlines_separate_touching_objects_of_one_class():
    from segstudio.ui.canvas.prediction_layers import instance_anchors, instance_outlines

    ids = _two_touching_squares(90, 100)
    edge = instance_outlines(ids)
    assert edge[20, 30] and edge[59, 30] and edge[40, 20] and edge[40, 79]   # outer border
    assert edge[40, 49] and edge[40, 50]                 # the seam the class map does not show
    assert not edge[40, 35] and not edge[40, 65] and not edge[5, 5]
    labels = np.where(ids > 0, 3, 0).astype(np.uint8)
    assert instance_anchors(ids, labels) == [(1, 3, 20, 20), (2, 3, 50, 20)]


def test_instance_outline_layer_draws_each_instance_in_its_own_colour(window, image_folder,
                                                                      qtbot, monkeypatch):
    from segstudio.ui.canvas.prediction_layers import instance_colours

    doc = _with_prediction(window, image_folder, qtbot)
    h, w = doc.labels.shape
    window.toggle_overlay()
    qtbot.keyClick(window.canvas, Qt.Key.Key_O)
    assert window.layers.instances
    assert "no instances" in window.statusBar().currentMessage()     # a semantic prediction
    doc.prediction.instances = _two_touching_squares(h, w)
    window.canvas.grab()                             # the first paint starts the outlines …
    assert not window.is_idle()                      # … off the GUI thread
    qtbot.waitUntil(window.is_idle, timeout=30_000)
    img = window.canvas.grab().toImage()
    first, second = (tuple(int(v) for v in c) for c in instance_colours(2))

    def row(x0, x1):                                  # image pixels x0..x1-1 on row 40
        out = []
        for x in range(x0, x1):
            c = img.pixelColor(window.canvas.to_widget(QPointF(x + 0.5, 40.5)).toPoint())
            out.append((c.red(), c.green(), c.blue()))
        return out

    # The seam at x = 49 | 50: the first instance's colour, then the second's, next to each
    # other (within a pixel: the canvas zoom is not a whole number); none inside either square.
    # Every widget pixel across the seam: at a zoom that is not a whole number an image
    # pixel's column can fall between the image-pixel samples of row().
    y = round(window.canvas.to_widget(QPointF(0, 40.5)).y())
    x0, x1 = (round(window.canvas.to_widget(QPointF(x, 40.5)).x()) for x in (46, 54))
    seam = [tuple(img.pixelColor(x, y).getRgb()[:3]) for x in range(x0, x1)]
    assert any(seam[i] == first and seam[i + 1] == second for i in range(len(seam) - 1)), seam
    assert first not in row(25, 44) and second not in row(25, 44) + row(56, 74)
    assert first in row(17, 23)                       # the left border of the first square
    qtbot.keyClick(window.canvas, Qt.Key.Key_O)
    assert not window.layers.instances
    # Closing while outlines are still being made waits for them: no thread outlives the window.
    import time

    from segstudio.ui.canvas import prediction_layers

    draw = prediction_layers.outline_image
    monkeypatch.setattr(prediction_layers, "outline_image",
                        lambda ids: (time.sleep(0.5), draw(ids))[1])     # a big map's time
    window.layers.set_instances(True)
    doc.prediction = FakePrediction(doc.prediction.probabilities)      # a new prediction
    doc.prediction.instances = _two_touching_squares(h, w)
    window.canvas.grab()
    assert window.layers._tasks
    window.close()
    assert all(task.isFinished() for task in window.layers._tasks)


def test_instance_tags_never_cover_each_other():
    from PySide6.QtCore import QRectF

    from segstudio.ui.canvas.prediction_layers import free_spot

    placed = []
    for x in (10, 14, 10, 200):                      # three tags where they would overlap
        placed.append(free_spot(QRectF(x, 50, 80, 14), placed))
    assert all(not a.intersects(b) for i, a in enumerate(placed) for b in placed[i + 1:])
    assert placed[0].top() == 50 and placed[3].top() == 50     # a free spot stays put
    assert [p.left() for p in placed] == [10, 14, 10, 200]      # only moved down
