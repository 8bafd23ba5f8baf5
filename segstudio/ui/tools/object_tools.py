"""Tools for objects (instances): select, split along a line, and brush, eraser and polygon that
paint objects rather than bare classes.

The object brush and polygon grow the selected object; with no object selected they start a new
one of the current class (and select it, so the next stroke grows it). The object eraser
shrinks the selected object. Each stroke or polygon is one undo step for classes and objects.
The edits themselves are :class:`segstudio.ui.controllers.objects.ObjectEditing`'s.
"""

from __future__ import annotations

from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QColor, QMouseEvent, QPainter, QPen, QPolygonF

from segstudio.core.geometry import Rect
from segstudio.core.labelmap import polygon_mask, segment_mask
from segstudio.ui.tools.base import Tool
from segstudio.ui.tools.brush import BrushTool
from segstudio.ui.tools.polygon import PolygonTool


class ObjectSelectTool(Tool):
    name = "Select object"
    shortcut = "J"
    tip = "Click an object to select it; Shift+click adds a second one (to merge)"

    def __init__(self, context, editing) -> None:
        super().__init__(context)
        self.editing = editing

    def press(self, pos: QPointF, event: QMouseEvent) -> None:
        if event.button() != Qt.MouseButton.LeftButton:
            return
        add = bool(event.modifiers() & Qt.KeyboardModifier.ShiftModifier)
        self.editing.pick(int(pos.x()), int(pos.y()), add=add)


class ObjectSplitTool(Tool):
    name = "Split object"
    shortcut = "Shift+J"
    tip = "Drag a line across an object to cut it in two (or more) objects"

    def __init__(self, context, editing) -> None:
        super().__init__(context)
        self.editing = editing
        self.points: list[QPointF] = []

    def press(self, pos: QPointF, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            self.points = [pos]

    def move(self, pos: QPointF, event: QMouseEvent) -> None:
        if self.points:
            self.points.append(pos)
            self.ctx.request_repaint()

    def release(self, pos: QPointF, event: QMouseEvent) -> None:
        if not self.points:
            return
        self.points.append(pos)
        line = [(p.x(), p.y()) for p in self.points]
        self.points = []
        self.ctx.request_repaint()
        self.editing.split(line)

    def cancel(self) -> None:
        self.points = []
        self.ctx.request_repaint()

    def draw(self, painter: QPainter, canvas) -> None:
        if len(self.points) < 2:
            return
        line = QPolygonF([canvas.to_widget(p) for p in self.points])
        painter.setPen(QPen(QColor(255, 80, 80), 2, Qt.PenStyle.DashLine))
        painter.drawPolyline(line)


class _ObjectStroke:
    """What the brush paints into: each segment becomes an object edit."""

    def __init__(self, editing, labels, erase: bool) -> None:
        self.editing, self.labels, self.erase = editing, labels, erase

    def begin_step(self, name: str) -> None:
        self.labels.begin_step(name)

    def end_step(self) -> None:
        self.labels.end_step()

    def paint_segment(self, x0, y0, x1, y1, diameter, value, guard=None, *, name="") -> Rect:
        mask, box = segment_mask(x0, y0, x1, y1, diameter, self.labels.shape)
        if box.is_empty():
            return box
        return self.editing.paint(mask, box, value, erase=self.erase)


class ObjectBrushTool(BrushTool):
    name = "Object brush"
    shortcut = "Shift+B"
    tip = ("Grow the selected object; with none selected, paint a new object of the current "
           "class")
    erase = False

    def __init__(self, context, editing) -> None:
        super().__init__(context)
        self.editing = editing

    def target(self):
        labels = self.ctx.labelmap()
        return None if labels is None else _ObjectStroke(self.editing, labels, self.erase)

    def value_for(self, event: QMouseEvent) -> int:
        return self.ctx.current_class()


class ObjectEraserTool(ObjectBrushTool):
    name = "Object eraser"
    shortcut = "Shift+E"
    tip = "Shrink the selected object: erased pixels leave it and become background"
    erase = True


class ObjectPolygonTool(PolygonTool):
    name = "Object polygon"
    shortcut = "Shift+P"
    tip = ("Add a polygon to the selected object; with none selected, a new object of the "
           "current class")

    def __init__(self, context, editing) -> None:
        super().__init__(context)
        self.editing = editing

    def close(self) -> bool:
        pts = [(p.x(), p.y()) for p in self.points]
        self.points = []
        self._dragging = False
        self.ctx.request_repaint()
        if self.ctx.labelmap() is None or len(pts) < 3:
            return False
        mask, box = polygon_mask(pts)
        labels = self.ctx.labelmap()
        with labels.step("object polygon"):
            self.editing.paint(mask, box, self.ctx.current_class(), erase=False)
        return True
