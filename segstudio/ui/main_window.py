"""The main window: it wires the canvas, panels, tools and workspace together.

Behaviour lives in those parts (opening and showing items in ``controllers/documents.py``,
saving labels in ``controllers/saving.py``); this module creates and connects them, and keeps
the window's methods that the rest of the interface calls.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PySide6.QtCore import QRect, QSettings, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QCloseEvent, QImage, QKeySequence
from PySide6.QtWidgets import (QDockWidget, QFrame, QLabel, QMainWindow, QMessageBox,
                               QScrollArea, QVBoxLayout, QWidget)

from segstudio.core.classes import ClassSet, chest_xray
from segstudio.core.geometry import Rect
from segstudio.core.labelmap import LabelMap, PaintGuard
from segstudio.io.recovery import RecoveryStore
from segstudio.io.workspace import ItemStatus, Workspace, WorkspaceError
from segstudio.paths import user_data_dir
from segstudio.ui.background.autosave import Autosave
from segstudio.ui.background.workspace_writer import WorkspaceWriter
from segstudio.ui.canvas.document import Document
from segstudio.ui.canvas.prediction_layers import PredictionLayers
from segstudio.ui.canvas.render import OverlayMode
from segstudio.ui.canvas.view import Canvas
from segstudio.ui.canvas.window_level import PixelReadout, WindowLevel
from segstudio.ui.controllers.class_sets import ClassSetChange
from segstudio.ui.controllers.documents import Documents
from segstudio.ui.controllers.document_loader import DocumentLoader
from segstudio.ui.controllers.model_runs import ModelRuns
from segstudio.ui.controllers.objects import ObjectEditing
from segstudio.ui.controllers.prompt_session import PromptSession
from segstudio.ui.controllers.recent import RecentFiles
from segstudio.ui.controllers.review import Review
from segstudio.ui.controllers.saving import LabelSaving
from segstudio.ui.controllers.smart_tools import SmartTools
from segstudio.ui.explain.dock import install_explain
from segstudio.ui.menus import build_menus, build_toolbar
from segstudio.ui.notice import Level, NoticeBar
from segstudio.ui.panels.files import FileListPanel
from segstudio.ui.panels.legend import LegendPanel
from segstudio.ui.panels.metrics import MetricsPanel
from segstudio.ui.tools import BrushTool, EraserTool, FillTool, PolygonTool
from segstudio.ui.video.frame_labels import install_frame_labels
from segstudio.ui.video.panel import install_video
from segstudio.ui import window_geometry


class MainWindow(QMainWindow):
    documentShown = Signal(object)

    def __init__(self, settings: QSettings | None = None) -> None:
        super().__init__()
        self.settings = settings or QSettings("segstudio", "segstudio")
        self.recent = RecentFiles(self.settings)
        self.setWindowTitle("segstudio[*]")
        self.setAcceptDrops(True)
        self.workspace: Workspace | None = None
        self.data_kind = "grey"                # of the workspace's pictures (io.data_kind)
        self.classes: ClassSet = chest_xray()
        self.hidden: set[int] = {0}
        self.doc: Document | None = None
        self.documents = Documents(self)      # the item on screen and the kept ones
        self.saving = LabelSaving(self)
        self._busy = 0
        self.interactive = True          # False in --screenshot mode: no modal dialogs
        self.remember_geometry = True    # False in --screenshot mode: the user's size stays
        self.discard_changes_on_close = False

        self.canvas = Canvas(self)
        # The canvas with room above it for bars that must not cover the image (out of domain).
        central = QWidget(self)
        self.canvas_column = QVBoxLayout(central)
        self.canvas_column.setContentsMargins(0, 0, 0, 0)
        self.canvas_column.setSpacing(0)
        self.canvas_column.addWidget(self.canvas, 1)
        self.setCentralWidget(central)
        self.notice = NoticeBar(self.canvas)     # saved, finished, failed, untrained
        self.legend = LegendPanel(self)
        self.files = FileListPanel(self)
        self._dock(self.files, "Files", Qt.DockWidgetArea.LeftDockWidgetArea)
        self._dock(self.legend, "Classes", Qt.DockWidgetArea.RightDockWidgetArea)
        self.models = ModelRuns(self)
        self.autosave = Autosave(self, RecoveryStore(user_data_dir() / "recovery"))
        self.layers = PredictionLayers(self)
        self.ws_writer = WorkspaceWriter(self)
        self.loader = DocumentLoader(self)
        self.ws_writer.failed.connect(lambda m: self.notice.show_notice(
            f"The workspace file could not be written: {m}", Level.ERROR))
        self.metrics = MetricsPanel(self)
        model_dock = self._dock(self.models.panel, "Model", Qt.DockWidgetArea.RightDockWidgetArea,
                                scroll=True)
        scores_dock = self._dock(self.metrics, "Scores", Qt.DockWidgetArea.RightDockWidgetArea,
                                 scroll=True)
        self.tabifyDockWidget(model_dock, scores_dock)
        model_dock.raise_()
        self.bottom_right_dock = model_dock     # other panels tabify with it

        # As wide as its line needs, up to a share of the bar: messages keep their room.
        self.pixel_label = PixelReadout(self)
        self.zoom_label = QLabel("", self)
        self.device_label = QLabel("no model", self)
        self.device_label.setToolTip("The device and precision the model actually runs with")
        self.statusBar().addPermanentWidget(self.pixel_label)
        self.statusBar().addPermanentWidget(self.zoom_label)
        self.statusBar().addPermanentWidget(self.device_label)

        self.tools = {cls.name: cls(self) for cls in (BrushTool, EraserTool, FillTool, PolygonTool)}
        self.smart = SmartTools(self)            # adds the GrabCut box tool
        self.prompt = PromptSession(self)        # adds the Prompt tool (Segment Anything)
        self.objects = ObjectEditing(self)       # adds the object tools, menu and panel
        self.objects.install_panel()
        self.review = Review(self)
        build_menus(self)
        build_toolbar(self)

        self.legend.set_classes(self.classes, self.hidden)
        self.legend.classSelected.connect(lambda _: self._update_status_class())
        self.legend.hiddenChanged.connect(self._set_hidden)
        self.legend.classesEdited.connect(self.set_classes)
        self.class_sets = ClassSetChange(self)
        self.legend.replaceRequested.connect(self.class_sets.replace)
        self.legend.error.connect(self.show_error)
        self.files.activated.connect(self.show_row)
        self.canvas.hovered.connect(self._show_pixel)
        self.canvas.left.connect(self.pixel_label.clear_readout)
        self.documentShown.connect(lambda _doc: self.pixel_label.reset())
        self.canvas.zoomChanged.connect(lambda s: self.zoom_label.setText(f"{s * 100:.0f}%"))
        self.canvas.wheelWithCtrl.connect(self._grow_brush)
        self.levels = WindowLevel(self)
        self._counts_timer = QTimer(self, singleShot=True, interval=150)
        self._counts_timer.timeout.connect(self.refresh_counts)
        self.set_tool("Brush")
        self.video = install_video(self)
        self.frame_labels = install_frame_labels(self)
        self.explain = install_explain(self)
        explain_dock = self.explain.parentWidget()
        if isinstance(explain_dock, QDockWidget):
            self.tabifyDockWidget(self.bottom_right_dock, explain_dock)
            self.bottom_right_dock.raise_()

    # -- layout ------------------------------------------------------------------------------
    def place_on(self, available: QRect, size: QSize | None = None) -> None:
        """Open at ``size``, else the last geometry, else 1280×800, within ``available``."""
        window_geometry.place(self, available, size)

    def place_on_screen(self, size: QSize | None = None) -> None:
        """:meth:`place_on` the available area of the window's screen."""
        self.place_on(self.screen().availableGeometry(), size)

    def _dock(self, widget: QWidget, title: str, area, *, scroll: bool = False) -> QDockWidget:
        """A dock holding ``widget``; with ``scroll``, inside a scroll area, so a tall panel
        does not set the window's smallest height (it scrolls on a small screen instead)."""
        dock = QDockWidget(title, self)
        dock.setObjectName(f"dock-{title}")
        if scroll:
            area_widget = QScrollArea(dock)
            area_widget.setWidgetResizable(True)
            area_widget.setFrameShape(QFrame.Shape.NoFrame)
            area_widget.setWidget(widget)
            dock.setWidget(area_widget)
        else:
            dock.setWidget(widget)
        self.addDockWidget(area, dock)
        return dock

    def _action(self, text: str, slot, shortcut=None, menu=None, tip: str = "") -> QAction:
        act = QAction(text, self)
        if shortcut is not None:
            act.setShortcut(QKeySequence(shortcut))
        if tip:
            act.setStatusTip(tip)
        act.triggered.connect(slot)
        self.addAction(act)
        if menu is not None:
            menu.addAction(act)
        return act

    # -- ToolContext -------------------------------------------------------------------------
    def labelmap(self) -> LabelMap | None:
        return self.doc.labels if self.doc is not None else None

    def current_class(self) -> int:
        c = self.legend.current_class()
        return 0 if c is None else c

    def guard(self) -> PaintGuard:
        return self.paint_options.guard(self.doc.image.pixels if self.doc is not None else None)

    def request_repaint(self) -> None:
        self.canvas.update()

    # -- opening, showing and saving (controllers/documents.py, controllers/saving.py) --------
    def open_images_dialog(self) -> None:
        self.documents.open_images_dialog()

    def open_folder_dialog(self) -> None:
        self.documents.open_folder_dialog()

    def open_paths(self, paths: list[Path], classes: ClassSet | None = None) -> bool:
        return self.documents.open_paths(paths, classes)

    def set_workspace(self, ws: Workspace) -> None:
        self.documents.set_workspace(ws)

    def show_row(self, row: int) -> bool:
        return self.documents.show_row(row)

    def show_document(self, doc: Document, display: QImage | None = None) -> None:
        """Put ``doc`` on screen (``display``: its picture, when already made off-thread)."""
        self.documents.show_document(doc, display)

    def step_item(self, delta: int) -> None:
        self.documents.step(delta)

    def reload_workspace_view(self) -> None:
        self.documents.reload_workspace_view()

    def document_for(self, row: int) -> Document | None:
        return self.documents.document_for(row)

    def dirty_documents(self) -> list[Document]:
        return self.documents.dirty()

    def save_document(self, doc: Document, *, status: ItemStatus = ItemStatus.CORRECTED,
                      by: str = "hand", then: str = "") -> bool:
        return self.saving.save_document(doc, status=status, by=by, then=then)

    def save_current(self) -> bool:
        return self.saving.save_current()

    def maybe_save(self, *, closing: bool = False) -> bool:
        return self.saving.maybe_save(closing=closing)

    def update_modified(self) -> None:
        self.saving.update_modified()

    def prediction_shown(self, prediction) -> None:
        notes = "; ".join(prediction.notes)
        warn = "" if prediction.trained else " — UNTRAINED model: this is noise"
        self.statusBar().showMessage(f"Prediction on {prediction.device} ({prediction.precision})"
                                     + (f", {notes}" if notes else "") + warn, 8000)
        if not prediction.trained:
            self.notice.show_notice("This prediction comes from an UNTRAINED model (random "
                                    "weights): it is noise. Pick a trained model in the Model "
                                    "panel.", Level.WARNING)

    # -- editing -----------------------------------------------------------------------------
    def labels_changed(self, rect: Rect) -> None:
        if self.doc is None:
            return
        self.doc.overlay.update(rect)
        self.canvas.update_image_rect(rect)
        self._counts_timer.start()
        self.autosave.changed()
        self.metrics.labels_changed()
        self.update_modified()

    def refresh_counts(self) -> None:
        self.legend.set_counts(self.doc.labels.class_counts() if self.doc else None)

    def set_tool(self, name: str) -> None:
        if self.canvas.tool is not None:
            self.canvas.tool.cancel()
        self.canvas.tool = self.tools[name]
        self.tool_actions[name].setChecked(True)
        self.statusBar().showMessage(f"{name} tool", 2000)
        self.canvas.update()
        if hasattr(self.canvas.tool, "activate"):
            self.canvas.tool.activate()

    def _grow_brush(self, notches: int) -> None:
        tool = self.canvas.tool
        if isinstance(tool, BrushTool):
            tool.grow(notches)
            self.statusBar().showMessage(f"{tool.name} size: {tool.size} px", 2000)

    def _close_polygon(self) -> None:
        if isinstance(self.canvas.tool, PolygonTool) or self.canvas.tool is self.prompt.tool:
            self.canvas.tool.close()

    def _cancel_tool(self) -> None:
        if self.canvas.tool is not None:
            self.canvas.tool.cancel()

    def undo(self) -> None:
        if self.doc is not None and self.doc.labels.undo() is None:
            self.statusBar().showMessage("Nothing to undo", 2000)

    def redo(self) -> None:
        if self.doc is not None and self.doc.labels.redo() is None:
            self.statusBar().showMessage("Nothing to redo", 2000)

    def pick_class_under_cursor(self) -> None:
        if self.doc is None:
            return
        pos = self.canvas.to_image(self.canvas.mapFromGlobal(self.canvas.cursor().pos()).toPointF())
        value = self.doc.labels.at(int(pos.x()), int(pos.y()))
        if value is not None and value < len(self.classes):
            self.legend.select_class(value)

    # -- overlay -----------------------------------------------------------------------------
    def set_opacity(self, percent: int) -> None:
        self.canvas.opacity = percent / 100.0
        self.canvas.update()

    def toggle_overlay(self) -> None:
        self.canvas.overlay_visible = not self.canvas.overlay_visible
        self.overlay_action.setChecked(self.canvas.overlay_visible)
        self.canvas.update()

    def set_overlay_mode(self, mode: OverlayMode) -> None:
        if self.doc is not None:
            self.doc.overlay.set_mode(mode)
            self.canvas.update()

    def _set_hidden(self, hidden: set[int]) -> None:
        self.hidden = set(hidden)
        if self.doc is not None:
            self.doc.overlay.set_hidden(self.hidden)
            self.canvas.update()

    def set_classes(self, classes: ClassSet) -> None:
        self.classes = classes
        if self.workspace is not None:
            self.workspace.classes = classes
            self.documents.class_memory.remember(self.data_kind, classes)
            try:
                self.workspace.save()
            except (WorkspaceError, OSError) as exc:
                self.show_error(f"Could not record the class set: {exc}")
        if self.doc is not None:
            used = np.flatnonzero(self.doc.labels.class_counts()[:255])
            if used.size and used.max() >= len(classes):
                self.show_error(f"These labels use class {int(used.max())}, which the class set "
                                f"{classes.title!r} ({len(classes)} classes) does not have.")
            self.doc.overlay.set_classes(classes)
            self.canvas.update()
        if self.legend.classes != classes:
            self.legend.set_classes(classes, self.hidden)
        self.paint_options.set_classes(classes)

    # -- status bar --------------------------------------------------------------------------
    def _show_pixel(self, fx: float, fy: float) -> None:
        doc = self.doc
        if doc is None:
            return
        x, y = int(np.floor(fx)), int(np.floor(fy))
        if not (0 <= x < doc.image.width and 0 <= y < doc.image.height):
            self.pixel_label.clear_readout()
            return
        value = self.levels.readout(x, y)         # stored, modality and shown values
        label = doc.labels.at(x, y)
        name = ("void" if label == 255 else self.classes[label].name if label < len(self.classes)
                else f"unknown class {label}")
        self.pixel_label.show_readout(f"x {x}, y {y}", value, f"class {label} ({name})")

    def _update_status_class(self) -> None:
        c = self.current_class()
        if c < len(self.classes):
            self.statusBar().showMessage(f"Painting with class {c}: {self.classes[c].name}", 2000)

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802
        if self.maybe_save(closing=True):
            self.loader.shutdown()
            self.models.shutdown()
            self.video.shutdown()
            self.explain.session.shutdown() if hasattr(self.explain, "session") else None
            for page in getattr(self, "lesson_pages", {}).values():
                if hasattr(page, "shutdown"):    # a lab measuring now stops before the window goes
                    page.shutdown()
            self.smart.close()
            self.prompt.shutdown()
            self.layers.shutdown()
            self.ws_writer.flush()
            # Edits that are neither saved nor discarded keep their autosave for the next start.
            self.autosave.close(keep=bool(self.dirty_documents())
                                and not self.discard_changes_on_close)
            if self.remember_geometry:
                window_geometry.remember(self)
            event.accept()
        else:
            event.ignore()

    # -- recent files, drag and drop ---------------------------------------------------------
    def recent_paths(self) -> list[str]:
        return self.recent.paths()

    def dragEnterEvent(self, event) -> None:  # noqa: N802
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: N802
        paths = [Path(u.toLocalFile()) for u in event.mimeData().urls() if u.isLocalFile()]
        if paths:
            self.open_paths(paths)
            event.acceptProposedAction()

    # -- messages ----------------------------------------------------------------------------
    def show_error(self, message: str) -> None:
        self.statusBar().showMessage(message, 10000)
        self.notice.show_notice(message, Level.ERROR)
        if self.interactive:
            QMessageBox.warning(self, "segstudio", message)
        else:
            print(f"segstudio: {message}", file=sys.stderr)

    # -- idleness (for --screenshot and tests) -----------------------------------------------
    def begin_busy(self) -> None:
        self._busy += 1

    def end_busy(self) -> None:
        self._busy = max(0, self._busy - 1)

    def is_idle(self) -> bool:
        return (self._busy == 0 and not self.models.runner.busy
                and not self.metrics._timer.isActive())
