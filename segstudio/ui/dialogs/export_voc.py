"""File ▸ Export VOC…: the workspace's labelled items as a Pascal VOC 2012 tree.

The export runs in a background thread with a progress bar and Cancel; a cancelled or failed
export leaves no tree that looks complete (the writer builds it beside the target and renames).
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import (QCheckBox, QDialog, QDialogButtonBox, QDoubleSpinBox, QFileDialog,
                               QFormLayout, QHBoxLayout, QLabel, QLineEdit, QProgressBar,
                               QPushButton, QSpinBox, QVBoxLayout, QWidget)

from segstudio.io.workspace import ItemStatus, Workspace
from segstudio.ui.background.tasks import BackgroundTask


class ExportVocDialog(QDialog):
    def __init__(self, workspace: Workspace, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Export Pascal VOC")
        self.workspace = workspace
        self.task: BackgroundTask | None = None
        self.result = None
        self.out_edit = QLineEdit(str(workspace.root.parent / f"{workspace.root.name}-voc"), self)
        browse = QPushButton("Browse…", self)
        browse.clicked.connect(self._browse)
        self.val_spin = QDoubleSpinBox(self)
        self.val_spin.setRange(0.0, 0.95)
        self.val_spin.setSingleStep(0.05)
        self.val_spin.setValue(0.2)
        self.seed_spin = QSpinBox(self)
        self.seed_spin.setRange(0, 2**31 - 1)
        self.status_boxes = {}
        statuses = QHBoxLayout()
        for status in (ItemStatus.PREDICTED, ItemStatus.CORRECTED, ItemStatus.REVIEWED):
            box = QCheckBox(status.value, self)
            box.setChecked(status != ItemStatus.PREDICTED)
            box.toggled.connect(self._count)
            self.status_boxes[status] = box
            statuses.addWidget(box)
        self.overwrite = QCheckBox("Replace an earlier export in that folder", self)
        self.originals = QCheckBox("Keep the originals at full depth (VOC2012/Originals: "
                                   "16-bit PNGs, DICOM files as they were)", self)
        self.originals.setChecked(True)
        self.originals.setToolTip("VOC's JPEGs hold 8 bits through the display window; the "
                                  "originals keep every grey level, listed in manifest.json")
        self.deidentify = QCheckBox("De-identify the DICOM files kept with the originals "
                                    "(DICOM basic confidentiality profile)", self)
        self.deidentify.setToolTip("Names, dates, institutions and other identifying attributes "
                                   "are removed or replaced, UIDs replaced consistently; source "
                                   "file names are left out of manifest.json")
        self.originals.toggled.connect(self.deidentify.setEnabled)
        self.count_label = QLabel(self)
        self.progress = QProgressBar(self)
        self.message = QLabel("", self)
        self.message.setWordWrap(True)
        self.buttons = QDialogButtonBox(self)
        self.export_button = self.buttons.addButton("Export", QDialogButtonBox.ButtonRole.AcceptRole)
        self.cancel_button = self.buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        self.export_button.clicked.connect(self.start)
        self.cancel_button.clicked.connect(self._cancel)

        out = QHBoxLayout()
        out.addWidget(self.out_edit, 1)
        out.addWidget(browse)
        form = QFormLayout()
        form.addRow("Folder", out)
        form.addRow("Items with status", statuses)
        form.addRow("Validation share", self.val_spin)
        form.addRow("Split seed", self.seed_spin)
        form.addRow("", self.overwrite)
        form.addRow("", self.originals)
        form.addRow("", self.deidentify)
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
        self.count_label.setText(f"{n} item(s) will be exported to <folder>/VOCdevkit/VOC2012")
        self.export_button.setEnabled(n > 0 and self.task is None)
        return n

    def _browse(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Export into", self.out_edit.text())
        if path:
            self.out_edit.setText(path)

    def start(self) -> None:
        from segstudio.io.images import ImageReadError
        from segstudio.io.voc import VocError, write_voc
        from segstudio.io.workspace import WorkspaceError

        total = self._count()
        if total == 0 or self.task is not None:
            return
        ws, statuses = self.workspace, self.statuses()
        out = Path(self.out_edit.text()).expanduser()
        val, seed, overwrite = self.val_spin.value(), self.seed_spin.value(), self.overwrite.isChecked()
        originals = self.originals.isChecked()
        deidentify = originals and self.deidentify.isChecked()

        def job(progress, cancelled):
            return write_voc(out, ws.samples(statuses), ws.classes, val_fraction=val, seed=seed,
                             total=total, progress=progress, cancel=cancelled, overwrite=overwrite,
                             originals=originals, deidentify=deidentify)

        self.task = BackgroundTask(job, (VocError, WorkspaceError, ImageReadError), self)
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
        self.message.setText(f"Wrote {result.count} items ({len(result.train)} train, "
                             f"{len(result.val)} val) to {result.voc_dir}")
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
