"""A small plot of DeepLab v3's Fig. 4 for the model on show: how many of an atrous 3×3
filter's weights read a 65×65 feature map as the rate grows, and the share of units with 9, 4 or
only 1 of them there, with the model's own rates marked as dashed lines."""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QPainter, QPen, QPolygonF
from PySide6.QtWidgets import QSizePolicy, QWidget

SERIES = (("valid_fraction", "weights on the map", (255, 200, 60)),
          (9, "units with all 9", (90, 200, 120)),
          (4, "with 4", (90, 150, 230)),
          (1, "with the centre only", (230, 90, 90)))
"""The plotted series: the mean valid fraction, then the share of units with 9, 4 and 1 valid
weights, the three curves of the paper's figure."""


class TapCurveView(QWidget):
    """Draws a :class:`segstudio.explain.atrous.TapCurve`; empty until one is set."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.curve = None
        self.rates: tuple[int, ...] = ()
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setToolTip("DeepLab v3 §3.3, Fig. 4: as the atrous rate approaches the feature "
                        "map's size, fewer 3×3 weights fall on the map; past it only the centre "
                        "weight is applied, which is why image-level pooling was added.")
        self.hide()

    def sizeHint(self) -> QSize:  # noqa: N802
        return QSize(260, 130)

    def set_curve(self, curve, rates=()) -> None:
        self.curve, self.rates = curve, tuple(rates)
        self.setVisible(curve is not None)
        self.setFixedHeight(130)
        self.update()

    def paintEvent(self, _event) -> None:  # noqa: N802
        if self.curve is None:
            return
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        plot = QRectF(30, 8, self.width() - 40, self.height() - 50)
        top_rate = max(self.curve.rates)
        p.setPen(QPen(self.palette().text().color(), 1))
        p.drawRect(plot)

        def at(rate: float, value: float) -> QPointF:
            return QPointF(plot.left() + (rate - 1) / max(top_rate - 1, 1) * plot.width(),
                           plot.bottom() - value * plot.height())

        for rate in self.rates:
            if rate <= top_rate:
                pen = QPen(QColor(150, 150, 150), 1, Qt.PenStyle.DashLine)
                p.setPen(pen)
                p.drawLine(at(rate, 0), at(rate, 1))
        for key, _label, colour in SERIES:
            values = self.curve.share(key) if isinstance(key, int) else getattr(self.curve, key)
            p.setPen(QPen(QColor(*colour), 2))
            p.drawPolyline(QPolygonF([at(r, v) for r, v in zip(self.curve.rates, values)]))
        p.setPen(self.palette().text().color())
        p.drawText(QRectF(0, plot.top() - 6, 28, 12), Qt.AlignmentFlag.AlignRight, "1")
        p.drawText(QRectF(0, plot.bottom() - 6, 28, 12), Qt.AlignmentFlag.AlignRight, "0")
        p.drawText(QRectF(plot.left(), plot.bottom() + 2, plot.width(), 14),
                   Qt.AlignmentFlag.AlignCenter,
                   f"atrous rate 1 … {top_rate} on a {self.curve.size}×{self.curve.size} map")
        x = plot.left()
        for _key, label, colour in SERIES:
            p.setPen(QColor(*colour))
            width = p.fontMetrics().horizontalAdvance(label) + 12
            p.drawText(QRectF(x, plot.bottom() + 18, width, 14), Qt.AlignmentFlag.AlignLeft,
                       label)
            x += width
        p.end()
