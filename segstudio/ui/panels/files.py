"""The file list: a model/view over the workspace's items, so 10,000 items cost no widgets.

Each row shows the item's id and status; a filter narrows the list by status.
"""

from __future__ import annotations

from PySide6.QtCore import (QAbstractListModel, QModelIndex, QPersistentModelIndex,
                            QSortFilterProxyModel, Qt, Signal)
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QComboBox, QListView, QVBoxLayout, QWidget

STATUS_COLORS = {
    "unlabelled": QColor(150, 150, 150),
    "predicted": QColor(230, 170, 40),
    "corrected": QColor(70, 150, 240),
    "reviewed": QColor(60, 190, 90),
}
ItemRole = Qt.ItemDataRole.UserRole + 1
StatusRole = Qt.ItemDataRole.UserRole + 2


class ItemListModel(QAbstractListModel):
    """Rows are workspace items; the model reads them lazily for display."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._items: list = []

    def set_items(self, items: list) -> None:
        self.beginResetModel()
        self._items = list(items)
        self.endResetModel()

    def item_changed(self, row: int) -> None:
        idx = self.index(row)
        self.dataChanged.emit(idx, idx)

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: N802
        return 0 if parent.isValid() else len(self._items)

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid() or not 0 <= index.row() < len(self._items):
            return None
        item = self._items[index.row()]
        status = getattr(getattr(item, "status", None), "value", "unlabelled")
        if role == Qt.ItemDataRole.DisplayRole:
            return item.id
        if role == Qt.ItemDataRole.ToolTipRole:
            where = str(item.source) + (f" (frame {item.frame + 1})"     # counted from 1
                                        if item.frame is not None else "")
            return f"{where}\nstatus: {status}"
        if role == Qt.ItemDataRole.DecorationRole:
            return STATUS_COLORS.get(status, STATUS_COLORS["unlabelled"])
        if role == ItemRole:
            return item
        if role == StatusRole:
            return status
        return None


class StatusFilter(QSortFilterProxyModel):
    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.status: str | None = None

    def set_status(self, status: str | None) -> None:
        self.beginFilterChange()
        self.status = status
        self.endFilterChange()

    def filterAcceptsRow(self, row: int, parent) -> bool:  # noqa: N802
        if self.status is None:
            return True
        idx = self.sourceModel().index(row, 0, parent)
        return self.sourceModel().data(idx, StatusRole) == self.status


class FileListPanel(QWidget):
    activated = Signal(int)     # row in the workspace

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = ItemListModel(self)
        self.proxy = StatusFilter(self)
        self.proxy.setSourceModel(self.model)
        self.filter = QComboBox(self)
        self.filter.addItem("All items", None)
        for status in STATUS_COLORS:
            self.filter.addItem(status.capitalize(), status)
        self.filter.currentIndexChanged.connect(
            lambda _: self.proxy.set_status(self.filter.currentData()))
        self.view = QListView(self)
        self.view.setModel(self.proxy)
        self.view.setUniformItemSizes(True)
        self.view.setEditTriggers(QListView.EditTrigger.NoEditTriggers)
        self.view.setSelectionMode(QListView.SelectionMode.ExtendedSelection)
        self.view.activated.connect(self._activated)
        self.view.clicked.connect(self._activated)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.filter)
        layout.addWidget(self.view)

    def set_items(self, items: list) -> None:
        self.model.set_items(items)

    def _activated(self, proxy_index: QModelIndex) -> None:
        self.activated.emit(self.proxy.mapToSource(proxy_index).row())

    def selected_rows(self) -> list[int]:
        """Workspace rows selected in the list (Shift/Ctrl+click), in list order."""
        rows = [self.proxy.mapToSource(i).row() for i in self.view.selectionModel().selectedIndexes()]
        return sorted(set(rows))

    def select_row(self, row: int) -> None:
        idx = self.proxy.mapFromSource(self.model.index(row))
        if idx.isValid():
            self.view.setCurrentIndex(idx)
            self.view.scrollTo(idx)
