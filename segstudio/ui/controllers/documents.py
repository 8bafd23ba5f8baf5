"""The documents of the window: the item on screen and the recently shown ones kept in memory.

Opens a folder as a workspace (or loose files together), shows a workspace row, keeps the
documents of recently shown items in :class:`~segstudio.ui.canvas.document.KeptDocuments` (so
their labels and undo history survive a switch), saves one with unsaved edits before it is
dropped, reloads after label files changed under the window, and shows the classes and
statuses the workspace took in from another segstudio's writes.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtGui import QImage
from PySide6.QtWidgets import QFileDialog

from segstudio.core.classes import ClassSet
from segstudio.io.data_kind import DESCRIBED, data_kind
from segstudio.io.images import ImageReadError
from segstudio.io.object_store import load_objects
from segstudio.io.workspace import Workspace, WorkspaceError
from segstudio.ui.canvas.document import Document, KeptDocuments
from segstudio.ui.controllers.class_memory import ClassMemory
from segstudio.ui.notice import Level

KEPT_DOCUMENTS = 8      # label maps (with their undo history) kept for recently shown items


class Documents:
    def __init__(self, window, keep: int = KEPT_DOCUMENTS) -> None:
        self.window = window
        self.kept = KeptDocuments(keep, self._evict)
        self.class_memory = ClassMemory(window)

    # -- opening -----------------------------------------------------------------------------
    def open_images_dialog(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(
            self.window, "Open images", self._last_dir(),
            "Images (*.png *.jpg *.jpeg *.tif *.tiff *.bmp *.dcm *.dicom);;All files (*)")
        if paths:
            self.window.open_paths([Path(p) for p in paths])

    def open_folder_dialog(self) -> None:
        path = QFileDialog.getExistingDirectory(self.window, "Open folder", self._last_dir())
        if path:
            self.window.open_paths([Path(path)])

    def _last_dir(self) -> str:
        recent = self.window.recent_paths()
        return str(Path(recent[0]).parent) if recent else str(Path.home())

    def open_paths(self, paths: list[Path], classes: ClassSet | None = None) -> bool:
        """Open a folder as a workspace, or loose files together; False (and a message) if not.

        A folder's own saved class set wins; a new workspace starts with ``classes`` or the
        current one.
        """
        window = self.window
        paths = [Path(p) for p in paths]
        given = classes
        classes = classes or window.classes
        if not window.maybe_save():
            return False
        try:
            if len(paths) == 1 and paths[0].is_dir():
                ws = Workspace.open(paths[0], classes=classes)
            else:
                ws = Workspace.from_paths(paths, classes=classes)
        except (WorkspaceError, OSError) as exc:
            window.show_error(str(exc))
            return False
        if not ws.items:
            window.show_error(f"Nothing to open in {', '.join(p.name for p in paths)}: no images found.")
            return False
        new = not ws.file_path().exists()
        kind = data_kind((it.source for it in ws.items), ws.root)
        if new and given is None:
            ws.classes = self.class_memory.starting_set(kind, classes)
        window.data_kind = kind
        self.set_workspace(ws)
        if new and given is None:
            window.notice.show_notice(
                f"New workspace of {DESCRIBED[kind]}: labelled with the {ws.classes.title} "
                f"classes ({', '.join(ws.classes.names[:6])}{' …' if len(ws.classes) > 6 else ''}"
                "). Change them with the legend's Class set button.", Level.INFO)
        for p in paths:
            window.recent.add(p)
        if ws.problems:
            window.show_error(f"{len(ws.problems)} file(s) could not be added: "
                              + "; ".join(ws.problems[:3]) + (" …" if len(ws.problems) > 3 else ""))
        return True

    def set_workspace(self, ws: Workspace) -> None:
        window = self.window
        if window.workspace is not None:
            window.ws_writer.flush()
        window.loader.forget()
        window.workspace = ws
        window.ws_writer.attach(ws, self.took_in)
        window.autosave.reset(str(ws.root))
        for doc in self.kept.clear() + ([window.doc] if window.doc is not None else []):
            doc.labels.remove_listener(window.labels_changed)
        window.doc = None
        window.classes = ws.classes
        window.legend.set_classes(window.classes, window.hidden)
        window.paint_options.set_classes(window.classes)
        window.files.set_items(ws.items)
        window.setWindowTitle(f"segstudio — {ws.root.name}[*]")
        window.show_row(0)

    def took_in(self, ws: Workspace, adoption) -> None:
        """Another segstudio changed the workspace file and ``ws`` took its changes in: show
        its class set and the statuses of the rows it changed."""
        window = self.window
        if ws is not window.workspace:
            return
        if adoption.classes and window.classes != ws.classes:
            window.set_classes(ws.classes)
        for row in adoption.rows:
            window.files.model.item_changed(row)
        window.statusBar().showMessage("Took in what another segstudio changed in this "
                                       "workspace", 8000)

    # -- showing -----------------------------------------------------------------------------
    def show_row(self, row: int) -> bool:
        window = self.window
        ws = window.workspace
        if ws is None or not 0 <= row < len(ws.items):
            return False
        if window.doc is not None and window.doc.row == row:
            window.loader.forget()                      # stay here, whatever was loading
            return True
        window.autosave.flush()
        doc = self.kept.take(row)
        if doc is None:
            item = ws.items[row]
            if window.loader.wants_background(item):    # a large picture: decode off-thread
                return window.loader.load(row)
            try:
                image = ws.read_image(item)
                labels = ws.load_labels(item)
                doc = Document.create(row, item, image, labels, window.classes, window.hidden,
                                      objects=load_objects(ws, item))
            except (ImageReadError, WorkspaceError, OSError, ValueError) as exc:
                window.show_error(str(exc))
                return False
        self.show_document(doc)
        return True

    def show_document(self, doc: Document, display: QImage | None = None) -> None:
        """Put ``doc`` on screen (``display``: its picture, when already made off-thread)."""
        window = self.window
        window.loader.forget()
        if window.doc is not None:
            self.kept.keep(window.doc)
        self._show(doc, display)
        window.files.select_row(doc.row)

    def _evict(self, old: Document) -> bool:
        """Save ``old`` if it was edited; False keeps it in memory, because its save failed."""
        if old.dirty and (old.save_failed or not self.window.save_document(
                old, then="They stay open, and in the autosave, until they can be saved.")):
            return False
        old.labels.remove_listener(self.window.labels_changed)
        return True

    def _show(self, doc: Document, display: QImage | None = None) -> None:
        window = self.window
        if window.doc is not None:
            window.doc.labels.remove_listener(window.labels_changed)
        window.doc = doc
        doc.labels.add_listener(window.labels_changed)
        doc.overlay.set_classes(window.classes) if doc.overlay.classes != window.classes else None
        if doc.overlay.hidden != window.hidden:
            doc.overlay.set_hidden(window.hidden)
        if doc.overlay.mode != window.mode_combo.currentData():
            doc.overlay.set_mode(window.mode_combo.currentData())
        window.canvas.set_image(display if display is not None else doc.display_qimage())
        window.canvas.set_overlay(doc.overlay.image)
        notes = "; ".join(doc.image.notes)
        window.statusBar().showMessage(f"{doc.item.id}: {doc.image.width}×{doc.image.height} "
                                       f"{doc.image.format}, {doc.image.bit_depth}-bit"
                                       + (f" — {notes}" if notes else ""), 8000)
        window.refresh_counts()
        window.paint_options.set_value_range(*doc.image.value_range)
        window.update_modified()
        window.documentShown.emit(doc)

    def reload_workspace_view(self) -> None:
        """Label files changed under the window (an import): show them afresh."""
        window = self.window
        row = window.doc.row if window.doc is not None else 0
        for doc in self.kept.clear():
            doc.labels.remove_listener(window.labels_changed)
        if window.doc is not None:
            window.doc.labels.remove_listener(window.labels_changed)
        window.doc = None
        window.files.set_items(window.workspace.items)
        window.show_row(row)

    def document_for(self, row: int) -> Document | None:
        """The open document of workspace row ``row`` (on screen or kept), if any."""
        doc = self.window.doc
        if doc is not None and doc.row == row:
            return doc
        return self.kept.get(row)

    def dirty(self) -> list[Document]:
        """The open documents (on screen or kept) with unsaved edits."""
        doc = self.window.doc
        docs = list(self.kept) + ([doc] if doc is not None else [])
        return [d for d in docs if d.dirty]

    def step(self, delta: int) -> None:
        window = self.window
        if window.workspace is not None and window.doc is not None:
            window.show_row(max(0, min(len(window.workspace.items) - 1, window.doc.row + delta)))
