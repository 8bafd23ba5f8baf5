"""The modules of a model file's network as a tree, for networks without segstudio's branches.

A model from a file (TorchScript, Hugging Face, smp) names no pyramid bins or ASPP rates; what
it has is its own module tree (``named_modules``, which TorchScript keeps too). Picking a module
here makes it the branch of every view: its activation map, its Grad-CAM, its receptive field.
For an ONNX model the tree says instead why the views cannot look inside it.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QLineEdit, QTreeWidget, QTreeWidgetItem, QVBoxLayout, QWidget

from segstudio.ui.explain.session import ONNX_VIEWS, ExplainSession

PATH = Qt.ItemDataRole.UserRole


class ModuleTree(QWidget):
    """A filterable tree of the loaded model file's modules; the picked one is every view's
    branch."""

    def __init__(self, session: ExplainSession, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.shown_for = None               # the LoadedModel whose modules the tree lists
        self.note = QLabel(self)
        self.note.setWordWrap(True)
        self.filter = QLineEdit(self)
        self.filter.setPlaceholderText("Filter modules (part of a name or class)")
        self.filter.setClearButtonEnabled(True)
        self.filter.textChanged.connect(self._filter)
        self.tree = QTreeWidget(self)
        self.tree.setHeaderLabels(["Module", "Class"])
        self.tree.setMinimumHeight(140)
        self.tree.currentItemChanged.connect(self._picked)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.note)
        layout.addWidget(self.filter)
        layout.addWidget(self.tree, 1)
        session.sourceChanged.connect(self.refresh)
        session.modelLoaded.connect(lambda _m: self.refresh())
        session.busyChanged.connect(lambda _busy: self.refresh())
        self.refresh()

    def refresh(self) -> None:
        """Show the tree for a loaded model file, a note while it loads or for ONNX, nothing
        for segstudio's own networks (their branches are named in each view)."""
        source = self.session.current_source()
        last = self.session.last_loaded
        if source is None or source.model_file is None or (
                last is not None and last.source == source and not last.foreign):
            self.setVisible(False)       # segstudio's own network (a checkpoint, too)
            return
        self.setVisible(True)
        loaded = self.session.loaded_file()
        listing = loaded is not None
        self.filter.setVisible(listing)
        self.tree.setVisible(listing)
        if source.is_onnx:
            self.note.setText(f"{source.model_file.name}: {ONNX_VIEWS}.")
            return
        if not listing:
            self.note.setText(f"Loading {source.model_file.name}…" if self.session.busy else
                              f"{source.model_file.name} did not load here (the message said "
                              "why); the views cannot look into it")
            return
        self.note.setText(f"{source.model_file.name} ({loaded.arch}) has no named branches: "
                          "pick any of its modules to look at.")
        if loaded is not self.shown_for:
            self._fill(loaded)

    def _fill(self, loaded) -> None:
        self.shown_for = loaded
        self.tree.blockSignals(True)
        self.tree.clear()
        items: dict[str, QTreeWidgetItem] = {}
        for path, kind in loaded.tree:
            parent_path = path.rpartition(".")[0]
            parent = items.get(parent_path)
            item = QTreeWidgetItem([path.rpartition(".")[2], kind])
            item.setData(0, PATH, path)
            item.setToolTip(0, path)
            if parent is None:
                self.tree.addTopLevelItem(item)
            else:
                parent.addChild(item)
            items[path] = item
        self.tree.blockSignals(False)
        self.tree.resizeColumnToContents(0)
        self._filter(self.filter.text())

    def item(self, path: str) -> QTreeWidgetItem | None:
        """The tree's item of module ``path`` (opened up to it), or None."""
        for item in self._items():
            if item.data(0, PATH) == path:
                parent = item.parent()
                while parent is not None:
                    parent.setExpanded(True)
                    parent = parent.parent()
                return item
        return None

    def _items(self):
        stack = [self.tree.topLevelItem(i) for i in range(self.tree.topLevelItemCount())]
        while stack:
            item = stack.pop(0)
            yield item
            stack[:0] = [item.child(i) for i in range(item.childCount())]

    def _filter(self, text: str) -> None:
        """Show the modules whose path or class holds ``text``, with their parents."""
        text = text.strip().lower()
        keep = set()
        for item in self._items():
            if not text or text in item.data(0, PATH).lower() or text in item.text(1).lower():
                node = item
                while node is not None:
                    keep.add(id(node))
                    node = node.parent()
        for item in self._items():
            item.setHidden(id(item) not in keep)
            if text and id(item) in keep:
                item.setExpanded(True)

    def _picked(self, current, _previous) -> None:
        self.session.pick_module(current.data(0, PATH) if current is not None else None)
