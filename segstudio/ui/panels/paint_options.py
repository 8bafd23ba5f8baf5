"""Limits every painting tool honours: paint only over one class, or only inside an intensity
range of the image (threshold painting, as radiology tools offer)."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QCheckBox, QComboBox, QDoubleSpinBox, QHBoxLayout, QWidget

from segstudio.core.classes import ClassSet
from segstudio.core.labelmap import NO_GUARD, PaintGuard


class PaintOptions(QWidget):
    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.only_box = QCheckBox("Only over", self)
        self.only_box.setToolTip("Paint only pixels of this class; every other class is preserved")
        self.only_class = QComboBox(self)
        self.range_box = QCheckBox("Intensity", self)
        self.range_box.setToolTip("Paint only where the image value lies in this range")
        self.low = QDoubleSpinBox(self)
        self.high = QDoubleSpinBox(self)
        for spin in (self.low, self.high):
            spin.setRange(-1e9, 1e9)
            spin.setDecimals(1)
            spin.setKeyboardTracking(False)
            # Sized for the values images have, not the range's ten digits: the tool bar
            # would otherwise set the window's smallest width.
            spin.setMinimumWidth(spin.fontMetrics().horizontalAdvance("-00000.0") + 28)
        self.only_class.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.only_class.setMinimumContentsLength(10)
        self.high.setValue(255)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(4, 0, 4, 0)
        for w in (self.only_box, self.only_class, self.range_box, self.low, self.high):
            layout.addWidget(w)
        for sig in (self.only_box.toggled, self.range_box.toggled, self.only_class.currentIndexChanged,
                    self.low.valueChanged, self.high.valueChanged):
            sig.connect(lambda *_: self.changed.emit())

    def set_classes(self, classes: ClassSet) -> None:
        current = self.only_class.currentIndex()
        self.only_class.blockSignals(True)
        self.only_class.clear()
        for c in classes:
            self.only_class.addItem(f"{c.index}: {c.name}")
        self.only_class.setCurrentIndex(current if 0 <= current < len(classes) else 0)
        self.only_class.blockSignals(False)

    def set_value_range(self, low: float, high: float) -> None:
        """Suggest the image's own range when a new image is shown (keeps a user's choice)."""
        if not self.range_box.isChecked():
            self.low.setValue(low)
            self.high.setValue(high)

    def guard(self, intensity) -> PaintGuard:
        only = (frozenset({self.only_class.currentIndex()})
                if self.only_box.isChecked() and self.only_class.currentIndex() >= 0 else None)
        if self.range_box.isChecked() and intensity is not None:
            return PaintGuard(only_over=only, intensity=intensity,
                              low=self.low.value(), high=self.high.value())
        return PaintGuard(only_over=only) if only is not None else NO_GUARD
