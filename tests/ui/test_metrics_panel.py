import numpy as np
import pytest

from helpers import drag
from segstudio.core.metrics import scores


def test_scores_of_the_prediction_against_corrected_labels(window, image_folder, qtbot):
    window.open_paths([image_folder])
    ws = window.workspace
    rng = np.random.default_rng(2)
    for item in ws.items:
        image = ws.read_image(item)
        ws.save_prediction(item, rng.integers(0, 4, (image.height, image.width)).astype(np.uint8))
    window.show_row(1)
    window.show_row(0)
    window.legend.select_class(2)
    window.tools["Brush"].set_size(25)
    drag(window.canvas, [(20, 30), (140, 80)])
    window.save_current()
    window.metrics.refresh_image()
    doc = window.doc
    expected = scores(doc.labels.array, ws.load_prediction(doc.item), 4)
    shown = window.metrics.image_view.scores
    assert shown.miou == pytest.approx(expected.miou)
    assert f"mIoU {100 * expected.miou:.1f}%" in window.metrics.image_view.summary.text()
    assert window.metrics.image_view.confusion.rowCount() == 4

    window.show_row(1)
    drag(window.canvas, [(5, 5), (100, 60)])
    window.save_current()
    window.metrics.score_button.click()
    qtbot.waitUntil(lambda: window.metrics.task is None, timeout=30_000)
    gts = [ws.load_labels(i) for i in ws.items[:2]]
    preds = [ws.load_prediction(i) for i in ws.items[:2]]
    from segstudio.core.metrics import ConfusionMatrix
    cm = ConfusionMatrix(4)
    for g, p in zip(gts, preds):
        cm.update(g, p)
    assert window.metrics.workspace_view.scores.miou == pytest.approx(cm.scores().miou)
    assert "2 corrected item(s)" in window.metrics.workspace_view.summary.text()


def test_no_prediction_says_how_to_get_one(window, image_folder, qtbot):
    window.open_paths([image_folder])
    assert "Ctrl+R" in window.metrics.image_view.summary.text()
