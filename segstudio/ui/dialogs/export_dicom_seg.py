"""File ▸ Export ▸ DICOM SEG…: each labelled DICOM image's labels as a DICOM Segmentation.

The same export as ``segstudio export-dicom-seg`` (:mod:`segstudio.io.dicom_seg_export`), run in
a background thread with a progress bar and Cancel. Each file is written whole or not at all;
the files already written when a run is cancelled stay, and the message says how many.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import (QCheckBox, QDialog, QDialogButtonBox, QFileDialog, QFormLayout,
                               QHBoxLayout, QLabel, QLineEdit, QProgressBar, QPushButton,
                               QVBoxLayout, QWidget)

from segstudio.io.workspace import ItemStatus, Workspace
from segstudio.ui.background.tasks import BackgroundTask


class ExportDicomSegDialog(QDialog):
    def __init__(self, workspace: Workspace, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Export DICOM SEG")
        self.workspace = workspace
        self.task: BackgroundTask | None = None
        self.result = None
        self.out_edit = QLineEdit(str(workspace.root.parent / f"{workspace.root.name}-seg"), self)
        browse = QPushButton("Browse…", self)
        browse.clicked.connect(self._browse)
        self.predicted = QCheckBox("Include unreviewed predictions (their segments say "
                                   "AUTOMATIC and name the model)", self)
        self.labelmap = QCheckBox("LABELMAP segmentations instead of BINARY ones", self)
        self.deidentify = QCheckBox("De-identify (DICOM basic confidentiality profile; each "
                                    "image is written de-identified beside its segmentation)",
                                    self)
        self.overwrite = QCheckBox("Replace files in that folder this export did not write", self)
        self.message = QLabel("", self)
        self.message.setWordWrap(True)
        self.progress = QProgressBar(self)
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
        for box in (self.predicted, self.labelmap, self.deidentify, self.overwrite):
            form.addRow("", box)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.progress)
        layout.addWidget(self.message)
        layout.addWidget(self.buttons)

    def statuses(self) -> list[ItemStatus]:
        wanted = [ItemStatus.CORRECTED, ItemStatus.REVIEWED]
        return wanted + ([ItemStatus.PREDICTED] if self.predicted.isChecked() else [])

    def _browse(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Export into", self.out_edit.text())
        if path:
            self.out_edit.setText(path)

    def start(self) -> None:
        from segstudio.io.dicom_seg import DicomSegError
        from segstudio.io.dicom_seg_export import export_dicom_seg
        from segstudio.io.workspace import WorkspaceError

        if self.task is not None:
            return
        ws, statuses = self.workspace, self.statuses()
        out = Path(self.out_edit.text()).expanduser()
        options = dict(labelmap=self.labelmap.isChecked(), deidentify=self.deidentify.isChecked(),
                       overwrite=self.overwrite.isChecked())

        def job(progress, cancelled):
            try:
                return export_dicom_seg(ws, out, statuses, progress=progress, cancel=cancelled,
                                        **options)
            except OSError as e:
                raise DicomSegError(f"{out}: cannot be written ({e.strerror or e})") from None

        self.task = BackgroundTask(job, (DicomSegError, WorkspaceError), self)
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
        segs = [p for p in result.written if p.name.endswith("_seg.dcm")]
        cancelled = self.task is not None and self.task.was_cancelled
        text = (f"{'Cancelled after writing' if cancelled else 'Wrote'} {len(segs)} "
                f"segmentation(s) to {self.out_edit.text()}.")
        if result.left_out:
            text += " Left out: " + "; ".join(result.left_out[:5])
            if len(result.left_out) > 5:
                text += f"; and {len(result.left_out) - 5} more"
        self.message.setText(text)
        self.cancel_button.setText("Close")

    def _failed(self, message: str) -> None:
        if self.task is not None and self.task.was_cancelled:
            self.message.setText("Export cancelled.")
        else:
            self.message.setText(f"Export failed: {message}")

    def _finished(self) -> None:
        self.task = None
        self.export_button.setEnabled(True)

    def _cancel(self) -> None:
        if self.task is not None:
            self.task.cancel()
            self.task.wait(60000)
        else:
            self.reject()

    def is_running(self) -> bool:
        return self.task is not None and self.task.isRunning()
