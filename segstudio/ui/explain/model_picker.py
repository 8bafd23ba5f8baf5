"""The "Inside the model" dock's model picker: the Model panel's choice (the default, named
with what it is), the trained models of the Model panel's list, any registry model with random
weights (each named untrained), or a checkpoint file."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import (QComboBox, QFileDialog, QHBoxLayout, QLabel, QPushButton,
                               QVBoxLayout, QWidget)

from segstudio.ui.explain.session import FOLLOW_PANEL, ExplainSession, ModelSource


class ModelPicker(QWidget):
    """Which network the views look into: the Model panel's, a registry model, or a file."""

    def __init__(self, session: ExplainSession, parent: QWidget | None = None) -> None:
        from segstudio.models.registry import REGISTRY

        super().__init__(parent)
        self.session = session
        self.combo = QComboBox(self)
        self.combo.addItem("Model panel's choice", FOLLOW_PANEL)
        for spec in REGISTRY.values():
            if not spec.instance:
                self.combo.addItem(f"{spec.title} — untrained (random weights)", spec.name)
        self._trained_rows = 0                  # rows of trained checkpoints, after row 0
        # The registry's long titles must not set the dock's (and the window's) smallest width.
        self.combo.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.combo.setMinimumContentsLength(12)
        self.config_combo = QComboBox(self)
        self.config_combo.addItems(["lite", "paper"])
        self.file_button = QPushButton("Checkpoint…", self)
        self.file_button.clicked.connect(self._choose_file)
        self.combo.currentIndexChanged.connect(self._changed)
        self.config_combo.currentIndexChanged.connect(self._changed)
        self.untrained = QLabel("Random weights: these views show the architecture's wiring, "
                                "not learnt features (receptive fields do not depend on weights).",
                                self)
        self.untrained.setWordWrap(True)
        self.untrained.setStyleSheet("color: #e0443e; font-weight: bold;")
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        row = QHBoxLayout()
        row.addWidget(QLabel("Model", self))
        row.addWidget(self.combo, 1)
        row.addWidget(self.config_combo)
        row.addWidget(self.file_button)
        outer.addLayout(row)
        outer.addWidget(self.untrained)
        session.sourceChanged.connect(lambda *_: self._show_untrained())
        models = session.window.models
        models.panel.choiceChanged.connect(lambda *_: self._name_panel_choice())
        models.runner.catalogReady.connect(lambda *_: self.list_trained())
        self._changed()

    def list_trained(self) -> None:
        """Offer the Model panel's trained models by name, right after its choice: looking
        into a trained network must not mean random weights."""
        from segstudio.models.registry import REGISTRY

        current = self.combo.currentData()
        self.combo.blockSignals(True)
        for _ in range(self._trained_rows):
            self.combo.removeItem(1)
        rows = []
        for e in self.session.window.models.panel.entries:
            spec = REGISTRY.get(e.choice.arch)
            if e.trained and not e.broken and e.choice.checkpoint is not None and \
                    spec is not None and not spec.instance:
                rows.append((f"{e.title} ({e.choice.checkpoint.name})", str(e.choice.checkpoint)))
        for i, (text, data) in enumerate(rows, 1):
            self.combo.insertItem(i, text, data)
        self._trained_rows = len(rows)
        index = self.combo.findData(current)
        self.combo.setCurrentIndex(max(0, index))
        self.combo.blockSignals(False)
        self._name_panel_choice()

    def _name_panel_choice(self) -> None:
        entry = self.session.window.models.panel.current_entry()
        what = "" if entry is None else f": {entry.title}" + ("" if entry.trained
                                                               else " — untrained")
        self.combo.setItemText(0, f"Model panel's choice{what}")

    def add_checkpoint(self, path: Path) -> None:
        self.combo.addItem(f"{path.name} (file)", str(path))
        self.combo.setCurrentIndex(self.combo.count() - 1)

    def _choose_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Checkpoint to look into", str(Path.home()),
                                              "segstudio checkpoints (*.pt *.pth);;All files (*)")
        if path:
            self.add_checkpoint(Path(path))

    def _changed(self, *_) -> None:
        from segstudio.models.registry import REGISTRY

        data = self.combo.currentData()
        spec = REGISTRY.get(data)
        self.config_combo.setEnabled(spec is not None and len(spec.configs) > 1)
        if data == FOLLOW_PANEL:
            self.session.pick(None)
        elif spec is not None:
            config = self.config_combo.currentText()
            if config not in spec.configs:
                config = spec.configs[0]
            self.session.pick(ModelSource(spec.name, config, None,
                                          len(self.session.window.classes)))
        else:
            self.session.pick(ModelSource("", "lite", Path(data)))
        self._show_untrained()

    def _show_untrained(self) -> None:
        source = self.session.current_source()
        self.untrained.setVisible(source is not None and source.checkpoint is None
                                  and source.model_file is None)
