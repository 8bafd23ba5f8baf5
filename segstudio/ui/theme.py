"""Following the system's light or dark colour scheme (Qt 6.5+ ``QStyleHints.colorScheme``).

Where the platform style already draws the scheme (macOS, Windows 11, a GNOME portal) nothing
is overridden. Elsewhere a dark scheme gets the Fusion style with a dark palette, so that
widgets that paint with palette colours (the colour bar's text, the legend, the tables) stay
readable; the canvas has its own dark background in either scheme. A change of scheme while
the program runs is followed.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication


def dark_palette() -> QPalette:
    """A dark palette with enough contrast for text, links and selections."""
    p = QPalette()
    role, group = QPalette.ColorRole, QPalette.ColorGroup
    colours = {role.Window: (45, 45, 48), role.WindowText: (225, 225, 225),
               role.Base: (30, 30, 32), role.AlternateBase: (45, 45, 48),
               role.ToolTipBase: (60, 60, 64), role.ToolTipText: (235, 235, 235),
               role.PlaceholderText: (150, 150, 150), role.Text: (225, 225, 225),
               role.Button: (55, 55, 58), role.ButtonText: (225, 225, 225),
               role.BrightText: (255, 90, 90), role.Light: (80, 80, 84),
               role.Midlight: (65, 65, 68), role.Mid: (50, 50, 53), role.Dark: (25, 25, 27),
               role.Shadow: (0, 0, 0), role.Highlight: (42, 110, 200),
               role.HighlightedText: (255, 255, 255), role.Link: (110, 170, 255),
               role.LinkVisited: (170, 140, 255)}
    for r, rgb in colours.items():
        p.setColor(r, QColor(*rgb))
    for r in (role.WindowText, role.Text, role.ButtonText):
        p.setColor(group.Disabled, r, QColor(125, 125, 125))
    return p


def is_dark(palette: QPalette) -> bool:
    return palette.color(QPalette.ColorRole.Window).lightness() < 128


class SchemeFollower:
    """Applies the system's scheme to ``app`` now and whenever it changes."""

    def __init__(self, app: QApplication) -> None:
        self.app = app
        self.overridden = False
        self.light_style = app.style().name()
        app.styleHints().colorSchemeChanged.connect(self.apply)
        self.apply(app.styleHints().colorScheme())

    def apply(self, scheme) -> None:
        app = self.app
        if scheme == Qt.ColorScheme.Dark:
            if is_dark(app.palette()) and not self.overridden:
                return                       # the platform draws dark already
            app.setStyle("Fusion")
            app.setPalette(dark_palette())
            self.overridden = True
        elif self.overridden:
            app.setStyle(self.light_style)
            app.setPalette(app.style().standardPalette())
            self.overridden = False


def follow_color_scheme(app: QApplication) -> SchemeFollower:
    """Keep ``app`` in the system's colour scheme; keep the returned object alive."""
    return SchemeFollower(app)
