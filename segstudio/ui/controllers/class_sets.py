"""Changing the class set of the window's workspace (a preset or a class-set file).

While nothing is labelled the new set simply replaces the old one. Once labels exist, the
person is asked: map by name (every label and prediction file is rewritten so each pixel keeps
its class name; names the new set lacks are added to it), keep the numbers (index 1 of the new
set takes over every label 1: "lungs" would become "aeroplane", said before it happens), or
cancel. Nothing is relabelled without that question.
"""

from __future__ import annotations

from PySide6.QtWidgets import QMessageBox

from segstudio.core.class_mapping import ClassMapping, same_names
from segstudio.core.classes import ClassSet
from segstudio.io.workspace import ItemStatus, WorkspaceError
from segstudio.ui.background.tasks import BackgroundTask
from segstudio.ui.notice import Level


class ClassSetChange:
    def __init__(self, window) -> None:
        self.window = window
        self.task: BackgroundTask | None = None

    def labelled(self) -> bool:
        """Does any label give the current set's indices a meaning (saved or being edited)?"""
        win, ws = self.window, self.window.workspace
        if ws is not None and any(i.status is not ItemStatus.UNLABELLED for i in ws.items):
            return True
        return any(d.labels.class_counts()[1:255].any() for d in win.dirty_documents())

    def replace(self, new: ClassSet) -> bool:
        """Use ``new`` for the workspace; False if the person cancelled or it failed."""
        win = self.window
        old = win.classes
        if win.workspace is None or same_names(old, new) or not self.labelled():
            win.set_classes(new)
            return True
        mapping = ClassMapping.by_name(old, new)
        choice = self.ask(old, new, mapping)
        if choice is None:
            return False
        if choice == "numbers":
            win.set_classes(new)
            return True
        return self._map_by_name(new)

    def ask(self, old: ClassSet, new: ClassSet, mapping: ClassMapping) -> str | None:
        """``"names"``, ``"numbers"`` or None (cancel); a window that cannot ask maps by name,
        which changes no label's meaning."""
        if not self.window.interactive:
            return "names"
        changes = mapping.changes()
        shown = ", ".join(f"{a} → {b}" for a, b in changes[:6]) + (" …" if len(changes) > 6
                                                                      else "")
        text = (f"This workspace has labels in the class set {old.title!r}. Change it to "
                f"{new.title!r}?\n\nMap by name: each label keeps its class name"
                + (f" ({', '.join(mapping.added)} added to the new set)" if mapping.added
                   else "") + "; every label file is rewritten.\n"
                f"Keep the numbers: the labels take the new set's names at the same index "
                f"({shown or 'no name changes'}).")
        box = QMessageBox(QMessageBox.Icon.Question, "Change the class set", text,
                          QMessageBox.StandardButton.NoButton, self.window)
        names = box.addButton("Map by name", QMessageBox.ButtonRole.AcceptRole)
        numbers = box.addButton("Keep the numbers", QMessageBox.ButtonRole.DestructiveRole)
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(names)
        box.exec()
        clicked = box.clickedButton()
        return "names" if clicked is names else "numbers" if clicked is numbers else None

    def _map_by_name(self, new: ClassSet) -> bool:
        from segstudio.io.relabel import relabel_by_name

        win, ws = self.window, self.window.workspace
        if self.task is not None or not win.maybe_save():
            return False
        win.ws_writer.flush()             # no older snapshot of the file lands after the change
        task = BackgroundTask(lambda progress, cancelled: relabel_by_name(ws, new,
                                                                          progress=progress),
                              (WorkspaceError,), win)
        self.task = task

        def done(mapping) -> None:
            self.task = None
            if win.workspace is not ws:
                return
            win.set_classes(mapping.target)
            win.reload_workspace_view()
            added = f"; added {', '.join(mapping.added)}" if mapping.added else ""
            win.notice.show_notice(f"Class set changed to {new.title!r}: every label kept its "
                                   f"class name{added}", Level.DONE)

        def failed(message: str) -> None:
            self.task = None
            win.show_error(f"The class set was not changed: {message}")

        task.succeeded.connect(done)
        task.failed.connect(failed)
        task.finished.connect(win.end_busy)
        win.begin_busy()
        task.start()
        return True
