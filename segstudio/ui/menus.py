"""Menus, shortcuts and the tool bar of the main window."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QComboBox, QLabel, QSlider, QToolBar

from segstudio.ui import launchers
from segstudio.ui.canvas import window_level
from segstudio.ui.dialogs.about import show_about
from segstudio.ui.dialogs.label_import import build_import_menu
from segstudio.ui.lessons.menu import build_lessons_menu
from segstudio.ui.panels.paint_options import PaintOptions
from segstudio.ui.canvas.prediction_layers import Uncertainty
from segstudio.ui.canvas.render import OverlayMode


def build_menus(window) -> None:
    """The menu bar and the window-wide shortcuts."""
    mb = window.menuBar()
    m = mb.addMenu("&File")
    window._action("&Open images…", window.open_images_dialog, QKeySequence.StandardKey.Open, m)
    window._action("Open &folder…", window.open_folder_dialog, "Ctrl+Shift+O", m)
    window._action("Open from &PACS…", lambda: launchers.open_from_pacs_dialog(window), None, m)
    window.recent_menu = m.addMenu("Open &recent")
    window.recent_menu.aboutToShow.connect(
        lambda: window.recent.fill_menu(window.recent_menu, lambda p: window.open_paths([p])))
    m.addSeparator()
    window.save_action = window._action("&Save labels", window.save_current,
                                    QKeySequence.StandardKey.Save, m)
    build_import_menu(window, m.addMenu("&Import labels"))
    window._action("&Export VOC…", lambda: launchers.export_voc_dialog(window), "Ctrl+E", m)
    window.export_menu = m.addMenu("E&xport")
    window._action("&Label volumes (NIfTI/NRRD)…",
                   lambda: launchers.export_volumes_dialog(window), None, window.export_menu)
    window._action("&DICOM SEG…", lambda: launchers.export_dicom_seg_dialog(window), None,
                   window.export_menu)
    window._action("Send SEG to PA&CS…", lambda: launchers.send_seg_dialog(window), None, m)
    m.addSeparator()
    window._action("&Quit", window.close, QKeySequence.StandardKey.Quit, m)

    m = mb.addMenu("&Edit")
    window.undo_action = window._action("&Undo", window.undo, QKeySequence.StandardKey.Undo, m)
    window.redo_action = window._action("&Redo", window.redo, "Ctrl+Shift+Z", m)
    m.addSeparator()
    window.tool_group = QActionGroup(window)
    window.tool_actions: dict[str, QAction] = {}
    for name, tool in window.tools.items():
        act = window._action(f"{name} tool", lambda _=False, n=name: window.set_tool(n),
                           tool.shortcut, m)
        act.setCheckable(True)
        if getattr(tool, "tip", ""):
            act.setToolTip(tool.tip)
            act.setStatusTip(tool.tip)
        window.tool_group.addAction(act)
        window.tool_actions[name] = act
    eight = window._action("Fill through diagonal neighbours (8-connected)",
                           lambda on: setattr(window.tools["Fill"], "connectivity", 8 if on else 4),
                           None, m)
    eight.setCheckable(True)
    window._action("Smaller brush", lambda: window._grow_brush(-1), "[", m)
    window._action("Larger brush", lambda: window._grow_brush(1), "]", m)
    window._action("Close polygon", window._close_polygon, Qt.Key.Key_Return)
    window._action("Cancel polygon", window._cancel_tool, Qt.Key.Key_Escape)
    window._action("Pick class under cursor", window.pick_class_under_cursor, "K", m)
    for key in range(10):
        window._action(f"Class {key}", lambda _=False, k=key: window.legend.select_class(k),
                     str(key))

    window.smart.build_menu(mb.addMenu("&Smart"))
    window.objects.build_menu(mb.addMenu("O&bjects"))

    m = mb.addMenu("&Model")
    window._action("&Run on this image", lambda: window.models.run_current(), "Ctrl+R", m)
    window._action("Run on the &selected items", lambda: window.models.run_selected(), None, m)
    window._action("Run on &all items", lambda: window.models.run_all(), "Ctrl+Shift+R", m)
    window._action("&Cancel run", lambda: window.models.runner.cancel(), None, m)
    m.addSeparator()
    window._action("&Load model…", lambda: window.models.panel.choose_model_file(), None, m,
                   tip="A segstudio checkpoint, a TorchScript archive or an ONNX model")
    window._action("Load model &folder…", lambda: window.models.panel.choose_model_folder(), None,
                   m, tip="A Hugging Face or segmentation-models-pytorch folder saved with "
                          "save_pretrained (config.json and model.safetensors)")
    window._action("&Fine-tune on this workspace…", lambda: launchers.finetune_dialog(window), None,
                   m)
    window._action("&Published torchvision weights…", lambda: launchers.published_dialog(window), None, m)
    window._action("Prompted &segmenter…", lambda: window.prompt.choose_weights(), None, m,
                   tip="Choose a Segment Anything or MedSAM weights file for the Prompt tool (Q)")
    window._action("Prompted segmenter: SAM &2 folder…", lambda: window.prompt.choose_folder(),
                   None, m, tip="Choose a SAM 2 model folder (Hugging Face format) for the "
                                "Prompt tool (Q) on still images")

    m = mb.addMenu("&View")
    window._action("&Fit to window", window.canvas.fit_to_window, "Ctrl+0", m)
    window._action("Zoom &in", lambda: window.canvas.zoom_by(1.25), QKeySequence.StandardKey.ZoomIn, m)
    window._action("Zoom &out", lambda: window.canvas.zoom_by(0.8), QKeySequence.StandardKey.ZoomOut, m)
    window._action("&Actual pixels", lambda: window.canvas.zoom_by(1 / window.canvas.scale), "Ctrl+1", m)
    window._action("Reset &window/level", lambda: window.levels.reset(), None, m)
    window_level.add_menu(window, m)
    m.addSeparator()
    window.overlay_action = window._action("Show &overlay", window.toggle_overlay, "V", m)
    window.overlay_action.setCheckable(True)
    window.overlay_action.setChecked(True)
    unsure = m.addMenu("&Uncertainty layer")
    group = QActionGroup(window)
    for kind in Uncertainty:
        act = window._action(kind.value.capitalize(), lambda _=False, k=kind: _uncertainty(window, k),
                             "U" if kind is Uncertainty.MARGIN else None, unsure)
        act.setCheckable(True)
        act.setChecked(kind is Uncertainty.OFF)
        group.addAction(act)
    window.compare_action = window._action("&Compare prediction (swipe)",
                                           lambda on: _compare(window, on), "C", m)
    window.compare_action.setCheckable(True)
    window.instances_action = window._action("&Instance outlines (Mask R-CNN)",
                                             lambda on: _instances(window, on), "O", m)
    window.instances_action.setCheckable(True)
    m.addSeparator()
    window.review_action = window._action("&Review mode", lambda on: window.review.set_active(on),
                                          "F2", m)
    window.review_action.setCheckable(True)
    # These keys mean something only in review mode; elsewhere the arrows belong to widgets.
    window.review_actions = [
        window._action("Accept (review)", lambda: window.review.accept(), "Y"),
        window._action("Reject and edit (review)", lambda: window.review.reject(), "X"),
        window._action("Next (review)", lambda: window.review.step(1), "Right"),
        window._action("Previous (review)", lambda: window.review.step(-1), "Left")]
    for act in window.review_actions:
        act.setEnabled(False)
    window._action("Ne&xt unreviewed item", lambda: window.review.next_unreviewed(), "N", m)
    window._action("Workspace &statistics…", lambda: launchers.statistics_dialog(window), None, m)
    window._action("&Next item", lambda: window.step_item(1), "D", m)
    window._action("&Previous item", lambda: window.step_item(-1), "A", m)

    build_lessons_menu(window, mb.addMenu("&Lessons"))

    window.help_menu = mb.addMenu("&Help")
    window._action("Open the chest X-ray &demo", lambda: launchers.open_demo(window, "chest"), None,
                   window.help_menu)
    window._action("Open the &context demo (receptive fields)",
                   lambda: launchers.open_demo(window, "context"), None, window.help_menu)
    window._action("Open the &shapes demo (Mask R-CNN instances)",
                   lambda: launchers.open_demo(window, "shapes"), None, window.help_menu)
    window.help_menu.addSeparator()
    window._action("&Keyboard shortcuts", lambda: launchers.shortcut_sheet(window), "F1",
                   window.help_menu)
    window._action("&About segstudio", lambda: show_about(window), None, window.help_menu)

def build_toolbar(window) -> None:
    """The tool bar: tools, overlay mode and opacity, paint options."""
    tb = QToolBar("Tools", window)
    tb.setObjectName("toolbar-tools")
    window.addToolBar(tb)
    for act in window.tool_actions.values():
        tb.addAction(act)
    tb.addSeparator()
    tb.addWidget(QLabel(" Overlay ", tb))
    window.mode_combo = QComboBox(tb)
    for mode in OverlayMode:
        window.mode_combo.addItem(mode.value, mode)
    window.mode_combo.currentIndexChanged.connect(
        lambda _: window.set_overlay_mode(window.mode_combo.currentData()))
    tb.addWidget(window.mode_combo)
    tb.addWidget(QLabel(" Opacity ", tb))
    window.opacity_slider = QSlider(Qt.Orientation.Horizontal, tb)
    window.opacity_slider.setRange(0, 100)
    window.opacity_slider.setValue(round(window.canvas.opacity * 100))
    window.opacity_slider.setFixedWidth(120)
    window.opacity_slider.valueChanged.connect(window.set_opacity)
    tb.addWidget(window.opacity_slider)
    tb.addSeparator()
    window.addToolBarBreak()
    options = QToolBar("Paint options", window)
    options.setObjectName("toolbar-paint-options")
    window.addToolBar(options)
    window.paint_options = PaintOptions(options)
    window.paint_options.set_classes(window.classes)
    options.addWidget(window.paint_options)


def _uncertainty(window, kind: Uncertainty) -> None:
    if not window.layers.set_uncertainty(kind) and kind is not Uncertainty.OFF:
        window.statusBar().showMessage("No prediction for this image yet: run a model (Ctrl+R)",
                                       4000)


def _compare(window, on: bool) -> None:
    if not window.layers.set_compare(on) and on:
        window.statusBar().showMessage("No prediction for this image yet: run a model (Ctrl+R)",
                                       4000)


def _instances(window, on: bool) -> None:
    if not window.layers.set_instances(on) and on:
        pred = window.layers.prediction()
        window.statusBar().showMessage(
            "No prediction for this image yet: run a model (Ctrl+R)" if pred is None else
            "This prediction has no instances: only an instance model (Mask R-CNN) finds them",
            5000)
