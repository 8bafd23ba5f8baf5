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


def _bf16_twice_as_fast(monkeypatch):
    """A CPU with native bf16 units on which bf16 runs twice as fast as fp32; the agreement of
    the two is still measured on the real network."""
    from dataclasses import replace

    from segstudio.models import device, engine

    monkeypatch.setattr(device, "cpu_flags", lambda: frozenset({"avx512f", "avx512_bf16"}))
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    real = engine.decide
    monkeypatch.setattr(engine, "decide", lambda *a, **k: replace(real(*a, **k), fp32_ms=20.0,
                                                                   candidate_ms=10.0))


def test_chest_demo_shows_fp32_at_once_then_measures_auto_for_the_next_image(window, qtbot,
                                                                            monkeypatch):
    from segstudio.models.engine import Predictor
    from segstudio.paths import weights_dir

    _bf16_twice_as_fast(monkeypatch)
    events = []
    runner = window.models.runner
    runner.catalogReady.connect(lambda entries: events.append(("listed", len(entries))))
    runner.result.connect(lambda row, p: events.append(("result", p.precision)))
    runner.precisionSettled.connect(lambda info: events.append(("measured", info["precision"])))
    assert open_demo(window, "chest")
    qtbot.waitUntil(lambda: len(events) >= 4 and window.is_idle(), timeout=180_000)
    # The demo's model is listed alone and runs; the measurement follows the shown result, and
    # the full model list comes last.
    assert events[:3] == [("listed", 1), ("result", "fp32"), ("measured", "bf16")]
    assert events[3][0] == "listed" and events[3][1] > 20
    assert window.models.panel.current_entry().choice.checkpoint.name == \
        "chest_xray_unet_lite.pt"
    first = window.doc.prediction
    assert first.precision == "fp32" and "first image, shown at once" in first.precision_note
    # The labels shown are fp32's, exactly those a hand-picked fp32 Predictor gives.
    fp32 = Predictor.from_checkpoint(weights_dir() / "chest_xray_unet_lite.pt", device="cpu",
                                     precision="fp32").predict(window.doc.image.to_rgb8())
    np.testing.assert_array_equal(window.doc.labels.array, fp32.labels)
    state = window.models.panel.state_label.text()
    assert "Precision bf16: 2.0× faster" in state and "measured on this machine" in state
    assert "in use from the next image (the first was predicted in fp32" in state
    assert window.device_label.text() == "cpu · bf16"
    assert "in use from the next image" in window.device_label.toolTip()

    # The demo has one picture: running the model again is its next prediction.
    window.doc.prediction = None
    assert window.models.run_current()
    qtbot.waitUntil(lambda: window.doc.prediction is not None and window.is_idle(),
                    timeout=180_000)
    second = window.doc.prediction
    assert second.precision == "bf16" and second.precision_note.startswith("bf16: 2.0× faster")
    assert events[4:] == [("result", "bf16")]             # measured once, not again
    assert window.device_label.text() == "cpu · bf16"
