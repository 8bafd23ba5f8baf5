"""Flood fill: the clicked region of one class takes the current class."""

from __future__ import annotations

import math

from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QMouseEvent

from segstudio.ui.tools.base import Tool


class FillTool(Tool):
    name = "Fill"
    shortcut = "F"
    connectivity = 4

    def press(self, pos: QPointF, event: QMouseEvent) -> None:
        if event.button() != Qt.MouseButton.LeftButton:
            return
        lm = self.ctx.labelmap()
        if lm is None:
            return
        lm.fill(math.floor(pos.x()), math.floor(pos.y()), self.ctx.current_class(),
                connectivity=self.connectivity, guard=self.ctx.guard())
