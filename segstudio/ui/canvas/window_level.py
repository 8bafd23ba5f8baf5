"""The display window (level/width) of the image on screen, as radiology viewers set it.

Right-drag on the canvas moves it (width horizontally, level vertically); the image is
re-rendered on a short timer so a fast drag does not queue one conversion per mouse event.
View ▸ Window presets offers the file's own windows, the full range and an automatic window
(:func:`segstudio.io.windowing.presets`); View ▸ Set window… takes a typed centre and width.
The data and the model's input never change: only what the screen shows. The status bar's
pixel readout (:class:`PixelReadout`) says the values a pixel has and is shown with.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (QDialog, QDialogButtonBox, QDoubleSpinBox, QFormLayout, QLabel,
                               QMenu, QVBoxLayout, QWidget)

from segstudio.io import windowing
from segstudio.ui.canvas.render import rgb8_to_qimage


class WindowLevel:
    DRAG_SPAN_PX = 400          # a drag this long spans the image's whole value range

    def __init__(self, window) -> None:
        self.window = window
        self._timer = QTimer(window, singleShot=True, interval=25)
        self._timer.timeout.connect(self.show)
        window.canvas.windowDrag.connect(self.drag)

    def current(self) -> tuple[float, float]:
        """(centre, width) the image is shown through."""
        doc = self.window.doc
        assert doc is not None
        if doc.window is not None:
            return doc.window
        lo, hi = doc.image.value_range
        if doc.image.pixels.dtype == np.uint8:
            lo, hi = 0.0, 255.0
        return ((lo + hi) / 2.0, max(hi - lo, 1.0))

    def set(self, centre: float, width: float) -> None:
        doc = self.window.doc
        if doc is not None:
            doc.window = (float(centre), max(float(width), 1e-3))
            self._timer.start()

    def reset(self) -> None:
        doc = self.window.doc
        if doc is not None:
            doc.window = doc.image.window
            self.show()

    def drag(self, dx: float, dy: float) -> None:
        doc = self.window.doc
        if doc is None:
            return
        centre, width = self.current()
        lo, hi = doc.image.value_range
        step = max(hi - lo, 1.0) / self.DRAG_SPAN_PX
        self.set(centre + dy * step, width + dx * step)

    def show(self) -> None:
        win = self.window
        if win.doc is None:
            return
        win.canvas.set_image(rgb8_to_qimage(win.doc.display_rgb8()), keep_view=True)
        c, w = self.current()
        c = self._mapping_of(win.doc).modality(c)
        win.statusBar().showMessage(f"Window: level {c:g}, width {w:g}", 3000)

    @staticmethod
    def _mapping_of(doc) -> windowing.ValueMapping:
        """How the image's pixels relate to the file's values (identity for non-DICOM)."""
        return doc.image.mapping or windowing.ValueMapping()

    # -- presets and typed values ------------------------------------------------------------
    def presets(self) -> list[windowing.WindowPreset]:
        doc = self.window.doc
        return [] if doc is None else windowing.presets(doc.image)

    def apply_preset(self, preset: windowing.WindowPreset) -> None:
        self.set(preset.centre, preset.width)
        self.show()

    def fill_menu(self, menu: QMenu) -> None:
        """(Re)build the presets submenu for the image on screen (called as it opens)."""
        menu.clear()
        found = self.presets()
        if not found:
            menu.addAction("No image").setEnabled(False)
            return
        current = self.current()
        for preset in found:
            act = menu.addAction(preset.label)
            act.setCheckable(True)
            act.setChecked(np.allclose(preset.window, current, rtol=1e-6, atol=1e-6))
            act.triggered.connect(lambda _=False, p=preset: self.apply_preset(p))

    def ask(self) -> bool:
        """Ask for a centre and width in the file's values (modality units such as HU, also
        for MONOCHROME1, whose pixels the reader inverted) and apply them."""
        doc = self.window.doc
        if doc is None:
            return False
        mapping = self._mapping_of(doc)
        c, w = self.current()
        lo, hi = sorted(mapping.modality(v) for v in doc.image.value_range)
        dialog = WindowDialog((mapping.modality(c), w), (lo, hi), self.window,
                              unit=mapping.unit)
        if dialog.exec() != QDialog.DialogCode.Accepted:
            return False
        centre, width = dialog.values()
        self.set(mapping.to_pixel(centre), width)
        self.show()
        return True

    def readout(self, x: int, y: int) -> str:
        """Stored, modality and shown value of pixel (x, y) for the status bar."""
        doc = self.window.doc
        if doc is None:
            return ""
        window = self.current() if doc.image.is_grey else None
        return windowing.readout(doc.image, x, y, window)


class PixelReadout(QLabel):
    """The status bar's readout of the pixel under the cursor: position, values, class.

    It widens to fit its line, up to a share of the status bar, and never narrows while one
    image is shown, so the widgets beside it do not jump as the cursor moves. A line longer
    than that loses the end of its values (the position and the class always show); the
    tooltip holds the whole line.
    """

    SHARE = 0.45                # of the status bar's width, at most
    BASE = "x 0000, y 0000   value 00000   class 00 (background)"
    GAP = "   "

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("", parent)
        self.full_text = ""
        self.reset()

    def reset(self) -> None:
        """Back to the base width (another image is on screen)."""
        self.setFixedWidth(self._advance(self.BASE))
        self.clear_readout()

    def clear_readout(self) -> None:
        self.full_text = ""
        self.setText("")
        self.setToolTip("")

    def _advance(self, text: str) -> int:
        return self.fontMetrics().horizontalAdvance(text) + 6

    def show_readout(self, where: str, values: str, what: str) -> None:
        text = self.GAP.join((where, values, what))
        self.full_text = text
        self.setToolTip(text)
        bar = self.parentWidget()
        limit = max(self._advance(self.BASE), int(bar.width() * self.SHARE) if bar else 0)
        need = self._advance(text)
        if need > self.width():
            self.setFixedWidth(min(need, limit))
        if need <= self.width():
            self.setText(text)
            return
        room = self.width() - self._advance(self.GAP.join((where, "", what)))
        metrics = self.fontMetrics()
        if room > metrics.horizontalAdvance("…") * 4:
            self.setText(self.GAP.join((where, metrics.elidedText(
                values, Qt.TextElideMode.ElideRight, room), what)))
        else:
            self.setText(metrics.elidedText(text, Qt.TextElideMode.ElideMiddle, self.width() - 6))


def add_menu(window, menu: QMenu) -> None:
    """The View menu's entries: the presets submenu and the typed window. They find the
    window's :class:`WindowLevel` when used, so the menus can be built before it exists."""
    presets = menu.addMenu("Window &presets")
    presets.aboutToShow.connect(lambda: window.levels.fill_menu(presets))
    act = menu.addAction("Set &window…")
    act.setToolTip("Type the window's centre and width")
    act.triggered.connect(lambda: window.levels.ask())


class WindowDialog(QDialog):
    """Centre and width typed as numbers, in the image's values (HU for CT)."""

    def __init__(self, current: tuple[float, float], value_range: tuple[float, float],
                 parent=None, unit: str = "") -> None:
        super().__init__(parent)
        self.setWindowTitle("Set window")
        lo, hi = value_range
        span = max(hi - lo, 1.0)
        self.centre = QDoubleSpinBox(self)
        self.centre.setRange(lo - 10 * span, hi + 10 * span)
        self.width_box = QDoubleSpinBox(self)
        self.width_box.setRange(1e-3, 20 * span)
        for box in (self.centre, self.width_box):
            box.setDecimals(3 if span < 10 else 1)
            box.setKeyboardTracking(False)
        self.centre.setValue(current[0])
        self.width_box.setValue(current[1])
        form = QFormLayout()
        form.addRow("Centre (level)", self.centre)
        form.addRow("Width", self.width_box)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                                   | QDialogButtonBox.StandardButton.Cancel, parent=self)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        unit = f" {unit}" if unit else ""
        layout.addWidget(QLabel(f"The image's values run from {lo:g} to {hi:g}{unit}.", self))
        layout.addLayout(form)
        layout.addWidget(buttons)

    def values(self) -> tuple[float, float]:
        return float(self.centre.value()), float(self.width_box.value())
