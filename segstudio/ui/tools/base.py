"""What tools need from the window, kept to a small protocol so tools are testable alone."""

from __future__ import annotations

from typing import Protocol

from PySide6.QtCore import QPointF
from PySide6.QtGui import QMouseEvent, QPainter

from segstudio.core.labelmap import LabelMap, PaintGuard


class ToolContext(Protocol):
    def labelmap(self) -> LabelMap | None: ...
    def current_class(self) -> int: ...
    def guard(self) -> PaintGuard: ...
    def request_repaint(self) -> None: ...


class Tool:
    """Base: no-op handlers, so each tool overrides only what it uses."""

    name = "tool"
    shortcut = ""

    def __init__(self, context: ToolContext) -> None:
        self.ctx = context

    def press(self, pos: QPointF, event: QMouseEvent) -> None:
        pass

    def move(self, pos: QPointF, event: QMouseEvent) -> None:
        pass

    def release(self, pos: QPointF, event: QMouseEvent) -> None:
        pass

    def hover(self, pos: QPointF) -> None:
        pass

    def draw(self, painter: QPainter, canvas) -> None:
        pass

    def cancel(self) -> None:
        pass
