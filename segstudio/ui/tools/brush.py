"""Brush and eraser: round, any size from 1 px, continuous strokes at any mouse speed."""

from __future__ import annotations

from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QColor, QMouseEvent, QPainter, QPen

from segstudio.core.labelmap import VOID
from segstudio.ui.tools.base import Tool, ToolContext


class BrushTool(Tool):
    name = "Brush"
    shortcut = "B"
    MIN_SIZE, MAX_SIZE = 1, 512

    def __init__(self, context: ToolContext, size: int = 15) -> None:
        super().__init__(context)
        self.size = size
        self._last: QPointF | None = None
        self._hover: QPointF | None = None
        self._value = 0
        self._resize_from: tuple[QPointF, int] | None = None

    def set_size(self, size: int) -> None:
        self.size = int(max(self.MIN_SIZE, min(self.MAX_SIZE, size)))
        self.ctx.request_repaint()

    def grow(self, notches: int) -> None:
        """`[` / `]` and Ctrl+wheel: about 15% per notch, at least one pixel."""
        step = max(1, round(self.size * 0.15))
        self.set_size(self.size + notches * step)

    def value_for(self, event: QMouseEvent) -> int:
        return self.ctx.current_class()

    def target(self):
        """The label map strokes paint into (the image's labels; a seed map for seeds)."""
        return self.ctx.labelmap()

    def guard(self):
        return self.ctx.guard()

    def press(self, pos: QPointF, event: QMouseEvent) -> None:
        if event.button() != Qt.MouseButton.LeftButton:
            return
        if event.modifiers() & Qt.KeyboardModifier.ControlModifier:
            # Ctrl+drag sizes the brush on the canvas: the circle follows the mouse.
            self._resize_from = (pos, self.size)
            self._hover = pos
            return
        lm = self.target()
        if lm is None:
            return
        self._value = self.value_for(event)
        lm.begin_step(self.name.lower())
        lm.paint_segment(pos.x(), pos.y(), pos.x(), pos.y(), self.size, self._value,
                         self.guard(), name=self.name.lower())
        self._last = pos
        self._hover = pos

    def move(self, pos: QPointF, event: QMouseEvent) -> None:
        if self._resize_from is not None:
            start, size = self._resize_from
            self.set_size(round(size + 2 * (pos.x() - start.x())))
            return
        self._hover = pos
        lm = self.target()
        if self._last is None or lm is None:
            self.ctx.request_repaint()
            return
        lm.paint_segment(self._last.x(), self._last.y(), pos.x(), pos.y(), self.size,
                         self._value, self.guard(), name=self.name.lower())
        self._last = pos
        self.ctx.request_repaint()

    def release(self, pos: QPointF, event: QMouseEvent) -> None:
        if self._resize_from is not None:
            self._resize_from = None
            return
        if self._last is not None:
            lm = self.target()
            if lm is not None:
                lm.end_step()
        self._last = None

    def cancel(self) -> None:
        self.release(QPointF(), None)  # type: ignore[arg-type]

    def hover(self, pos: QPointF) -> None:
        self._hover = pos
        self.ctx.request_repaint()

    def draw(self, painter: QPainter, canvas) -> None:
        if self._hover is None:
            return
        anchor = self._resize_from[0] if self._resize_from is not None else self._hover
        centre = canvas.to_widget(anchor)
        r = max(self.size * canvas.scale / 2.0, 1.5)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.setPen(QPen(QColor(0, 0, 0, 160), 3))
        painter.drawEllipse(centre, r, r)
        painter.setPen(QPen(QColor(255, 255, 255, 220), 1))
        painter.drawEllipse(centre, r, r)


class EraserTool(BrushTool):
    """Paints background (class 0); with Shift held at the press, paints void (255)."""

    name = "Eraser"
    shortcut = "E"

    def value_for(self, event: QMouseEvent) -> int:
        if event.modifiers() & Qt.KeyboardModifier.ShiftModifier:
            return VOID
        return 0
