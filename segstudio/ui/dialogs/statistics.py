"""View ▸ Workspace statistics: per class, pixel share, images containing it and objects of it;
per item, its status, its objects and when and by what (a tool, a model, a review) it was last
changed."""

from __future__ import annotations

from PySide6.QtWidgets import (QDialog, QHeaderView, QLabel, QTableWidget, QTableWidgetItem,
                               QTabWidget, QVBoxLayout)

from segstudio.core.statistics import class_statistics, object_statistics
from segstudio.io.object_store import load_objects
from segstudio.ui.background.tasks import BackgroundTask


class StatisticsDialog(QDialog):
    def __init__(self, window) -> None:
        super().__init__(window)
        self.setWindowTitle("Workspace statistics")
        self.resize(560, 480)
        self.window = window
        ws = window.workspace
        self.summary = QLabel("Counting…", self)
        self.classes = QTableWidget(0, 5, self)
        self.classes.setHorizontalHeaderLabels(["Class", "Pixel share", "Images", "Pixels",
                                                "Objects"])
        self.classes.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.items = QTableWidget(len(ws.items), 5, self)
        self.items.setHorizontalHeaderLabels(["Item", "Status", "Last changed", "By", "Objects"])
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
            maps = [(i.id, m, load_objects(ws, i))
                    for i in labelled if not cancelled() and (m := ws.load_labels(i)) is not None]
            return (class_statistics((m for _, m, _ in maps), cancelled),
                    object_statistics(maps, cancelled))

        self.task = BackgroundTask(job, (Exception,), self)
        self.task.succeeded.connect(self._show)
        self.task.failed.connect(lambda m: self.summary.setText(f"Could not count: {m}"))
        self.task.start()

    def _show(self, result) -> None:
        stats, objects = result
        self.result, self.objects = stats, objects
        names = self.window.classes.names
        self.summary.setText(f"{stats.labelled_images} labelled item(s) of "
                             f"{len(self.window.workspace.items)}; {objects.total} object(s)")
        for row, item in enumerate(self.window.workspace.items):
            count = objects.per_item.get(item.id)
            self.items.setItem(row, 4, QTableWidgetItem("" if count is None else str(count)))
        self.classes.setRowCount(len(names) + 1)
        rows = [(n, i) for i, n in enumerate(names)] + [("void (255)", 255)]
        for r, (name, index) in enumerate(rows):
            share = "" if index == 255 else f"{100 * stats.share(index):.2f}%"
            for c, text in enumerate((name, share, str(int(stats.images[index])),
                                      str(int(stats.pixels[index])),
                                      str(int(objects.per_class[index])))):
                self.classes.setItem(r, c, QTableWidgetItem(text))

    def done(self, code: int) -> None:  # noqa: D102 - Qt's name
        self.task.cancel()
        self.task.wait(10000)
        super().done(code)
