"""Turning arrays into QImages: the photo once, the label overlay one dirty rectangle at a time.

The overlay is a premultiplied ARGB32 image kept beside the label map. An edit re-colours only the
rectangle it touched, through a 256-entry colour table applied by NumPy indexing (no per-pixel
Python), so showing a brush dab costs the same on a 1024² map as on a 4096² one.
"""

from __future__ import annotations

from enum import Enum

import numpy as np
from PySide6.QtGui import QImage

from segstudio.core.classes import ClassSet
from segstudio.core.geometry import Rect


class OverlayMode(str, Enum):
    FILL = "fill"
    CONTOUR = "contour"
    FILL_CONTOUR = "fill+contour"


def rgb8_to_qimage(rgb: np.ndarray) -> QImage:
    """An owned RGB888 (or Grayscale8) QImage of an H×W×3 / H×W uint8 array."""
    rgb = np.ascontiguousarray(rgb)
    if rgb.ndim == 2:
        h, w = rgb.shape
        img = QImage(rgb.data, w, h, w, QImage.Format.Format_Grayscale8)
    else:
        h, w, _ = rgb.shape
        img = QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888)
    return img.copy()  # own the pixels: the array may go away


def _premultiplied_bgra(colors: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """256 × 4 table in QImage ARGB32 memory order (B, G, R, A on little-endian), premultiplied."""
    a = alpha.astype(np.float32) / 255.0
    table = np.empty((256, 4), np.uint8)
    table[:, 0] = np.round(colors[:, 2] * a)
    table[:, 1] = np.round(colors[:, 1] * a)
    table[:, 2] = np.round(colors[:, 0] * a)
    table[:, 3] = alpha
    return table


class OverlayRenderer:
    """Keeps the coloured overlay of one label map, updated rectangle by rectangle."""

    FILL_ALPHA_WITH_CONTOUR = 110

    def __init__(self, labels: np.ndarray, classes: ClassSet, *, hidden: set[int] | None = None,
                 mode: OverlayMode = OverlayMode.FILL) -> None:
        self._labels = labels
        self.classes = classes
        self.hidden: set[int] = set(hidden) if hidden is not None else set()
        self.mode = OverlayMode(mode)
        h, w = labels.shape
        self.image = QImage(w, h, QImage.Format.Format_ARGB32_Premultiplied)
        self._buffer = self._view(self.image)
        # One 32-bit pixel per label: gathering whole pixels is 3× faster than 4 bytes each.
        self._pixels = self._buffer.view(np.uint32)[..., 0]
        self._rebuild_tables()
        self.render_all()

    @staticmethod
    def _view(image: QImage) -> np.ndarray:
        ptr = image.bits()
        arr = np.frombuffer(ptr, dtype=np.uint8, count=image.sizeInBytes())
        return arr.reshape(image.height(), image.bytesPerLine() // 4, 4)[:, : image.width()]

    def _rebuild_tables(self) -> None:
        colors = self.classes.color_table().astype(np.uint8)
        alpha = np.full(256, 255, np.uint8)
        alpha[list(self.hidden)] = 0
        # Values past the class set (other than void) are data errors: show them, don't hide them.
        as_words = lambda t: np.ascontiguousarray(t).view(np.uint32)[:, 0]  # noqa: E731
        self._fill = as_words(_premultiplied_bgra(colors, alpha))
        soft = np.where(alpha > 0, self.FILL_ALPHA_WITH_CONTOUR, 0).astype(np.uint8)
        self._soft_fill = as_words(_premultiplied_bgra(colors, soft))
        self._edge = self._fill
        self._none = np.zeros(256, np.uint32)

    # -- settings (each re-renders everything; they are rare) --------------------------------
    def set_classes(self, classes: ClassSet) -> None:
        self.classes = classes
        self._rebuild_tables()
        self.render_all()

    def set_hidden(self, hidden: set[int]) -> None:
        self.hidden = set(hidden)
        self._rebuild_tables()
        self.render_all()

    def set_mode(self, mode: OverlayMode) -> None:
        self.mode = OverlayMode(mode)
        self.render_all()

    def set_labels(self, labels: np.ndarray) -> None:
        if labels.shape != self._labels.shape:
            raise ValueError("set_labels keeps the size; make a new renderer for a new image")
        self._labels = labels
        self.render_all()

    # -- rendering ---------------------------------------------------------------------------
    def render_all(self) -> None:
        h, w = self._labels.shape
        self.update(Rect(0, 0, w, h))

    def update(self, rect: Rect) -> None:
        """Re-colour ``rect`` (contours need one pixel of context around it)."""
        h, w = self._labels.shape
        rect = rect.clip(h, w)
        if rect.is_empty():
            return
        if self.mode is OverlayMode.FILL:
            self._pixels[rect.slices] = self._fill[self._labels[rect.slices]]
            return
        # Contours: a pixel is on an edge when a 4-neighbour has another label. An edit changes
        # the edge state of pixels one beyond it, so widen the rectangle by one.
        r = Rect(rect.x0 - 1, rect.y0 - 1, rect.x1 + 1, rect.y1 + 1).clip(h, w)
        pad = Rect(r.x0 - 1, r.y0 - 1, r.x1 + 1, r.y1 + 1).clip(h, w)
        block = self._labels[pad.slices]
        edge = np.zeros(block.shape, bool)
        edge[1:, :] |= block[1:, :] != block[:-1, :]
        edge[:-1, :] |= block[:-1, :] != block[1:, :]
        edge[:, 1:] |= block[:, 1:] != block[:, :-1]
        edge[:, :-1] |= block[:, :-1] != block[:, 1:]
        oy, ox = r.y0 - pad.y0, r.x0 - pad.x0
        edge = edge[oy:oy + r.height, ox:ox + r.width]
        labels = block[oy:oy + r.height, ox:ox + r.width]
        inner = self._soft_fill if self.mode is OverlayMode.FILL_CONTOUR else self._none
        self._pixels[r.slices] = np.where(edge, self._edge[labels], inner[labels])
