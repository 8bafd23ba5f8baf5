"""The "Inside the model" dock: the model picker, one tab per view, and the figure export.

The views share one :class:`~segstudio.ui.explain.session.ExplainSession`; this module builds
the dock around it and installs it (with the receptive-field tool) in the main window.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QDockWidget, QFileDialog, QFrame, QHBoxLayout, QPushButton,
                               QScrollArea, QTabWidget, QVBoxLayout, QWidget)

from segstudio.ui.explain.activations import ActivationsPanel, BranchGridPanel
from segstudio.ui.explain.colormap import HeatLayer
from segstudio.ui.explain.figure_export import FigureError, export_figure
from segstudio.ui.explain.model_picker import ModelPicker
from segstudio.ui.explain.module_tree import ModuleTree
from segstudio.ui.explain.context import ContextPanel
from segstudio.ui.explain.receptive_field import ReceptiveFieldPanel, install_rf_tool
from segstudio.ui.explain.session import ExplainSession


class ExplainDock(QWidget):
    """The dock's contents: model picker, one tab per view, and the figure export."""

    def __init__(self, window, session: ExplainSession) -> None:
        super().__init__(window)
        self.window = window
        self.session = session
        self.heat = HeatLayer(window.canvas)
        self.picker = ModelPicker(session, self)
        self.modules = ModuleTree(session, self)
        self.tabs = QTabWidget(self)
        self.activations = ActivationsPanel(window, session, self.heat, self)
        self.branches = BranchGridPanel(window, session, self.heat, self)
        self.receptive = ReceptiveFieldPanel(window, session, self)
        self.context = ContextPanel(window, session, self)
        # Each view scrolls rather than squeezing its pictures when the dock is short.
        for view, title in ((self.activations, "Activations"), (self.branches, "Branches"),
                            (self.receptive, "Receptive field"), (self.context, "Context")):
            scroll = QScrollArea(self.tabs)
            scroll.setWidgetResizable(True)
            scroll.setFrameShape(QFrame.Shape.NoFrame)
            scroll.setWidget(view)
            self.tabs.addTab(scroll, title)
        self.export_button = QPushButton("Export figure…", self)
        self.export_button.setToolTip("Save the view in this tab as a PNG figure for slides")
        self.export_button.clicked.connect(self._export_dialog)
        self.cancel_button = QPushButton("Cancel", self)
        self.cancel_button.setToolTip("Stop the computation under way (between its steps)")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(session.cancel)
        session.busyChanged.connect(self.cancel_button.setEnabled)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.picker)
        layout.addWidget(self.modules)
        layout.addWidget(self.tabs, 1)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.cancel_button)
        buttons.addWidget(self.export_button)
        layout.addLayout(buttons)
        window.documentShown.connect(self._document_shown)
        session.sourceChanged.connect(self._model_changed)
        self.tabs.currentChanged.connect(self._tab_changed)

    def _tab_changed(self, _index: int) -> None:
        # A heat layer belongs to the tab that made it; another tab's view must not sit under it.
        owners = {self.activations: "activations", self.branches: "contribution"}
        if owners.get(self.current_view()) != self.heat.owner:
            self.heat.clear()

    def _document_shown(self, _doc) -> None:
        self.heat.clear()
        self.session.pixel = None
        for view in (self.activations, self.branches, self.receptive, self.context):
            view.reset()

    def _model_changed(self) -> None:
        # Views of the model chosen before (heat maps, branch grid, PSP cells, captions) would
        # be read as views of the new one. The context view compares fixed models and stays.
        self.heat.clear()
        for view in (self.activations, self.branches, self.receptive):
            view.reset()

    def current_view(self) -> QWidget:
        """The view in the current tab (each tab holds its view in a scroll area)."""
        return self.tabs.currentWidget().widget()

    def show_view(self, view: QWidget) -> None:
        for i in range(self.tabs.count()):
            if self.tabs.widget(i).widget() is view:
                self.tabs.setCurrentIndex(i)
                return

    def current_figure(self):
        return self.current_view().figure()

    def export_figure(self, path: str | Path) -> Path | None:
        """Write the current tab's figure to ``path``; None (and a message) if it cannot be."""
        fig = self.current_figure()
        if fig is None:
            self.window.show_error("Nothing to export yet: show a view first.")
            return None
        try:
            written = export_figure(fig, path)
        except FigureError as exc:
            self.window.show_error(str(exc))
            return None
        self.window.statusBar().showMessage(f"Figure saved to {written.name}", 5000)
        return written

    def _export_dialog(self) -> None:
        doc = self.window.doc
        stem = Path(doc.item.id).stem if doc is not None else "figure"
        name = f"{stem}-{self.tabs.tabText(self.tabs.currentIndex()).lower().replace(' ', '-')}"
        path, _ = QFileDialog.getSaveFileName(self, "Export figure", str(Path.home() / name),
                                              "PNG images (*.png)")
        if path:
            self.export_figure(path)


def install_explain(window) -> ExplainDock:
    """Add the "Inside the model" dock and the receptive-field tool to ``window``."""
    session = ExplainSession(window)
    dock = ExplainDock(window, session)
    window.explain = dock
    qdock: QDockWidget = window._dock(dock, "Inside the model",
                                      Qt.DockWidgetArea.RightDockWidgetArea)
    install_rf_tool(window, dock.receptive)
    view_menu = next((a.menu() for a in window.menuBar().actions()
                      if a.menu() is not None and a.text().replace("&", "") == "View"), None)
    if view_menu is not None:
        view_menu.addSeparator()
        view_menu.addAction(qdock.toggleViewAction())
    return dock
