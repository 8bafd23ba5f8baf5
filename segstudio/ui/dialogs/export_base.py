"""What every export dialog shares: a target folder, a form of options, which items go (by
status) and how many, a progress bar, a message, Export and Cancel; the export itself runs in a
BackgroundTask, never on the GUI thread. Each export adds its own options, job and summary."""

from __future__ import annotations

from PySide6.QtWidgets import (QCheckBox, QDialog, QDialogButtonBox, QFileDialog, QFormLayout,
                               QHBoxLayout, QLabel, QLineEdit, QProgressBar, QPushButton,
                               QVBoxLayout, QWidget)

from segstudio.io.workspace import ItemStatus, Workspace
from segstudio.ui.background.tasks import BackgroundTask

STATUSES = (ItemStatus.PREDICTED, ItemStatus.CORRECTED, ItemStatus.REVIEWED)


class ExportDialog(QDialog):
    """Subclasses add option rows to :attr:`form` and checkboxes through :meth:`add_box`, then
    call :meth:`finish_layout`; they give :meth:`start` (building the job for
    :meth:`run_export`) and :meth:`_done`."""

    CANCELLED = "Export cancelled; nothing was written."
    FAILED = "Export failed: {}. Nothing was written."

    def __init__(self, workspace: Workspace, parent: QWidget | None, *, title: str,
                 folder_suffix: str, overwrite_text: str, status_choice: bool = True) -> None:
        super().__init__(parent)
        self.setWindowTitle(title)
        self.workspace = workspace
        self.task: BackgroundTask | None = None
        self.result = None
        self.out_edit = QLineEdit(str(workspace.root.parent / f"{workspace.root.name}"
                                      f"{folder_suffix}"), self)
        browse = QPushButton("Browse…", self)
        browse.clicked.connect(self._browse)
        self.status_boxes: dict[ItemStatus, QCheckBox] = {}
        self.overwrite = QCheckBox(overwrite_text, self)
        self.count_label = QLabel(self)
        self.progress = QProgressBar(self)
        self.message = QLabel("", self)
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
        self.form = QFormLayout()
        self.form.addRow("Folder", out)
        if status_choice:
            row = QHBoxLayout()
            for status in STATUSES:
                box = QCheckBox(status.value, self)
                box.setChecked(status != ItemStatus.PREDICTED)
                box.toggled.connect(self._count)
                self.status_boxes[status] = box
                row.addWidget(box)
            self.form.addRow("Items with status", row)
        self._boxes: list[QCheckBox] = []

    def add_box(self, box: QCheckBox) -> QCheckBox:
        """A checkbox row under the other options, before Replace."""
        self._boxes.append(box)
        return box

    def finish_layout(self) -> None:
        for box in [*self._boxes, self.overwrite]:
            self.form.addRow("", box)
        layout = QVBoxLayout(self)
        layout.addLayout(self.form)
        layout.addWidget(self.count_label)
        layout.addWidget(self.progress)
        layout.addWidget(self.message)
        layout.addWidget(self.buttons)
        self._count()

    # -- what goes --------------------------------------------------------------------------
    def statuses(self) -> list[ItemStatus]:
        return [s for s, box in self.status_boxes.items() if box.isChecked()]

    def count_text(self, n: int) -> str:
        return f"{n} item(s) will be exported"

    def _count(self) -> int:
        n = len(self.workspace.labelled_items(self.statuses()))
        self.count_label.setText(self.count_text(n))
        self.export_button.setEnabled(n > 0 and self.task is None)
        return n

    def _browse(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Export into", self.out_edit.text())
        if path:
            self.out_edit.setText(path)

    # -- running (each export's start() builds its job) --------------------------------------
    def run_export(self, job, errors: tuple[type[BaseException], ...]) -> None:
        """Run ``job(progress, cancelled)`` in the background; its result goes to _done."""
        self.task = BackgroundTask(job, errors, self)
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
        self.cancel_button.setText("Close")

    def _failed(self, message: str) -> None:
        if self.task is not None and self.task.was_cancelled:
            self.message.setText(self.CANCELLED)
        else:
            self.message.setText(self.FAILED.format(message))

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
