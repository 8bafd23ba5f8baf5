"""The out-of-domain notice drawn on the canvas over a prediction that should not be trusted.

When the image on screen carries a prediction whose input lies far from the model's training
data (:mod:`segstudio.models.domain`), a red band across the top of the canvas says so in one
sentence, for as long as that prediction is shown. The phantom demo, in domain, shows nothing.
"""

from __future__ import annotations

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QFont, QPainter

BAND = QColor(170, 30, 30, 215)
MARGIN = 8


def finding_of(window):
    """The out-of-domain finding of the prediction shown now, or None."""
    doc = window.doc
    prediction = getattr(doc, "prediction", None) if doc is not None else None
    finding = getattr(prediction, "domain", None)
    return finding if finding is not None and finding.out_of_domain else None


def notice_text(window) -> str | None:
    """The sentence on the canvas, or None when nothing is to be said."""
    finding = finding_of(window)
    return None if finding is None else f"Out of domain: {finding.message()}"


def install(window) -> None:
    """Draw the notice as a canvas decoration (drawn after the image and the overlay)."""
    canvas = window.canvas

    def draw(painter: QPainter, _canvas) -> None:
        text = notice_text(window)
        if text is None:
            return
        painter.save()
        painter.resetTransform()
        font = QFont(painter.font())
        font.setBold(True)
        painter.setFont(font)
        width = max(100, canvas.width() - 2 * MARGIN)
        flags = int(Qt.AlignmentFlag.AlignLeft | Qt.TextFlag.TextWordWrap)
        box = painter.boundingRect(QRectF(0, 0, width - 2 * MARGIN, 10_000), flags, text)
        band = QRectF(MARGIN, MARGIN, width, box.height() + 2 * MARGIN)
        painter.fillRect(band, BAND)
        painter.setPen(QColor(255, 255, 255))
        painter.drawText(band.adjusted(MARGIN, MARGIN, -MARGIN, -MARGIN), flags, text)
        painter.restore()

    canvas.decorations.append(draw)
