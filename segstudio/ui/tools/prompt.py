"""Prompt tool: click an object, click the background, or drag a box; the mask follows at once.

Left click adds an object point, right click (or Alt+click) a background point, a left drag sets
the box. Each prompt asks the prompted segmenter (:mod:`segstudio.ui.controllers.prompt_session`) for masks
over the image's embedding and shows the chosen one; Enter (:meth:`close`) paints it with the
current class through the Paint options' guard as one undo step, Esc (:meth:`cancel`) drops it.
"""

from __future__ import annotations

import math

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QImage, QMouseEvent, QPainter, QPen

from segstudio.ui.tools.base import Tool

OBJECT, BACKGROUND = 1, 0
PREVIEW = QColor(0, 190, 255, 150)


def mask_to_qimage(mask: np.ndarray, color: QColor = PREVIEW) -> tuple[QImage, np.ndarray]:
    """An indexed QImage over the bool mask's own bytes (keep the array: the image uses it)."""
    data = np.ascontiguousarray(mask).view(np.uint8)
    h, w = data.shape
    image = QImage(data.data, w, h, w, QImage.Format.Format_Indexed8)
    image.setColorTable([0, color.rgba()])
    return image, data


class PromptTool(Tool):
    name = "Prompt"
    shortcut = "Q"
    tip = ("Prompted segmenter (Segment Anything, MedSAM): click an object, right-click or "
           "Alt+click the background, drag a box; Shift+Q: next candidate; Enter keeps the "
           "mask, Esc drops it")
    takes_right_button = True
    DRAG_PX = 5                 # screen pixels a press must move to become a box

    def __init__(self, context, session) -> None:
        super().__init__(context)
        self.session = session
        self.points: list[tuple[int, int, int]] = []        # (x, y, OBJECT / BACKGROUND)
        self.box: tuple[int, int, int, int] | None = None
        self.prediction = None
        self.choice = 0
        self._press: tuple[QPointF, int] | None = None
        self._drag_to: QPointF | None = None
        self._preview: tuple[QImage, np.ndarray] | None = None
        self._scale = 1.0

    # -- the window's hooks ------------------------------------------------------------------
    def activate(self) -> None:
        self.session.activate()

    def press(self, pos: QPointF, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.RightButton:
            self._press = (pos, BACKGROUND)
        elif event.button() == Qt.MouseButton.LeftButton:
            alt = bool(event.modifiers() & Qt.KeyboardModifier.AltModifier)
            self._press = (pos, BACKGROUND if alt else OBJECT)
        self._drag_to = None

    def move(self, pos: QPointF, event: QMouseEvent) -> None:
        if self._press is None or self._press[1] != OBJECT:
            return
        d = pos - self._press[0]
        if self._drag_to is not None or math.hypot(d.x(), d.y()) * self._scale >= self.DRAG_PX:
            self._drag_to = pos
            self.ctx.request_repaint()

    def release(self, pos: QPointF, event: QMouseEvent) -> None:
        if self._press is None:
            return
        start, label = self._press
        self._press = None
        lm = self.ctx.labelmap()
        if lm is None:
            return
        if self._drag_to is not None:
            self._drag_to = None
            x0, x1 = sorted((start.x(), pos.x()))
            y0, y1 = sorted((start.y(), pos.y()))
            x0, y0 = max(0, math.floor(x0)), max(0, math.floor(y0))
            x1, y1 = min(lm.width - 1, math.floor(x1)), min(lm.height - 1, math.floor(y1))
            if x1 <= x0 or y1 <= y0:
                self.ctx.request_repaint()
                return
            self.box = (x0, y0, x1, y1)
            self.update_prediction(refine=False)
            return
        x, y = math.floor(start.x()), math.floor(start.y())
        if not (0 <= x < lm.width and 0 <= y < lm.height):
            return
        self.points.append((x, y, label))
        self.update_prediction(refine=True)

    def cancel(self) -> None:
        """Esc: drop the prompts (or, with none, stop an image embedding in progress)."""
        if self.points or self.box is not None:
            self.clear()
            self.session.say("Prompt dropped", 2000)
        else:
            self.session.cancel_embedding()
        self._press = self._drag_to = None

    def close(self) -> bool:
        """Enter: paint the chosen mask with the current class, as one undo step."""
        lm = self.ctx.labelmap()
        if lm is None or self.prediction is None:
            self.session.say("Nothing to keep yet: click an object or drag a box around it", 3000)
            return False
        mask = self.prediction.mask(self.choice)
        cls = self.ctx.current_class()
        rect = lm.paint_mask(mask, cls, guard=self.ctx.guard(), name="prompt")
        self.clear()
        self.session.say("Mask kept (Ctrl+Z undoes it)" if not rect.is_empty() else
                         "The mask changed nothing (the Paint options may exclude it)", 3000)
        return True

    # -- prompts and candidates --------------------------------------------------------------
    def clear(self) -> None:
        self.points, self.box, self.prediction, self.choice = [], None, None, 0
        self._preview = None
        self.session.show_choices(None, 0)
        self.ctx.request_repaint()

    def update_prediction(self, refine: bool = False) -> None:
        """Ask for masks for the current prompts (none yet if the embedding is not ready)."""
        if not self.points and self.box is None:
            self.clear()
            return
        previous = (self.prediction.low_res[self.choice]
                    if refine and self.prediction is not None and len(self.points) > 1 else None)
        prediction = self.session.predict([(x, y) for x, y, _ in self.points],
                                          [lab for _, _, lab in self.points], self.box, previous)
        if prediction is not None:
            self.prediction = prediction
            self.choose(0)
        self.ctx.request_repaint()

    def refresh(self) -> None:
        """The embedding arrived: masks for the prompts given while it was being made."""
        self.prediction = None
        if self.points or self.box is not None:
            self.update_prediction()

    def choose(self, index: int) -> None:
        if self.prediction is None or not 0 <= index < len(self.prediction):
            return
        self.choice = index
        self._preview = mask_to_qimage(self.prediction.mask(index))
        self.session.show_choices(self.prediction.scores, index)
        self.ctx.request_repaint()

    def next_candidate(self) -> None:
        if self.prediction is None or len(self.prediction) < 2:
            self.session.say("One mask only: a single click is what gives several", 2000)
            return
        self.choose((self.choice + 1) % len(self.prediction))
        self.session.say(f"Mask {self.choice + 1} of {len(self.prediction)} (predicted IoU "
                         f"{self.prediction.scores[self.choice]:.2f})", 2000)

    # -- drawing -----------------------------------------------------------------------------
    def draw(self, painter: QPainter, canvas) -> None:
        self._scale = canvas.scale
        if self._preview is not None:
            image = self._preview[0]
            painter.drawImage(QRectF(canvas.to_widget(QPointF(0, 0)),
                                     canvas.to_widget(QPointF(image.width(), image.height()))),
                              image)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        boxes = [self.box] if self.box is not None else []
        if self._drag_to is not None and self._press is not None:
            a, b = self._press[0], self._drag_to
            boxes.append((a.x(), a.y(), b.x() - 1, b.y() - 1))
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.setPen(QPen(QColor(80, 220, 255), 1.5, Qt.PenStyle.DashLine))
        for x0, y0, x1, y1 in boxes:
            painter.drawRect(QRectF(canvas.to_widget(QPointF(x0, y0)),
                                    canvas.to_widget(QPointF(x1 + 1, y1 + 1))))
        for x, y, label in self.points:
            centre = canvas.to_widget(QPointF(x + 0.5, y + 0.5))
            painter.setPen(QPen(QColor(0, 0, 0, 200), 1.5))
            painter.setBrush(QColor(40, 220, 60) if label == OBJECT else QColor(235, 50, 50))
            painter.drawEllipse(centre, 5, 5)
        hint = self.session.hint()
        if hint:
            painter.setPen(QColor(255, 255, 255))
            painter.drawText(QRectF(8, 8, canvas.width() - 16, 40),
                             Qt.AlignmentFlag.AlignLeft | Qt.TextFlag.TextWordWrap, hint)
