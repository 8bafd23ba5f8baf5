"""Painting tools: one small class each, one interface (press / move / release / hover / draw).

A tool edits the current :class:`~segstudio.core.labelmap.LabelMap` through its edit methods,
so every tool is undoable, honours the paint guard, and repaints only what it changed.
"""

from segstudio.ui.tools.base import ToolContext
from segstudio.ui.tools.brush import BrushTool, EraserTool
from segstudio.ui.tools.fill import FillTool
from segstudio.ui.tools.polygon import PolygonTool

__all__ = ["ToolContext", "BrushTool", "EraserTool", "FillTool", "PolygonTool"]
