"""The main window: it wires the canvas, panels, tools and workspace together.

Behaviour lives in those parts; this module connects them and owns the menus.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PySide6.QtCore import QSettings, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QCloseEvent, QImage, QKeySequence
from PySide6.QtWidgets import (QDockWidget, QFileDialog, QLabel, QMainWindow,
                               QMessageBox, QWidget)

from segstudio.core.classes import ClassSet, chest_xray
from segstudio.core.geometry import Rect
from segstudio.core.labelmap import LabelMap, PaintGuard
from segstudio.core.workspace import ItemStatus, Workspace, WorkspaceError
from segstudio.io.images import ImageReadError
from segstudio.io.object_store import load_objects, save_objects
from segstudio.io.recovery import RecoveryStore
from segstudio.paths import user_data_dir
from segstudio.ui.autosave import Autosave, quit_keeping_autosave
from segstudio.ui.canvas import Canvas
from segstudio.ui.document import Document, KeptDocuments
from segstudio.ui.document_loader import DocumentLoader
from segstudio.ui.explain_session import install_explain
from segstudio.ui.frame_labels import install_frame_labels
from segstudio.ui.panels.video import install_video
from segstudio.ui.panels.files import FileListPanel
from segstudio.ui.panels.legend import LegendPanel
from segstudio.ui.panels.metrics import MetricsPanel
from segstudio.ui.recent import RecentFiles
from segstudio.ui.review import Review
from segstudio.ui.render import OverlayMode
from segstudio.ui.menus import build_menus, build_toolbar
from segstudio.ui.objects import ObjectEditing
from segstudio.ui.model_runs import ModelRuns
from segstudio.ui.notice import Level, NoticeBar
from segstudio.ui.prediction_layers import PredictionLayers
from segstudio.ui.prompt_session import PromptSession
from segstudio.ui.smart_tools import SmartTools
from segstudio.ui.window_level import WindowLevel
from segstudio.ui.workspace_writer import WorkspaceWriter
from segstudio.ui.tools import BrushTool, EraserTool, FillTool, PolygonTool

KEPT_DOCUMENTS = 8      # label maps (with their undo history) kept for recently shown items


class MainWindow(QMainWindow):
    documentShown = Signal(object)

    def __init__(self, settings: QSettings | None = None) -> None:
        super().__init__()
        self.settings = settings or QSettings("segstudio", "segstudio")
        self.recent = RecentFiles(self.settings)
        self.setWindowTitle("segstudio[*]")
        self.setAcceptDrops(True)
        self.workspace: Workspace | None = None
        self.classes: ClassSet = chest_xray()
        self.hidden: set[int] = {0}
        self.doc: Document | None = None
        self._kept = KeptDocuments(KEPT_DOCUMENTS, self._evict)
        self._busy = 0
        self.interactive = True          # False in --screenshot mode: no modal dialogs
        self.discard_changes_on_close = False

        self.canvas = Canvas(self)
        self.setCentralWidget(self.canvas)
        self.notice = NoticeBar(self.canvas)     # saved, failed, finished: until dismissed
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
        model_dock = self._dock(self.models.panel, "Model", Qt.DockWidgetArea.RightDockWidgetArea)
        scores_dock = self._dock(self.metrics, "Scores", Qt.DockWidgetArea.RightDockWidgetArea)
        self.tabifyDockWidget(model_dock, scores_dock)
        model_dock.raise_()
        self.bottom_right_dock = model_dock     # other panels tabify with it

        self.pixel_label = QLabel("", self)
        self.zoom_label = QLabel("", self)
        self.device_label = QLabel("no model", self)
        self.device_label.setToolTip("The device and precision the model actually runs with")
        # A fixed width: a stretching readout would leave temporary messages no room.
        self.pixel_label.setFixedWidth(self.pixel_label.fontMetrics().horizontalAdvance(
            "x 0000, y 0000   value 00000   class 00 (background)"))
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
        self.legend.error.connect(self.show_error)
        self.files.activated.connect(self.show_row)
        self.canvas.hovered.connect(self._show_pixel)
        self.canvas.left.connect(lambda: self.pixel_label.setText(""))
        self.canvas.zoomChanged.connect(lambda s: self.zoom_label.setText(f"{s * 100:.0f}%"))
        self.canvas.wheelWithCtrl.connect(self._grow_brush)
        self.levels = WindowLevel(self)
        self._counts_timer = QTimer(self, singleShot=True, interval=150)
        self._counts_timer.timeout.connect(self._refresh_counts)
        self.set_tool("Brush")
        self.video = install_video(self)
        self.frame_labels = install_frame_labels(self)
        self.explain = install_explain(self)
        explain_dock = self.explain.parentWidget()
        if isinstance(explain_dock, QDockWidget):
            self.tabifyDockWidget(self.bottom_right_dock, explain_dock)
            self.bottom_right_dock.raise_()

    # -- layout ------------------------------------------------------------------------------
    def _dock(self, widget: QWidget, title: str, area) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(f"dock-{title}")
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

    # -- opening -----------------------------------------------------------------------------
    def open_images_dialog(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(
            self, "Open images", self._last_dir(),
            "Images (*.png *.jpg *.jpeg *.tif *.tiff *.bmp *.dcm *.dicom);;All files (*)")
        if paths:
            self.open_paths([Path(p) for p in paths])

    def open_folder_dialog(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Open folder", self._last_dir())
        if path:
            self.open_paths([Path(path)])

    def _last_dir(self) -> str:
        recent = self.recent_paths()
        return str(Path(recent[0]).parent) if recent else str(Path.home())

    def open_paths(self, paths: list[Path], classes: ClassSet | None = None) -> bool:
        """Open a folder as a workspace, or loose files together; False (and a message) if not.

        A folder's own saved class set wins; a new workspace starts with ``classes`` or the
        current one.
        """
        paths = [Path(p) for p in paths]
        classes = classes or self.classes
        if not self.maybe_save():
            return False
        try:
            if len(paths) == 1 and paths[0].is_dir():
                ws = Workspace.open(paths[0], classes=classes)
            else:
                ws = Workspace.from_paths(paths, classes=classes)
        except (WorkspaceError, OSError) as exc:
            self.show_error(str(exc))
            return False
        if not ws.items:
            self.show_error(f"Nothing to open in {', '.join(p.name for p in paths)}: no images found.")
            return False
        self.set_workspace(ws)
        for p in paths:
            self.recent.add(p)
        if ws.problems:
            self.show_error(f"{len(ws.problems)} file(s) could not be added: "
                            + "; ".join(ws.problems[:3]) + (" …" if len(ws.problems) > 3 else ""))
        return True

    def set_workspace(self, ws: Workspace) -> None:
        if self.workspace is not None:
            self.ws_writer.flush()
        self.loader.forget()
        self.workspace = ws
        self.ws_writer.attach(ws)
        self.autosave.reset(str(ws.root))
        for doc in self._kept.clear() + ([self.doc] if self.doc is not None else []):
            doc.labels.remove_listener(self._labels_changed)
        self.doc = None
        self.classes = ws.classes
        self.legend.set_classes(self.classes, self.hidden)
        self.paint_options.set_classes(self.classes)
        self.files.set_items(ws.items)
        self.setWindowTitle(f"segstudio — {ws.root.name}[*]")
        self.show_row(0)

    def show_row(self, row: int) -> bool:
        ws = self.workspace
        if ws is None or not 0 <= row < len(ws.items):
            return False
        if self.doc is not None and self.doc.row == row:
            self.loader.forget()                        # stay here, whatever was loading
            return True
        self.autosave.flush()
        doc = self._kept.take(row)
        if doc is None:
            item = ws.items[row]
            if self.loader.wants_background(item):      # a large picture: decode off-thread
                return self.loader.load(row)
            try:
                image = ws.read_image(item)
                labels = ws.load_labels(item)
                doc = Document.create(row, item, image, labels, self.classes, self.hidden,
                                      objects=load_objects(ws, item))
            except (ImageReadError, WorkspaceError, OSError, ValueError) as exc:
                self.show_error(str(exc))
                return False
        self.show_document(doc)
        return True

    def show_document(self, doc: Document, display: QImage | None = None) -> None:
        """Put ``doc`` on screen (``display``: its picture, when already made off-thread)."""
        self.loader.forget()
        self._keep_current()
        self._set_document(doc, display)
        self.files.select_row(doc.row)

    def _keep_current(self) -> None:
        if self.doc is None:
            return
        self._kept.keep(self.doc)

    def _evict(self, old: Document) -> bool:
        """Save ``old`` if it was edited; False keeps it in memory, because its save failed."""
        if old.dirty and (old.save_failed or not self.save_document(
                old, then="They stay open, and in the autosave, until they can be saved.")):
            return False
        old.labels.remove_listener(self._labels_changed)
        return True

    def _set_document(self, doc: Document, display: QImage | None = None) -> None:
        if self.doc is not None:
            self.doc.labels.remove_listener(self._labels_changed)
        self.doc = doc
        doc.labels.add_listener(self._labels_changed)
        doc.overlay.set_classes(self.classes) if doc.overlay.classes != self.classes else None
        if doc.overlay.hidden != self.hidden:
            doc.overlay.set_hidden(self.hidden)
        if doc.overlay.mode != self.mode_combo.currentData():
            doc.overlay.set_mode(self.mode_combo.currentData())
        self.canvas.set_image(display if display is not None else doc.display_qimage())
        self.canvas.set_overlay(doc.overlay.image)
        notes = "; ".join(doc.image.notes)
        self.statusBar().showMessage(f"{doc.item.id}: {doc.image.width}×{doc.image.height} "
                                     f"{doc.image.format}, {doc.image.bit_depth}-bit"
                                     + (f" — {notes}" if notes else ""), 8000)
        self._refresh_counts()
        self.paint_options.set_value_range(*doc.image.value_range)
        self.update_modified()
        self.documentShown.emit(doc)

    def reload_workspace_view(self) -> None:
        """Label files changed under the window (an import): show them afresh."""
        row = self.doc.row if self.doc is not None else 0
        for doc in self._kept.clear():
            doc.labels.remove_listener(self._labels_changed)
        if self.doc is not None:
            self.doc.labels.remove_listener(self._labels_changed)
        self.doc = None
        self.files.set_items(self.workspace.items)
        self.show_row(row)

    def document_for(self, row: int) -> Document | None:
        """The open document of workspace row ``row`` (on screen or kept), if any."""
        if self.doc is not None and self.doc.row == row:
            return self.doc
        return self._kept.get(row)

    def prediction_shown(self, prediction) -> None:
        notes = "; ".join(prediction.notes)
        warn = "" if prediction.trained else " — UNTRAINED model: this is noise"
        self.statusBar().showMessage(f"Prediction on {prediction.device} ({prediction.precision})"
                                     + (f", {notes}" if notes else "") + warn, 8000)
        if not prediction.trained:
            self.notice.show_notice("This prediction comes from an UNTRAINED model (random "
                                    "weights): it is noise. Pick a trained model in the Model "
                                    "panel.", Level.WARNING)

    def step_item(self, delta: int) -> None:
        if self.workspace is not None and self.doc is not None:
            self.show_row(max(0, min(len(self.workspace.items) - 1, self.doc.row + delta)))

    # -- editing -----------------------------------------------------------------------------
    def _labels_changed(self, rect: Rect) -> None:
        if self.doc is None:
            return
        self.doc.overlay.update(rect)
        self.canvas.update_image_rect(rect)
        self._counts_timer.start()
        self.autosave.changed()
        self.metrics.labels_changed()
        self.update_modified()

    def _refresh_counts(self) -> None:
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
            self.pixel_label.setText("")
            return
        value = self.levels.readout(x, y)         # stored, modality and shown values
        label = doc.labels.at(x, y)
        name = ("void" if label == 255 else self.classes[label].name if label < len(self.classes)
                else f"unknown class {label}")
        text = f"x {x}, y {y}   {value}   class {label} ({name})"
        self.pixel_label.setText(self.pixel_label.fontMetrics().elidedText(
            text, Qt.TextElideMode.ElideRight, self.pixel_label.width()))
        self.pixel_label.setToolTip(text)

    def _update_status_class(self) -> None:
        c = self.current_class()
        if c < len(self.classes):
            self.statusBar().showMessage(f"Painting with class {c}: {self.classes[c].name}", 2000)

    # -- saving ------------------------------------------------------------------------------
    def save_document(self, doc: Document, *, status: ItemStatus = ItemStatus.CORRECTED,
                      by: str = "hand", then: str = "") -> bool:
        if self.workspace is None:
            return False
        try:
            objects = doc.labels.objects            # written first: the status comes last
            save_objects(self.workspace, doc.item,
                         None if objects is None else np.array(objects.array))
            self.workspace.save_labels(doc.item, np.array(doc.labels.array), status=status, by=by)
        except (WorkspaceError, OSError) as exc:
            doc.failed_revision = doc.labels.revision
            self.show_error(f"Could not save the labels of {doc.item.id}: {exc}"
                            + (f"\n\n{then}" if then else ""))
            return False
        doc.mark_saved()
        self.autosave.saved(doc.item)
        self.files.model.item_changed(doc.row)
        self.update_modified()
        return True

    def update_modified(self) -> None:
        """The title's [*] marker: shown while any open document has unsaved edits."""
        self.setWindowModified(bool(self.dirty_documents()))

    def save_current(self) -> bool:
        if self.doc is None:
            return False
        ok = self.save_document(self.doc)
        if ok:
            self.notice.show_notice(f"Saved the labels of {self.doc.item.id}", Level.DONE)
        return ok

    def dirty_documents(self) -> list[Document]:
        docs = list(self._kept) + ([self.doc] if self.doc is not None else [])
        return [d for d in docs if d.dirty]

    def maybe_save(self, *, closing: bool = False) -> bool:
        """Ask before unsaved edits could be dropped; False means the user cancelled (or a save
        failed and, when ``closing``, the user chose not to quit with the autosave kept)."""
        dirty = self.dirty_documents()
        if not dirty or self.discard_changes_on_close:
            return True
        names = ", ".join(d.item.id for d in dirty[:5]) + (" …" if len(dirty) > 5 else "")
        answer = QMessageBox.question(
            self, "Unsaved labels", f"Save the changed labels of {names}?",
            QMessageBox.StandardButton.Save | QMessageBox.StandardButton.Discard
            | QMessageBox.StandardButton.Cancel, QMessageBox.StandardButton.Save)
        if answer == QMessageBox.StandardButton.Cancel:
            return False
        if answer == QMessageBox.StandardButton.Save:
            return all(self.save_document(d) for d in dirty) or (
                closing and quit_keeping_autosave(self, self.dirty_documents()))
        for d in dirty:
            d.mark_saved()
        self.update_modified()
        return True

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802
        if self.maybe_save(closing=True):
            self.loader.shutdown()
            self.models.shutdown()
            self.video.shutdown()
            self.explain.session.shutdown() if hasattr(self.explain, "session") else None
            self.smart.close()
            self.prompt.shutdown()
            self.layers.shutdown()
            self.ws_writer.flush()
            # Edits that are neither saved nor discarded keep their autosave for the next start.
            self.autosave.close(keep=bool(self.dirty_documents())
                                and not self.discard_changes_on_close)
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
