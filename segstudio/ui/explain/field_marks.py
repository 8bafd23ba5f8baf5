"""What a clicked pixel's field looks like on the canvas: the box, each branch's taps or pooling
cell, and the centre of mass of the effective field.

Atrous taps that fall beyond the feature map read only zero padding: they are drawn hollow and
not counted, so a rate-18 branch on a small map shows itself as the 1×1 convolution it is there
(DeepLab v3 §3.3).
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QPainter, QPen

from segstudio.ui.explain.colormap import BRANCH_COLORS
from segstudio.ui.explain.session import bin_of, rate_of

DOT_RADIUS = 4.0            # screen pixels


def _tap_marks(name: str, rate: int | None, rf, unit, input_map) -> dict:
    """The 3×3 taps of an atrous branch around ``unit``, with which of them read the map."""
    from segstudio.explain.receptive_field import atrous_sampling_grid

    centre = rf.centre(*unit)
    taps = atrous_sampling_grid(rate or 0, 3, centre, rf)
    offsets = (np.arange(3) - 1) * (rate or 0)
    if input_map is not None:
        rows = (unit[0] + offsets >= 0) & (unit[0] + offsets < input_map[0])
        cols = (unit[1] + offsets >= 0) & (unit[1] + offsets < input_map[1])
        valid = (rows[:, None] & cols[None, :]).ravel()
    else:
        valid = np.ones(9, bool)
    if not rate:
        return {"taps": taps[4:5], "valid": valid[4:5], "text": f"{name}: one tap per unit"}
    count = int(valid.sum())
    spread = rate * rf.jump[1]
    text = f"{name}: 3×3 taps {spread:g} px apart, {count} of 9 on the feature map"
    if count == 1:
        text += " (here a 1×1 convolution)"
    return {"taps": taps, "valid": valid, "text": text, "valid_taps": count}


def branch_marks(branches: dict[str, str], fields: dict, y: int, x: int,
                 size: tuple[int, int], units: dict | None = None) -> list[dict]:
    """Per ASPP rate / PSP bin / image pooling: what that branch alone samples around (y, x).
    ``units`` (per-unit fields of the branches) places taps at the exact unit and says which
    taps read the feature map."""
    from segstudio.explain.receptive_field import unit_at

    h, w = size
    marks = []
    for name, path in branches.items():
        rf = fields.get(path)
        rate, bins = rate_of(name), bin_of(name)
        colour = BRANCH_COLORS[len(marks) % len(BRANCH_COLORS)]
        if rf is not None and (rate is not None or name.endswith("1x1")):
            per_unit = (units or {}).get(path)
            unit = per_unit.unit_at(y, x) if per_unit is not None else unit_at(rf, y, x)
            taps = _tap_marks(name, rate, rf, unit,
                              per_unit.input_map if per_unit is not None else None)
            marks.append({"name": name, "kind": "taps", "colour": colour, **taps})
        elif bins is not None:
            row, col = min(bins - 1, y * bins // h), min(bins - 1, x * bins // w)
            cell = (row * h // bins, col * w // bins, -(-(row + 1) * h // bins),
                    -(-(col + 1) * w // bins))
            marks.append({"name": name, "kind": "cell", "box": cell, "colour": colour,
                          "text": f"{name}: pools a {cell[2] - cell[0]}×{cell[3] - cell[1]} px "
                                  f"cell ({bins}×{bins} grid)"})
        elif "image_pool" in name:
            marks.append({"name": name, "kind": "cell", "box": (0, 0, h, w), "colour": colour,
                          "text": f"{name}: the whole image"})
    return marks


def draw_marks(painter: QPainter, result: dict, scale: float) -> None:
    """Draw a field result in image coordinates (the painter already maps image → target)."""
    r = DOT_RADIUS / scale
    painter.save()
    painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
    for mark in result["marks"]:
        pen = QPen(QColor(*mark["colour"]), 2)
        pen.setCosmetic(True)
        painter.setPen(pen)
        if mark["kind"] == "taps":
            valid = mark.get("valid", np.ones(len(mark["taps"]), bool))
            for (ty, tx), on_map in zip(mark["taps"], valid):
                # A hollow ring: this tap reads only the zero padding around the feature map.
                painter.setBrush(QColor(*mark["colour"]) if on_map else Qt.BrushStyle.NoBrush)
                painter.drawEllipse(QPointF(tx + 0.5, ty + 0.5), r, r)
        else:
            painter.setBrush(Qt.BrushStyle.NoBrush)
            t, left, b, right = mark["box"]
            painter.drawRect(QRectF(left, t, right - left, b - t))
    if result["box"] is not None:         # None: no theoretical field is known
        t, left, b, right = result["box"]
        for colour, width, style in ((QColor(0, 0, 0), 4, Qt.PenStyle.SolidLine),
                                     (QColor(255, 255, 255), 2, Qt.PenStyle.DashLine)):
            pen = QPen(colour, width, style)
            pen.setCosmetic(True)
            painter.setPen(pen)
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawRect(QRectF(left, t, right - left, b - t))
    y, x = result["pixel"]
    if result.get("center") is not None:
        _draw_centre(painter, result["center"], (y, x), r)
    painter.setPen(QPen(QColor(0, 0, 0), 1 / scale))
    painter.setBrush(QColor(255, 40, 40))
    painter.drawEllipse(QPointF(x + 0.5, y + 0.5), 1.5 * r, 1.5 * r)
    if result["marks"]:
        painter.scale(1 / scale, 1 / scale)      # the key is drawn in screen pixels
        _draw_key(painter, result["marks"])
    painter.restore()


def _draw_centre(painter: QPainter, centre, pixel, r: float) -> None:
    """The effective field's centre of mass: a cyan cross joined to the clicked pixel."""
    cy, cx = centre
    for colour, width in ((QColor(0, 0, 0), 4), (QColor(0, 230, 255), 2)):
        pen = QPen(colour, width)
        pen.setCosmetic(True)
        painter.setPen(pen)
        painter.drawLine(QPointF(pixel[1] + 0.5, pixel[0] + 0.5), QPointF(cx + 0.5, cy + 0.5))
        painter.drawLine(QPointF(cx + 0.5 - 2 * r, cy + 0.5), QPointF(cx + 0.5 + 2 * r, cy + 0.5))
        painter.drawLine(QPointF(cx + 0.5, cy + 0.5 - 2 * r), QPointF(cx + 0.5, cy + 0.5 + 2 * r))


def _draw_key(painter: QPainter, marks: list[dict]) -> None:
    """Which colour is which branch, in the image's top-left corner, on a dark plate."""
    font = QFont(painter.font())
    font.setPixelSize(12)
    painter.setFont(font)
    line = 16
    width = max(painter.fontMetrics().horizontalAdvance(m["name"]) for m in marks) + 28
    painter.setPen(Qt.PenStyle.NoPen)
    painter.setBrush(QColor(0, 0, 0, 170))
    painter.drawRect(QRectF(4, 4, width, line * len(marks) + 8))
    for i, mark in enumerate(marks):
        y = 8 + i * line
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor(*mark["colour"]))
        painter.drawEllipse(QPointF(16, y + line / 2), DOT_RADIUS, DOT_RADIUS)
        painter.setPen(QColor(255, 255, 255))
        painter.drawText(QRectF(26, y, width - 24, line),
                         Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, mark["name"])
