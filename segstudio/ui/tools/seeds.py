"""Seed brush of Smart ▸ Grow from seeds: strokes paint seeds, not labels.

It is the brush (same sizes, Ctrl+drag and `[` / `]` to resize) aimed at the grow session's
seed map: a stroke seeds the current class, a stroke started with Shift held rubs seeds out.
Each finished stroke asks the session to grow again; Esc or another tool ends the session.
"""

from __future__ import annotations

from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QMouseEvent

from segstudio.core.labelmap import NO_GUARD
from segstudio.refine.grow import NO_SEED
from segstudio.ui.tools.brush import BrushTool


class SeedTool(BrushTool):
    name = "Grow from seeds"
    shortcut = "Shift+S"
    tip = ("Paint a few strokes of seeds per class (Shift+drag rubs seeds out); every pixel is "
           "grown from them along the image's edges; Ctrl+Enter accepts, Esc cancels")

    def __init__(self, context, session) -> None:
        super().__init__(context, size=9)
        self.session = session          # segstudio.ui.controllers.grow_seeds.GrowFromSeeds

    def activate(self) -> None:
        """Chosen as the tool: open a session on the image on screen."""
        self.session.start()

    def close(self) -> None:
        """Enter: accept the grown labels."""
        self.session.accept()

    def target(self):
        return self.session.seeds

    def press(self, pos: QPointF, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            self.session.start()
        super().press(pos, event)

    def guard(self):
        return NO_GUARD                 # the paint guard limits labels, not seeds

    def value_for(self, event: QMouseEvent) -> int:
        if event.modifiers() & Qt.KeyboardModifier.ShiftModifier:
            return NO_SEED
        return self.ctx.current_class()

    def release(self, pos: QPointF, event: QMouseEvent) -> None:
        stroke = self._last is not None
        super().release(pos, event)
        if stroke:
            self.session.seeds_changed()

    def cancel(self) -> None:
        self.session.cancel()
        super().cancel()
