import numpy as np

from segstudio.io.workspace import ItemStatus
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


def test_shapes_demo_finds_instances_with_the_bundled_mask_rcnn(window, qtbot):
    from segstudio.train.synth import make_sample

    assert open_demo(window, "shapes")
    qtbot.waitUntil(lambda: window.doc is not None and window.doc.prediction is not None
                    and window.is_idle(), timeout=180_000)
    assert window.classes.names == ("background", "circle", "square", "triangle")
    assert "shapes_maskrcnn" in window.models.model_info["label"]
    prediction = window.doc.prediction
    assert prediction.trained and prediction.instances is not None
    assert window.layers.instances and window.instances_action.isChecked()
    # The demo scene is sample 2 of the seed-2026 shapes set: score the detector against it.
    truth = make_sample("shapes", 2, size=256, seed=2026)
    found = prediction.labels
    for cls in (1, 2, 3):
        inter = np.sum((found == cls) & (truth.labels == cls))
        union = np.sum(((found == cls) | (truth.labels == cls)) & (truth.labels != 255))
        assert inter / union > 0.5, f"class {cls}: IoU {inter / union:.2f}"
    # The two overlapping circles are one region of the class map but two instances.
    circles = np.unique(prediction.instances[(truth.labels == 1) & (found == 1)])
    assert len(circles[circles > 0]) >= 2
