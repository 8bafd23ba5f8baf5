"""File ▸ Export ▸ Label volumes…: the labelled items as NIfTI or NRRD label volumes with their
images and colour tables, for 3D Slicer and ITK-SNAP (:mod:`segstudio.io.label_volumes`).

The export runs in a background thread with a progress bar and Cancel; the writer builds the
folder hidden and renames it into place, so a cancelled or failed export leaves nothing.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import (QCheckBox, QComboBox, QDialog, QDialogButtonBox, QFileDialog,
                               QFormLayout, QHBoxLayout, QLabel, QLineEdit, QProgressBar,
                               QPushButton, QVBoxLayout, QWidget)

from segstudio.io.workspace import ItemStatus, Workspace
from segstudio.ui.background.tasks import BackgroundTask

FORMATS = (("NIfTI (.nii.gz)", "nifti"), ("NRRD (.nrrd)", "nrrd"))


class ExportVolumesDialog(QDialog):
    def __init__(self, workspace: Workspace, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Export label volumes")
        self.workspace = workspace
        self.task: BackgroundTask | None = None
        self.result = None
        self.out_edit = QLineEdit(str(workspace.root.parent / f"{workspace.root.name}-volumes"),
                                  self)
        browse = QPushButton("Browse…", self)
        browse.clicked.connect(self._browse)
        self.format_box = QComboBox(self)
        for text, key in FORMATS:
            self.format_box.addItem(text, key)
        self.status_boxes = {}
        statuses = QHBoxLayout()
        for status in (ItemStatus.PREDICTED, ItemStatus.CORRECTED, ItemStatus.REVIEWED):
            box = QCheckBox(status.value, self)
            box.setChecked(status != ItemStatus.PREDICTED)
            box.toggled.connect(self._count)
            self.status_boxes[status] = box
            statuses.addWidget(box)
        self.overwrite = QCheckBox("Replace an earlier label-volume export in that folder", self)
        self.count_label = QLabel(self)
        self.progress = QProgressBar(self)
        self.message = QLabel("Each item: <id>_label and <id>_image in the DICOM's geometry, "
                              "plus colour tables for Slicer (.ctbl) and ITK-SNAP.", self)
        self.message.setWordWrap(True)
        self.buttons = QDialogButtonBox(self)
        self.export_button = self.buttons.addButton("Export",
                                                    QDialogButtonBox.ButtonRole.AcceptRole)
        self.cancel_button = self.buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        self.export_button.clicked.connect(self.start)
        self.cancel_button.clicked.connect(self._cancel)

        out = QHBoxLayout()
        out.addWidget(self.out_edit, 1)
        out.addWidget(browse)
        form = QFormLayout()
        form.addRow("Folder", out)
        form.addRow("Format", self.format_box)
        form.addRow("Items with status", statuses)
        form.addRow("", self.overwrite)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.count_label)
        layout.addWidget(self.progress)
        layout.addWidget(self.message)
        layout.addWidget(self.buttons)
        self._count()

    def statuses(self) -> list[ItemStatus]:
        return [s for s, box in self.status_boxes.items() if box.isChecked()]

    def _count(self) -> int:
        n = len(self.workspace.labelled_items(self.statuses()))
        self.count_label.setText(f"{n} item(s) will be exported")
        self.export_button.setEnabled(n > 0 and self.task is None)
        return n

    def _browse(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Export into", self.out_edit.text())
        if path:
            self.out_edit.setText(path)

    def start(self) -> None:
        from segstudio.io.images import ImageReadError
        from segstudio.io.label_volumes import (VolumeExportCancelled, VolumeExportError,
                                                write_label_volumes)
        from segstudio.io.workspace import WorkspaceError

        total = self._count()
        if total == 0 or self.task is not None:
            return
        ws, statuses = self.workspace, self.statuses()
        out = Path(self.out_edit.text()).expanduser()
        fmt, overwrite = self.format_box.currentData(), self.overwrite.isChecked()

        def job(progress, cancelled):
            return write_label_volumes(out, ws.samples(statuses), ws.classes, fmt=fmt,
                                       total=total, overwrite=overwrite, inputs=[ws.root],
                                       progress=progress, cancel=cancelled)

        self.task = BackgroundTask(job, (VolumeExportError, VolumeExportCancelled,
                                         WorkspaceError, ImageReadError), self)
        self.task.progressed.connect(self._progress)
        self.task.succeeded.connect(self._done)
        self.task.failed.connect(self._failed)
        self.task.finished.connect(self._finished)
        self.export_button.setEnabled(False)
        self.message.setText("Exporting…")
        self.task.start()

    def _progress(self, done: int, total: int) -> None:
        self.progress.setMaximum(max(1, total))
        self.progress.setValue(done)

    def _done(self, result) -> None:
        self.result = result
        text = f"Wrote {result.count} label volume(s) with their images to {result.out_dir}."
        if result.assumed:
            text += (f" {len(result.assumed)} item(s) have no DICOM geometry: 1 mm pixels and "
                     "the identity orientation were assumed (see manifest.json).")
        self.message.setText(text)
        self.cancel_button.setText("Close")

    def _failed(self, message: str) -> None:
        if self.task is not None and self.task.was_cancelled:
            self.message.setText("Export cancelled; nothing was written.")
        else:
            self.message.setText(f"Export failed: {message}. Nothing was written.")

    def _finished(self) -> None:
        self.task = None
        self._count()

    def _cancel(self) -> None:
        if self.task is not None:
            self.task.cancel()
            self.task.wait(60000)
        else:
            self.reject()

    def is_running(self) -> bool:
        return self.task is not None and self.task.isRunning()
