"""View ▸ Workspace statistics: per class, pixel share and images containing it; per item, its
status and when and by what (a tool, a model, a review) it was last changed."""

from __future__ import annotations

from PySide6.QtWidgets import (QDialog, QHeaderView, QLabel, QTableWidget, QTableWidgetItem,
                               QTabWidget, QVBoxLayout)

from segstudio.core.statistics import class_statistics
from segstudio.ui.background.tasks import BackgroundTask


class StatisticsDialog(QDialog):
    def __init__(self, window) -> None:
        super().__init__(window)
        self.setWindowTitle("Workspace statistics")
        self.resize(560, 480)
        self.window = window
        ws = window.workspace
        self.summary = QLabel("Counting…", self)
        self.classes = QTableWidget(0, 4, self)
        self.classes.setHorizontalHeaderLabels(["Class", "Pixel share", "Images", "Pixels"])
        self.classes.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.items = QTableWidget(len(ws.items), 4, self)
        self.items.setHorizontalHeaderLabels(["Item", "Status", "Last changed", "By"])
        self.items.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for row, item in enumerate(ws.items):
            for col, text in enumerate((item.id, item.status.value, item.updated or "",
                                        item.updated_by or "")):
                self.items.setItem(row, col, QTableWidgetItem(text))
        tabs = QTabWidget(self)
        tabs.addTab(self.classes, "Classes")
        tabs.addTab(self.items, "Items")
        layout = QVBoxLayout(self)
        layout.addWidget(self.summary)
        layout.addWidget(tabs)
        self.result = None
        labelled = ws.labelled_items()

        def job(progress, cancelled):
            maps = (ws.load_labels(i) for i in labelled)
            return class_statistics((m for m in maps if m is not None), cancelled)

        self.task = BackgroundTask(job, (Exception,), self)
        self.task.succeeded.connect(self._show)
        self.task.failed.connect(lambda m: self.summary.setText(f"Could not count: {m}"))
        self.task.start()

    def _show(self, stats) -> None:
        self.result = stats
        names = self.window.classes.names
        self.summary.setText(f"{stats.labelled_images} labelled item(s) of "
                             f"{len(self.window.workspace.items)}")
        self.classes.setRowCount(len(names) + 1)
        rows = [(n, i) for i, n in enumerate(names)] + [("void (255)", 255)]
        for r, (name, index) in enumerate(rows):
            share = "" if index == 255 else f"{100 * stats.share(index):.2f}%"
            for c, text in enumerate((name, share, str(int(stats.images[index])),
                                      str(int(stats.pixels[index])))):
                self.classes.setItem(r, c, QTableWidgetItem(text))

    def done(self, code: int) -> None:  # noqa: D102 - Qt's name
        self.task.cancel()
        self.task.wait(10000)
        super().done(code)
