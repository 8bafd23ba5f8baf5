"""Polygon and lasso: click vertices, or drag an outline; close to fill with the current class.

Click adds a vertex; dragging with the button held traces a lasso. The polygon closes on a
double-click, a click near the first vertex, or Enter (:meth:`close`); Esc (:meth:`cancel`) drops it.
"""

from __future__ import annotations

from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QColor, QMouseEvent, QPainter, QPen, QPolygonF

from segstudio.ui.tools.base import Tool


class PolygonTool(Tool):
    name = "Polygon"
    shortcut = "P"
    CLOSE_DISTANCE_PX = 8       # screen pixels from the first vertex that close the shape
    LASSO_SPACING_PX = 3        # screen pixels between lasso samples

    def __init__(self, context) -> None:
        super().__init__(context)
        self.points: list[QPointF] = []
        self._hover: QPointF | None = None
        self._dragging = False
        self._scale = 1.0

    def press(self, pos: QPointF, event: QMouseEvent) -> None:
        if event.button() != Qt.MouseButton.LeftButton:
            return
        if len(self.points) >= 3 and self._near_first(pos):
            self.close()
            return
        self.points.append(pos)
        self._dragging = True
        self.ctx.request_repaint()

    def move(self, pos: QPointF, event: QMouseEvent) -> None:
        self._hover = pos
        if self._dragging and self.points:
            last = self.points[-1]
            if (pos - last).manhattanLength() * self._scale >= self.LASSO_SPACING_PX:
                self.points.append(pos)
        self.ctx.request_repaint()

    def release(self, pos: QPointF, event: QMouseEvent) -> None:
        was_lasso = self._dragging and len(self.points) > 8
        self._dragging = False
        if was_lasso:
            self.close()

    def double_click(self) -> None:
        self.close()

    def hover(self, pos: QPointF) -> None:
        self._hover = pos
        self.ctx.request_repaint()

    def close(self) -> bool:
        """Fill the polygon (if it has 3 vertices or more) and start a new one."""
        pts = [(p.x(), p.y()) for p in self.points]
        self.points = []
        self._dragging = False
        self.ctx.request_repaint()
        lm = self.ctx.labelmap()
        if lm is None or len(pts) < 3:
            return False
        lm.fill_polygon(pts, self.ctx.current_class(), self.ctx.guard())
        return True

    def cancel(self) -> None:
        self.points = []
        self._dragging = False
        self.ctx.request_repaint()

    def _near_first(self, pos: QPointF) -> bool:
        d = pos - self.points[0]
        return (d.x() ** 2 + d.y() ** 2) ** 0.5 * self._scale <= self.CLOSE_DISTANCE_PX

    def draw(self, painter: QPainter, canvas) -> None:
        self._scale = canvas.scale
        if not self.points:
            return
        poly = QPolygonF([canvas.to_widget(p) for p in self.points])
        if self._hover is not None:
            poly.append(canvas.to_widget(self._hover))
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        painter.setPen(QPen(QColor(255, 255, 0, 230), 1.5, Qt.PenStyle.DashLine))
        painter.setBrush(QColor(255, 255, 0, 40))
        painter.drawPolygon(poly)
        painter.setBrush(QColor(255, 255, 0))
        for p in self.points[:1]:
            painter.drawEllipse(canvas.to_widget(p), 4, 4)
