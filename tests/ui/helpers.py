"""Driving the canvas with real Qt mouse events at image coordinates."""

from __future__ import annotations

from PySide6.QtCore import QEvent, QPoint, QPointF, Qt
from PySide6.QtGui import QMouseEvent, QWheelEvent
from PySide6.QtWidgets import QApplication


def widget_pos(canvas, x: float, y: float) -> QPointF:
    return canvas.to_widget(QPointF(x, y))


def _send(canvas, kind, pos: QPointF, button, buttons, modifiers=Qt.KeyboardModifier.NoModifier):
    ev = QMouseEvent(kind, pos, canvas.mapToGlobal(pos), button, buttons, modifiers)
    QApplication.sendEvent(canvas, ev)


def press(canvas, x, y, modifiers=Qt.KeyboardModifier.NoModifier):
    _send(canvas, QEvent.Type.MouseButtonPress, widget_pos(canvas, x, y),
          Qt.MouseButton.LeftButton, Qt.MouseButton.LeftButton, modifiers)


def move(canvas, x, y, held=True):
    buttons = Qt.MouseButton.LeftButton if held else Qt.MouseButton.NoButton
    _send(canvas, QEvent.Type.MouseMove, widget_pos(canvas, x, y), Qt.MouseButton.NoButton, buttons)


def release(canvas, x, y):
    _send(canvas, QEvent.Type.MouseButtonRelease, widget_pos(canvas, x, y),
          Qt.MouseButton.LeftButton, Qt.MouseButton.NoButton)


def drag(canvas, points, modifiers=Qt.KeyboardModifier.NoModifier):
    (x0, y0), rest = points[0], points[1:]
    press(canvas, x0, y0, modifiers)
    for x, y in rest:
        move(canvas, x, y)
    release(canvas, *points[-1])


def click(canvas, x, y):
    press(canvas, x, y)
    release(canvas, x, y)


def wheel(canvas, wx: float, wy: float, notches: int, modifiers=Qt.KeyboardModifier.NoModifier):
    pos = QPointF(wx, wy)
    ev = QWheelEvent(pos, canvas.mapToGlobal(pos), QPoint(0, 0), QPoint(0, 120 * notches),
                     Qt.MouseButton.NoButton, modifiers, Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(canvas, ev)
