"""Saving labels: one document, the one on screen, or every unsaved one before work is dropped.

A failed save keeps the document's edits in memory and in the autosave, and says so; the
window's title shows ``[*]`` while any open document has unsaved edits.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QMessageBox

from segstudio.io.object_store import save_objects
from segstudio.io.workspace import ItemStatus, WorkspaceError
from segstudio.ui.background.autosave import quit_keeping_autosave
from segstudio.ui.canvas.document import Document
from segstudio.ui.notice import Level


class LabelSaving:
    def __init__(self, window) -> None:
        self.window = window
        # Checked again once the event that changed the labels is done: a model's result is
        # swapped in (an edit, for a moment) and then marked saved, as the worker wrote it.
        self._recheck = QTimer(window, singleShot=True, interval=0)
        self._recheck.timeout.connect(self._show_modified)

    def save_document(self, doc: Document, *, status: ItemStatus = ItemStatus.CORRECTED,
                      by: str = "hand", then: str = "") -> bool:
        window = self.window
        if window.workspace is None:
            return False
        try:
            objects = doc.labels.objects            # written first: the status comes last
            save_objects(window.workspace, doc.item,
                         None if objects is None else np.array(objects.array))
            window.workspace.save_labels(doc.item, np.array(doc.labels.array), status=status,
                                         by=by)
        except (WorkspaceError, OSError) as exc:
            doc.failed_revision = doc.labels.revision
            window.show_error(f"Could not save the labels of {doc.item.id}: {exc}"
                              + (f"\n\n{then}" if then else ""))
            return False
        doc.mark_saved()
        window.autosave.saved(doc.item)
        window.files.model.item_changed(doc.row)
        self.update_modified()
        return True

    def update_modified(self) -> None:
        """The title's [*] marker: shown exactly while quitting would ask, that is while an open
        document has edits that are not on disk (unsaved, or whose save failed)."""
        self._show_modified()
        self._recheck.start()

    def _show_modified(self) -> None:
        self.window.setWindowModified(bool(self.window.dirty_documents()))

    def save_current(self) -> bool:
        doc = self.window.doc
        if doc is None:
            return False
        ok = self.window.save_document(doc)
        if ok:
            self.window.notice.show_notice(f"Saved the labels of {doc.item.id}", Level.DONE)
        return ok

    def maybe_save(self, *, closing: bool = False) -> bool:
        """Ask before unsaved edits could be dropped; False means the user cancelled (or a save
        failed and, when ``closing``, the user chose not to quit with the autosave kept)."""
        window = self.window
        dirty = window.dirty_documents()
        if not dirty or window.discard_changes_on_close:
            return True
        names = ", ".join(d.item.id for d in dirty[:5]) + (" …" if len(dirty) > 5 else "")
        answer = QMessageBox.question(
            window, "Unsaved labels", f"Save the changed labels of {names}?",
            QMessageBox.StandardButton.Save | QMessageBox.StandardButton.Discard
            | QMessageBox.StandardButton.Cancel, QMessageBox.StandardButton.Save)
        if answer == QMessageBox.StandardButton.Cancel:
            return False
        if answer == QMessageBox.StandardButton.Save:
            return all(window.save_document(d) for d in dirty) or (
                closing and quit_keeping_autosave(window, window.dirty_documents()))
        for d in dirty:
            d.mark_saved()
        self.update_modified()
        return True
