"""Lesson 4, atrous convolution and pyramid pooling: the Context tab on the context demo.

The lesson is already in the "Inside the model" dock (FCN-8s, PSPNet and DeepLab v3 on a scene
only context can name, their theoretical and effective fields, the branches zeroed); this page
says what to look at and opens it.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialog, QHBoxLayout, QLabel, QPushButton, QVBoxLayout

from segstudio.ui.explain.figure_export import FigureError, export_figure, export_figure_svg


class AtrousPage(QDialog):
    TITLE = "Atrous convolution and pyramid pooling"
    EXPLANATION = (
        "<b>Atrous convolution and pyramid pooling.</b> A 3×3 convolution with rate r reads "
        "pixels r apart: the field grows without pooling and without parameters, so DeepLab "
        "keeps a stride-8 or 16 map and still sees far (Chen et al., ASPP: rates 6–24 in v2; "
        "v3 adds image pooling). PSPNet pools the whole map into 1×1, 2×2, 3×3 and 6×6 bins "
        "and adds them back (Zhao et al.). On the context demo a boat and a car look the same; "
        "only the water or road, at least 141 px away, tells them apart. The Context tab runs "
        "FCN-8s, PSPNet and DeepLab v3 on it and draws each one's theoretical field and "
        "effective field at a pixel of the object; the Branches tab zeroes PSPNet's bins or "
        "DeepLab's image pooling live (on the 100 held-out scenes: −57.1 and −36.0 points of "
        "boat/car IoU, resources/weights/README.md). The Receptive field tab shows the atrous "
        "taps themselves. Export those figures from the dock, or here once shown.")

    def __init__(self, window, parent=None) -> None:
        super().__init__(parent if parent is not None else window)
        self.window = window
        self.setWindowTitle(f"Lesson: {self.TITLE}")
        text = QLabel(self.EXPLANATION, self)
        text.setWordWrap(True)
        text.setTextFormat(Qt.TextFormat.RichText)
        self.status = QLabel("", self)
        self.status.setWordWrap(True)
        self.context_button = QPushButton("Open the context demo in the Context tab", self)
        self.context_button.clicked.connect(lambda: self.open_view("context"))
        self.field_button = QPushButton("… in the Receptive field tab", self)
        self.field_button.clicked.connect(lambda: self.open_view("receptive"))
        self.branches_button = QPushButton("… in the Branches tab", self)
        self.branches_button.clicked.connect(lambda: self.open_view("branches"))
        self.png_button = QPushButton("Export PNG…", self)
        self.svg_button = QPushButton("Export SVG…", self)
        self.png_button.clicked.connect(lambda: self._export_dialog("png"))
        self.svg_button.clicked.connect(lambda: self._export_dialog("svg"))
        buttons = QHBoxLayout()
        for b in (self.context_button, self.field_button, self.branches_button):
            buttons.addWidget(b)
        buttons.addStretch(1)
        buttons.addWidget(self.png_button)
        buttons.addWidget(self.svg_button)
        layout = QVBoxLayout(self)
        layout.addWidget(text)
        layout.addLayout(buttons)
        layout.addWidget(self.status)
        # As short as its text: the dock it opens must stay in view beside it.
        self.resize(900, self.sizeHint().height())

    def open_view(self, view: str) -> bool:
        """Open the context demo (its PSPNet runs) and show the dock's ``view`` tab."""
        from segstudio.ui import launchers

        dock = getattr(self.window, "explain", None)
        if dock is None:
            self.status.setText("This window has no “Inside the model” dock.")
            return False
        if not launchers.open_demo(self.window, "context"):
            self.status.setText("The context demo could not be opened (see the window's "
                                "message).")
            return False
        holder = dock.parentWidget()
        if holder is not None:
            holder.show()
            holder.raise_()
        dock.show_view(getattr(dock, view))
        self.status.setText("Shown in the “Inside the model” dock. Pick a pixel on a car, then "
                            "Compare in the Context tab.")
        return True

    def export(self, path: str | Path) -> Path | None:
        """The dock's current view as a figure: SVG for a .svg name, else PNG."""
        dock = getattr(self.window, "explain", None)
        fig = dock.current_figure() if dock is not None else None
        if fig is None:
            self.status.setText("Nothing to export yet: open a view and compute it first.")
            return None
        path = Path(path)
        try:
            written = (export_figure_svg if path.suffix.lower() == ".svg"
                       else export_figure)(fig, path)
        except FigureError as exc:
            self.status.setText(str(exc))
            return None
        self.status.setText(f"Figure saved to {written.name}")
        return written

    def _export_dialog(self, kind: str) -> None:
        from PySide6.QtWidgets import QFileDialog

        flt = "SVG drawings (*.svg)" if kind == "svg" else "PNG images (*.png)"
        path, _ = QFileDialog.getSaveFileName(self, "Export figure",
                                              str(Path.home() / f"lesson-context.{kind}"), flt)
        if path:
            self.export(path)
