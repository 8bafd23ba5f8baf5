"""A notice bar over the bottom of a widget for what matters: saved, failed, finished, untrained.

Passing news (saved, finished: ``Level.INFO`` and ``Level.DONE``) goes away by itself after a
few seconds, longer than a status-bar message and not while the pointer rests on it; warnings
and errors stay until the user dismisses them. The bar floats over its host (the canvas)
instead of taking a row of the layout, so showing or dismissing it never shifts the image. A
newer notice replaces the one on screen.
"""

from __future__ import annotations

from enum import Enum

from PySide6.QtCore import QEvent, QObject, Qt, QTimer
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QToolButton, QWidget


class Level(Enum):
    INFO = "info"
    DONE = "done"
    WARNING = "warning"
    ERROR = "error"


# (background, text): dark text on light colours and the reverse, readable in either theme.
_COLOURS = {Level.INFO: ("#2d5a8c", "#ffffff"), Level.DONE: ("#2e6b3a", "#ffffff"),
            Level.WARNING: ("#f0b429", "#1b1b1b"), Level.ERROR: ("#b3261e", "#ffffff")}
MARGIN = 8          # pixels between the bar and the host's edges
PASSING = (Level.INFO, Level.DONE)      # these go by themselves; warnings and errors stay
PASSING_MS = 6000
READING_MS_PER_CHAR = 60        # a long passing notice stays long enough to be read


class NoticeBar(QFrame):
    """One line (wrapping when long) with a ✕ button, kept at the bottom of ``host``."""

    def __init__(self, host: QWidget) -> None:
        super().__init__(host)
        self.setObjectName("notice")
        self.host = host
        self.level = Level.INFO
        self.label = QLabel("", self)
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.close_button = QToolButton(self)
        self.close_button.setText("✕")
        self.close_button.setToolTip("Dismiss")
        self.close_button.setAutoRaise(True)
        self.close_button.clicked.connect(self.dismiss)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(10, 4, 4, 4)
        layout.addWidget(self.label, 1)
        layout.addWidget(self.close_button, 0, Qt.AlignmentFlag.AlignTop)
        # A host that says when it is resized (the canvas) is followed through its signal; a
        # plain widget through an event filter.
        resized = getattr(host, "resized", None)
        if resized is not None:
            resized.connect(self._follow)
        else:
            self._follower = _ResizeFollower(self)
            host.installEventFilter(self._follower)
        self.passing_ms = PASSING_MS
        self._timeout = QTimer(self, singleShot=True)
        self._timeout.timeout.connect(self.dismiss)
        self.hide()

    def text(self) -> str:
        return self.label.text()

    def _follow(self) -> None:
        if self.isVisible():
            self.place()

    def show_notice(self, text: str, level: Level = Level.INFO) -> None:
        """Show ``text``: a warning or error until dismissed, passing news for a few seconds
        (either until replaced by the next notice)."""
        self.level = level
        background, foreground = _COLOURS[level]
        self.setStyleSheet(f"QFrame#notice {{ background: {background}; border-radius: 4px; }}"
                           f"QFrame#notice QLabel, QFrame#notice QToolButton "
                           f"{{ color: {foreground}; background: transparent; }}")
        self.label.setText(text)
        self.setAccessibleDescription(f"{level.value}: {text}")
        self.show()
        self.place()
        self.raise_()
        self._timeout.stop()
        if level in PASSING and not self.underMouse():
            self._timeout.start(self._lasting_ms())

    def _lasting_ms(self) -> int:
        return max(self.passing_ms, READING_MS_PER_CHAR * len(self.label.text()))

    @property
    def passing(self) -> bool:
        """The notice on screen goes away by itself."""
        return self.level in PASSING

    def dismiss(self) -> None:
        self._timeout.stop()
        self.hide()
        self.label.setText("")

    def enterEvent(self, event) -> None:  # noqa: N802
        self._timeout.stop()            # being read (or its text selected): it stays
        super().enterEvent(event)

    def leaveEvent(self, event) -> None:  # noqa: N802
        if self.isVisible() and self.passing:
            self._timeout.start(self._lasting_ms())
        super().leaveEvent(event)

    def place(self) -> None:
        """Span the host's width less the margins, sized to the text, at its bottom."""
        width = max(120, self.host.width() - 2 * MARGIN)
        self.setFixedWidth(width)
        height = self.layout().heightForWidth(width) if self.layout().hasHeightForWidth() else -1
        height = max(height, self.sizeHint().height())
        self.setFixedHeight(min(height, max(40, self.host.height() // 2)))
        self.move(MARGIN, max(0, self.host.height() - self.height() - MARGIN))


class _ResizeFollower(QObject):
    def __init__(self, bar: NoticeBar) -> None:
        super().__init__(bar)
        self.bar = bar

    def eventFilter(self, obj, event) -> bool:  # noqa: N802
        if event.type() == QEvent.Type.Resize and self.bar.isVisible():
            self.bar.place()
        return False
