"""File ▸ Export ▸ Label volumes…: the labelled items as NIfTI or NRRD label volumes with their
images and colour tables, for 3D Slicer and ITK-SNAP (:mod:`segstudio.io.label_volumes`).

The export runs in a background thread with a progress bar and Cancel; the writer builds the
folder hidden and renames it into place, so a cancelled or failed export leaves nothing.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QComboBox, QWidget

from segstudio.io.workspace import Workspace
from segstudio.ui.dialogs.export_base import ExportDialog

FORMATS = (("NIfTI (.nii.gz)", "nifti"), ("NRRD (.nrrd)", "nrrd"))


class ExportVolumesDialog(ExportDialog):
    def __init__(self, workspace: Workspace, parent: QWidget | None = None) -> None:
        super().__init__(workspace, parent, title="Export label volumes",
                         folder_suffix="-volumes",
                         overwrite_text="Replace an earlier label-volume export in that folder")
        self.format_box = QComboBox(self)
        for text, key in FORMATS:
            self.format_box.addItem(text, key)
        self.form.addRow("Format", self.format_box)
        self.message.setText("Each item: <id>_label and <id>_image in the DICOM's geometry, "
                             "plus colour tables for Slicer (.ctbl) and ITK-SNAP.")
        self.finish_layout()

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

        self.run_export(job, (VolumeExportError, VolumeExportCancelled, WorkspaceError,
                              ImageReadError))

    def _done(self, result) -> None:
        super()._done(result)
        text = f"Wrote {result.count} label volume(s) with their images to {result.out_dir}."
        if result.assumed:
            text += (f" {len(result.assumed)} item(s) have no DICOM geometry: 1 mm pixels and "
                     "the identity orientation were assumed (see manifest.json).")
        self.message.setText(text)
