"""Views of the model's prediction over the canvas: where it is unsure, and a swipe comparison.

- Uncertainty layer: ``1 − max probability`` or the normalised entropy of the class
  probabilities, drawn warm and more opaque where the model is less sure, so a corrector looks
  there first.
- Swipe compare: left of a divider that follows the mouse, the model's prediction; right of it,
  the labels as corrected now.
- Instance outlines (Mask R-CNN): each detected instance's border in a colour of its own, with
  its rank, class and score, so two touching objects of one class, one region in the class map, show
  as the two objects the detector found.
"""

from __future__ import annotations

from enum import Enum

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QImage, QPainter, QPen

from segstudio.ui.canvas.render import OverlayRenderer


class Uncertainty(str, Enum):
    OFF = "off"
    MARGIN = "1 − max probability"
    ENTROPY = "entropy"


def uncertainty_map(probabilities: np.ndarray, kind: Uncertainty) -> np.ndarray:
    """H×W float32 in 0..1 (1: least sure) from C×H×W class probabilities."""
    p = np.asarray(probabilities, np.float32)
    if kind is Uncertainty.MARGIN:
        c = p.shape[0]
        return np.clip((1.0 - p.max(axis=0)) * c / max(c - 1, 1), 0.0, 1.0)
    ent = -(p * np.log(np.clip(p, 1e-12, 1.0))).sum(axis=0)
    return np.clip(ent / np.log(max(p.shape[0], 2)), 0.0, 1.0).astype(np.float32)


def heat_image(u: np.ndarray) -> QImage:
    """Premultiplied ARGB: transparent where sure, yellow to red and opaque where unsure."""
    h, w = u.shape
    a = np.clip(u * 1.4, 0.0, 1.0) * 230.0
    r = np.full_like(u, 255.0)
    g = 230.0 * (1.0 - u)
    b = np.zeros_like(u)
    bgra = np.empty((h, w, 4), np.uint8)
    scale = a / 255.0
    bgra[..., 0] = (b * scale).astype(np.uint8)
    bgra[..., 1] = (g * scale).astype(np.uint8)
    bgra[..., 2] = (r * scale).astype(np.uint8)
    bgra[..., 3] = a.astype(np.uint8)
    img = QImage(bgra.data, w, h, 4 * w, QImage.Format.Format_ARGB32_Premultiplied)
    return img.copy()


GOLDEN = 0.6180339887


def instance_colours(n: int) -> np.ndarray:
    """``n`` distinct, saturated RGB colours (uint8, n×3): hues a golden-ratio turn apart."""
    import colorsys

    return np.array([[round(255 * c) for c in colorsys.hsv_to_rgb((0.12 + k * GOLDEN) % 1, 0.85,
                                                                  1.0)]
                     for k in range(n)], np.uint8).reshape(-1, 3)


def instance_outlines(instances: np.ndarray) -> np.ndarray:
    """H×W bool: pixels of an instance whose right, left, upper or lower neighbour is not of
    the same instance (the image border counts as outside)."""
    ids = np.asarray(instances)
    pad = np.pad(ids, 1, constant_values=0)
    inner = pad[1:-1, 1:-1]
    differs = ((pad[1:-1, 2:] != inner) | (pad[1:-1, :-2] != inner) |
               (pad[2:, 1:-1] != inner) | (pad[:-2, 1:-1] != inner))
    return (ids > 0) & differs


def outline_image(instances: np.ndarray) -> QImage:
    """Premultiplied ARGB of every instance's outline, opaque, in its own colour."""
    ids = np.asarray(instances)
    h, w = ids.shape
    table = np.zeros((int(ids.max()) + 1, 4), np.uint8)
    table[1:, 2::-1] = instance_colours(len(table) - 1)       # B, G, R
    table[1:, 3] = 255
    bgra = np.ascontiguousarray(np.where(instance_outlines(ids)[..., None], table[ids], 0)
                                .astype(np.uint8))
    return QImage(bgra.data, w, h, 4 * w, QImage.Format.Format_ARGB32_Premultiplied).copy()


def instance_anchors(instances: np.ndarray, labels: np.ndarray) -> list[tuple[int, int, int, int]]:
    """``(id, class, x, y)`` per instance: its class (the majority label under it, as the
    instance scores take it; 0 when that is background) and the left end of its topmost row,
    where its tag is drawn. A counting pass for the rows, one for the classes, and one row per
    instance, however many instances there are."""
    from segstudio.core.instance_metrics import object_classes

    ids = np.asarray(instances).astype(np.int64)
    h, w = ids.shape
    m = int(ids.max(initial=0)) + 1
    rows = np.bincount((np.arange(h)[:, None] * m + ids).ravel(), minlength=h * m).reshape(h, m)
    classes = object_classes(ids, labels)
    found = []
    for k in np.flatnonzero(rows[:, 1:].any(axis=0)) + 1:
        top = int(np.argmax(rows[:, k] > 0))
        x = int(np.argmax(ids[top] == k))
        found.append((int(k), classes.get(int(k), 0), x, top))
    return found


def free_spot(box: QRectF, placed: list[QRectF]) -> QRectF:
    """``box``, moved down a line at a time until it covers none of ``placed``."""
    box = QRectF(box)
    while any(box.intersects(other) for other in placed):
        box.translate(0, box.height() + 1)
    return box


class PredictionLayers:
    """Draws the uncertainty layer and the swipe comparison as canvas decorations."""

    def __init__(self, window) -> None:
        self.window = window
        self.uncertainty = Uncertainty.OFF
        self.compare = False
        self._divider: float | None = None      # widget x of the swipe divider
        self._heat_key = None
        self._heat: QImage | None = None
        self._pred_key = None
        self._pred_overlay: OverlayRenderer | None = None
        self.instances = False
        self._outline_key = None
        self._outline: tuple[QImage, list] | None = None
        self._tasks: set = set()                 # outline tasks still running
        window.canvas.decorations.append(self.draw)
        window.canvas.hovered.connect(self._follow)

    def prediction(self):
        doc = self.window.doc
        return None if doc is None else doc.prediction

    def set_uncertainty(self, kind: Uncertainty) -> bool:
        self.uncertainty = Uncertainty(kind)
        self.window.canvas.update()
        return self.prediction() is not None

    def set_compare(self, on: bool) -> bool:
        self.compare = bool(on)
        self.window.canvas.overlay_clip_left = None
        self.window.canvas.update()
        return self.prediction() is not None

    def set_instances(self, on: bool) -> bool:
        """Show instance outlines; False when the prediction on screen has no instances."""
        self.instances = bool(on)
        self.window.canvas.update()
        pred = self.prediction()
        return (pred is not None and getattr(pred, "instances", None) is not None
                or self._stored_objects())

    def _stored_objects(self) -> bool:
        """The item has objects of its own, other than the prediction's as it came: they are
        outlined (ui.controllers.objects) instead of the prediction's."""
        doc = self.window.doc
        objects = None if doc is None else doc.labels.objects
        return objects is not None and objects.has_objects() and not objects.as_predicted

    def _follow(self, fx: float, fy: float) -> None:
        if self.compare:
            self._divider = self.window.canvas.to_widget(QPointF(fx, fy)).x()
            self.window.canvas.update()

    def draw(self, painter: QPainter, canvas) -> None:
        pred = self.prediction()
        size = canvas.image_size
        if pred is None or size is None or pred.labels.shape != (size[1], size[0]):
            canvas.overlay_clip_left = None
            return
        target = QRectF(canvas.to_widget(QPointF(0, 0)), canvas.to_widget(QPointF(*size)))
        if self.uncertainty is not Uncertainty.OFF:
            key = (id(pred), self.uncertainty)
            if key != self._heat_key:
                self._heat = heat_image(uncertainty_map(pred.probabilities, self.uncertainty))
                self._heat_key = key
            painter.drawImage(target, self._heat)
        if self.compare:
            self._draw_swipe(painter, canvas, pred, target)
        else:
            canvas.overlay_clip_left = None
        if self.instances and getattr(pred, "instances", None) is not None \
                and not self._stored_objects():
            self._draw_instances(painter, canvas, pred, target)

    def _draw_instances(self, painter: QPainter, canvas, pred, target: QRectF) -> None:
        if self._outline_key != id(pred):
            self._compute_outlines(pred)
        if self._outline is None:
            return                        # being drawn off the GUI thread; repainted when ready
        image, anchors = self._outline
        painter.drawImage(target, image)
        names = self.window.classes.names
        colours = instance_colours(max((a[0] for a in anchors), default=0))
        painter.save()
        font = painter.font()
        font.setPointSizeF(8.5)
        painter.setFont(font)
        objects = getattr(pred, "objects", None)      # the detector's own class and score
        placed: list[QRectF] = []
        for k, cls, x, y in anchors:
            score = ""
            if objects is not None and k <= len(objects):
                cls, score = objects[k - 1][0], f" {objects[k - 1][1]:.0%}"
            name = names[cls] if cls < len(names) else f"class {cls}"
            text = f"{k} {name}{score}"
            at = canvas.to_widget(QPointF(x, y))
            box = QRectF(at.x(), at.y() - 15, painter.fontMetrics().horizontalAdvance(text) + 6,
                         14)
            box = free_spot(box, placed)
            placed.append(box)
            r, g, b = (int(v) for v in colours[k - 1])
            painter.fillRect(box, QColor(r, g, b, 220))
            painter.setPen(QColor(0, 0, 0))
            painter.drawText(box, int(Qt.AlignmentFlag.AlignCenter), text)
        painter.restore()

    def _compute_outlines(self, pred) -> None:
        """The outline image and tag anchors of ``pred``, made in a background thread (passes
        over a map that can be 4096² would stall the window); the canvas repaints when ready."""
        from segstudio.ui.background.tasks import BackgroundTask

        key, instances, labels = id(pred), pred.instances, pred.labels
        self._outline_key, self._outline = key, None
        task = BackgroundTask(lambda _progress, _cancelled: (outline_image(instances),
                                                            instance_anchors(instances, labels)),
                              parent=self.window)
        task.succeeded.connect(lambda result: self._outlines_ready(key, result))
        task.failed.connect(lambda message: self.window.statusBar().showMessage(
            f"Instance outlines could not be drawn: {message}", 5000))
        task.finished.connect(self.window.end_busy)
        task.finished.connect(lambda: self._tasks.discard(task))
        task.finished.connect(task.deleteLater)
        self._tasks.add(task)
        self.window.begin_busy()
        task.start()

    def shutdown(self) -> None:
        """Wait for outlines still being made (a second at most), so that no thread outlives
        the window."""
        for task in list(self._tasks):
            task.wait()

    def _outlines_ready(self, key: int, result) -> None:
        if key == self._outline_key:      # not a prediction replaced in the meantime
            self._outline = result
            self.window.canvas.update()

    def _draw_swipe(self, painter: QPainter, canvas, pred, target: QRectF) -> None:
        key = (id(pred), tuple(sorted(self.window.hidden)), self.window.classes)
        if key != self._pred_key:
            self._pred_overlay = OverlayRenderer(pred.labels, self.window.classes,
                                                 hidden=self.window.hidden)
            self._pred_key = key
        x = self._divider if self._divider is not None else target.center().x()
        canvas.overlay_clip_left = x
        painter.save()
        painter.setClipRect(QRectF(target.left(), target.top(), max(0.0, x - target.left()),
                                   target.height()))
        painter.setOpacity(canvas.opacity)
        painter.drawImage(target, self._pred_overlay.image)
        painter.restore()
        painter.setPen(QPen(QColor(255, 255, 255, 230), 2))
        painter.drawLine(QPointF(x, target.top()), QPointF(x, target.bottom()))
        painter.setPen(QColor(255, 255, 255))
        painter.drawText(QRectF(x - 130, target.top() + 4, 124, 18),
                         int(Qt.AlignmentFlag.AlignRight), "prediction")
        painter.drawText(QRectF(x + 6, target.top() + 4, 124, 18),
                         int(Qt.AlignmentFlag.AlignLeft), "corrected")
