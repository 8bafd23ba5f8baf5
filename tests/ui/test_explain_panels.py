"""The "Inside the model" dock, driven through its widgets on small lite models."""

import numpy as np
import pytest
import torch
from PIL import Image
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog

from tests.ui.helpers import click

torch.set_num_threads(1)
H, W = 90, 130          # b_picture.png of the image_folder fixture


def wait_done(qtbot, window, dock):
    qtbot.waitUntil(lambda: not dock.session.busy and window.is_idle(), timeout=90000)


@pytest.fixture
def dock(window, image_folder, qtbot):
    assert window.open_paths([image_folder])
    assert window.show_row(1)
    assert (window.doc.image.height, window.doc.image.width) == (H, W)
    return window.explain                 # the window installs the dock itself


def pick_model(dock, name):
    combo = dock.picker.combo
    combo.setCurrentIndex(combo.findData(name))
    dock.picker.config_combo.setCurrentText("lite")
    assert dock.session.current_source().arch == name


def loaded_model(dock):
    return dock.session.models[dock.session.current_source()]


def test_activation_of_a_branch_becomes_a_heat_layer_with_its_range(window, dock, qtbot):
    pick_model(dock, "deeplabv3")
    panel = dock.activations
    panel.branch_combo.setCurrentText("aspp.rate6")
    qtbot.mouseClick(panel.show_button, Qt.MouseButton.LeftButton)
    wait_done(qtbot, window, dock)
    assert dock.heat.draw in window.canvas.decorations
    heat = dock.heat.image
    assert heat is not None and (heat.width(), heat.height()) == (W, H)
    amap = panel.result["map"]
    assert amap.shape == (H, W) and amap.max() > amap.min()
    assert panel.result["channels"] == loaded_model(dock).model.head.aspp.convs[1][0].out_channels
    assert panel.color_bar.vmin == pytest.approx(float(amap.min()))
    assert panel.color_bar.vmax == pytest.approx(float(amap.max()))
    colours = np.frombuffer(heat.constBits(), np.uint8).reshape(H, heat.bytesPerLine())
    assert len(np.unique(colours[:, : 4 * W].reshape(-1, 4), axis=0)) > 1

    # One channel picked with the slider is that channel of the probed tensor.
    panel.reduction_combo.setCurrentIndex(panel.reduction_combo.findData("channel"))
    panel.channel_slider.setValue(3)
    qtbot.mouseClick(panel.show_button, Qt.MouseButton.LeftButton)
    wait_done(qtbot, window, dock)
    assert panel.result["mode"] == 3
    from segstudio.explain.probes import Probe, activation_map
    loaded = loaded_model(dock)
    with Probe(loaded.model, {"b": "head.aspp.convs.1"}) as probe:
        t = probe.run(loaded.to_input(window.doc.image.to_rgb8()))["b"]
    np.testing.assert_allclose(panel.result["map"], activation_map(t, 3, size=(H, W)),
                               rtol=1e-5, atol=1e-6)
    # The heat layer belongs to this tab: another view's tab hides it.
    dock.show_view(dock.receptive)
    assert dock.heat.image is None


def test_grad_cam_for_the_selected_class_is_a_heat_layer(window, dock, qtbot):
    pick_model(dock, "pspnet")
    window.legend.select_class(1)
    panel = dock.activations
    panel.branch_combo.setCurrentText("psp.fuse")
    qtbot.mouseClick(panel.cam_button, Qt.MouseButton.LeftButton)
    wait_done(qtbot, window, dock)
    assert panel.result["kind"] == "gradcam" and panel.result["class"].startswith("1 ")
    cam = panel.result["map"]
    assert cam.shape == (H, W) and 0 <= cam.min() and cam.max() <= 1
    assert dock.heat.image is not None and "Grad-CAM" in panel.info.text()


def test_branch_grid_has_one_thumbnail_per_branch_and_ablation_counts_changes(window, dock,
                                                                              qtbot, tmp_path):
    from segstudio.explain.probes import branch_contribution
    from segstudio.models.registry import get_spec

    pick_model(dock, "pspnet")
    dock.show_view(dock.branches)
    grid = dock.branches
    qtbot.mouseClick(grid.show_button, Qt.MouseButton.LeftButton)
    wait_done(qtbot, window, dock)
    names = list(get_spec("pspnet").branches)
    assert [m["name"] for m in grid.maps] == names
    assert len(grid.thumbnails) == len(names)
    assert all(not b.icon().isNull() for b in grid.thumbnails)

    index = names.index("psp.bin1")
    qtbot.mouseClick(grid.thumbnails[index], Qt.MouseButton.LeftButton)
    wait_done(qtbot, window, dock)
    loaded = loaded_model(dock)
    _, changed = branch_contribution(loaded.model, loaded.to_input(window.doc.image.to_rgb8()),
                                     "head.ppm.stages.0")
    assert grid.contribution["count"] == int(changed.sum())
    assert f"{int(changed.sum())} pixels change" in grid.info.text()
    # what the changed pixels became, class by class, adds up to the changed count
    transitions = grid.contribution["transitions"]
    assert sum(n for *_, n in transitions) == int(changed.sum())
    if transitions:
        a, b, n = transitions[0]
        assert f"{a} → {b} {n:,} px" in grid.info.text()
    assert not grid.contribution_view.pixmap().isNull()

    # Exported, the eleven pictures (ten branches and the ablation) wrap into rows of four.
    from segstudio.ui.explain import figure_export as fe
    written = dock.export_figure(tmp_path / "grid")
    assert written == tmp_path / "grid.png"
    thumb_h = round(H * 128 / W)        # thumbnails are 128 px on their long side
    thumb_w = round(128 * 160 / thumb_h)
    with Image.open(written) as png:
        assert png.size == (2 * fe.MARGIN + 4 * thumb_w + 3 * fe.GAP + fe.GAP + fe.COLORBAR_WIDTH,
                            2 * fe.MARGIN + fe.TITLE_HEIGHT + 3 * (160 + fe.LABEL_HEIGHT)
                            + 2 * fe.GAP + 4 * fe.CAPTION_LINE)


def test_clicking_a_pixel_draws_the_branch_field_and_each_rate_taps(window, dock, qtbot):
    from segstudio.explain.receptive_field import receptive_field

    pick_model(dock, "deeplabv3")
    dock.show_view(dock.receptive)
    panel = dock.receptive
    panel.erf_check.setChecked(False)
    panel.branch_combo.setCurrentText("backbone.layer1")
    window.tool_actions["Receptive field"].trigger()
    assert window.canvas.tool is window.tools["Receptive field"]
    before = window.canvas.grab().toImage()
    click(window.canvas, 64.2, 45.7)
    wait_done(qtbot, window, dock)
    r = panel.result
    assert r["pixel"] == (45, 64)
    rf = receptive_field(loaded_model(dock).model, "backbone.layer1", (H, W))
    t, left, b, right = r["unbounded"]
    assert (b - t, right - left) == (int(rf.size[0]), int(rf.size[1]))
    assert t <= 45 < b and left <= 64 < right
    taps = {m["name"]: m for m in r["marks"]}
    spread = {rate: np.ptp(taps[f"aspp.rate{rate}"]["taps"][:, 1]) for rate in (6, 12, 18)}
    assert spread[18] == 3 * spread[6] and spread[12] == 2 * spread[6] > 0
    assert taps["aspp.image_pool"]["box"] == (0, 0, H, W)
    assert window.canvas.grab().toImage() != before


def test_effective_field_panel_shows_trained_and_random_maps_with_shares(window, dock, qtbot):
    pick_model(dock, "fcn8s")
    panel = dock.receptive
    panel.branch_combo.setCurrentText("backbone.pool3")
    window.tool_actions["Receptive field"].trigger()
    click(window.canvas, 40, 30)
    wait_done(qtbot, window, dock)
    erfs = panel.result["erf"]
    assert len(erfs) == 2
    assert all(0 < e.mass95_share <= 1 for e in erfs)
    assert not np.array_equal(erfs[0].heat, erfs[1].heat)
    assert all(not v.pixmap().isNull() for v in panel.erf_views)
    assert "untrained" in panel.erf_texts[0].text() and "random" in panel.erf_texts[1].text()
    # Beside the 95 % mass, the area above e⁻² of the peak, counted here from the heat.
    from segstudio.ui.explain.receptive_field import RANDOM_WIDER

    for erf, text in zip(erfs, panel.erf_texts):
        heat = erf.heat.astype(np.float64)
        counted = sum(1 for v in heat.ravel() if v >= np.exp(-2) * heat.max())
        assert f"; {counted} px at e⁻² (13.5 %) of its peak or more" in text.text()
    assert RANDOM_WIDER in panel.erf_texts[1].text()
    assert RANDOM_WIDER not in panel.erf_texts[0].text()


def test_context_view_compares_three_models_each_labelled_trained_or_not(window, dock, qtbot):
    dock.show_view(dock.context)
    dock.session.pixel = (30, 50)
    qtbot.mouseClick(dock.context.compare_button, Qt.MouseButton.LeftButton)
    wait_done(qtbot, window, dock)
    results = dock.context.results
    assert [r["title"] for r in results] == ["FCN-8s", "PSPNet", "DeepLab v3"]
    assert all(r["labels"].shape == (H, W) and r["pixel"] == (30, 50) for r in results)
    for r, text in zip(results, dock.context.texts):
        # Bundled context checkpoints exist for all three; a missing one would say UNTRAINED.
        assert ("UNTRAINED" in text.text()) == (not r["trained"])
    assert all(r["trained"] for r in results)
    assert all(0 < r["share"] <= 1 for r in results)
    assert all(not v.pixmap().isNull() for v in dock.context.erf_views)
    # The tab tells the lesson with the measured numbers of the bundled models.
    lesson = dock.context.lesson.text()
    assert "global bin zeroed" in lesson and "image pooling" in lesson and "FCN-8s" in lesson


def test_export_figure_writes_a_png_of_the_layout_size(window, dock, qtbot, tmp_path,
                                                       monkeypatch):
    from segstudio.ui.explain import figure_export as fe

    pick_model(dock, "deeplabv2")
    dock.activations.branch_combo.setCurrentText("aspp.rate24")
    qtbot.mouseClick(dock.activations.show_button, Qt.MouseButton.LeftButton)
    wait_done(qtbot, window, dock)
    target = tmp_path / "figure.png"
    monkeypatch.setattr(QFileDialog, "getSaveFileName",
                        staticmethod(lambda *a, **k: (str(target), "PNG images (*.png)")))
    qtbot.mouseClick(dock.export_button, Qt.MouseButton.LeftButton)
    panel_w = round(W * fe.PANEL_HEIGHT / H)
    width = 2 * fe.MARGIN + 2 * panel_w + fe.GAP + fe.GAP + fe.COLORBAR_WIDTH
    height = (2 * fe.MARGIN + fe.TITLE_HEIGHT + fe.PANEL_HEIGHT + fe.LABEL_HEIGHT
              + 3 * fe.CAPTION_LINE)
    with Image.open(target) as png:
        assert png.format == "PNG" and png.size == (width, height)
        pixels = np.asarray(png.convert("RGB"))
    assert not list(tmp_path.glob("*.tmp*"))
    # The overlay panel is the heat map blended over the photo, not the bare photo.
    top = fe.MARGIN + fe.TITLE_HEIGHT
    left_panel = pixels[top:top + fe.PANEL_HEIGHT, fe.MARGIN:fe.MARGIN + panel_w]
    x1 = fe.MARGIN + panel_w + fe.GAP
    right_panel = pixels[top:top + fe.PANEL_HEIGHT, x1:x1 + panel_w]
    assert np.abs(left_panel.astype(int) - right_panel.astype(int)).mean() > 5

    # Another image on screen: the old map is gone, and so is its figure.
    assert window.show_row(0)
    assert dock.heat.image is None and dock.activations.result is None
    assert dock.export_figure(tmp_path / "stale.png") is None
    assert "Nothing to export" in window.statusBar().currentMessage()
    assert not (tmp_path / "stale.png").exists()


def test_a_broken_checkpoint_is_reported_with_its_name(window, dock, qtbot, tmp_path):
    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"not a checkpoint")
    dock.picker.add_checkpoint(broken)       # its architecture is unknown until it loads
    assert dock.session.current_source().checkpoint == broken
    wait_done(qtbot, window, dock)
    assert "broken.pt" in window.statusBar().currentMessage()
    assert dock.activations.branch_combo.count() == 0
    dock.activations.show_activation()
    assert "no probed branches" in window.statusBar().currentMessage()
    dock.show_view(dock.branches)
    qtbot.mouseClick(dock.branches.show_button, Qt.MouseButton.LeftButton)
    wait_done(qtbot, window, dock)
    assert "broken.pt" in window.statusBar().currentMessage()
    assert dock.branches.thumbnails == []


def test_a_checkpoint_reveals_its_branches_once_loaded(window, dock, qtbot, tmp_path):
    from segstudio.core.classes import ClassSet
    from segstudio.models.checkpoint import CheckpointMeta, save_checkpoint
    from segstudio.models.registry import build_model, get_spec

    path = tmp_path / "tiny.pt"
    classes = ClassSet(["background", "thing", "other"])
    save_checkpoint(path, build_model("deeplabv2", 3, "lite"),
                    CheckpointMeta(arch="deeplabv2", config="lite", classes=classes))
    dock.picker.add_checkpoint(path)
    wait_done(qtbot, window, dock)
    combo = dock.activations.branch_combo
    assert [combo.itemText(i) for i in range(combo.count())] == list(get_spec("deeplabv2").branches)
    window.legend.select_class(1)
    combo.setCurrentText("aspp.rate18")
    qtbot.mouseClick(dock.activations.cam_button, Qt.MouseButton.LeftButton)
    wait_done(qtbot, window, dock)
    assert dock.activations.result["class"] == "1 (thing)"
    assert "tiny.pt" in dock.activations.result["model"]
    assert "lite, trained)" in dock.activations.info.text()


def test_each_pyramid_bin_shows_the_pooling_cell_holding_the_pixel(window, dock, qtbot):
    pick_model(dock, "pspnet")
    panel = dock.receptive
    panel.erf_check.setChecked(False)
    panel.branch_combo.setCurrentText("psp.bin3")
    window.tool_actions["Receptive field"].trigger()
    click(window.canvas, 100, 20)           # right half and third, top half and third
    wait_done(qtbot, window, dock)
    cells = {m["name"]: m["box"] for m in panel.result["marks"]}
    assert cells["psp.bin1"] == (0, 0, H, W)
    assert cells["psp.bin2"] == (0, W // 2, H // 2, W)
    assert cells["psp.bin3"] == (0, 2 * W // 3, H // 3, W)
    # 6×6: rows of 15 px (y 20 is in row 1), columns of 21.7 px (x 100 is in column 4).
    assert cells["psp.bin6"] == (15, 86, 30, 109)
    assert "6×6 grid" in panel.legend.text()


def test_cancel_drops_the_running_view_and_the_queue(window, dock, qtbot):
    pick_model(dock, "deeplabv3")
    grid = dock.branches
    qtbot.mouseClick(grid.show_button, Qt.MouseButton.LeftButton)
    dock.activations.branch_combo.setCurrentText("aspp.rate6")
    qtbot.mouseClick(dock.activations.show_button, Qt.MouseButton.LeftButton)
    assert dock.cancel_button.isEnabled()
    qtbot.mouseClick(dock.cancel_button, Qt.MouseButton.LeftButton)
    wait_done(qtbot, window, dock)
    assert grid.thumbnails == [] and dock.activations.result is None
    assert not dock.cancel_button.isEnabled()


def test_show_without_a_model_says_to_pick_one(window, dock, qtbot):
    assert window.models.panel.current_choice() is None      # the catalogue is not loaded
    assert dock.activations.branch_combo.count() == 0
    qtbot.mouseClick(dock.activations.show_button, Qt.MouseButton.LeftButton)
    assert "No model chosen" in window.statusBar().currentMessage()
    assert not dock.session.busy


def test_random_weights_are_flagged_in_the_dock(window, dock, qtbot, tmp_path):
    pick_model(dock, "pspnet")
    assert dock.picker.untrained.isVisibleTo(dock.picker)
    assert "Random weights" in dock.picker.untrained.text()


def test_context_view_prefers_checkpoints_trained_for_the_images_classes(window, qtbot):
    from segstudio.ui.launchers import open_demo

    assert open_demo(window, "context")
    qtbot.waitUntil(lambda: window.doc is not None and window.is_idle(), timeout=120_000)
    dock = window.explain
    dock.show_view(dock.context)
    dock.session.pixel = (100, 170)
    assert dock.context.compare()
    wait_done(qtbot, window, dock)
    titles = [r["model"] for r in dock.context.results]
    assert all("context_" in t for t in titles), titles      # not the chest X-ray models


def test_choosing_another_model_clears_the_views_of_the_previous_one(window, dock, qtbot):
    pick_model(dock, "pspnet")
    panel = dock.activations
    panel.branch_combo.setCurrentText("psp.bin2")
    qtbot.mouseClick(panel.cam_button, Qt.MouseButton.LeftButton)
    wait_done(qtbot, window, dock)
    assert dock.heat.image is not None and "pspnet" in panel.info.text()
    rf = dock.receptive
    rf.erf_check.setChecked(False)
    rf.branch_combo.setCurrentText("psp.bin3")
    window.tool_actions["Receptive field"].trigger()
    click(window.canvas, 100, 20)
    wait_done(qtbot, window, dock)
    assert rf.result is not None and "bin" in rf.legend.text()
    dock.show_view(dock.branches)
    assert dock.branches.show_grid()
    wait_done(qtbot, window, dock)
    assert dock.branches.thumbnails

    # A Grad-CAM asked for just before the switch must not arrive as the new model's.
    dock.show_view(dock.activations)
    qtbot.mouseClick(panel.cam_button, Qt.MouseButton.LeftButton)
    pick_model(dock, "deeplabv3")
    wait_done(qtbot, window, dock)
    assert dock.heat.image is None and panel.result is None
    assert "pspnet" not in panel.info.text() and "Grad-CAM" not in panel.info.text()
    assert rf.result is None and rf.legend.text() == ""
    assert dock.branches.thumbnails == [] and dock.branches.maps == []
    assert "aspp.rate6" in [panel.branch_combo.itemText(i)
                            for i in range(panel.branch_combo.count())]


def test_taps_off_the_feature_map_are_hollow_and_the_tap_curve_shows(window, dock, qtbot):
    pick_model(dock, "deeplabv3")
    dock.show_view(dock.receptive)
    panel = dock.receptive
    panel.erf_check.setChecked(False)
    panel.branch_combo.setCurrentText("aspp.rate12")
    window.tool_actions["Receptive field"].trigger()
    click(window.canvas, 64.2, 45.7)
    wait_done(qtbot, window, dock)
    taps = {m["name"]: m for m in panel.result["marks"]}
    # 90x130 at stride 16: a 6x9 map. From its unit (3, 4) rate 12 and 18 leave the map in
    # every direction; rate 6 keeps the middle row's and column's neighbours within reach.
    assert taps["aspp.rate12"]["valid"].tolist() == [False] * 4 + [True] + [False] * 4
    assert taps["aspp.rate18"]["valid_taps"] == 1
    assert "1×1 convolution" in panel.legend.text()
    curve = panel.tap_curve.curve
    assert curve is not None and curve.size == 65 and panel.tap_curve.rates == (6, 12, 18)
    assert curve.only_centre[curve.rates.index(65)] == 1.0
    assert not panel.tap_curve.isHidden()


def test_effective_field_averages_same_size_images_and_shows_its_centre(window, dock, qtbot):
    from segstudio.explain.effective_rf import prediction_erf
    from segstudio.io.images import read_image

    assert window.show_row(0)                   # a_gradient, 120x160; c_deep has that size too
    pick_model(dock, "fcn8s")
    panel = dock.receptive
    panel.images_spin.setValue(3)
    panel.branch_combo.setCurrentText("fc7")
    window.tool_actions["Receptive field"].trigger()
    click(window.canvas, 70.5, 50.5)           # the pixel's centre, not its corner
    wait_done(qtbot, window, dock)
    trained = panel.result["erf"][0]
    assert trained.images == 2 and trained.pixel == (50, 70)      # b_picture differs in size
    loaded = loaded_model(dock)
    images = [loaded.to_input(read_image(window.workspace.source_path(item)).to_rgb8())
              for item in window.workspace.items if item.source.name != "b_picture.png"]
    expected = prediction_erf(loaded.model, images, 50, 70)
    np.testing.assert_allclose(trained.heat, expected.heat, rtol=1e-4, atol=1e-7)
    assert trained.theoretical_px > trained.inside_image_px == 120 * 160
    assert panel.result["center"] == trained.center
    text = panel.erf_texts[0].text()
    assert "predicted class's logit" in text and "mean over 2 image(s)" in text
    assert "from the click" in text and f"{trained.mass95_share:.1%}" in text


def test_a_detector_has_fields_but_no_effective_field_of_a_prediction(window, dock, qtbot):
    from segstudio.paths import weights_dir
    from segstudio.ui.explain.session import ModelSource

    # Detectors are not in the picker, but the Model panel may run the bundled Mask R-CNN.
    dock.session.pick(ModelSource("maskrcnn", "lite", weights_dir() / "shapes_maskrcnn_lite.pt"))
    wait_done(qtbot, window, dock)
    panel = dock.receptive
    panel.branch_combo.setCurrentText("backbone.layer3")
    window.tool_actions["Receptive field"].trigger()
    click(window.canvas, 40, 30)
    wait_done(qtbot, window, dock)
    assert panel.result is not None and panel.result["erf"] == []
    assert "predicts objects" in panel.erf_texts[0].text()
    assert "backbone.layer3" in panel.field_label.text()


def test_context_view_measures_the_effective_field_on_the_water_or_road(window, qtbot):
    # The region is the water or road of the labels on the canvas (here the demo model's run),
    # the same for all three; at the most interior boat or car pixel the global models draw
    # more of their gradient from it. Without labels, each model's own prediction is used.
    import cv2

    from segstudio.ui.launchers import open_demo

    assert open_demo(window, "context")
    qtbot.waitUntil(lambda: window.doc is not None and window.is_idle(), timeout=120_000)
    dock = window.explain
    dock.show_view(dock.context)
    assert dock.context.compare()
    wait_done(qtbot, window, dock)
    objects = np.isin(dock.context.results[-1]["labels"], (3, 4)).astype(np.uint8)
    depth = cv2.distanceTransform(objects, cv2.DIST_L2, 5)
    dock.session.pixel = tuple(int(v) for v in np.unravel_index(int(np.argmax(depth)),
                                                                 depth.shape))
    assert dock.context.compare()
    wait_done(qtbot, window, dock)
    shares = {}
    band = np.isin(window.doc.labels.array, (1, 2))
    assert band.any()
    for r, text in zip(dock.context.results, dock.context.texts):
        heat = r["erf"].heat.astype(np.float64)
        assert r["band"]["source"] == "as labelled on the canvas"
        assert r["band"]["share"] == pytest.approx(heat[band].sum() / heat.sum(), rel=1e-4)
        assert f"{r['band']['share']:.1%} of the effective field on the water or road" \
            in text.text()
        shares[r["title"]] = r["band"]["share"]
    assert shares["FCN-8s"] < min(shares["PSPNet"], shares["DeepLab v3"]), shares
    window.doc.labels.replace(np.zeros_like(window.doc.labels.array), name="clear")
    assert dock.context.compare()
    wait_done(qtbot, window, dock)
    for r in dock.context.results:
        band = np.isin(r["labels"], (1, 2))
        heat = r["erf"].heat.astype(np.float64)
        assert r["band"]["source"] == "as it predicts it"
        assert r["band"]["share"] == pytest.approx(heat[band].sum() / heat.sum(), rel=1e-4)


def test_the_picker_offers_the_trained_models_and_names_untrained_ones(window, dock, qtbot):
    """With the trained chest U-Net in the Model panel, Inside the model looks into it by
    default, lists the trained models by name, and every random-weight entry says so."""
    window.models.start()
    qtbot.waitUntil(lambda: window.models._catalog_loaded, timeout=120_000)
    qtbot.waitUntil(window.is_idle, timeout=60_000)
    panel = window.models.panel
    entry = panel.current_entry()
    assert entry.trained and entry.choice.checkpoint.name == "chest_xray_unet_lite.pt"
    combo = dock.picker.combo
    texts = [combo.itemText(i) for i in range(combo.count())]
    assert texts[0] == f"Model panel's choice: {entry.title}"
    assert dock.session.current_source().checkpoint == entry.choice.checkpoint
    assert not dock.picker.untrained.isVisibleTo(dock.picker)
    trained = [t for t in texts[1:] if "untrained" not in t]
    assert any("chest_xray_pspnet_lite.pt" in t for t in trained)
    assert all(t.endswith("untrained (random weights)") for t in texts[1 + len(trained):])
    # choosing a trained PSPNet by name looks into its checkpoint, not random weights
    combo.setCurrentIndex(next(i for i, t in enumerate(texts) if "chest_xray_pspnet_lite" in t))
    assert dock.session.current_source().checkpoint.name == "chest_xray_pspnet_lite.pt"
    assert not dock.picker.untrained.isVisibleTo(dock.picker)
    # the registry's PSPNet is random weights, and the picker says so
    pick_model(dock, "pspnet")
    assert dock.picker.untrained.isVisibleTo(dock.picker)


def _branch_replaced_by_hand(loaded, rgb, path, output_of):
    """Labels of ``rgb`` with the module at ``path`` returning ``output_of(its output)``."""
    module = loaded.model.get_submodule(path)
    handle = module.register_forward_hook(lambda _m, _i, out: output_of(out))
    try:
        with torch.no_grad():
            return loaded.model(loaded.to_input(rgb)[None])["out"][0].argmax(0).numpy()
    finally:
        handle.remove()


def _outputs_by_hand(loaded, images, path):
    module = loaded.model.get_submodule(path)
    seen = []
    handle = module.register_forward_hook(lambda _m, _i, out: seen.append(out.detach()))
    with torch.no_grad():
        for rgb in images:
            loaded.model(loaded.to_input(rgb)[None])
    handle.remove()
    return seen


@pytest.mark.parametrize("how", ["mean", "swap"])
def test_the_branch_view_replaces_a_branch_by_its_mean_or_its_output_on_the_next_image(
        window, dock, qtbot, image_folder, how):
    from segstudio.io.images import read_image

    pick_model(dock, "pspnet")
    dock.show_view(dock.branches)
    grid = dock.branches
    grid.replace_combo.setCurrentIndex(grid.replace_combo.findData(how))
    qtbot.mouseClick(grid.show_button, Qt.MouseButton.LeftButton)
    wait_done(qtbot, window, dock)
    index = [m["name"] for m in grid.maps].index("psp.bin2")
    qtbot.mouseClick(grid.thumbnails[index], Qt.MouseButton.LeftButton)
    wait_done(qtbot, window, dock)
    loaded = loaded_model(dock)
    rgb = window.doc.image.to_rgb8()
    files = sorted(image_folder.iterdir())
    if how == "mean":           # all three images of the workspace, averaged by hand
        seen = _outputs_by_hand(loaded, [read_image(p).to_rgb8() for p in files],
                                "head.ppm.stages.1")
        mean = sum(t.mean(dim=(0, 2, 3)) for t in seen) / len(seen)
        expected = _branch_replaced_by_hand(loaded, rgb, "head.ppm.stages.1",
                                            lambda out: mean.view(1, -1, 1, 1).expand(out.shape))
        said = "psp.bin2 replaced by its mean over 3 image(s) of the workspace"
    else:                       # the image after b_picture.png: c_deep.png
        (other,) = _outputs_by_hand(loaded, [read_image(files[2]).to_rgb8()],
                                    "head.ppm.stages.1")
        expected = _branch_replaced_by_hand(loaded, rgb, "head.ppm.stages.1", lambda out: other)
        said = "psp.bin2 replaced by its output on c_deep.png"
    assert (grid.contribution["without"] == expected).all()
    assert said in grid.info.text()
    before = _branch_replaced_by_hand(loaded, rgb, "head.ppm.stages.1", lambda out: None)
    assert grid.contribution["count"] == int((expected != before).sum())


def test_the_context_tab_replaces_the_global_branches_and_measures_the_counterfactuals(
        window, qtbot, monkeypatch):
    from segstudio.explain.probes import ablate
    from segstudio.ui.explain import context
    from segstudio.ui.launchers import open_demo

    assert open_demo(window, "context")
    qtbot.waitUntil(lambda: window.doc is not None and window.is_idle(), timeout=120_000)
    dock = window.explain
    dock.show_view(dock.context)
    panel = dock.context
    panel.global_combo.setCurrentIndex(panel.global_combo.findData("zero"))
    assert panel.compare()
    wait_done(qtbot, window, dock)
    rgb = window.doc.image.to_rgb8()
    for r, text in zip(panel.results, panel.texts):
        loaded = next(m for m in dock.session.models.values() if m.title == r["model"])
        path = {"pspnet": "head.ppm.stages.0", "deeplabv3": "head.aspp.convs.4"}.get(loaded.arch)
        if path is None:                       # FCN-8s has no global branch: as predicted
            assert r["replaced"] is None
            continue
        with ablate(loaded.model, path), torch.no_grad():
            expected = loaded.model(loaded.to_input(rgb)[None])["out"][0].argmax(0).numpy()
        assert (r["labels"] == expected).all()
        assert "replaced by zeros" in text.text()
    # The demo is one image: a swap has nothing to take the branch's output from, and says so.
    panel.global_combo.setCurrentIndex(panel.global_combo.findData("swap"))
    assert panel.compare()
    wait_done(qtbot, window, dock)
    assert "open a folder with at least two images" in window.statusBar().currentMessage()

    monkeypatch.setattr(context, "MEASURED_SCENES", 1)
    assert panel.measure()
    wait_done(qtbot, window, dock)
    assert [r["title"] for r in panel.measurement] == ["PSPNet", "DeepLab v3"]
    for r in panel.measurement:
        assert r["scenes"] == 1 and r["flipped"]["swap"] > 80
        assert f"{r['flipped']['swap']:.1f} %" in panel.measured.text()
    assert "Measured on 1 held-out 256 px scenes" in panel.measured.text()
