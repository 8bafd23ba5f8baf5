"""The Scores panel's object line: the prediction's objects against the item's corrected ones.

Shown under the class scores when both sides have objects (an instance model's prediction, and
an object map on the item): precision and recall of the predicted objects at mask IoU ≥ 0.5,
matched one to one within a class, as ``segstudio eval`` does
(:mod:`segstudio.core.instance_metrics`).
"""

from __future__ import annotations

from PySide6.QtCore import QObject, QTimer
from PySide6.QtWidgets import QLabel

from segstudio.core.instance_metrics import DEFAULT_IOU, match_instances


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
