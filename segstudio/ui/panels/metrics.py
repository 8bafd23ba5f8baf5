"""Scores of the model against the corrected labels: this image, and the whole workspace.

Per image, the model's prediction (kept apart in ``predictions/``) is scored against the labels as
they are now; for the workspace, over every corrected or reviewed item that has a prediction. The
confusion matrix (rows: corrected labels, columns: prediction) shows what the model mistakes for
what.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QTimer
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (QHeaderView, QLabel, QPushButton, QTableWidget, QTableWidgetItem,
                               QTabWidget, QVBoxLayout, QWidget)

from segstudio.core.metrics import ConfusionMatrix
from segstudio.io.workspace import ItemStatus
from segstudio.ui.background.tasks import BackgroundTask


def _pct(v: float) -> str:
    return "–" if not np.isfinite(v) else f"{100 * v:.1f}%"


class ScoreView(QWidget):
    """Summary line, per-class IoU/Acc, and the confusion matrix of one ConfusionMatrix."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.summary = QLabel("", self)
        self.summary.setWordWrap(True)
        self.per_class = QTableWidget(0, 3, self)
        self.per_class.setHorizontalHeaderLabels(["Class", "IoU", "Acc"])
        self.per_class.verticalHeader().setVisible(False)
        self.per_class.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.confusion = QTableWidget(0, 0, self)
        self.confusion.setToolTip("Rows: corrected labels; columns: prediction (share of the row)")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.summary)
        layout.addWidget(self.per_class, 2)
        confusion = QLabel("Confusion (rows: corrected, columns: predicted)", self)
        confusion.setWordWrap(True)             # the dock may be narrow
        layout.addWidget(confusion)
        layout.addWidget(self.confusion, 3)
        self.scores = None

    def show_matrix(self, cm: ConfusionMatrix | None, names, caption: str) -> None:
        if cm is None or cm.matrix.sum() + cm.unassigned.sum() == 0:
            self.scores = None
            self.summary.setText(caption)
            self.per_class.setRowCount(0)
            self.confusion.setRowCount(0)
            self.confusion.setColumnCount(0)
            return
        s = cm.scores()
        self.scores = s
        self.summary.setText(f"{caption}\nmIoU {_pct(s.miou)}   mAcc {_pct(s.macc)}   "
                             f"aAcc {_pct(s.aacc)}")
        self.per_class.setRowCount(len(names))
        for i, name in enumerate(names):
            for col, text in enumerate((name, _pct(s.iou[i]), _pct(s.acc[i]))):
                self.per_class.setItem(i, col, QTableWidgetItem(text))
        n = len(names)
        self.confusion.setRowCount(n)
        self.confusion.setColumnCount(n)
        self.confusion.setHorizontalHeaderLabels([str(i) for i in range(n)])
        self.confusion.setVerticalHeaderLabels([f"{i} {names[i]}" for i in range(n)])
        rows = cm.matrix.sum(axis=1, keepdims=True) + cm.unassigned[:, None]
        share = np.divide(cm.matrix, rows, out=np.zeros(cm.matrix.shape), where=rows > 0)
        for r in range(n):
            for c in range(n):
                item = QTableWidgetItem(f"{100 * share[r, c]:.0f}" if rows[r, 0] else "")
                item.setToolTip(f"{cm.matrix[r, c]} pixels")
                if rows[r, 0]:
                    strength = int(40 + 180 * share[r, c])
                    base = (60, 160, 90) if r == c else (220, 80, 60)
                    item.setBackground(QColor(*base, strength))
                self.confusion.setItem(r, c, item)
        self.confusion.resizeColumnsToContents()


class MetricsPanel(QWidget):
    def __init__(self, window) -> None:
        super().__init__(window)
        self.window = window
        self.tabs = QTabWidget(self)
        self.image_view = ScoreView(self)
        self.workspace_view = ScoreView(self)
        holder = QWidget(self)
        lay = QVBoxLayout(holder)
        lay.setContentsMargins(0, 0, 0, 0)
        self.score_button = QPushButton("Score the workspace", holder)
        self.score_button.setToolTip("Prediction against corrected labels over every corrected or "
                                     "reviewed item that has a prediction")
        self.score_button.clicked.connect(self.score_workspace)
        lay.addWidget(self.score_button)
        lay.addWidget(self.workspace_view)
        self.tabs.addTab(self.image_view, "This image")
        self.tabs.addTab(holder, "Workspace")
        # How far the image lies from the model's training data, after each prediction.
        self.domain_label = QLabel("", self)
        self.domain_label.setWordWrap(True)
        self.domain_label.hide()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.domain_label)
        layout.addWidget(self.tabs)
        self.task: BackgroundTask | None = None
        self._timer = QTimer(self, singleShot=True, interval=400)
        self._timer.timeout.connect(self.refresh_image)
        window.documentShown.connect(lambda _: self.refresh_image())

    def labels_changed(self) -> None:
        self._timer.start()

    def _prediction_of(self, doc):
        if doc.prediction is not None:
            return doc.prediction.labels
        ws = self.window.workspace
        try:
            return ws.load_prediction(doc.item) if ws is not None else None
        except Exception:   # noqa: BLE001 - an unreadable prediction just has no score
            return None

    def show_domain(self, doc) -> None:
        """The prediction's out-of-domain finding in red, or its in-domain figures in plain."""
        finding = getattr(getattr(doc, "prediction", None), "domain", None)
        if finding is None:
            self.domain_label.hide()
            return
        if finding.out_of_domain:
            self.domain_label.setStyleSheet("color: #e0443e; font-weight: bold;")
            self.domain_label.setText(f"Out of domain: {finding.message()}.")
        else:
            self.domain_label.setStyleSheet("")
            self.domain_label.setText(f"In domain: {finding.message()}.")
        self.domain_label.show()

    def refresh_image(self) -> None:
        doc = self.window.doc
        self.show_domain(doc)
        names = list(self.window.classes.names)
        if doc is None:
            self.image_view.show_matrix(None, names, "No image.")
            return
        pred = self._prediction_of(doc)
        if pred is None or pred.shape != doc.labels.shape:
            self.image_view.show_matrix(None, names, "No prediction for this image yet: run a "
                                                     "model (Ctrl+R).")
            return
        cm = ConfusionMatrix(len(names)).update(doc.labels.array, pred)
        state = "corrected" if doc.item.status in (ItemStatus.CORRECTED, ItemStatus.REVIEWED) \
            else "not yet corrected"
        self.image_view.show_matrix(cm, names, f"Prediction vs the current labels ({state}).")

    def score_workspace(self) -> None:
        ws = self.window.workspace
        if ws is None or self.task is not None:
            return
        items = [i for i in ws.items if i.status in (ItemStatus.CORRECTED, ItemStatus.REVIEWED)]
        names = list(ws.classes.names)

        def job(progress, cancelled):
            cm = ConfusionMatrix(len(names))
            used = 0
            for k, item in enumerate(items):
                if cancelled():
                    break
                pred, gt = ws.load_prediction(item), ws.load_labels(item)
                if pred is not None and gt is not None and pred.shape == gt.shape:
                    cm.update(gt, pred)
                    used += 1
                progress(k + 1, len(items))
            return cm, used

        self.task = BackgroundTask(job, (Exception,), self)
        self.task.succeeded.connect(lambda r: self.workspace_view.show_matrix(
            r[0], names, f"{r[1]} corrected item(s) with a prediction."))
        self.task.failed.connect(self.window.show_error)
        self.task.finished.connect(self._done)
        self.window.begin_busy()
        self.task.start()

    def _done(self) -> None:
        self.task = None
        self.window.end_busy()
