"""Small informational dialogs of the Help menu."""

from __future__ import annotations

from PySide6.QtWidgets import QMessageBox, QWidget

from segstudio import __version__


def show_about(parent: QWidget) -> None:
    QMessageBox.about(parent, "About segstudio",
                      f"segstudio {__version__}\n\nSee what a segmentation network sees, and "
                      "correct what it got wrong.\n\nThe bundled chest X-ray images are synthetic "
                      "phantoms, not patient data.")
