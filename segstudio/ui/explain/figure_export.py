"""PNG figures for slides: panels side by side, a colour bar, and a caption saying what is shown.

The layout is fixed in pixels (panels scaled to one height, caption lines of one height), so a
figure's size follows from its content alone and two exports of one view look alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
from PySide6.QtCore import QBuffer, QByteArray, QIODevice, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QImage, QPainter

from segstudio.io.atomic import atomic_write_bytes
from segstudio.ui.explain.colormap import draw_color_bar
from segstudio.ui.canvas.render import rgb8_to_qimage

MARGIN = 16
GAP = 12
TITLE_HEIGHT = 26
LABEL_HEIGHT = 22
CAPTION_LINE = 20
COLORBAR_WIDTH = 110
PANEL_HEIGHT = 360
BACKGROUND = QColor(255, 255, 255)
INK = QColor(20, 20, 20)


class FigureError(Exception):
    """A figure that cannot be drawn or written; the message names the file and the reason."""


@dataclass
class Panel:
    """One picture of a figure: RGB pixels, a title under it, and optional drawing on top.

    ``draw(painter, scale)`` paints in image coordinates of ``rgb`` (the painter is already
    scaled), for boxes and sampling taps that must stay sharp at any size.
    """

    rgb: np.ndarray
    title: str = ""
    draw: Callable[[QPainter, float], None] | None = None


@dataclass
class ColorBarSpec:
    colormap: str
    vmin: float
    vmax: float
    label: str = ""


@dataclass
class Figure:
    title: str
    panels: list[Panel]
    caption: list[str] = field(default_factory=list)
    colorbar: ColorBarSpec | None = None
    panel_height: int = PANEL_HEIGHT
    columns: int | None = None          # panels per row; None: all in one row

    def rows(self) -> list[list[Panel]]:
        n = self.columns or max(1, len(self.panels))
        return [self.panels[i:i + n] for i in range(0, len(self.panels), n)]


def _panel_width(panel: Panel, height: int) -> int:
    h, w = panel.rgb.shape[:2]
    return max(1, round(w * height / h))


def _row_width(row: list[Panel], height: int) -> int:
    return sum(_panel_width(p, height) for p in row) + GAP * (len(row) - 1)


def figure_size(fig: Figure) -> tuple[int, int]:
    """(width, height) in pixels of the figure ``render_figure`` draws."""
    rows = fig.rows()
    width = 2 * MARGIN + max(_row_width(r, fig.panel_height) for r in rows)
    if fig.colorbar is not None:
        width += GAP + COLORBAR_WIDTH
    height = (2 * MARGIN + TITLE_HEIGHT + len(rows) * (fig.panel_height + LABEL_HEIGHT)
              + GAP * (len(rows) - 1) + CAPTION_LINE * len(fig.caption))
    return width, height


def render_figure(fig: Figure) -> QImage:
    """The figure as an RGB image on white."""
    if not fig.panels:
        raise FigureError("nothing to export: the view shows no picture yet")
    width, height = figure_size(fig)
    image = QImage(width, height, QImage.Format.Format_RGB32)
    image.fill(BACKGROUND)
    p = QPainter(image)
    try:
        paint_figure(p, fig)
    finally:
        p.end()
    return image


def paint_figure(p: QPainter, fig: Figure) -> None:
    """Draw ``fig`` with ``p`` on any paint device of :func:`figure_size` (an image, an SVG)."""
    width, _ = figure_size(fig)
    p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
    font = QFont(p.font())
    font.setPixelSize(16)
    font.setBold(True)
    p.setFont(font)
    p.setPen(INK)
    p.drawText(QRectF(MARGIN, MARGIN, width - 2 * MARGIN, TITLE_HEIGHT),
               Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, fig.title)
    font.setBold(False)
    font.setPixelSize(13)
    p.setFont(font)
    rows = fig.rows()
    first_top = top = float(MARGIN + TITLE_HEIGHT)
    for row in rows:
        _draw_row(p, row, top, fig.panel_height)
        top += fig.panel_height + LABEL_HEIGHT + GAP
    if fig.colorbar is not None:
        cb = fig.colorbar
        x = MARGIN + max(_row_width(r, fig.panel_height) for r in rows) + GAP
        draw_color_bar(p, QRectF(x, first_top, COLORBAR_WIDTH, fig.panel_height),
                       cb.colormap, cb.vmin, cb.vmax, cb.label, text_colour=INK)
    y = top - GAP
    for line in fig.caption:
        p.setPen(INK)
        p.drawText(QRectF(MARGIN, y, width - 2 * MARGIN, CAPTION_LINE),
                   Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                   p.fontMetrics().elidedText(line, Qt.TextElideMode.ElideRight,
                                              width - 2 * MARGIN))
        y += CAPTION_LINE


def _draw_row(p: QPainter, row: list[Panel], top: float, height: int) -> None:
    """One row of panels with their titles under them."""
    x = float(MARGIN)
    for panel in row:
        w = _panel_width(panel, height)
        scale = height / panel.rgb.shape[0]
        target = QRectF(x, top, w, height)
        # Smooth scaling for downsizing photos; nearest when enlarging, so pixels stay honest.
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, scale < 1)
        p.drawImage(target, rgb8_to_qimage(panel.rgb))
        if panel.draw is not None:
            p.save()
            p.setClipRect(target)
            p.translate(x, top)
            p.scale(scale, scale)
            panel.draw(p, scale)
            p.restore()
        p.setPen(INK)
        p.drawText(QRectF(x, top + height, w, LABEL_HEIGHT),
                   Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignVCenter, panel.title)
        x += w + GAP


def png_bytes(image: QImage) -> bytes:
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    if not image.save(buffer, "PNG"):
        raise FigureError("the figure could not be encoded as PNG")
    buffer.close()
    return bytes(data.data())


def svg_bytes(fig: Figure) -> bytes:
    """The figure as an SVG document: text and drawing stay vector, panels are embedded
    pictures (QtSvg's generator)."""
    from PySide6.QtCore import QSize
    from PySide6.QtSvg import QSvgGenerator

    if not fig.panels:
        raise FigureError("nothing to export: the view shows no picture yet")
    width, height = figure_size(fig)
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    gen = QSvgGenerator()
    gen.setOutputDevice(buffer)
    gen.setSize(QSize(width, height))
    gen.setViewBox(QRectF(0, 0, width, height))
    gen.setTitle(fig.title)
    gen.setDescription("\n".join(fig.caption))
    p = QPainter(gen)
    try:
        p.fillRect(QRectF(0, 0, width, height), BACKGROUND)
        paint_figure(p, fig)
    finally:
        p.end()
    buffer.close()
    return bytes(data.data())


def export_figure_svg(fig: Figure, path: str | Path) -> Path:
    """Write ``fig`` to ``path`` as SVG, atomically; a name without ``.svg`` gets it."""
    path = Path(path)
    if path.suffix.lower() != ".svg":
        path = path.with_name(path.name + ".svg")
    data = svg_bytes(fig)
    try:
        atomic_write_bytes(path, data)
    except OSError as exc:
        raise FigureError(f"{path.name}: cannot write the figure ({exc.strerror or exc})") \
            from None
    return path


def export_figure(fig: Figure, path: str | Path) -> Path:
    """Render ``fig`` and write it to ``path`` as PNG, atomically (a failed write leaves no
    file); a name without ``.png`` gets it."""
    path = Path(path)
    if path.suffix.lower() != ".png":
        path = path.with_name(path.name + ".png")
    data = png_bytes(render_figure(fig))
    try:
        atomic_write_bytes(path, data)
    except OSError as exc:
        raise FigureError(f"{path.name}: cannot write the figure ({exc.strerror or exc})") \
            from None
    return path
