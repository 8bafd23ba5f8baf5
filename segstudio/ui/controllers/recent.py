"""The recent-files list, kept in the application settings."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QMenu

MAX_RECENT = 10


class RecentFiles:
    def __init__(self, settings: QSettings, key: str = "recent") -> None:
        self.settings = settings
        self.key = key

    def paths(self) -> list[str]:
        value = self.settings.value(self.key, [])
        if isinstance(value, str):
            value = [value]
        return [str(v) for v in (value or [])]

    def add(self, path: Path) -> None:
        p = str(Path(path).resolve())
        self.settings.setValue(self.key, [p, *[r for r in self.paths() if r != p]][:MAX_RECENT])

    def fill_menu(self, menu: QMenu, open_path: Callable[[Path], object]) -> None:
        menu.clear()
        for p in self.paths():
            menu.addAction(p).triggered.connect(lambda _=False, p=p: open_path(Path(p)))
        if menu.isEmpty():
            menu.addAction("(none)").setEnabled(False)
