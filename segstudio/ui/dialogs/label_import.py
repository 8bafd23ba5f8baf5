"""File ▸ Import labels: bring existing annotations into the open workspace.

Label PNG folders (palette or plain index values), Pascal VOC trees and labelme JSON folders are
matched to items by file stem; what does not fit (wrong size, unknown values, one-point polygons)
is listed, and the rest is imported. The import runs in a background thread.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QFileDialog, QMessageBox

from segstudio.ui.background.tasks import BackgroundTask

KINDS = {
    "png": ("Label PNG folder…", "import_label_folder"),
    "voc": ("Pascal VOC tree…", "import_voc_tree"),
    "labelme": ("labelme JSON folder…", "import_labelme_folder"),
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


def import_labels(window, kind: str, folder: Path) -> BackgroundTask | None:
    """Start importing ``folder``; returns the task (its ``result`` is the ImportReport)."""
    from segstudio.io import labels as importers
    from segstudio.io.labels import LabelImportError

    ws = window.workspace
    if ws is None or not window.maybe_save():
        return None
    function = getattr(importers, KINDS[kind][1])
    task = BackgroundTask(lambda progress, cancelled: function(folder, ws), (LabelImportError,),
                          window)
    task.result = None

    def done(report) -> None:
        task.result = report
        window.reload_workspace_view()
        if report.new_classes:
            window.set_classes(ws.classes)
        lines = [f"Imported the labels of {len(report.imported)} item(s) from {folder.name}."]
        if report.new_classes:
            lines.append(f"New classes: {', '.join(report.new_classes)}.")
        if report.unmatched:
            lines.append(f"{len(report.unmatched)} file(s) match no item: "
                         + ", ".join(report.unmatched[:5]) + (" …" if len(report.unmatched) > 5 else ""))
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
