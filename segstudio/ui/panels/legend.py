"""The class legend: swatch, name, index and pixel share of each class.

Click a row to paint with that class; the eye column hides a class from the overlay; double-click
a name to rename it or a swatch to recolour it. Renaming and recolouring produce a new ClassSet.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor, QIcon, QPainter, QPixmap
from PySide6.QtWidgets import (QAbstractItemView, QColorDialog, QFileDialog, QHBoxLayout,
                               QHeaderView, QInputDialog, QMenu, QPushButton, QTableWidget,
                               QTableWidgetItem, QVBoxLayout, QWidget)

from segstudio.core.classes import PRESETS, ClassSet, ClassSetError, preset
from segstudio.io.class_files import load_class_set, save_class_set

EYE, NAME, INDEX, SHARE = range(4)


def swatch(color: tuple[int, int, int], size: int = 14) -> QIcon:
    """A colour square with a mid-grey rim, so black or white classes show on either theme."""
    pm = QPixmap(size, size)
    pm.fill(QColor(128, 128, 128))
    painter = QPainter(pm)
    painter.fillRect(1, 1, size - 2, size - 2, QColor(*color))
    painter.end()
    return QIcon(pm)


class LegendPanel(QWidget):
    classSelected = Signal(int)
    hiddenChanged = Signal(object)        # set[int]
    classesEdited = Signal(object)        # ClassSet
    replaceRequested = Signal(object)     # ClassSet: another set (a preset, a file)
    error = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.table = QTableWidget(0, 4, self)
        self.table.setHorizontalHeaderLabels(["", "Class", "#", "Share"])
        self.table.verticalHeader().setVisible(False)
        # Compact rows, so a short screen still shows every class of a usual set.
        self.table.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 6)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        hh = self.table.horizontalHeader()
        hh.setSectionResizeMode(EYE, QHeaderView.ResizeMode.ResizeToContents)
        hh.setSectionResizeMode(NAME, QHeaderView.ResizeMode.Stretch)
        hh.setSectionResizeMode(INDEX, QHeaderView.ResizeMode.ResizeToContents)
        hh.setSectionResizeMode(SHARE, QHeaderView.ResizeMode.ResizeToContents)
        self.add_button = QPushButton("Add class", self)
        self.add_button.clicked.connect(self._ask_new_class)
        self.sets_button = QPushButton("Class set", self)
        menu = QMenu(self.sets_button)
        menu.addAction("Load…", self._load_dialog)
        menu.addAction("Save…", self._save_dialog)
        menu.addSeparator()
        for key in PRESETS:
            menu.addAction(f"Preset: {preset(key).title}",
                           lambda k=key: self.replace_classes(preset(k)))
        self.sets_button.setMenu(menu)
        buttons = QHBoxLayout()
        buttons.addWidget(self.add_button)
        buttons.addWidget(self.sets_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.table)
        layout.addLayout(buttons)
        self.classes: ClassSet | None = None
        self.hidden: set[int] = set()
        self._filling = False
        self.table.itemChanged.connect(self._item_changed)
        self.table.currentCellChanged.connect(self._current_changed)
        self.table.cellDoubleClicked.connect(self._double_clicked)

    # -- showing -----------------------------------------------------------------------------
    def set_classes(self, classes: ClassSet, hidden: set[int] | None = None) -> None:
        current = self.current_class()
        self.classes = classes
        if hidden is not None:
            self.hidden = set(hidden)
        self._filling = True
        self.table.setRowCount(len(classes))
        for c in classes:
            eye = QTableWidgetItem()
            eye.setFlags(Qt.ItemFlag.ItemIsUserCheckable | Qt.ItemFlag.ItemIsEnabled
                         | Qt.ItemFlag.ItemIsSelectable)
            eye.setCheckState(Qt.CheckState.Unchecked if c.index in self.hidden
                              else Qt.CheckState.Checked)
            eye.setToolTip("Show this class in the overlay")
            name = QTableWidgetItem(swatch(c.color), c.name)
            name.setToolTip(f"{c.name}: RGB {c.color}. Double-click the name to rename, the "
                            "swatch to recolour.")
            name.setFlags(name.flags() | Qt.ItemFlag.ItemIsEditable)
            idx = QTableWidgetItem(str(c.index))
            idx.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            share = QTableWidgetItem("")
            share.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            for col, item in ((EYE, eye), (NAME, name), (INDEX, idx), (SHARE, share)):
                self.table.setItem(c.index, col, item)
        self._filling = False
        self._fit_rows(min(len(classes), self.ROWS_KEPT))
        self.select_class(current if current is not None and current < len(classes)
                          else min(1, len(classes) - 1))

    ROWS_KEPT = 6           # rows the table keeps visible however the docks are squeezed

    def _fit_rows(self, rows: int) -> None:
        t = self.table
        t.setMinimumHeight(t.horizontalHeader().sizeHint().height() + 2 * t.frameWidth()
                           + rows * t.verticalHeader().defaultSectionSize())

    def set_counts(self, counts: np.ndarray | None) -> None:
        """Show each class's share of the image's pixels (counts of values 0..255)."""
        if self.classes is None:
            return
        total = float(counts.sum()) if counts is not None else 0.0
        self._filling = True
        for c in self.classes:
            item = self.table.item(c.index, SHARE)
            if item is not None:
                item.setText("" if not total else f"{100.0 * counts[c.index] / total:.1f}%")
        self._filling = False

    def select_class(self, index: int) -> None:
        if self.classes is not None and 0 <= index < len(self.classes):
            self.table.setCurrentCell(index, NAME)

    def current_class(self) -> int | None:
        row = self.table.currentRow()
        return row if row >= 0 else None

    def share_text(self, index: int) -> str:
        item = self.table.item(index, SHARE)
        return item.text() if item is not None else ""

    # -- editing -----------------------------------------------------------------------------
    def _current_changed(self, row: int, *_):
        if row >= 0 and not self._filling:
            self.classSelected.emit(row)

    def _item_changed(self, item: QTableWidgetItem) -> None:
        if self._filling or self.classes is None:
            return
        if item.column() == EYE:
            idx = item.row()
            if item.checkState() == Qt.CheckState.Checked:
                self.hidden.discard(idx)
            else:
                self.hidden.add(idx)
            self.hiddenChanged.emit(set(self.hidden))
        elif item.column() == NAME:
            self.rename_class(item.row(), item.text())

    def set_hidden(self, index: int, hidden: bool) -> None:
        item = self.table.item(index, EYE)
        if item is not None:
            item.setCheckState(Qt.CheckState.Unchecked if hidden else Qt.CheckState.Checked)

    def rename_class(self, index: int, name: str) -> None:
        assert self.classes is not None
        try:
            new = self.classes.renamed(index, name)
        except ClassSetError as exc:
            self.error.emit(f"Cannot rename class {index}: {exc}")
            self.set_classes(self.classes)
            return
        if new != self.classes:
            self.set_classes(new)
            self.classesEdited.emit(new)

    def recolor_class(self, index: int, color: tuple[int, int, int]) -> None:
        assert self.classes is not None
        new = self.classes.recolored(index, color)
        self.set_classes(new)
        self.classesEdited.emit(new)

    def add_class(self, name: str) -> bool:
        assert self.classes is not None
        try:
            new = self.classes.with_class(name)
        except ClassSetError as exc:
            self.error.emit(f"Cannot add class {name!r}: {exc}")
            return False
        self.set_classes(new)
        self.classesEdited.emit(new)
        self.select_class(len(new) - 1)
        return True

    def replace_classes(self, classes: ClassSet) -> None:
        """Ask for another class set (a preset or a file); the window decides how labels that
        exist already meet it (see :mod:`segstudio.ui.controllers.class_sets`)."""
        self.replaceRequested.emit(classes)

    def load_classes(self, path: str) -> bool:
        try:
            classes = load_class_set(path)
        except ClassSetError as exc:
            self.error.emit(str(exc))
            return False
        self.replace_classes(classes)
        return True

    def save_classes(self, path: str) -> bool:
        assert self.classes is not None
        try:
            save_class_set(self.classes, path)
        except OSError as exc:
            self.error.emit(f"Could not save the class set to {path}: {exc}")
            return False
        return True

    def _ask_new_class(self) -> None:
        name, ok = QInputDialog.getText(self, "Add class", "Name of the new class:")
        if ok and name.strip():
            self.add_class(name.strip())

    def _load_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Load class set", "", "Class sets (*.json)")
        if path:
            self.load_classes(path)

    def _save_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save class set", "classes.json",
                                              "Class sets (*.json)")
        if path:
            self.save_classes(path)

    def _double_clicked(self, row: int, col: int) -> None:
        if self.classes is None:
            return
        if col == NAME:
            # A double-click on the swatch (left part of the cell) recolours; elsewhere renames.
            rect = self.table.visualItemRect(self.table.item(row, col))
            pos = self.table.viewport().mapFromGlobal(self.table.cursor().pos())
            if pos.x() - rect.x() <= 22:
                color = QColorDialog.getColor(QColor(*self.classes[row].color), self,
                                              f"Colour of {self.classes[row].name}")
                if color.isValid():
                    self.recolor_class(row, (color.red(), color.green(), color.blue()))
                return
            self.table.editItem(self.table.item(row, col))
