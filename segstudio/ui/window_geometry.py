"""Where the main window opens: the size asked for, else where the user left it, else 1280×800,
never larger than the screen's available area (a laptop's 720 px less its panels) and on it.

The last geometry is kept in the window's QSettings when it closes.
"""

from __future__ import annotations

from PySide6.QtCore import QPoint, QRect, QSize, Qt

DEFAULT_SIZE = QSize(1280, 800)
# Room for a window manager's title bar and borders, before the window's own are known.
FRAME_ALLOWANCE = QSize(16, 48)


def place(window, available: QRect, size: QSize | None = None) -> None:
    """Size and move ``window`` inside ``available`` (a screen less its panels)."""
    settings = window.settings
    saved = settings.value("window/rect")
    if size is not None:
        rect = QRect(QPoint(0, 0), size)
        rect.moveCenter(available.center())
    elif isinstance(saved, QRect) and saved.isValid():
        rect = QRect(saved)
    else:
        rect = QRect(QPoint(0, 0), DEFAULT_SIZE)
        rect.moveCenter(available.center())
    frame = (QSize(window.frameGeometry().width() - window.width(),
                   window.frameGeometry().height() - window.height())
             if window.isVisible() else FRAME_ALLOWANCE)
    width = max(1, min(rect.width(), available.width() - frame.width()))
    height = max(1, min(rect.height(), available.height() - frame.height()))
    x = min(max(rect.x(), available.left()), available.right() + 1 - width - frame.width())
    y = min(max(rect.y(), available.top()), available.bottom() + 1 - height - frame.height())
    window.resize(width, height)
    window.move(x, y)                   # the frame's corner, as it was remembered
    if size is None and settings.value("window/maximized", False, type=bool):
        window.setWindowState(window.windowState() | Qt.WindowState.WindowMaximized)


def remember(window) -> None:
    """Keep the window's size and place for the next start (its frame's corner, so a window
    does not creep down by a title bar each time)."""
    maximized = window.isMaximized()
    corner = window.normalGeometry().topLeft() if maximized else window.frameGeometry().topLeft()
    window.settings.setValue("window/rect", QRect(corner, window.normalGeometry().size()))
    window.settings.setValue("window/maximized", maximized)
