import numpy as np
import pytest
from PySide6.QtCore import Qt

from helpers import move, widget_pos
from segstudio.ui.prediction_layers import Uncertainty, uncertainty_map


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
