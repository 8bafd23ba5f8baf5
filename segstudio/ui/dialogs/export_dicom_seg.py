"""File ▸ Export ▸ DICOM SEG…: each labelled DICOM image's labels as a DICOM Segmentation.

The same export as ``segstudio export-dicom-seg`` (:mod:`segstudio.io.dicom_seg_export`), run in
a background thread with a progress bar and Cancel. Each file is written whole or not at all;
the files already written when a run is cancelled stay, and the message says how many.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QCheckBox, QWidget

from segstudio.io.workspace import ItemStatus, Workspace
from segstudio.ui.dialogs.export_base import ExportDialog


class ExportDicomSegDialog(ExportDialog):
    CANCELLED = "Export cancelled."
    FAILED = "Export failed: {}"

    def __init__(self, workspace: Workspace, parent: QWidget | None = None) -> None:
        super().__init__(workspace, parent, title="Export DICOM SEG", folder_suffix="-seg",
                         overwrite_text="Replace files in that folder this export did not write",
                         status_choice=False)
        self.predicted = self.add_box(QCheckBox(
            "Include unreviewed predictions (their segments say AUTOMATIC and name the model)",
            self))
        self.predicted.toggled.connect(self._count)
        self.labelmap = self.add_box(QCheckBox("LABELMAP segmentations instead of BINARY ones",
                                               self))
        self.deidentify = self.add_box(QCheckBox(
            "De-identify (DICOM basic confidentiality profile; each image is written "
            "de-identified beside its segmentation)", self))
        self.finish_layout()

    def statuses(self) -> list[ItemStatus]:
        wanted = [ItemStatus.CORRECTED, ItemStatus.REVIEWED]
        return wanted + ([ItemStatus.PREDICTED] if self.predicted.isChecked() else [])

    def count_text(self, n: int) -> str:
        return f"{n} labelled item(s); each DICOM image among them gets a segmentation"

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

        self.run_export(job, (DicomSegError, WorkspaceError))

    def _done(self, result) -> None:
        super()._done(result)
        segs = [p for p in result.written if p.name.endswith("_seg.dcm")]
        cancelled = self.task is not None and self.task.was_cancelled
        text = (f"{'Cancelled after writing' if cancelled else 'Wrote'} {len(segs)} "
                f"segmentation(s) to {self.out_edit.text()}.")
        if result.left_out:
            text += " Left out: " + "; ".join(result.left_out[:5])
            if len(result.left_out) > 5:
                text += f"; and {len(result.left_out) - 5} more"
        self.message.setText(text)
