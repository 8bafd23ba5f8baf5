"""Autosave: changed label maps go to the recovery area a few seconds after the last edit.

The GUI thread only copies the label array; encoding and the atomic write run on a one-thread
pool, in order. Switching images flushes at once. A real save (Ctrl+S) drops the autosave.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QObject, QRunnable, QThreadPool, QTimer, Signal

from segstudio.io.recovery import RecoveryStore


class _Write(QRunnable):
    def __init__(self, store: RecoveryStore, item_id: str, source: str, frame, labels, done,
                 objects=None):
        super().__init__()
        self.args = (item_id, source, frame, labels, objects)
        self.store = store
        self.done = done

    def run(self) -> None:
        try:
            self.store.save(*self.args)
            self.done(self.args[0], "")
        except OSError as exc:
            self.done(self.args[0], str(exc))


class Autosave(QObject):
    DELAY_MS = 3000
    written = Signal(str, str)      # item id, error ("" when fine)

    def __init__(self, window, store: RecoveryStore) -> None:
        super().__init__(window)
        self.window = window
        self.store = store
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(1)          # writes stay in order
        self.timer = QTimer(self, singleShot=True, interval=self.DELAY_MS)
        self.timer.timeout.connect(self.flush)
        self._seen: dict[str, int] = {}         # item id -> label revision autosaved
        self.written.connect(self._report)

    def changed(self) -> None:
        self.timer.start()

    def flush(self) -> int:
        """Queue every document changed since its last autosave; returns how many."""
        self.timer.stop()
        queued = 0
        for doc in self.window.dirty_documents():
            key = RecoveryStore.key(str(doc.item.source), doc.item.frame)
            if self._seen.get(key) == doc.labels.revision:
                continue
            self._seen[key] = doc.labels.revision
            labels = np.array(doc.labels.array)         # the only work on the GUI thread
            objects = doc.labels.objects
            objects = None if objects is None else np.array(objects.array)
            self.pool.start(_Write(self.store, doc.item.id, str(doc.item.source), doc.item.frame,
                                   labels, self.written.emit, objects))
            queued += 1
        return queued

    def wait(self, msecs: int = 30000) -> bool:
        return self.pool.waitForDone(msecs)

    def saved(self, item) -> None:
        """The user's file now holds these labels: the autosave can go."""
        self._seen.pop(RecoveryStore.key(str(item.source), item.frame), None)
        self.pool.waitForDone(5000)
        self.store.forget(str(item.source), item.frame)

    def reset(self, workspace: str) -> None:
        self.pool.waitForDone(10000)
        self._seen.clear()
        self.store.set_workspace(workspace)

    def close(self, keep: bool = False) -> None:
        """Clean exit: nothing to recover, unless ``keep`` (edits that could not be saved), when
        the autosave is brought up to date and left for the next start to offer back."""
        self.timer.stop()
        if keep:
            self.flush()
        self.pool.waitForDone(10000)
        if not keep:
            self.store.clear()

    def _report(self, item_id: str, error: str) -> None:
        if error:
            self.window.statusBar().showMessage(f"Autosave of {item_id} failed: {error}", 8000)


def quit_keeping_autosave(window, unsaved) -> bool:
    """Asked when saving at exit failed: quit anyway, leaving the autosave for the next start?"""
    from PySide6.QtWidgets import QMessageBox

    names = ", ".join(d.item.id for d in unsaved[:5]) + (" …" if len(unsaved) > 5 else "")
    return QMessageBox.question(
        window, "Labels not saved",
        f"The labels of {names} could not be saved. Quit anyway? Their autosave is kept, and "
        "segstudio offers them back the next time it starts.",
        QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
        QMessageBox.StandardButton.No) == QMessageBox.StandardButton.Yes


def restore_session(window, session) -> int:
    """Write a crashed session's autosaved labels back into its workspace, then open it.

    The restored maps are hand edits the user never saved, so they become the items' corrected
    labels; returns how many items were restored.
    """
    from pathlib import Path

    from segstudio.io.workspace import ItemStatus, Workspace, WorkspaceError

    root = Path(session.workspace)
    restored, failed = 0, ""
    try:
        # Locked from reading to the last save, so another segstudio's changes are kept.
        with Workspace.locked(root) as ws:
            by_key = {(str(item.source), item.frame): item for item in ws.items}
            for rec in session.items:
                item = by_key.get((rec.source, rec.frame))
                if item is None:
                    continue
                try:
                    if rec.objects_recorded:             # an older autosave leaves objects alone
                        from segstudio.io.object_store import save_objects

                        save_objects(ws, item, rec.load_objects())
                    ws.save_labels(item, rec.load(), status=ItemStatus.CORRECTED,
                                   by="recovered autosave")
                    restored += 1
                except (OSError, ValueError, WorkspaceError) as exc:
                    failed = f"Could not restore {rec.item_id}: {exc}"
                    break
    except (WorkspaceError, OSError) as exc:
        window.show_error(f"Cannot restore into {root}: {exc}")
        return restored
    if failed:
        window.show_error(failed)
        return restored
    session.discard()
    window.open_paths([root])
    return restored


def offer_recovery(window, root) -> None:
    """At start-up: if an earlier segstudio crashed with autosaved edits, offer them back."""
    from PySide6.QtWidgets import QMessageBox

    from segstudio.io.recovery import orphans

    for session in orphans(root, exclude=window.autosave.store.folder):
        names = ", ".join(i.item_id for i in session.items[:5])
        more = " …" if len(session.items) > 5 else ""
        answer = QMessageBox.question(
            window, "Restore unsaved labels?",
            f"segstudio did not close cleanly while editing {session.workspace}.\n\n"
            f"Autosaved labels of {len(session.items)} item(s) ({names}{more}) can be restored "
            "into that folder. Restore them now?",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Discard
            | QMessageBox.StandardButton.Cancel, QMessageBox.StandardButton.Yes)
        if answer == QMessageBox.StandardButton.Yes:
            n = restore_session(window, session)
            window.statusBar().showMessage(f"Restored the labels of {n} item(s)", 8000)
        elif answer == QMessageBox.StandardButton.Discard:
            session.discard()
