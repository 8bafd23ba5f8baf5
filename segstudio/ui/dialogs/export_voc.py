"""File ▸ Export VOC…: the workspace's labelled items as a Pascal VOC 2012 tree.

The export runs in a background thread with a progress bar and Cancel; a cancelled or failed
export leaves no tree that looks complete (the writer builds it beside the target and renames).
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QCheckBox, QDoubleSpinBox, QSpinBox, QWidget

from segstudio.io.workspace import Workspace
from segstudio.ui.dialogs.export_base import ExportDialog


class ExportVocDialog(ExportDialog):
    def __init__(self, workspace: Workspace, parent: QWidget | None = None) -> None:
        super().__init__(workspace, parent, title="Export Pascal VOC", folder_suffix="-voc",
                         overwrite_text="Replace an earlier export in that folder")
        self.val_spin = QDoubleSpinBox(self)
        self.val_spin.setRange(0.0, 0.95)
        self.val_spin.setSingleStep(0.05)
        self.val_spin.setValue(0.2)
        self.seed_spin = QSpinBox(self)
        self.seed_spin.setRange(0, 2**31 - 1)
        self.originals = self.add_box(QCheckBox(
            "Keep the originals at full depth (VOC2012/Originals: 16-bit PNGs, DICOM files as "
            "they were)", self))
        self.originals.setChecked(True)
        self.originals.setToolTip("VOC's JPEGs hold 8 bits through the display window; the "
                                  "originals keep every grey level, listed in manifest.json")
        self.deidentify = self.add_box(QCheckBox(
            "De-identify the DICOM files kept with the originals (DICOM basic confidentiality "
            "profile)", self))
        self.deidentify.setToolTip("Names, dates, institutions and other identifying attributes "
                                   "are removed or replaced, UIDs replaced consistently; source "
                                   "file names are left out of manifest.json")
        self.originals.toggled.connect(self.deidentify.setEnabled)
        self.form.addRow("Validation share", self.val_spin)
        self.form.addRow("Split seed", self.seed_spin)
        self.finish_layout()

    def count_text(self, n: int) -> str:
        return f"{n} item(s) will be exported to <folder>/VOCdevkit/VOC2012"

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

        self.run_export(job, (VocError, WorkspaceError, ImageReadError))

    def _done(self, result) -> None:
        super()._done(result)
        self.message.setText(f"Wrote {result.count} items ({len(result.train)} train, "
                             f"{len(result.val)} val) to {result.voc_dir}")
