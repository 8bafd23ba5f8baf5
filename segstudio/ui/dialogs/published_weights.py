"""Model ▸ Published torchvision weights…: use the COCO/VOC weights torchvision publishes.

A file already in the torch hub cache is used at once; one that is not can be downloaded, which
the dialog does only when the user presses Download (it needs the network). Either way the
weights become a segstudio checkpoint in the user's models folder and join the model list.
Offline, the dialog names the file and the folder it must be copied to by hand.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QDialog, QHBoxLayout, QLabel, QListWidget, QPushButton,
                               QVBoxLayout)

from segstudio.paths import user_data_dir
from segstudio.ui.background.tasks import BackgroundTask


class PublishedWeightsDialog(QDialog):
    def __init__(self, window) -> None:
        from segstudio.models.published import PUBLISHED

        super().__init__(window)
        self.setWindowTitle("Published torchvision weights")
        self.window = window
        self.task: BackgroundTask | None = None
        self.installed = None
        self.list = QListWidget(self)
        self.names = list(PUBLISHED)
        self.status = QLabel("", self)
        self.status.setWordWrap(True)
        self.where = QLabel("", self)           # where a file copied in by hand must go
        self.where.setWordWrap(True)
        self.where.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.list.currentRowChanged.connect(lambda _: self._show_where())
        self.use_button = QPushButton("Download if needed and use", self)
        self.use_button.clicked.connect(self.start)
        close = QPushButton("Close", self)
        close.clicked.connect(self.accept)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.use_button)
        buttons.addWidget(close)
        layout = QVBoxLayout(self)
        self.intro = QLabel("torchvision's weights trained on COCO images with the 21 Pascal "
                            "VOC classes. Files already in the torch hub cache are used as "
                            "they are; others are downloaded (about 40–250 MB) when you ask.",
                            self)
        self.intro.setWordWrap(True)
        layout.addWidget(self.intro)
        layout.addWidget(self.list)
        layout.addWidget(self.where)
        layout.addWidget(self.status)
        layout.addLayout(buttons)
        self.resize(640, 420)
        self.refresh()

    def _show_where(self) -> None:
        from segstudio.models.published import cached_file, is_cached, weights_entry

        row = self.list.currentRow()
        if not 0 <= row < len(self.names) or is_cached(self.names[row]):
            self.where.setText("")
            return
        name = self.names[row]
        path = cached_file(name)
        self.where.setText(f"Without a network: download {weights_entry(name).url} elsewhere "
                           f"and copy it, keeping its name {path.name}, into {path.parent}")

    def refresh(self) -> None:
        from segstudio.models.published import is_cached

        row = max(self.list.currentRow(), 0)
        self.list.clear()
        for name in self.names:
            self.list.addItem(f"{name} — {'in the cache' if is_cached(name) else 'not downloaded'}")
        self.list.setCurrentRow(row)

    def start(self) -> None:
        from segstudio.models import published

        if self.task is not None or self.list.currentRow() < 0:
            return
        name = self.names[self.list.currentRow()]
        out_dir = user_data_dir() / "models"

        def job(progress, cancelled):
            published.download(name)
            return published.install(name, out_dir)

        self.task = BackgroundTask(job, (published.PublishedWeightsError,), self)
        self.task.succeeded.connect(self._done)
        self.task.failed.connect(self._failed)
        self.task.finished.connect(self._finished)
        self.status.setText(f"Getting {name}…")
        self.use_button.setEnabled(False)
        self.window.begin_busy()
        self.task.start()

    def _failed(self, message: str) -> None:
        from segstudio.models.published import cached_file

        path = cached_file(self.names[self.list.currentRow()])
        self.status.setText(f"Not installed: {message}. To install it without a network, copy "
                            f"{path.name} into {path.parent} and press the button again.")

    def _done(self, path) -> None:
        self.installed = path
        self.status.setText(f"{path.name} is in the model list (trained on COCO, VOC classes).")
        self.window.models.prefer_checkpoint = path.name
        self.window.models.start()

    def _finished(self) -> None:
        self.task = None
        self.use_button.setEnabled(True)
        self.refresh()
        self.window.end_busy()
