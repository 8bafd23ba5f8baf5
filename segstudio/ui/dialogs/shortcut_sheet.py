"""Help ▸ Keyboard shortcuts (F1): every shortcut of the window, grouped by task, with the mouse
gestures beside them.

The sheet is built from the window's real actions each time it opens, so a new or changed
shortcut appears without anyone editing a list; only the gestures (which are not actions) are
written here. It scrolls and is sized to the screen, so its Close button stays reachable.
"""

from __future__ import annotations

import re

from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (QDialog, QDialogButtonBox, QGridLayout, QLabel, QScrollArea,
                               QVBoxLayout, QWidget)

GROUPS = ("Navigate and files", "Paint", "Classes", "Model", "Video", "Review", "Teaching", "Other")

# First match wins: words of an action's text that say which task it belongs to.
_RULES = (("Paint", ("grabcut", "crf")),
          ("Review", ("review", "accept", "reject")),
          ("Video", ("frame", "video", "play", "propagat", "carry")),
          ("Teaching", ("receptive", "activation", "grad-cam", "inside the model", "branch")),
          ("Classes", ("class",)),
          ("Model", ("run", "model", "uncertainty", "margin", "entropy", "compare", "instance",
                     "fine-tune", "prediction", "weights")),
          ("Paint", ("tool", "brush", "polygon", "fill", "undo", "redo", "save", "grabcut",
                     "crf", "eraser", "smart", "erase")),
          ("Navigate and files", ("zoom", "fit", "pixels", "item", "window", "overlay", "open", "quit",
                        "shortcut", "export")))
# An action no word places goes with the menu it sits in.
_MENUS = {"File": "Navigate and files", "Edit": "Paint", "Smart": "Paint", "Model": "Model",
          "View": "Navigate and files", "Video": "Video", "Help": "Navigate and files"}

GESTURES = {
    "Navigate and files": [("Wheel", "Zoom about the cursor"),
                 ("Middle-drag, Space+drag", "Pan the image"),
                 ("Right-drag", "Window/level: left–right sets the width, up–down the level")],
    "Paint": [("Left-drag", "Paint with the current tool"),
              ("Ctrl+wheel, Ctrl+drag", "Brush size (as [ and ])"),
              ("Click, or drag (Polygon)", "Add a vertex, or trace a lasso; double-click or a "
                                           "click on the first vertex closes it"),
              ("Shift+drag (Eraser)", "Erase to void (255, ignored in training) instead of "
                                      "background")],
}


def _plain(text: str) -> str:
    return text.replace("&", "").rstrip("…").rstrip(".").strip()


def _menu_titles(window) -> dict[QAction, tuple[str, str]]:
    """(top-level menu, submenu or "") of each action in the menu bar."""
    found: dict[QAction, tuple[str, str]] = {}

    def walk(menu, top: str, sub: str) -> None:
        for act in menu.actions():
            found.setdefault(act, (top, sub))
            if act.menu() is not None:
                walk(act.menu(), top, _plain(act.text()))

    for top in window.menuBar().actions():
        if top.menu() is not None:
            walk(top.menu(), _plain(top.text()), "")
    return found


def group_of(text: str, menu: str = "") -> str:
    low = text.lower()
    for group, words in _RULES:
        if any(w in low for w in words):
            return group
    return _MENUS.get(menu, "Other")


def shortcut_rows(window) -> dict[str, list[tuple[str, str]]]:
    """(keys, what) per task group, from the window's actions, gestures included."""
    menus = _menu_titles(window)
    groups: dict[str, list[tuple[str, str]]] = {g: [] for g in GROUPS}
    numbered: dict[str, list[tuple[str, str]]] = {}
    seen = set()
    for act in window.actions():
        if act.shortcut().isEmpty():
            continue
        keys = act.shortcut().toString(QKeySequence.SequenceFormat.NativeText)
        menu, sub = menus.get(act, ("", ""))
        text = f"{sub}: {_plain(act.text())}" if sub else _plain(act.text())
        if (keys, text) in seen:
            continue
        seen.add((keys, text))
        m = re.fullmatch(r"(.*?)\s*(\d+)", text)
        if m and m.group(2) == keys:         # "Class 3" on key 3: one row for the series
            numbered.setdefault(m.group(1), []).append((keys, text))
            continue
        groups[group_of(text, menu)].append((keys, text))
    for stem, rows in numbered.items():
        rows.sort(key=lambda r: int(r[0]))
        keys = f"{rows[0][0]} … {rows[-1][0]}" if len(rows) > 1 else rows[0][0]
        groups[group_of(stem)].append((keys, f"{stem} {keys}"))
    for group, rows in GESTURES.items():
        groups[group].extend(rows)
    return {g: rows for g, rows in groups.items() if rows}


class ShortcutSheet(QDialog):
    def __init__(self, window) -> None:
        super().__init__(window)
        self.setWindowTitle("Keyboard shortcuts and mouse gestures")
        content = QWidget(self)
        grid = QGridLayout(content)
        grid.setHorizontalSpacing(16)
        grid.setColumnStretch(1, 1)
        self.rows = shortcut_rows(window)
        row = 0
        for group, entries in self.rows.items():
            heading = QLabel(f"<b>{group}</b>", content)
            heading.setContentsMargins(0, 8 if row else 0, 0, 2)
            grid.addWidget(heading, row, 0, 1, 2)
            row += 1
            for keys, what in entries:
                key_label = QLabel(f"<code>{keys}</code>", content)
                grid.addWidget(key_label, row, 0)
                text = QLabel(what, content)
                text.setWordWrap(True)
                grid.addWidget(text, row, 1)
                row += 1
        self.scroll = QScrollArea(self)
        self.scroll.setWidgetResizable(True)
        self.scroll.setWidget(content)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.reject)
        self.close_button = buttons.button(QDialogButtonBox.StandardButton.Close)
        layout = QVBoxLayout(self)
        layout.addWidget(self.scroll, 1)
        layout.addWidget(buttons)
        screen = self.screen() or window.screen()
        self.fit_to(screen.availableGeometry() if screen is not None else None)

    def fit_to(self, room) -> None:
        """As large as the list, but at most 85 % of ``room`` (a screen's free area): beyond
        that the list scrolls and the Close button stays on screen."""
        content = self.scroll.widget().sizeHint()
        want_w, want_h = content.width() + 60, content.height() + 80
        if room is not None:
            want_w = min(want_w, int(room.width() * 0.9))
            want_h = min(want_h, int(room.height() * 0.85))
        self.resize(max(560, want_w), max(240, want_h))
