"""The "Inside the model" dock's model picker: the Model panel's choice, any registry model
(random weights, flagged), or a checkpoint file."""

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
                self.combo.addItem(spec.title, spec.name)
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
        self._changed()

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
        self.untrained.setVisible(source is not None and source.checkpoint is None)
