"""GrabCut box: drag a rectangle around an object; what GrabCut finds inside takes the class."""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QMouseEvent, QPainter, QPen

from segstudio.ui.tools.base import Tool


class GrabCutBoxTool(Tool):
    name = "GrabCut box"
    shortcut = "G"

    def __init__(self, context, run_box) -> None:
        super().__init__(context)
        self._run_box = run_box          # callable((x0, y0, x1, y1)) that starts the cut
        self._start: QPointF | None = None
        self._end: QPointF | None = None

    def press(self, pos: QPointF, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            self._start = self._end = pos

    def move(self, pos: QPointF, event: QMouseEvent) -> None:
        if self._start is not None:
            self._end = pos
            self.ctx.request_repaint()

    def release(self, pos: QPointF, event: QMouseEvent) -> None:
        if self._start is None:
            return
        x0, x1 = sorted((self._start.x(), pos.x()))
        y0, y1 = sorted((self._start.y(), pos.y()))
        self._start = self._end = None
        self.ctx.request_repaint()
        if x1 - x0 >= 4 and y1 - y0 >= 4:
            self._run_box((int(x0), int(y0), int(x1) + 1, int(y1) + 1))

    def cancel(self) -> None:
        self._start = self._end = None
        self.ctx.request_repaint()

    def draw(self, painter: QPainter, canvas) -> None:
        if self._start is None or self._end is None:
            return
        painter.setPen(QPen(QColor(80, 220, 255), 1.5, Qt.PenStyle.DashLine))
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawRect(QRectF(canvas.to_widget(self._start), canvas.to_widget(self._end)))
