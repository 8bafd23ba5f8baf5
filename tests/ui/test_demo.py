import numpy as np

from segstudio.core.workspace import ItemStatus
from segstudio.ui.launchers import open_demo


def test_chest_demo_opens_with_the_trained_bundled_model(window, qtbot):
    assert open_demo(window, "chest")
    qtbot.waitUntil(lambda: window.doc is not None and window.doc.prediction is not None
                    and window.is_idle(), timeout=180_000)
    doc = window.doc
    assert doc.item.id.startswith("chest_phantom")
    assert doc.prediction.trained
    assert "chest_xray" in window.models.model_info["label"]
    counts = doc.labels.class_counts()
    assert all(counts[c] > 100 for c in (1, 2))              # lungs and heart found
    assert doc.item.status is ItemStatus.PREDICTED
    assert not window.models.panel.warning_label.isVisibleTo(window.models.panel)


def test_context_demo_uses_its_own_classes_and_model(window, qtbot):
    assert open_demo(window, "context")
    qtbot.waitUntil(lambda: window.doc is not None and window.doc.prediction is not None
                    and window.is_idle(), timeout=180_000)
    assert window.classes.names == ("background", "water", "road", "boat", "car")
    labels = window.doc.labels.array
    assert np.isin([3, 4], labels).any()                     # boats or cars on the scene
