"""The Scores panel's object lines: the prediction's objects against the corrected ones.

Shown under the class scores when both sides have objects (an instance model's prediction, and
an object map on the item): precision and recall of the predicted objects at mask IoU ≥ 0.5,
matched one to one within a class, as ``segstudio eval`` does
(:mod:`segstudio.core.instance_metrics`). One line for the item on screen; with "Score the
workspace", one more over the corrected and reviewed items whose model objects were kept
(``predicted-objects/``).
"""

from __future__ import annotations

from PySide6.QtCore import QObject, QTimer
from PySide6.QtWidgets import QLabel

from segstudio.core.instance_metrics import DEFAULT_IOU, InstanceCounts, match_instances
from segstudio.io.workspace import ItemStatus


def object_score_text(doc) -> str | None:
    """One line for ``doc``, or None when one side has no objects."""
    prediction = None if doc is None else doc.prediction
    instances = getattr(prediction, "instances", None)
    objects = None if doc is None else doc.labels.objects
    if instances is None or objects is None or not objects.has_objects():
        return None
    if instances.shape != objects.array.shape:
        return None
    counts = match_instances(objects.array, doc.labels.array, instances, prediction.labels)
    return _line(counts)


def _line(counts: InstanceCounts) -> str:
    ratios = counts.to_dict()
    shown = {k: "–" if ratios[k] is None else f"{100 * ratios[k]:.1f}%"
             for k in ("precision", "recall")}
    return (f"Objects (mask IoU ≥ {DEFAULT_IOU:g}): precision {shown['precision']}, recall "
            f"{shown['recall']} — {counts.tp} found, {counts.fp} false, {counts.fn} missed")


class ObjectScores(QObject):
    """Keeps the line up to date below the Scores panel's tabs."""

    def __init__(self, window) -> None:
        super().__init__(window)
        self.window = window
        self.label = QLabel("", window.metrics)
        self.label.setWordWrap(True)
        self.label.hide()
        window.metrics.layout().addWidget(self.label)
        self._timer = QTimer(self, singleShot=True, interval=400)
        self._timer.timeout.connect(self.refresh)
        self._labels = None
        window.documentShown.connect(self._shown)
        # A prediction that leaves corrected labels alone changes no pixel: follow the panel's
        # own re-scoring too.
        window.metrics._timer.timeout.connect(self.refresh)
        self.workspace_label = QLabel("", window.metrics)
        self.workspace_label.setWordWrap(True)
        self.workspace_label.hide()
        window.metrics.layout().addWidget(self.workspace_label)
        self.task = None
        window.metrics.score_button.clicked.connect(self.score_workspace)

    def _shown(self, doc) -> None:
        if self._labels is not None:
            self._labels.remove_listener(self._changed)
        self._labels = None if doc is None else doc.labels
        if self._labels is not None:
            self._labels.add_listener(self._changed)
        self.refresh()

    def _changed(self, _rect) -> None:
        self._timer.start()

    def refresh(self) -> None:
        text = object_score_text(self.window.doc)
        self.label.setText(text or "")
        self.label.setVisible(text is not None)

    def score_workspace(self) -> None:
        """Objects over the workspace, in a background thread (a line; hidden when no item has
        objects on both sides)."""
        from segstudio.io.object_store import load_objects
        from segstudio.ui.background.tasks import BackgroundTask

        ws = self.window.workspace
        if ws is None or self.task is not None:
            return
        items = [i for i in ws.items if i.status in (ItemStatus.CORRECTED, ItemStatus.REVIEWED)]

        def job(progress, cancelled):
            total, used = InstanceCounts(), 0
            for n, item in enumerate(items):
                if cancelled():
                    break
                pred_ids = load_objects(ws, item, predicted=True)
                gt_ids = load_objects(ws, item) if pred_ids is not None else None
                if gt_ids is not None:
                    gt, pred = ws.load_labels(item), ws.load_prediction(item)
                    if gt is not None and pred is not None and \
                            gt.shape == pred.shape == gt_ids.shape == pred_ids.shape:
                        total.add(match_instances(gt_ids, gt, pred_ids, pred))
                        used += 1
                progress(n + 1, len(items))
            return total, used

        self.task = BackgroundTask(job, (Exception,), self)
        self.task.succeeded.connect(self._workspace_scored)
        self.task.failed.connect(self.window.show_error)
        self.task.finished.connect(self._task_done)
        self.window.begin_busy()
        self.task.start()

    def _workspace_scored(self, result) -> None:
        counts, used = result
        text = f"Workspace, {used} item(s) — {_line(counts)}" if used else ""
        self.workspace_label.setText(text)
        self.workspace_label.setVisible(bool(used))

    def _task_done(self) -> None:
        self.task = None
        self.window.end_busy()
