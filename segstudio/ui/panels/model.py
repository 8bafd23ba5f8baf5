"""The model panel: pick a model and device, run it, watch progress, cancel.

A model without trained weights is flagged in red: its output is noise, and the panel says so.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QCheckBox, QComboBox, QFileDialog, QFormLayout, QGroupBox,
                               QHBoxLayout, QLabel, QProgressBar, QPushButton, QVBoxLayout,
                               QWidget)

from segstudio.ui.background.workers import CatalogEntry, ModelChoice


class ModelPanel(QWidget):
    runCurrent = Signal()
    runAll = Signal()
    runSelected = Signal()
    cancel = Signal()
    pause = Signal(bool)
    choiceChanged = Signal(object)       # ModelChoice
    modelFileChosen = Signal(object)     # Path of a model file or folder to load and check

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.entries: list[CatalogEntry] = []
        self.model_combo = QComboBox(self)
        self.model_combo.addItem("Loading the model list…")
        self.model_combo.setEnabled(False)
        self.model_combo.currentIndexChanged.connect(self._picked)
        # Long checkpoint names must not set the dock's (and so the window's) smallest width.
        self.model_combo.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.model_combo.setMinimumContentsLength(12)
        self.load_button = QPushButton("Load model…", self)
        self.load_button.setToolTip("A segstudio checkpoint, a TorchScript archive or an ONNX "
                                    "model; its classes come from the file or a "
                                    "<file>.segstudio.json beside it")
        self.load_button.clicked.connect(self.choose_model_file)
        self.device_combo = QComboBox(self)
        for d in ("auto", "cpu", "cuda", "mps"):
            self.device_combo.addItem(d)
        self.device_combo.currentIndexChanged.connect(self._picked)
        self.precision_combo = QComboBox(self)
        for p in ("auto", "fp32"):
            self.precision_combo.addItem(p)
        self.precision_combo.setToolTip("auto: bf16/fp16 only where the device computes it "
                                        "natively and it measured faster and faithful to fp32 "
                                        "for this model; fp32 forces full precision")
        self.precision_combo.currentIndexChanged.connect(self._picked)
        self.run_button = QPushButton("Run on image", self)
        self.run_button.setToolTip("Segment the image on screen (Ctrl+R)")
        self.run_selected_button = QPushButton("Run on selected", self)
        self.run_selected_button.setToolTip("Segment the items selected in the file list "
                                            "(Shift/Ctrl+click to select several)")
        self.run_selected_button.clicked.connect(self.runSelected)
        self.run_all_button = QPushButton("Run on all", self)
        self.run_all_button.setToolTip("Segment every item that has no corrected labels")
        self.cancel_button = QPushButton("Cancel", self)
        self.cancel_button.setEnabled(False)
        self.pause_button = QPushButton("Pause", self)
        self.pause_button.setCheckable(True)
        self.pause_button.setEnabled(False)
        self.pause_button.toggled.connect(self.pause)
        self.overwrite_box = QCheckBox("Replace corrected labels too", self)
        self.overwrite_box.setToolTip("For Run on all. Off (the default): items a person "
                                      "corrected or reviewed keep their labels and are skipped")
        self.queue_label = QLabel("", self)
        self.run_button.clicked.connect(self.runCurrent)
        self.run_all_button.clicked.connect(self.runAll)
        self.cancel_button.clicked.connect(self.cancel)
        self.progress = QProgressBar(self)
        self.progress.setTextVisible(True)
        self.progress.setValue(0)
        self.state_label = QLabel("No model loaded yet.", self)
        self.state_label.setWordWrap(True)
        self.warning_label = QLabel("", self)
        self.warning_label.setWordWrap(True)
        self.warning_label.setStyleSheet("color: #e0443e; font-weight: bold;")
        self.warning_label.hide()
        self.card_box = QGroupBox("Model card", self)
        self.card_label = QLabel("Pick a model to see what it was trained on.", self.card_box)
        self.card_label.setWordWrap(True)
        self.card_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        QVBoxLayout(self.card_box).addWidget(self.card_label)

        form = QFormLayout()
        row = QHBoxLayout()
        row.addWidget(self.model_combo, 1)
        row.addWidget(self.load_button)
        form.addRow("Model", row)
        dev = QHBoxLayout()
        dev.addWidget(self.device_combo)
        dev.addWidget(QLabel("Precision", self))
        dev.addWidget(self.precision_combo)
        form.addRow("Device", dev)
        buttons = QHBoxLayout()
        for b in (self.run_button, self.run_selected_button, self.run_all_button):
            buttons.addWidget(b)
        controls = QHBoxLayout()
        controls.addWidget(self.pause_button)
        controls.addWidget(self.cancel_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(form)
        layout.addLayout(buttons)
        layout.addLayout(controls)
        layout.addWidget(self.overwrite_box)
        layout.addWidget(self.progress)
        layout.addWidget(self.queue_label)
        layout.addWidget(self.warning_label)
        layout.addWidget(self.state_label)
        layout.addWidget(self.card_box)
        layout.addStretch(1)

    # -- catalogue ---------------------------------------------------------------------------
    # The combo box shows a heading row (disabled, bold) above each group of entries; its item
    # data (the user role) holds the entry's index in ``entries``, and -1 on a heading.
    def set_catalog(self, entries: list[CatalogEntry]) -> None:
        self.entries = list(entries)
        combo = self.model_combo
        combo.blockSignals(True)
        combo.clear()
        group = None
        for i, e in enumerate(self.entries):
            if e.group and e.group != group:
                self._add_heading(combo.count(), e.group)
            group = e.group
            self._add_row(combo.count(), i)
        combo.setEnabled(bool(self.entries))
        combo.blockSignals(False)
        usable = [i for i, e in enumerate(self.entries) if not e.broken]
        if usable:
            self.select_entry(usable[0])
            self._picked()

    def _add_heading(self, row: int, text: str) -> None:
        self.model_combo.insertItem(row, text, -1)
        item = self.model_combo.model().item(row)
        item.setEnabled(False)                          # not selectable
        font = item.font()
        font.setBold(True)
        item.setFont(font)

    def _add_row(self, row: int, index: int) -> None:
        e = self.entries[index]
        self.model_combo.insertItem(row, e.title, index)
        self.model_combo.setItemData(row, e.detail, Qt.ItemDataRole.ToolTipRole)
        if e.broken:                      # listed with its reason (tooltip), never chosen
            item = self.model_combo.model().item(row)
            item.setEnabled(False)
            item.setForeground(Qt.GlobalColor.red)

    def add_entry(self, entry: CatalogEntry) -> None:
        """A checkpoint the user loaded from a file: first in the list, and chosen."""
        self.entries.insert(0, entry)
        for row in range(self.model_combo.count()):        # every index moves down one
            k = self.model_combo.itemData(row)
            if isinstance(k, int) and k >= 0:
                self.model_combo.setItemData(row, k + 1)
        self._add_row(0, 0)
        self.select_entry(0)

    def select_entry(self, index: int) -> None:
        """Choose ``entries[index]`` in the picker."""
        row = self.model_combo.findData(index)
        if row >= 0:
            self.model_combo.setCurrentIndex(row)

    def current_entry(self) -> CatalogEntry | None:
        k = self.model_combo.currentData()
        return self.entries[k] if isinstance(k, int) and 0 <= k < len(self.entries) else None

    def current_choice(self) -> ModelChoice | None:
        e = self.current_entry()
        if e is None:
            return None
        return dataclasses.replace(e.choice, device=self.device_combo.currentText(),
                                   precision=self.precision_combo.currentText())

    def _picked(self, *_):
        entry = self.current_entry()
        if entry is None:
            return
        self.show_trained(entry.trained, entry.title)
        self.choiceChanged.emit(self.current_choice())

    def choose_model_file(self) -> None:
        """Model ▸ Load model…: the file is loaded and checked in the worker before it joins
        the list (see ``modelFileChosen``)."""
        path, _ = QFileDialog.getOpenFileName(
            self, "Load model", str(Path.home()),
            "Models (*.pt *.pth *.ts *.onnx);;segstudio checkpoints (*.pt *.pth);;"
            "TorchScript archives (*.pt *.pth *.ts);;ONNX models (*.onnx);;All files (*)")
        if path:
            self.modelFileChosen.emit(Path(path))

    def choose_model_folder(self) -> None:
        """Model ▸ Load model folder…: a Hugging Face or smp folder (config.json and
        model.safetensors)."""
        path = QFileDialog.getExistingDirectory(self, "Load model folder", str(Path.home()))
        if path:
            self.modelFileChosen.emit(Path(path))

    def add_model_file(self, choice: ModelChoice, info: dict) -> None:
        """A model file that loaded: first in the list under its own heading, and chosen."""
        names = info["classes"].names
        detail = (f"{info['arch']} model from {choice.model_file}, {len(names)} classes: "
                  + ", ".join(names))
        self.add_entry(CatalogEntry(choice, f"{choice.model_file.name} — from file", True,
                                    detail, tuple(names), class_set=info["classes"]))

    # -- state -------------------------------------------------------------------------------
    def show_trained(self, trained: bool, title: str = "") -> None:
        if trained:
            self.warning_label.hide()
        else:
            self.warning_label.setText("Untrained model: random weights. Its output is noise, "
                                       "not a segmentation. Pick a trained checkpoint or "
                                       "fine-tune on your labels.")
            self.warning_label.show()

    def show_model(self, info: dict) -> None:
        self.show_trained(info["trained"])
        what = (f"{info['arch']} model" if info.get("foreign")
                else f"{info['arch']} ({info['config']})")
        self.state_label.setText(
            f"{info['label']}: {what} on {info['device']}, "
            f"{info['precision']}; classes: {', '.join(info['classes'].names)}"
            + (f"\nPrecision {info['precision_note']}" if info.get("precision_note") else ""))
        self.show_card(info.get("training"), info["trained"], bool(info.get("foreign")))

    def show_card(self, training: dict | None, trained: bool, foreign: bool = False) -> None:
        """What the loaded checkpoint says about its training data, scores and intended use."""
        from segstudio.models.model_card import card_problem, read_card

        self.card_label.setStyleSheet("")
        if not trained:
            self.card_label.setText("Random weights: trained on nothing, fit for nothing but "
                                    "trying the app.")
            return
        card = read_card(training)
        problem = card_problem(training)
        if card is None and problem is not None:      # a damaged card must not pass silently
            self.card_label.setStyleSheet("color: #e0443e; font-weight: bold;")
            self.card_label.setText(problem[0].upper() + problem[1:] + ".")
            return
        if card is None and foreign:
            self.card_label.setText("This model file carries no model card, so the app cannot "
                                    "tell when an image lies outside its training data. "
                                    "Measure one on data like it: segstudio card "
                                    f"{(training or {}).get('file', 'MODEL')} --data VOC_DIR")
            return
        if card is None:
            self.card_label.setText("This checkpoint carries no model card: nothing is recorded "
                                    "about its training data, so the app cannot tell when an "
                                    "image lies outside it.")
            return
        self.card_label.setText("\n".join(card.summary_lines()))

    def set_running(self, running: bool) -> None:
        self.run_button.setEnabled(not running)
        self.run_selected_button.setEnabled(not running)
        self.run_all_button.setEnabled(not running)
        self.cancel_button.setEnabled(running)
        self.pause_button.setEnabled(running)
        if not running:
            self.pause_button.setChecked(False)
            self.queue_label.setText("")
            self.progress.setMaximum(max(1, self.progress.maximum()))

    def show_progress(self, done: int, total: int) -> None:
        self.progress.setMaximum(max(1, total))
        self.progress.setValue(done)
        self.progress.setFormat(f"{done} / {total}")
