"""File ▸ Open from PACS… and File ▸ Send SEG to PACS…: the DICOMweb client of
:mod:`segstudio.io.dicomweb` behind two small dialogs.

Searching, pulling and sending run in background tasks; a failure is the same one line the
command prints. A pull lands in the chosen folder all or nothing, and the folder then opens as
the workspace. Credentials come from the environment or the private ``dicomweb.json``, as for
the command (nothing here asks for or stores a password).
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QAbstractItemView, QDialog, QDialogButtonBox, QFileDialog,
                               QFormLayout, QHBoxLayout, QLabel, QLineEdit, QListWidget,
                               QProgressBar, QPushButton, QTableWidget, QTableWidgetItem,
                               QVBoxLayout, QWidget)

from segstudio.ui.background.tasks import BackgroundTask

URL_KEY = "pacs/url"
FOLDER_KEY = "pacs/folder"
_COLUMNS = ("Date", "Patient ID", "Patient name", "Accession", "Modalities", "Description",
            "Instances")


def _url_edit(settings, parent: QWidget) -> QLineEdit:
    edit = QLineEdit(str(settings.value(URL_KEY, "") or ""), parent)
    edit.setPlaceholderText("http://pacs.example.org:8042/dicom-web")
    return edit


class OpenFromPacsDialog(QDialog):
    """Search a PACS for studies and pull one into a folder that then opens as the workspace."""

    def __init__(self, window, parent: QWidget | None = None) -> None:
        super().__init__(parent or window)
        self.setWindowTitle("Open from PACS")
        self.window_ = window
        self.settings = window.settings
        self.task: BackgroundTask | None = None
        self.studies: list = []
        self.pulled = None
        self.url_edit = _url_edit(self.settings, self)
        self.patient_edit = QLineEdit(self)
        self.accession_edit = QLineEdit(self)
        self.date_edit = QLineEdit(self)
        self.date_edit.setPlaceholderText("YYYYMMDD or YYYYMMDD-YYYYMMDD")
        self.modality_edit = QLineEdit(self)
        self.modality_edit.setPlaceholderText("CT, MR, CR, DX…")
        self.search_button = QPushButton("Search", self)
        self.search_button.clicked.connect(self.search)
        self.table = QTableWidget(0, len(_COLUMNS), self)
        self.table.setHorizontalHeaderLabels(_COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.itemSelectionChanged.connect(self._selected)
        self.folder_edit = QLineEdit(self)
        browse = QPushButton("Browse…", self)
        browse.clicked.connect(self._browse)
        self.progress = QProgressBar(self)
        self.progress.setRange(0, 1)
        self.message = QLabel("Search, pick a study, then Open: its images are fetched into "
                              "the folder, which opens as the workspace.", self)
        self.message.setWordWrap(True)
        self.buttons = QDialogButtonBox(self)
        self.open_button = self.buttons.addButton("Open", QDialogButtonBox.ButtonRole.AcceptRole)
        self.cancel_button = self.buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        self.open_button.clicked.connect(self.open_study)
        self.cancel_button.clicked.connect(self._cancel)
        self.open_button.setEnabled(False)

        form = QFormLayout()
        form.addRow("DICOMweb URL", self.url_edit)
        form.addRow("Patient ID", self.patient_edit)
        form.addRow("Accession", self.accession_edit)
        form.addRow("Study date", self.date_edit)
        form.addRow("Modality", self.modality_edit)
        folder = QHBoxLayout()
        folder.addWidget(self.folder_edit, 1)
        folder.addWidget(browse)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.search_button)
        layout.addWidget(self.table, 1)
        into = QFormLayout()
        into.addRow("Into folder", folder)
        layout.addLayout(into)
        layout.addWidget(self.progress)
        layout.addWidget(self.message)
        layout.addWidget(self.buttons)
        self.resize(820, 520)

    # -- searching ---------------------------------------------------------------------------
    def search(self) -> None:
        from segstudio.io.dicomweb import DicomWebError, search_studies

        if self.task is not None:
            return
        url = self.url_edit.text().strip()
        fields = {"patient_id": self.patient_edit.text().strip() or None,
                  "accession": self.accession_edit.text().strip() or None,
                  "date": self.date_edit.text().strip() or None,
                  "modality": self.modality_edit.text().strip().upper() or None}

        def job(progress, cancelled):
            return search_studies(url, **fields)

        self._run(job, (DicomWebError,), self._found, "Searching…")

    def _found(self, studies) -> None:
        self.studies = list(studies)
        self.settings.setValue(URL_KEY, self.url_edit.text().strip())
        self.table.setRowCount(len(self.studies))
        for row, s in enumerate(self.studies):
            cells = (s.date, s.patient_id, s.patient_name, s.accession, s.modalities,
                     s.description, "" if s.instances is None else str(s.instances))
            for col, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setData(Qt.ItemDataRole.UserRole, s.uid)
                self.table.setItem(row, col, item)
        self.table.resizeColumnsToContents()
        self.message.setText(f"{len(self.studies)} study(ies) found." if self.studies
                             else "No study matches.")
        if self.studies:
            self.table.selectRow(0)

    def selected_study(self):
        rows = self.table.selectionModel().selectedRows()
        return self.studies[rows[0].row()] if rows else None

    def _selected(self) -> None:
        from segstudio.io.voc import sanitize_id

        study = self.selected_study()
        self.open_button.setEnabled(study is not None and self.task is None)
        if study is None:
            return
        base = Path(str(self.settings.value(FOLDER_KEY, "") or Path.home() / "segstudio-pacs"))
        name = sanitize_id("_".join(p for p in (study.patient_id, study.date, study.uid[-8:])
                                    if p))
        self.folder_edit.setText(str(base / name))

    def _browse(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Pull into", self.folder_edit.text())
        if path:
            self.folder_edit.setText(path)

    # -- pulling -----------------------------------------------------------------------------
    def open_study(self) -> None:
        from segstudio.io.dicomweb import DicomWebError, pull_study, workspace_folder_lock

        study = self.selected_study()
        folder_text = self.folder_edit.text().strip()
        if study is None or self.task is not None:
            return
        if not folder_text:
            self.message.setText("Choose the folder to pull the study into.")
            return
        url, folder = self.url_edit.text().strip(), Path(folder_text).expanduser()

        def job(progress, cancelled):
            return pull_study(url, study.uid, folder, progress=lambda n: progress(n, 0),
                              cancel=cancelled, lock=workspace_folder_lock)

        self._run(job, (DicomWebError,), self._pulled, f"Fetching study {study.uid}…")

    def _pulled(self, result) -> None:
        self.pulled = result
        self.settings.setValue(URL_KEY, self.url_edit.text().strip())
        self.settings.setValue(FOLDER_KEY, str(result.folder.parent))
        note = f"Fetched {len(result.written)} new image(s)"
        if result.already_there:
            note += f", {result.already_there} already there"
        if result.left_out:
            note += "; left out " + ", ".join(f"{n} {m}" for m, n in sorted(result.left_out.items()))
        self.message.setText(note + ".")
        if self.window_.open_paths([result.folder]):
            self.accept()

    # -- running -----------------------------------------------------------------------------
    def _run(self, job, expected, on_success, text: str) -> None:
        self.task = BackgroundTask(job, expected, self)
        self.task.progressed.connect(self._progress)
        self.task.succeeded.connect(on_success)
        self.task.failed.connect(self._failed)
        self.task.finished.connect(self._finished)
        self.search_button.setEnabled(False)
        self.open_button.setEnabled(False)
        self.progress.setRange(0, 0)                 # busy until the first answer
        self.message.setText(text)
        self.task.start()

    def _progress(self, done: int, _total: int) -> None:
        self.message.setText(f"Fetched {done} instance(s)…")

    def _failed(self, message: str) -> None:
        if self.task is not None and self.task.was_cancelled:
            self.message.setText("Cancelled; nothing was written.")
        else:
            self.message.setText(message)

    def _finished(self) -> None:
        self.task = None
        self.progress.setRange(0, 1)
        self.search_button.setEnabled(True)
        self.open_button.setEnabled(self.selected_study() is not None)

    def _cancel(self) -> None:
        if self.task is not None:
            self.task.cancel()
            self.task.wait(60000)
        else:
            self.reject()

    def reject(self) -> None:
        """Closing stops a pull between two instances (nothing is written) and waits for it."""
        if self.task is not None:
            self.task.cancel()
            self.task.wait(60000)
        super().reject()

    def is_running(self) -> bool:
        return self.task is not None and self.task.isRunning()


class SendSegDialog(QDialog):
    """Store DICOM SEG files on a PACS (STOW-RS)."""

    def __init__(self, window, parent: QWidget | None = None) -> None:
        super().__init__(parent or window)
        self.setWindowTitle("Send SEG to PACS")
        self.window_ = window
        self.settings = window.settings
        self.task: BackgroundTask | None = None
        self.result = None
        self.url_edit = _url_edit(self.settings, self)
        self.files = QListWidget(self)
        add = QPushButton("Add SEG files…", self)
        add.clicked.connect(self._add)
        remove = QPushButton("Remove", self)
        remove.clicked.connect(lambda: [self.files.takeItem(self.files.row(i))
                                        for i in self.files.selectedItems()])
        self.message = QLabel("The DICOM SEG files to store, e.g. those the DICOM SEG export "
                              "wrote for this workspace.", self)
        self.message.setWordWrap(True)
        self.buttons = QDialogButtonBox(self)
        self.send_button = self.buttons.addButton("Send", QDialogButtonBox.ButtonRole.AcceptRole)
        self.close_button = self.buttons.addButton(QDialogButtonBox.StandardButton.Close)
        self.send_button.clicked.connect(self.send)
        self.close_button.clicked.connect(self.reject)
        form = QFormLayout()
        form.addRow("DICOMweb URL", self.url_edit)
        row = QHBoxLayout()
        row.addWidget(add)
        row.addWidget(remove)
        row.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.files, 1)
        layout.addLayout(row)
        layout.addWidget(self.message)
        layout.addWidget(self.buttons)
        self.resize(640, 360)

    def add_files(self, paths) -> None:
        present = {self.files.item(i).text() for i in range(self.files.count())}
        for p in paths:
            if str(p) not in present:
                self.files.addItem(str(p))

    def _add(self) -> None:
        start = str(self.window_.workspace.root) if self.window_.workspace is not None else ""
        paths, _ = QFileDialog.getOpenFileNames(self, "DICOM SEG files", start,
                                                "DICOM (*.dcm);;All files (*)")
        self.add_files(paths)

    def send(self) -> None:
        from segstudio.io.dicomweb import DicomWebError, push_files

        files = [self.files.item(i).text() for i in range(self.files.count())]
        if self.task is not None:
            return
        if not files:
            self.message.setText("Add the DICOM SEG files to send first.")
            return
        url = self.url_edit.text().strip()

        def job(progress, cancelled):
            return push_files(url, files)

        self.task = BackgroundTask(job, (DicomWebError,), self)
        self.task.succeeded.connect(self._sent)
        self.task.failed.connect(self.message.setText)
        self.task.finished.connect(self._finished)
        self.send_button.setEnabled(False)
        self.message.setText("Sending…")
        self.task.start()

    def _sent(self, result) -> None:
        self.result = result
        self.settings.setValue(URL_KEY, self.url_edit.text().strip())
        self.message.setText(f"Stored {len(result.stored)} segmentation(s) on the PACS.")

    def _finished(self) -> None:
        self.task = None
        self.send_button.setEnabled(True)

    def reject(self) -> None:
        """A request in flight ends within its timeout; closing waits for it."""
        if self.task is not None:
            self.task.wait(60000)
        super().reject()

    def is_running(self) -> bool:
        return self.task is not None and self.task.isRunning()
