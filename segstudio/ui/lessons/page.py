"""A lesson page: its explanation, controls, the live measurement and the figure export.

A page runs its measurement in a :class:`BackgroundTask` (the window keeps working), then shows
the figure it builds from the result and the numbers, which are also the figure's caption.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFont, QFontMetrics, QPixmap
from PySide6.QtWidgets import (QComboBox, QDialog, QFileDialog, QHBoxLayout, QLabel,
                               QProgressBar, QPushButton, QScrollArea, QSpinBox, QVBoxLayout,
                               QWidget)

from segstudio.ui.background.tasks import BackgroundTask
from segstudio.ui.explain.figure_export import (MARGIN, Figure, FigureError, export_figure,
                                                export_figure_svg, figure_size, render_figure)

KINDS = (("chest", "chest X-ray phantoms (128 px)"), ("context", "boat-or-car scenes (256 px)"))


def wrap_lines(lines: list[str], width: int) -> list[str]:
    """``lines`` broken at spaces so that each fits ``width`` pixels in the figure's caption
    font (13 px), so a figure's numbers are never cut off."""
    font = QFont()
    font.setPixelSize(13)
    metrics = QFontMetrics(font)
    out: list[str] = []
    for line in lines:
        current = ""
        for word in line.split(" "):
            trial = f"{current} {word}" if current else word
            if current and metrics.horizontalAdvance(trial) > width:
                out.append(current)
                current = "    " + word
            else:
                current = trial
        out.append(current)
    return out


class LessonPage(QDialog):
    """One lab. Subclasses set ``TITLE`` and ``EXPLANATION`` and define ``job(kind, n)`` (a
    function ``(progress, cancelled) → result`` to run off the GUI thread),
    ``build_figure(result)`` and ``numbers(result)``; ``add_controls`` may add their own
    widgets."""

    TITLE = ""
    EXPLANATION = ""
    default_images = 8        # held-out scenes measured; tests lower it to keep them short

    measured = Signal()

    def __init__(self, window, parent: QWidget | None = None) -> None:
        super().__init__(parent if parent is not None else window)
        self.window = window
        self.setWindowTitle(f"Lesson: {self.TITLE}")
        self.task: BackgroundTask | None = None
        self.result = None
        self.figure: Figure | None = None
        self.number_lines: list[str] = []
        self._rerun = False
        self._running = False

        text = QLabel(self.EXPLANATION, self)
        text.setWordWrap(True)
        text.setTextFormat(Qt.TextFormat.RichText)
        self.kind = QComboBox(self)
        for key, title in KINDS:
            self.kind.addItem(title, key)
        self.images = QSpinBox(self)
        self.images.setRange(1, 100)
        self.images.setValue(self.default_images)
        self.images.setSuffix(" held-out images")
        self.images.setToolTip("How many held-out scenes (seed 1) the numbers are measured on")
        self.run_button = QPushButton("Measure", self)
        self.run_button.clicked.connect(self.run)
        self.cancel_button = QPushButton("Cancel", self)
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        self.png_button = QPushButton("Export PNG…", self)
        self.svg_button = QPushButton("Export SVG…", self)
        self.png_button.clicked.connect(lambda: self._export_dialog("png"))
        self.svg_button.clicked.connect(lambda: self._export_dialog("svg"))
        for b in (self.png_button, self.svg_button):
            b.setEnabled(False)
        self.progress = QProgressBar(self)
        self.progress.setMaximumHeight(14)
        self.status = QLabel("", self)
        self.status.setWordWrap(True)
        self.numbers_label = QLabel("", self)
        self.numbers_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.numbers_label.setWordWrap(True)
        self.picture = QLabel(self)
        self.picture.setAlignment(Qt.AlignmentFlag.AlignCenter)
        scroll = QScrollArea(self)
        scroll.setWidgetResizable(True)
        scroll.setWidget(self.picture)

        controls = QHBoxLayout()
        controls.addWidget(self.kind)
        controls.addWidget(self.images)
        self.add_controls(controls)
        controls.addStretch(1)
        controls.addWidget(self.run_button)
        controls.addWidget(self.cancel_button)
        controls.addWidget(self.png_button)
        controls.addWidget(self.svg_button)
        layout = QVBoxLayout(self)
        layout.addWidget(text)
        layout.addLayout(controls)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addWidget(scroll, 1)
        layout.addWidget(self.numbers_label)
        self.resize(1100, 640)
        # The page is the window's child: its measuring thread ends before the window goes
        # (MainWindow.closeEvent shuts the pages down; a Python event filter on the window
        # would be called while Qt tears the window down).

    # -- what a lab provides: job(kind, n) → a function (progress, cancelled) → result, run off
    # the GUI thread; build_figure(result) → Figure; numbers(result) → lines of the caption ------
    def add_controls(self, layout: QHBoxLayout) -> None:
        """Extra controls beside the data set and image count."""

    # -- running -------------------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        """From :meth:`run` until the task's result has been shown (or its failure said)."""
        return self._running

    def run(self) -> None:
        """Measure again with the current settings (a run under way is cancelled first)."""
        if self.busy:
            self._rerun = True
            self.task.cancel()
            return
        self.number_lines = []
        self.status.setText(f"Measuring on {self.images.value()} held-out images…")
        self.progress.setRange(0, 0)
        self.run_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        task = BackgroundTask(self.job(self.kind.currentData(), self.images.value()),
                              (ValueError, OSError), self)
        task.progressed.connect(self._progressed)
        task.succeeded.connect(self._succeeded)
        task.failed.connect(self._failed)
        task.finished.connect(self._finished)
        self.task = task
        self._running = True
        task.start()

    def cancel(self) -> None:
        if self.busy:
            self.task.cancel()

    def _progressed(self, done: int, total: int) -> None:
        self.progress.setRange(0, max(1, total))
        self.progress.setValue(done)

    def _succeeded(self, result) -> None:
        if self.task is not None and self.task.was_cancelled:
            self.status.setText("Cancelled.")
            return
        self.result = result
        self.number_lines = self.numbers(result)
        self.figure = self.build_figure(result)
        self.figure.caption = wrap_lines(self.number_lines,
                                         figure_size(self.figure)[0] - 2 * MARGIN)
        self.numbers_label.setText("\n".join(self.number_lines))
        image = render_figure(self.figure)
        self.picture.setPixmap(QPixmap.fromImage(image).scaledToWidth(
            min(image.width(), 1040), Qt.TransformationMode.SmoothTransformation))
        self.status.setText("Measured live on the bundled models; the numbers are the figure's "
                            "caption.")
        for b in (self.png_button, self.svg_button):
            b.setEnabled(True)
        self.measured.emit()

    def _failed(self, message: str) -> None:
        self.status.setText(f"The lab could not run: {message}")

    def _finished(self) -> None:
        self._running = False
        self.progress.setRange(0, 1)
        self.progress.setValue(1)
        self.run_button.setEnabled(True)
        self.cancel_button.setEnabled(False)
        if self._rerun:
            self._rerun = False
            self.run()

    # -- export --------------------------------------------------------------------------------
    def export(self, path: str | Path) -> Path | None:
        """Write the figure as SVG when ``path`` ends in .svg, else as PNG; None (and a message
        on the page) when there is no figure yet or the file cannot be written."""
        if self.figure is None:
            self.status.setText("Nothing to export yet: measure first.")
            return None
        path = Path(path)
        try:
            written = (export_figure_svg if path.suffix.lower() == ".svg"
                       else export_figure)(self.figure, path)
        except FigureError as exc:
            self.status.setText(str(exc))
            return None
        self.status.setText(f"Figure saved to {written.name}")
        return written

    def _export_dialog(self, kind: str) -> None:
        name = f"lesson-{self.TITLE.lower().replace(' ', '-')}.{kind}"
        flt = "SVG drawings (*.svg)" if kind == "svg" else "PNG images (*.png)"
        path, _ = QFileDialog.getSaveFileName(self, "Export figure", str(Path.home() / name), flt)
        if path:
            self.export(path)

    def shutdown(self) -> None:
        """Stop measuring and wait for the thread to end (between two of its steps)."""
        self.cancel()
        if self.task is not None:
            self.task.wait()


    def closeEvent(self, event) -> None:     # noqa: N802 - Qt's name
        self.shutdown()
        super().closeEvent(event)
