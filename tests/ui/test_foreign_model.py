"""Model ▸ Load model… with a TorchScript file: it joins the model list once it loaded, runs on
the image, and the overlay and the legend show the classes its sidecar names."""

from __future__ import annotations

import numpy as np
import torch

from PIL import Image

from foreign_models import (COLORS, NAMES, image, normalised, reference_labels,
                            save_torchscript)
from helpers import widget_pos
from segstudio.ui.panels.legend import NAME


def _start(window, qtbot):
    window.models.start()
    qtbot.waitUntil(lambda: window.models._catalog_loaded, timeout=120_000)
    qtbot.waitUntil(window.is_idle, timeout=60_000)


def _choose_file(window, qtbot, monkeypatch, path):
    """Click Load model… and pick ``path`` in the file dialog."""
    from PySide6.QtWidgets import QFileDialog

    monkeypatch.setattr(QFileDialog, "getOpenFileName",
                        staticmethod(lambda *a, **k: (str(path), "Models")))
    qtbot.mouseClick(window.models.panel.load_button, _left())
    qtbot.waitUntil(window.is_idle, timeout=120_000)


def _left():
    from PySide6.QtCore import Qt

    return Qt.MouseButton.LeftButton


def test_a_torchscript_model_from_file_segments_the_image_with_its_own_classes(
        window, qtbot, monkeypatch, tmp_path):
    path = tmp_path / "roads.pt"
    net = save_torchscript(path)
    folder = tmp_path / "streets"
    folder.mkdir()
    Image.fromarray(image(120, 160, seed=8)).save(folder / "street.png")
    window.open_paths([folder])
    _start(window, qtbot)
    panel = window.models.panel
    before = len(panel.entries)
    _choose_file(window, qtbot, monkeypatch, path)
    entry = panel.current_entry()
    assert len(panel.entries) == before + 1
    assert entry.title == "roads.pt — from file" and entry.trained and entry.classes == NAMES
    assert "TorchScript model" in panel.state_label.text()
    assert "segstudio card roads.pt --data VOC_DIR" in panel.card_label.text()
    panel.precision_combo.setCurrentText("fp32")
    qtbot.mouseClick(panel.run_button, _left())
    qtbot.waitUntil(window.is_idle, timeout=120_000)

    doc = window.doc
    assert doc.prediction is not None and doc.prediction.probabilities.shape[0] == 3
    rgb = doc.image.to_rgb8()
    with torch.no_grad():
        expected = reference_labels(net(normalised(rgb)), rgb.shape[:2])
    assert (doc.labels.array == expected).mean() >= 0.995
    # The workspace took the file's classes: the legend lists them, the overlay paints them.
    assert window.classes.names == NAMES
    legend = window.legend.table
    assert [legend.item(r, NAME).text() for r in range(legend.rowCount())] == list(NAMES)
    window.set_opacity(100)
    window.canvas.fit_to_window()
    qtbot.wait(50)
    img = window.canvas.grab().toImage()
    labels = doc.labels.array
    h, w = labels.shape
    painted = 0
    for c in (1, 2):                       # class 0, the background, is not painted
        inner = np.argwhere(np.all([np.roll(labels, s, axis=a) == c for a in (0, 1)
                                    for s in (-2, 0, 2)], axis=0))
        inner = [(y, x) for y, x in inner if 2 < y < h - 3 and 2 < x < w - 3]
        if not inner:
            continue
        y, x = inner[len(inner) // 2]
        px = img.pixelColor(widget_pos(window.canvas, x + 0.5, y + 0.5).toPoint())
        assert (px.red(), px.green(), px.blue()) == tuple(COLORS[c]), (c, y, x)
        painted += 1
    assert painted == 2


def test_a_model_file_that_does_not_load_is_said_and_not_listed(window, image_folder, qtbot,
                                                                monkeypatch, tmp_path, capsys):
    path = tmp_path / "four.pt"
    save_torchscript(path, classes=4)          # the sidecar names three classes
    window.open_paths([image_folder])
    _start(window, qtbot)
    panel = window.models.panel
    titles = [e.title for e in panel.entries]
    chosen = panel.current_entry()
    _choose_file(window, qtbot, monkeypatch, path)
    said = window.statusBar().currentMessage()
    assert said.startswith("four.pt: the network gives 4 output channel(s) but its sidecar")
    assert [e.title for e in panel.entries] == titles and panel.current_entry() is chosen


def test_a_workspace_of_as_many_classes_takes_the_files_names_until_corrected(
        window, qtbot, monkeypatch, tmp_path):
    from segstudio.core.classes import from_names
    from segstudio.io.workspace import Workspace

    path = tmp_path / "roads.pt"
    save_torchscript(path)
    folder = tmp_path / "streets"
    folder.mkdir()
    Image.fromarray(image(60, 80, seed=9)).save(folder / "street.png")
    Workspace.open(folder, classes=from_names(["x", "y", "z"])).save()
    window.open_paths([folder])
    assert window.classes.names == ("x", "y", "z")
    _start(window, qtbot)
    _choose_file(window, qtbot, monkeypatch, path)
    qtbot.mouseClick(window.models.panel.run_button, _left())
    qtbot.waitUntil(window.is_idle, timeout=120_000)
    assert window.doc.prediction is not None
    assert window.classes.names == NAMES
    assert [tuple(c) for c in window.classes.colors] == [tuple(c) for c in COLORS]


def test_the_inside_views_say_an_onnx_file_cannot_be_looked_into(window, qtbot, monkeypatch,
                                                                 tmp_path):
    path = tmp_path / "roads.onnx"
    from foreign_models import save_onnx

    save_onnx(path)
    _start(window, qtbot)
    _choose_file(window, qtbot, monkeypatch, path)
    assert window.models.panel.current_choice().model_file == path
    session = window.explain.session
    assert session.current_source().model_file == path
    assert not session.has_branch("")
    assert window.statusBar().currentMessage().startswith(
        "roads.onnx: an ONNX model runs in ONNX Runtime, outside torch")


def test_a_hugging_face_folder_joins_the_model_list_with_its_labels(window, qtbot, monkeypatch,
                                                                   tmp_path):
    import pytest
    from PySide6.QtWidgets import QFileDialog

    pytest.importorskip("transformers")
    from foreign_models import save_segformer

    folder = tmp_path / "tiny-segformer"
    save_segformer(folder)
    _start(window, qtbot)
    monkeypatch.setattr(QFileDialog, "getExistingDirectory",
                        staticmethod(lambda *a, **k: str(folder)))
    action = next(a for a in window.findChildren(type(window.menuBar().actions()[0]))
                  if a.text() == "Load model &folder…")
    action.trigger()
    qtbot.waitUntil(window.is_idle, timeout=120_000)
    entry = window.models.panel.current_entry()
    assert entry.title == "tiny-segformer — from file" and entry.classes == NAMES
    assert "Hugging Face segformer model" in window.models.panel.state_label.text()
