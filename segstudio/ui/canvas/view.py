"""The canvas: the image, the label overlay on top, zoom about the cursor, pan, and tool input.

The canvas knows nothing about classes or files. It draws two QImages under one transform
(image → widget: ``scale`` then ``offset``) and hands left-button input, in image coordinates,
to the active tool. Middle-drag or Space+drag pans; the wheel zooms about the cursor; right-drag
adjusts the display window (width horizontally, level vertically) as radiology viewers do.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from PySide6.QtCore import QPointF, QRect, QRectF, Qt, Signal
from PySide6.QtGui import (QColor, QImage, QKeyEvent, QMouseEvent, QPainter, QPaintEvent,
                           QPen, QWheelEvent)
from PySide6.QtWidgets import QSizePolicy, QWidget

from segstudio.core.geometry import Rect


class CanvasTool(Protocol):
    """What the canvas asks of a tool; positions are in image coordinates (pixels, float)."""

    def press(self, pos: QPointF, event: QMouseEvent) -> None: ...
    def move(self, pos: QPointF, event: QMouseEvent) -> None: ...
    def release(self, pos: QPointF, event: QMouseEvent) -> None: ...
    def hover(self, pos: QPointF) -> None: ...
    def draw(self, painter: QPainter, canvas: "Canvas") -> None: ...


class Canvas(QWidget):
    hovered = Signal(float, float)        # image coordinates under the cursor
    left = Signal()                       # the cursor left the canvas
    zoomChanged = Signal(float)
    wheelWithCtrl = Signal(int)           # +1 / -1 notches, for brush size
    windowDrag = Signal(float, float)     # right-drag in widget pixels: window width, level
    resized = Signal()                    # after a resize (bars kept at the canvas's bottom)
    BACKGROUND = QColor(38, 38, 42)
    MIN_SCALE, MAX_SCALE = 1 / 64, 64.0

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMouseTracking(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(200, 150)
        self._image: QImage | None = None
        self._overlay: QImage | None = None
        self.overlay_visible = True
        self.opacity = 0.5
        self.scale = 1.0
        self.offset = QPointF(0, 0)
        self.tool: CanvasTool | None = None
        self._pan_from: QPointF | None = None
        self._window_from: QPointF | None = None
        self._space_down = False
        self._fit_pending = True
        self._fitted = False          # the view is as fit_to_window left it (no zoom or pan)
        self.decorations: list = []   # callables(painter, canvas) drawn last (RF boxes, …)
        self.overlay_clip_left: float | None = None   # swipe compare: overlay only right of x

    # -- content -----------------------------------------------------------------------------
    def set_image(self, image: QImage | None, *, keep_view: bool = False) -> None:
        same_size = (self._image is not None and image is not None
                     and image.size() == self._image.size())
        self._image = image
        if not (keep_view and same_size):
            self._fit_pending = True
            self.fit_to_window()
        self.update()

    def set_overlay(self, overlay: QImage | None) -> None:
        self._overlay = overlay
        self.update()

    @property
    def image_size(self) -> tuple[int, int] | None:
        """(width, height) of the image, or None."""
        return None if self._image is None else (self._image.width(), self._image.height())

    # -- view --------------------------------------------------------------------------------
    def fit_to_window(self) -> None:
        if self._image is None or self.width() < 2 or self.height() < 2:
            return
        iw, ih = self._image.width(), self._image.height()
        s = min(self.width() / iw, self.height() / ih) * 0.98
        # A multiple of 1/256 and a whole-pixel offset: a pixel corner then maps to the widget
        # and back exactly (binary fractions), so a click on it never lands in the pixel before.
        s = np.floor(s * 256) / 256 if s >= 1 / 64 else s
        self.scale = float(max(self.MIN_SCALE, min(self.MAX_SCALE, s)))
        self.offset = QPointF(round((self.width() - iw * self.scale) / 2),
                              round((self.height() - ih * self.scale) / 2))
        self._fit_pending = False
        self._fitted = True
        self.zoomChanged.emit(self.scale)
        self.update()

    def zoom_by(self, factor: float, anchor: QPointF | None = None) -> None:
        """Zoom by ``factor`` keeping the image point under ``anchor`` (widget coords) fixed."""
        anchor = anchor if anchor is not None else QPointF(self.width() / 2, self.height() / 2)
        new = max(self.MIN_SCALE, min(self.MAX_SCALE, self.scale * factor))
        img_pt = self.to_image(anchor)
        self._fitted = False
        self.scale = new
        self.offset = QPointF(anchor.x() - img_pt.x() * new, anchor.y() - img_pt.y() * new)
        self.zoomChanged.emit(self.scale)
        self.update()

    def to_image(self, p: QPointF) -> QPointF:
        return QPointF((p.x() - self.offset.x()) / self.scale, (p.y() - self.offset.y()) / self.scale)

    def to_widget(self, p: QPointF) -> QPointF:
        return QPointF(p.x() * self.scale + self.offset.x(), p.y() * self.scale + self.offset.y())

    def widget_rect(self, rect: Rect, margin: int = 2) -> QRect:
        """The widget area showing the image rectangle ``rect`` (for partial repaints)."""
        tl = self.to_widget(QPointF(rect.x0, rect.y0))
        br = self.to_widget(QPointF(rect.x1, rect.y1))
        return QRectF(tl, br).toAlignedRect().adjusted(-margin, -margin, margin, margin)

    def update_image_rect(self, rect: Rect) -> None:
        if not rect.is_empty():
            self.update(self.widget_rect(rect))

    # -- painting ----------------------------------------------------------------------------
    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 (Qt's name)
        p = QPainter(self)
        p.fillRect(event.rect(), self.BACKGROUND)
        if self._image is None:
            p.setPen(QColor(170, 170, 170))
            p.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter,
                       "Open an image or a folder (File ▸ Open, or drop files here)")
            return
        # Only the part of the image behind the exposed area is drawn (cheap partial repaints).
        exposed = QRectF(self.to_image(QPointF(event.rect().topLeft())),
                         self.to_image(QPointF(event.rect().bottomRight()) + QPointF(1, 1)))
        iw, ih = self._image.width(), self._image.height()
        src = exposed.intersected(QRectF(0, 0, iw, ih))
        if not src.isEmpty():
            src = QRectF(src.toAlignedRect()).intersected(QRectF(0, 0, iw, ih))
            dst = QRectF(self.to_widget(src.topLeft()), self.to_widget(src.bottomRight()))
            p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, self.scale < 1.0)
            p.drawImage(dst, self._image, src)
            if self._overlay is not None and self.overlay_visible and self.opacity > 0:
                p.save()
                if self.overlay_clip_left is not None:
                    p.setClipRect(QRectF(self.overlay_clip_left, 0, self.width(), self.height()))
                p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, False)
                p.setOpacity(self.opacity)
                p.drawImage(dst, self._overlay, src)
                p.restore()
        for deco in self.decorations:
            deco(p, self)
        if self.tool is not None:
            self.tool.draw(p, self)
        if self.hasFocus() and self._space_down:
            p.setPen(QPen(QColor(255, 255, 255, 90), 1))
            p.drawRect(self.rect().adjusted(0, 0, -1, -1))

    def resizeEvent(self, event) -> None:  # noqa: N802
        # A fitted view stays fitted (a bar appearing above it, the window resized); one the
        # user zoomed or panned is left alone.
        if self._fit_pending or self._fitted:
            self.fit_to_window()
        super().resizeEvent(event)
        self.resized.emit()

    # -- input -------------------------------------------------------------------------------
    def wheelEvent(self, event: QWheelEvent) -> None:  # noqa: N802
        notches = event.angleDelta().y() / 120.0
        if notches == 0:
            return
        if event.modifiers() & Qt.KeyboardModifier.ControlModifier:
            self.wheelWithCtrl.emit(1 if notches > 0 else -1)
        else:
            self.zoom_by(1.25 ** notches, event.position())
        event.accept()

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        self.setFocus()
        if event.button() == Qt.MouseButton.MiddleButton or (
                event.button() == Qt.MouseButton.LeftButton and self._space_down):
            self._pan_from = event.position()
            self.setCursor(Qt.CursorShape.ClosedHandCursor)
            return
        if (event.button() == Qt.MouseButton.RightButton and self._image is not None
                and getattr(self.tool, "takes_right_button", False)):
            self.tool.press(self.to_image(event.position()), event)     # e.g. background points
            return
        if event.button() == Qt.MouseButton.RightButton:
            self._window_from = event.position()
            self.setCursor(Qt.CursorShape.SizeAllCursor)
            return
        if self.tool is not None and self._image is not None:
            self.tool.press(self.to_image(event.position()), event)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        pos = event.position()
        if self._pan_from is not None:
            self.offset += pos - self._pan_from
            self._pan_from = pos
            self._fitted = False
            self.update()
            return
        if self._window_from is not None:
            delta = pos - self._window_from
            self._window_from = pos
            self.windowDrag.emit(delta.x(), delta.y())
            return
        img = self.to_image(pos)
        self.hovered.emit(img.x(), img.y())
        if self.tool is not None and self._image is not None:
            if event.buttons() & Qt.MouseButton.LeftButton:
                self.tool.move(img, event)
            else:
                self.tool.hover(img)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        if self._window_from is not None and event.button() == Qt.MouseButton.RightButton:
            self._window_from = None
            self.unsetCursor()
            return
        if self._pan_from is not None and event.button() in (Qt.MouseButton.MiddleButton,
                                                            Qt.MouseButton.LeftButton):
            self._pan_from = None
            self.unsetCursor()
            return
        if self.tool is not None and self._image is not None:
            self.tool.release(self.to_image(event.position()), event)

    def leaveEvent(self, event) -> None:  # noqa: N802
        self.left.emit()
        super().leaveEvent(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802
        if event.key() == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space_down = True
            self.setCursor(Qt.CursorShape.OpenHandCursor)
            return
        super().keyPressEvent(event)

    def keyReleaseEvent(self, event: QKeyEvent) -> None:  # noqa: N802
        if event.key() == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space_down = False
            self._pan_from = None
            self.unsetCursor()
            return
        super().keyReleaseEvent(event)
