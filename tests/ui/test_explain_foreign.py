"""Inside the model on a model file, through the real widgets: Model ▸ Load model… with a
TorchScript file, a module picked in the module tree, its activation as the heat layer, its
Grad-CAM, its ablation in the Branches view, and the receptive-field view saying why a compiled
network has no theoretical field; an ONNX file says what the views cannot do."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog

from foreign_models import image, normalised, save_onnx, save_torchscript
from segstudio.explain.probes import activation_map

H, W = 60, 84


def _window_with_model(window, qtbot, monkeypatch, tmp_path, path):
    folder = tmp_path / "streets"
    folder.mkdir()
    Image.fromarray(image(H, W, seed=3)).save(folder / "street.png")
    window.open_paths([folder])
    window.models.start()
    qtbot.waitUntil(lambda: window.models._catalog_loaded, timeout=120_000)
    qtbot.waitUntil(window.is_idle, timeout=60_000)
    monkeypatch.setattr(QFileDialog, "getOpenFileName",
                        staticmethod(lambda *a, **k: (str(path), "Models")))
    qtbot.mouseClick(window.models.panel.load_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(window.is_idle, timeout=120_000)
    assert window.models.panel.current_choice().model_file == path
    return window.explain


def _wait(qtbot, window, dock):
    qtbot.waitUntil(lambda: not dock.session.busy and window.is_idle(), timeout=90_000)


def _click_module(qtbot, tree, path):
    item = tree.item(path)
    assert item is not None, path
    tree.tree.scrollToItem(item)
    rect = tree.tree.visualItemRect(item)
    qtbot.mouseClick(tree.tree.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())


def test_a_torchscript_files_module_picked_in_the_tree_becomes_the_heat_layer(
        window, qtbot, monkeypatch, tmp_path):
    path = tmp_path / "roads.pt"
    net = save_torchscript(path)
    dock = _window_with_model(window, qtbot, monkeypatch, tmp_path, path)
    modules = dock.modules
    qtbot.waitUntil(lambda: modules.tree.isVisible() and modules.tree.topLevelItemCount() == 2,
                    timeout=90_000)
    assert not dock.picker.untrained.isVisible()          # trained weights, not random ones
    assert [modules.tree.topLevelItem(i).text(1) for i in range(2)] == ["Conv2d", "Conv2d"]
    _click_module(qtbot, modules, "a")
    panel = dock.activations
    assert panel.branch_combo.currentText() == "a"
    qtbot.mouseClick(panel.show_button, Qt.MouseButton.LeftButton)
    _wait(qtbot, window, dock)
    heat = dock.heat.image
    assert heat is not None and (heat.width(), heat.height()) == (W, H)
    # The map is channel mean of what module ``a`` returns, read here by a hook on the eager
    # network the file was traced from.
    rgb = window.doc.image.to_rgb8()
    seen = {}
    handle = net.a.register_forward_hook(lambda _m, _i, out: seen.update(a=out))
    with torch.no_grad():
        net(normalised(rgb))
    handle.remove()
    np.testing.assert_allclose(panel.result["map"], activation_map(seen["a"], "mean", (H, W)),
                               rtol=1e-5, atol=1e-6)
    assert "roads.pt" in panel.info.text() and "net.net.a" in panel.info.text()

    window.legend.select_class(1)
    qtbot.mouseClick(panel.cam_button, Qt.MouseButton.LeftButton)
    _wait(qtbot, window, dock)
    assert panel.result["kind"] == "gradcam" and panel.result["map"].shape == (H, W)
    assert dock.heat.image is not None

    # The Branches view zeroes the module inside the compiled network and counts the change.
    dock.show_view(dock.branches)
    qtbot.mouseClick(dock.branches.show_button, Qt.MouseButton.LeftButton)
    _wait(qtbot, window, dock)
    assert len(dock.branches.thumbnails) == 1 and dock.branches.thumbnails[0].isEnabled()
    qtbot.mouseClick(dock.branches.thumbnails[0], Qt.MouseButton.LeftButton)
    _wait(qtbot, window, dock)
    contribution = dock.branches.contribution
    assert contribution is not None and contribution["name"] == "a"
    assert "Without a (zeroed) (net.net.a)" in dock.branches.info.text()

    dock.show_view(dock.receptive)
    assert dock.receptive.branch_combo.currentText() == "a"
    assert dock.receptive.pick_pixel(30, 40)
    _wait(qtbot, window, dock)
    text = dock.receptive.field_label.text()
    assert "TorchScript" in text and "meta device" in text
    result = dock.receptive.result
    assert result["field"] is None and len(result["erf"]) == 1
    assert result["erf"][0].heat.shape == (H, W) and result["erf"][0].heat.sum() > 0
    assert "of the image" in dock.receptive.erf_texts[0].text()
    assert "No random-weight twin" in dock.receptive.erf_texts[1].text()
    assert dock.export_figure(tmp_path / "rf.png") is not None


def test_an_onnx_file_says_the_views_cannot_look_inside_it(window, qtbot, monkeypatch,
                                                           tmp_path):
    path = tmp_path / "roads.onnx"
    save_onnx(path)
    dock = _window_with_model(window, qtbot, monkeypatch, tmp_path, path)
    modules = dock.modules
    assert modules.isVisible() and not modules.tree.isVisible()
    assert "ONNX Runtime" in modules.note.text() and "no gradients" in modules.note.text()
    qtbot.mouseClick(dock.activations.show_button, Qt.MouseButton.LeftButton)
    assert "ONNX Runtime" in window.statusBar().currentMessage()
    assert not dock.session.busy


def test_a_segstudio_checkpoint_loaded_as_a_model_file_shows_its_branches_not_a_tree(
        window, qtbot, monkeypatch, tmp_path):
    from segstudio.core.classes import ClassSet
    from segstudio.models.checkpoint import CheckpointMeta, save_checkpoint
    from segstudio.models.registry import build_model, get_spec

    path = tmp_path / "tiny.pt"
    classes = ClassSet(["background", "thing", "other"])
    save_checkpoint(path, build_model("deeplabv2", 3, "lite"),
                    CheckpointMeta(arch="deeplabv2", config="lite", classes=classes))
    dock = _window_with_model(window, qtbot, monkeypatch, tmp_path, path)
    _wait(qtbot, window, dock)
    combo = dock.activations.branch_combo
    qtbot.waitUntil(lambda: combo.count() > 0, timeout=60_000)
    assert [combo.itemText(i) for i in range(combo.count())] == \
        list(get_spec("deeplabv2").branches)
    assert not dock.modules.isVisible()


def test_a_model_file_that_fails_in_the_views_says_so_instead_of_loading_forever(
        window, qtbot, monkeypatch, tmp_path):
    path = tmp_path / "roads.pt"
    save_torchscript(path)
    dock = _window_with_model(window, qtbot, monkeypatch, tmp_path, path)
    _wait(qtbot, window, dock)
    assert dock.modules.tree.isVisible()
    # The file changes on disk after the Model panel loaded it: the views' own load fails.
    dock.session.models.clear()
    dock.session.last_loaded = None
    path.write_bytes(b"not a model any more")
    dock.session._source_changed()
    _wait(qtbot, window, dock)
    assert not dock.modules.tree.isVisible()
    assert "did not load here" in dock.modules.note.text()
