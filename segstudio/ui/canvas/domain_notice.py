"""The out-of-domain notice: a red bar above the canvas over a prediction not to be trusted.

When the item on screen carries a prediction whose input lies far from the model's training
data (:mod:`segstudio.models.domain`), a bar above the image (never over it) says so in one
sentence. "Why" lists every reason (the sentence names two at most); "Dismiss" hides the bar
for that item for the rest of the session. It goes by itself once a person has corrected or
reviewed the item: the labels are theirs then, not the model's. The phantom demo, in domain,
shows nothing.
"""

from __future__ import annotations

from html import escape

from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QToolButton, QVBoxLayout, QWidget

from segstudio.io.workspace import ItemStatus

BAND = "#aa1e1e"
BY_A_PERSON = (ItemStatus.CORRECTED, ItemStatus.REVIEWED)


def finding_of(window):
    """The out-of-domain finding of the prediction shown now, or None."""
    doc = window.doc
    prediction = getattr(doc, "prediction", None) if doc is not None else None
    finding = getattr(prediction, "domain", None)
    return finding if finding is not None and finding.out_of_domain else None


def notice_text(window) -> str | None:
    """The sentence of the notice, or None when the prediction on screen is in domain."""
    finding = finding_of(window)
    return None if finding is None else f"Out of domain: {finding.message()}"


class DomainNotice(QFrame):
    """The bar: the sentence, "Why (N reasons)" and "Dismiss"."""

    def __init__(self, window) -> None:
        super().__init__(window)
        self.window = window
        self.setObjectName("domain-notice")
        self.setStyleSheet(f"QFrame#domain-notice {{ background: {BAND}; }}"
                           "QFrame#domain-notice QLabel, QFrame#domain-notice QToolButton "
                           "{ color: white; background: transparent; }"
                           "QFrame#domain-notice QToolButton { border: 1px solid #ffffff80; "
                           "border-radius: 3px; padding: 1px 6px; }")
        self.dismissed: set[tuple[str, tuple]] = set()     # (workspace root, item key)
        self.label = QLabel("", self)
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        font = self.label.font()
        font.setBold(True)
        self.label.setFont(font)
        self.why_button = QToolButton(self)
        self.why_button.clicked.connect(self.show_reasons)
        self.dismiss_button = QToolButton(self)
        self.dismiss_button.setText("Dismiss ✕")
        self.dismiss_button.setToolTip("Hide this notice for this image until segstudio closes")
        self.dismiss_button.clicked.connect(self.dismiss)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(10, 4, 6, 4)
        layout.addWidget(self.label, 1)
        layout.addWidget(self.why_button, 0, Qt.AlignmentFlag.AlignTop)
        layout.addWidget(self.dismiss_button, 0, Qt.AlignmentFlag.AlignTop)
        self.popup: ReasonsPopup | None = None
        self.hide()

    def _key(self):
        doc = self.window.doc
        ws = self.window.workspace
        if doc is None:
            return None
        return (str(ws.root) if ws is not None else "", doc.item.key)

    def reasons(self) -> list[str]:
        finding = finding_of(self.window)
        return list(finding.reasons) if finding is not None else []

    def refresh(self) -> None:
        """Show the bar for the item on screen, or hide it."""
        text = notice_text(self.window)
        doc = self.window.doc
        if (text is None or self._key() in self.dismissed
                or getattr(doc.item, "status", None) in BY_A_PERSON):
            self.hide()
            return
        reasons = self.reasons()
        self.label.setText(text)
        self.label.setToolTip("\n".join(f"• {r}" for r in reasons))
        self.why_button.setText(f"Why ({len(reasons)} reason{'s' if len(reasons) != 1 else ''})")
        self.why_button.setToolTip("List every reason this image looks unlike the model's "
                                   "training images")
        self.setAccessibleDescription(f"warning: {text}")
        self.show()

    def dismiss(self) -> None:
        key = self._key()
        if key is not None:
            self.dismissed.add(key)
        self.refresh()

    def show_reasons(self) -> None:
        """Every reason, in a popup under the button."""
        # A child of the window, not of the bar: it takes the normal colours, not the bar's.
        self.popup = ReasonsPopup(self.reasons(), self.window)
        self.popup.show_below(self.why_button)


class ReasonsPopup(QFrame):
    """A list of the reasons, closed by a click anywhere else or Esc."""

    def __init__(self, reasons: list[str], parent: QWidget) -> None:
        super().__init__(parent, Qt.WindowType.Popup)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.label = QLabel(self)
        self.label.setWordWrap(True)
        self.label.setTextFormat(Qt.TextFormat.RichText)
        items = "".join(f"<li>{escape(r)}</li>" for r in reasons)
        self.label.setText("<b>Unlike the training images:</b>"
                           f"<ul style='margin-left: 12px'>{items}</ul>"
                           "Treat the prediction as a rough start and check it by hand.")
        self.label.setMaximumWidth(420)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(10, 8, 10, 8)
        layout.addWidget(self.label)

    def text(self) -> str:
        return self.label.text()

    def show_below(self, anchor: QWidget) -> None:
        self.adjustSize()
        below = anchor.mapToGlobal(QPoint(anchor.width() - self.width(), anchor.height()))
        self.move(below)
        self.show()


def install(window) -> DomainNotice:
    """Put the bar above the canvas (in the window's canvas column) and keep it current."""
    bar = DomainNotice(window)
    window.canvas_column.insertWidget(0, bar)
    window.domain_notice = bar
    window.documentShown.connect(lambda _doc: bar.refresh())
    window.files.model.dataChanged.connect(lambda *_: bar.refresh())
    window.files.model.modelReset.connect(bar.refresh)
    return bar
