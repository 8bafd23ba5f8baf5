"""Small informational dialogs of the Help menu."""

from __future__ import annotations

from PySide6.QtWidgets import QMessageBox, QWidget

from segstudio import __version__


def shortcuts_text(actions) -> str:
    rows = sorted({(a.shortcut().toString(), a.text().replace("&", "")) for a in actions
                   if not a.shortcut().isEmpty()})
    return "\n".join(f"{key:<16} {name}" for key, name in rows)


def show_shortcuts(parent: QWidget, actions) -> None:
    box = QMessageBox(QMessageBox.Icon.Information, "Keyboard shortcuts", shortcuts_text(actions),
                      QMessageBox.StandardButton.Close, parent)
    box.setStyleSheet("QLabel { font-family: monospace; }")
    box.exec()


def show_about(parent: QWidget) -> None:
    QMessageBox.about(parent, "About segstudio",
                      f"segstudio {__version__}\n\nSee what a segmentation network sees, and "
                      "correct what it got wrong.\n\nThe bundled chest X-ray images are synthetic "
                      "phantoms, not patient data.")
