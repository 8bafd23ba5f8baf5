"""The display window (level/width) of the image on screen, as radiology viewers set it.

Right-drag on the canvas moves it (width horizontally, level vertically); the image is
re-rendered on a short timer so a fast drag does not queue one conversion per mouse event. The
data and the model's input never change: only what the screen shows.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QTimer

from segstudio.ui.canvas.render import rgb8_to_qimage


class WindowLevel:
    DRAG_SPAN_PX = 400          # a drag this long spans the image's whole value range

    def __init__(self, window) -> None:
        self.window = window
        self._timer = QTimer(window, singleShot=True, interval=25)
        self._timer.timeout.connect(self.show)
        window.canvas.windowDrag.connect(self.drag)

    def current(self) -> tuple[float, float]:
        """(centre, width) the image is shown through."""
        doc = self.window.doc
        assert doc is not None
        if doc.window is not None:
            return doc.window
        lo, hi = doc.image.value_range
        if doc.image.pixels.dtype == np.uint8:
            lo, hi = 0.0, 255.0
        return ((lo + hi) / 2.0, max(hi - lo, 1.0))

    def set(self, centre: float, width: float) -> None:
        doc = self.window.doc
        if doc is not None:
            doc.window = (float(centre), max(float(width), 1e-3))
            self._timer.start()

    def reset(self) -> None:
        doc = self.window.doc
        if doc is not None:
            doc.window = doc.image.window
            self.show()

    def drag(self, dx: float, dy: float) -> None:
        doc = self.window.doc
        if doc is None:
            return
        centre, width = self.current()
        lo, hi = doc.image.value_range
        step = max(hi - lo, 1.0) / self.DRAG_SPAN_PX
        self.set(centre + dy * step, width + dx * step)

    def show(self) -> None:
        win = self.window
        if win.doc is None:
            return
        win.canvas.set_image(rgb8_to_qimage(win.doc.display_rgb8()), keep_view=True)
        c, w = self.current()
        win.statusBar().showMessage(f"Window: level {c:g}, width {w:g}", 3000)
