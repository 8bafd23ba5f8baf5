"""File ▸ Import labels: bring existing annotations into the open workspace.

Label PNG folders (palette or plain index values), Pascal VOC trees and labelme JSON folders are
matched to items by file stem, and folders of DICOM SEG files by the images they reference; what does not fit (wrong size, unknown values, one-point polygons)
is listed, and the rest is imported. The import runs in a background thread.

Items a person corrected or reviewed are kept unless the person, asked first in a dialog that
lists them, chooses to replace them; a window that cannot ask keeps them.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QFileDialog, QMessageBox

from segstudio.ui.background.tasks import BackgroundTask

KINDS = {
    "png": ("Label PNG folder…", "import_label_folder"),
    "voc": ("Pascal VOC tree…", "import_voc_tree"),
    "labelme": ("labelme JSON folder…", "import_labelme_folder"),
    "dicom-seg": ("DICOM SEG folder…", "import_dicom_segs"),
}


def build_import_menu(window, menu) -> None:
    for kind, (text, _) in KINDS.items():
        window._action(text, lambda _=False, k=kind: ask_and_import(window, k), None, menu)


def ask_and_import(window, kind: str) -> None:
    if window.workspace is None:
        window.show_error("Open the images first; labels are matched to them by file name.")
        return
    folder = QFileDialog.getExistingDirectory(window, KINDS[kind][0].rstrip("…"),
                                              str(window.workspace.root))
    if folder:
        import_labels(window, kind, Path(folder))


def import_labels(window, kind: str, folder: Path, *,
                  replace: bool | None = None) -> BackgroundTask | None:
    """Start importing ``folder``; returns the task (its ``result`` is the ImportReport), or
    None when cancelled. ``replace`` None asks first when items a person corrected or reviewed
    would be replaced."""
    from segstudio.io import labels as importers
    from segstudio.io.labels import LabelImportError
    from segstudio.io.workspace import WorkspaceError

    ws = window.workspace
    if ws is None or not window.maybe_save():     # saved edits count as corrected: asked below
        return None
    if replace is None:
        replace = ask_replace(window, kind, folder)
        if replace is None:
            return None
    from segstudio.io import seg_import

    function = getattr(seg_import if kind == "dicom-seg" else importers, KINDS[kind][1])

    def job(progress, cancelled):
        with ws.transaction():      # another segstudio's classes first, none of its in between
            return function(folder, ws, replace=replace)

    task = BackgroundTask(job, (LabelImportError, WorkspaceError), window)
    task.result = None

    def done(report) -> None:
        task.result = report
        window.reload_workspace_view()
        if report.new_classes:
            window.set_classes(ws.classes)
        lines = [f"Imported the labels of {len(report.imported)} item(s) from {folder.name}."]
        if report.new_classes:
            lines.append(f"New classes: {', '.join(report.new_classes)}.")
        if report.kept:
            lines.append(f"Kept {len(report.kept)} item(s) a person corrected or reviewed: "
                         + _some(report.kept) + ".")
        if report.unmatched:
            lines.append(f"{len(report.unmatched)} file(s) match no item: "
                         + _some(report.unmatched, 5))
        if report.problems:
            lines.append(f"{len(report.problems)} file(s) could not be used:\n  "
                         + "\n  ".join(report.problems[:8]))
        window.statusBar().showMessage(lines[0], 8000)
        if window.interactive:
            QMessageBox.information(window, "Import labels", "\n".join(lines))

    task.succeeded.connect(done)
    task.failed.connect(window.show_error)
    task.finished.connect(window.end_busy)
    window.begin_busy()
    task.start()
    return task


def ask_replace(window, kind: str, folder: Path) -> bool | None:
    """Whether to replace the labels of items a person corrected or reviewed that ``folder``
    has files for: True, False (keep them, import the rest) or None (cancel). Only file names
    are read; without such items, or in a window that cannot ask, they are kept."""
    from segstudio.io.labels import LabelImportError, kept_by_import

    from segstudio.io.seg_import import kept_by_seg_import

    try:
        kept = (kept_by_seg_import(folder, window.workspace) if kind == "dicom-seg"
                else kept_by_import(kind, folder, window.workspace))
    except (LabelImportError, OSError):
        return False                 # the import itself reports what is wrong with the folder
    if not kept or not window.interactive:
        return False
    box = QMessageBox(QMessageBox.Icon.Warning, "Import labels",
                      f"{len(kept)} item(s) that a person corrected or reviewed have labels in "
                      f"{folder.name}:\n\n{_some(kept, 20)}\n\nReplace their labels and objects "
                      "with the imported ones? They will then count as corrected by the import, "
                      "no longer reviewed.", QMessageBox.StandardButton.NoButton, window)
    replace = box.addButton("Replace", QMessageBox.ButtonRole.DestructiveRole)
    keep = box.addButton("Keep them", QMessageBox.ButtonRole.AcceptRole)
    box.addButton(QMessageBox.StandardButton.Cancel)
    box.setDefaultButton(keep)
    box.exec()
    clicked = box.clickedButton()
    return True if clicked is replace else False if clicked is keep else None


def _some(names: list[str], most: int = 10) -> str:
    return ", ".join(names[:most]) + (f" and {len(names) - most} more" if len(names) > most
                                      else "")
