"""Colour maps for heat layers, and the colour bar that says what the colours mean.

A map is a 256 × 3 uint8 table built by interpolating a few published stops, so a heat map is
one NumPy lookup; perceptually ordered maps (viridis, inferno) keep equal steps in value looking
like equal steps in colour, which a rainbow map does not.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFont, QImage, QPainter, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

# Evenly spaced stops of each map (matplotlib's viridis and inferno at 0, 1/n, …, 1).
_STOPS = {
    "viridis": ["#440154", "#3b528b", "#21918c", "#5ec962", "#fde725"],
    "inferno": ["#000004", "#420a68", "#932667", "#dd513a", "#fca50a", "#fcffa4"],
    "gray": ["#000000", "#ffffff"],
}
COLORMAPS = tuple(_STOPS)

# Distinct colours for branches drawn together (rates, bins): readable on photos and on X-rays.
BRANCH_COLORS = ((255, 214, 10), (0, 200, 255), (255, 64, 129), (118, 255, 3), (255, 145, 0),
                 (170, 120, 255), (255, 255, 255), (0, 230, 170))


def _rgb(hex_colour: str) -> tuple[int, int, int]:
    return tuple(int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))  # type: ignore[return-value]


def colormap_table(name: str) -> np.ndarray:
    """The 256 × 3 uint8 lookup table of colour map ``name``."""
    if name not in _STOPS:
        raise ValueError(f"unknown colour map {name!r}; choose one of {', '.join(COLORMAPS)}")
    stops = np.array([_rgb(c) for c in _STOPS[name]], np.float64)
    at = np.linspace(0.0, 1.0, len(stops))
    x = np.linspace(0.0, 1.0, 256)
    table = np.stack([np.interp(x, at, stops[:, c]) for c in range(3)], axis=1)
    return np.round(table).astype(np.uint8)


def value_range(values: np.ndarray) -> tuple[float, float]:
    """Finite minimum and maximum of ``values`` (0, 1 for an empty or all-NaN array)."""
    finite = np.asarray(values)[np.isfinite(values)]
    if finite.size == 0:
        return 0.0, 1.0
    return float(finite.min()), float(finite.max())


def normalise(values: np.ndarray, vmin: float, vmax: float) -> np.ndarray:
    """``values`` scaled to 0..1 between ``vmin`` and ``vmax`` (a flat map becomes zeros)."""
    v = np.nan_to_num(np.asarray(values, np.float32), nan=vmin)
    span = vmax - vmin
    if span <= 0:
        return np.zeros(v.shape, np.float32)
    return np.clip((v - vmin) / span, 0.0, 1.0).astype(np.float32)


def colorize(values: np.ndarray, vmin: float, vmax: float, name: str = "viridis") -> np.ndarray:
    """H×W×3 uint8 colours of ``values`` through map ``name``."""
    index = np.round(normalise(values, vmin, vmax) * 255).astype(np.uint8)
    return colormap_table(name)[index]


def blend(rgb: np.ndarray, colours: np.ndarray, opacity: float,
          weight: np.ndarray | None = None) -> np.ndarray:
    """``colours`` laid over ``rgb`` at ``opacity`` (times ``weight`` 0..1 per pixel if given)."""
    a = np.float32(opacity) if weight is None else (opacity * weight)[..., None].astype(np.float32)
    out = rgb.astype(np.float32) * (1 - a) + colours.astype(np.float32) * a
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def heat_qimage(values: np.ndarray, vmin: float, vmax: float, name: str = "viridis",
                opacity: float = 0.6) -> QImage:
    """A premultiplied ARGB image of ``values`` for drawing over the photo on the canvas."""
    rgb = colorize(values, vmin, vmax, name).astype(np.float32)
    h, w = rgb.shape[:2]
    alpha = np.float32(np.clip(opacity, 0.0, 1.0))
    bgra = np.empty((h, w, 4), np.uint8)
    bgra[..., 0] = np.round(rgb[..., 2] * alpha)
    bgra[..., 1] = np.round(rgb[..., 1] * alpha)
    bgra[..., 2] = np.round(rgb[..., 0] * alpha)
    bgra[..., 3] = np.uint8(round(255 * float(alpha)))
    return QImage(bgra.data, w, h, 4 * w, QImage.Format.Format_ARGB32_Premultiplied).copy()


def format_value(v: float) -> str:
    return f"{v:.3g}" if abs(v) < 1e4 else f"{v:.2e}"


def draw_color_bar(painter: QPainter, rect: QRectF, name: str, vmin: float, vmax: float,
                   label: str = "", *, text_colour: QColor | None = None) -> None:
    """A vertical colour bar in ``rect`` (high values on top) with its range written beside it.

    The gradient takes the left third of ``rect``; the maximum, minimum and ``label`` are
    written to its right, so the same drawing serves the dock and exported figures.
    """
    table = colormap_table(name)
    bar_w = max(8.0, rect.width() / 3)
    h = max(1, int(rect.height()))
    column = table[np.round(np.linspace(255, 0, h)).astype(int)]
    strip = np.ascontiguousarray(np.repeat(column[:, None, :], 2, axis=1))
    image = QImage(strip.data, 2, h, 6, QImage.Format.Format_RGB888).copy()
    painter.save()
    painter.drawImage(QRectF(rect.left(), rect.top(), bar_w, rect.height()), image)
    painter.setPen(QPen(QColor(110, 110, 110), 1))
    painter.drawRect(QRectF(rect.left(), rect.top(), bar_w, rect.height()))
    painter.setPen(text_colour or QColor(220, 220, 220))
    font = QFont(painter.font())
    font.setPixelSize(11)
    painter.setFont(font)
    text_x = rect.left() + bar_w + 4
    text_w = rect.width() - bar_w - 4
    top = Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop
    bottom = Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignBottom
    painter.drawText(QRectF(text_x, rect.top(), text_w, 16), top, format_value(vmax))
    painter.drawText(QRectF(text_x, rect.bottom() - 16, text_w, 16), bottom, format_value(vmin))
    if label:
        middle = Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter
        painter.drawText(QRectF(text_x, rect.top() + 18, text_w, rect.height() - 36),
                         middle | Qt.TextFlag.TextWordWrap, label)
    painter.restore()


class ColorBar(QWidget):
    """The colour bar of the heat layer on screen, with its value range."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.name = "viridis"
        self.vmin, self.vmax = 0.0, 1.0
        self.label = ""
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)

    def sizeHint(self) -> QSize:  # noqa: N802
        return QSize(120, 110)

    def set_range(self, name: str, vmin: float, vmax: float, label: str = "") -> None:
        self.name, self.vmin, self.vmax, self.label = name, float(vmin), float(vmax), label
        self.update()

    def paintEvent(self, event) -> None:  # noqa: N802
        p = QPainter(self)
        draw_color_bar(p, QRectF(4, 4, min(160, self.width() - 8), self.height() - 8), self.name,
                       self.vmin, self.vmax, self.label,
                       text_colour=self.palette().windowText().color())


class HeatLayer:
    """One heat map drawn over the image on the canvas (the latest view's), or nothing.

    It is a canvas decoration: drawn over the photo and the label overlay at each paint, under
    the same image-to-widget transform, and only while its size matches the image on screen.
    """

    def __init__(self, canvas) -> None:
        self.canvas = canvas
        self.image: QImage | None = None
        self.owner = ""
        canvas.decorations.append(self.draw)

    def show(self, image: QImage, owner: str) -> None:
        self.image, self.owner = image, owner
        self.canvas.update()

    def clear(self) -> None:
        if self.image is not None:
            self.image, self.owner = None, ""
            self.canvas.update()

    def draw(self, painter: QPainter, canvas) -> None:
        size = canvas.image_size
        if self.image is None or size is None or (self.image.width(), self.image.height()) != size:
            return
        tl = canvas.to_widget(QRectF(0, 0, *size).topLeft())
        br = canvas.to_widget(QRectF(0, 0, *size).bottomRight())
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, canvas.scale < 1)
        painter.drawImage(QRectF(tl, br), self.image)
        painter.restore()
