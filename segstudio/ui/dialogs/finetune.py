"""Model ▸ Fine-tune on this workspace…: train on the labels people corrected, watch it learn.

The corrected and reviewed items are exported as a VOC tree under the user's data folder, a
registry model is trained on it in a background thread (live loss and validation mIoU), and the
best checkpoint joins the model picker. Training happens only when the user starts it.

By default the run starts from a trained model of the chosen architecture (the one picked in the
Model panel when it fits, else one trained on the workspace's classes), so a few corrected images
adapt what the model knows instead of starting over; "random weights" trains from scratch. The
learning rate, epochs, batch size and crop it starts with are ``FINE_TUNE``, the setting that
adapted fastest in ``bench/bench_adapt.py`` (BENCHMARKS.md, "Learning from corrections").

Mask R-CNN learns objects, so it trains on the corrected and reviewed items that have objects
(their object maps go to the tree's ``SegmentationObject/``); the others are left out.

A Hugging Face or smp model folder chosen in the Model panel is offered first, as itself: it is
fine-tuned from its own weights on its own classes, the workspace's labels matched to them by
name (:mod:`segstudio.train.finetune_file`), and comes back as a folder of the same format, which
joins the model list.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

from PySide6.QtCore import QPointF, QRectF, Qt, QThread, Signal
from PySide6.QtGui import QColor, QPainter, QPen
from PySide6.QtWidgets import (QComboBox, QDialog, QDoubleSpinBox, QFormLayout, QHBoxLayout,
                               QLabel, QProgressBar, QPushButton, QSpinBox, QVBoxLayout, QWidget)

from segstudio.io.workspace import ItemStatus
from segstudio.paths import user_data_dir
from segstudio.train.finetune_defaults import FINE_TUNE, FROM_SCRATCH

TRAINABLE = (ItemStatus.CORRECTED, ItemStatus.REVIEWED)
FOLDER = "folder:"          # the architecture combo's data for a model folder: FOLDER + path


def _model_folder(data) -> Path | None:
    """The model folder an architecture entry stands for, or None for a registry model."""
    return Path(data[len(FOLDER):]) if isinstance(data, str) and data.startswith(FOLDER) \
        else None


def _is_instance(arch: str | None) -> bool:
    from segstudio.models.registry import REGISTRY

    spec = REGISTRY.get(arch or "")
    return bool(getattr(spec, "instance", False))


def trainable_items(ws, arch: str | None) -> list:
    """The corrected and reviewed items ``arch`` learns from: for Mask R-CNN those with objects."""
    from segstudio.io.object_store import load_objects

    items = ws.labelled_items(TRAINABLE)
    if _is_instance(arch):
        items = [i for i in items if _has_objects(ws, i, load_objects)]
    return items


def _has_objects(ws, item, load_objects) -> bool:
    from segstudio.io.workspace import WorkspaceError

    try:
        return load_objects(ws, item) is not None
    except WorkspaceError:           # a damaged or linked object map: not trainable
        return False


class CurvePlot(QWidget):
    """Training loss per step and validation mIoU per epoch, drawn with QPainter."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMinimumSize(360, 160)
        self.loss: list[float] = []
        self.miou: list[float] = []

    def add_loss(self, v: float) -> None:
        self.loss.append(v)
        self.update()

    def add_miou(self, v: float) -> None:
        self.miou.append(v)
        self.update()

    def paintEvent(self, event) -> None:  # noqa: N802
        p = QPainter(self)
        p.fillRect(self.rect(), QColor(30, 30, 34))
        r = QRectF(self.rect()).adjusted(34, 10, -10, -20)
        p.setPen(QColor(90, 90, 96))
        p.drawRect(r)
        p.setPen(QColor(200, 200, 200))
        p.drawText(QRectF(4, r.top() - 2, 30, 14), Qt.AlignmentFlag.AlignLeft, "1.0")
        p.drawText(QRectF(4, r.bottom() - 12, 30, 14), Qt.AlignmentFlag.AlignLeft, "0")
        for values, colour, top in ((self.loss, QColor(240, 150, 60), max(self.loss or [1.0])),
                                    (self.miou, QColor(90, 200, 120), 1.0)):
            if len(values) < 1:
                continue
            p.setPen(QPen(colour, 1.6))
            n = max(len(values) - 1, 1)
            pts = [QPointF(r.left() + r.width() * i / n,
                           r.bottom() - r.height() * min(v / max(top, 1e-9), 1.0))
                   for i, v in enumerate(values)]
            for a, b in zip(pts, pts[1:]):
                p.drawLine(a, b)
            for pt in pts if values is self.miou else []:
                p.drawEllipse(pt, 2.5, 2.5)
        p.setPen(QColor(240, 150, 60))
        p.drawText(QRectF(r.left(), r.bottom() + 4, 150, 14), Qt.AlignmentFlag.AlignLeft,
                   "training loss (scaled)")
        p.setPen(QColor(90, 200, 120))
        p.drawText(QRectF(r.left() + 160, r.bottom() + 4, 160, 14), Qt.AlignmentFlag.AlignLeft,
                   "validation mIoU")


class TrainingThread(QThread):
    progressed = Signal(object)      # TrainProgress
    message = Signal(str)
    succeeded = Signal(object)       # TrainResult
    failed = Signal(str)

    def __init__(self, workspace, arch: str, config: str, epochs: int, crop: int, out: Path,
                 data_dir: Path, init: Path | None = None, lr: float | None = None,
                 batch_size: int | None = None, parent=None) -> None:
        """``arch`` is a registry name, or ``FOLDER`` + the path of a model folder to
        fine-tune (then ``config`` and ``init`` are not used)."""
        super().__init__(parent)
        start = FINE_TUNE if init is not None else FROM_SCRATCH
        self.lr = start.lr if lr is None else lr
        self.batch_size = start.batch_size if batch_size is None else batch_size
        self.args = (workspace, arch, config, epochs, crop, out, data_dir, init)
        self.cancel_flag = threading.Event()
        if parent is not None:       # the dialog destroyed mid-run: stop, never abort (tasks.py)
            parent.destroyed.connect(self._stop_and_wait)

    def _stop_and_wait(self, *_) -> None:
        self.cancel_flag.set()
        self.wait()

    def run(self) -> None:
        from segstudio.io.voc import VocError, write_voc
        from segstudio.train.loop import TrainError, train

        ws, arch, config, epochs, crop, out, data_dir, init = self.args
        lr, batch = self.lr, self.batch_size
        try:
            self.message.emit("Exporting the corrected labels…")
            items = trainable_items(ws, arch)
            samples = ws.samples(TRAINABLE)
            if _is_instance(arch):                # Mask R-CNN: the items with objects only
                samples = (s for s in samples if s.instances is not None)
            write_voc(data_dir, samples, ws.classes, val_fraction=0.2, seed=0,
                      total=len(items), cancel=self.cancel_flag.is_set)
            folder = _model_folder(arch)
            if folder is not None:
                from segstudio.train.finetune_file import finetune_model_file

                self.message.emit(f"Fine-tuning {folder.name} on {len(items)} item(s)…")
                result = finetune_model_file(folder, data_dir, out, epochs=epochs,
                                             batch_size=batch, lr=lr, crop=crop,
                                             progress=self.progressed.emit,
                                             cancel=self.cancel_flag.is_set, device="auto",
                                             notice=self.message.emit)
                self._record(ws, items, out)
                self.succeeded.emit(result)
                return
            from segstudio.train.memory import registry_step_bytes, require_step_memory

            require_step_memory(registry_step_bytes(arch, config, len(ws.classes), batch, crop),
                                f"training {arch} ({config}) on batches of {batch} crops of "
                                f"{crop} px")
            self.message.emit(f"Training {arch} ({config}) on {len(items)} item(s)…")
            result = train(arch, data_dir, config=config, epochs=epochs, crop=crop, out=out,
                           batch_size=batch, lr=lr, init=init, progress=self.progressed.emit,
                           notice=self.message.emit, cancel=self.cancel_flag.is_set,
                           device="auto",
                           command=f"segstudio train --model {arch} --config {config} "
                                   f"--data {data_dir} --epochs {epochs} --crop {crop} "
                                   f"--batch-size {batch} --lr {lr:g}"
                                   + (f" --init {init}" if init else ""))
            self._record(ws, items, out)
        except (TrainError, VocError, OSError, ValueError) as exc:
            self.failed.emit(str(exc))
            return
        except Exception as exc:   # noqa: BLE001
            self.failed.emit(f"{type(exc).__name__}: {exc}")
            return
        self.succeeded.emit(result)

    @staticmethod
    def _record(ws, items, out: Path) -> None:
        """Which labels the model learnt from, beside it."""
        record = {"workspace": str(ws.root), "trained_at": time.strftime("%Y-%m-%d %H:%M:%S"),
                  "items": [{"id": i.id, "source": str(i.source), "frame": i.frame,
                             "label_updated": i.updated} for i in items]}
        labels = (out.with_suffix(".labels.json") if out.suffix == ".pt"
                  else out.with_name(out.name + ".labels.json"))
        labels.write_text(json.dumps(record, indent=1))


class FineTuneDialog(QDialog):
    def __init__(self, window) -> None:
        super().__init__(window)
        self.setWindowTitle("Fine-tune on this workspace")
        self.window = window
        self.thread: TrainingThread | None = None
        self.result = None
        from segstudio.models.registry import REGISTRY

        self.arch = QComboBox(self)
        for spec in REGISTRY.values():
            if "lite" in spec.configs:
                self.arch.addItem(spec.title, spec.name)
        current = window.models.panel.current_choice()
        if current is not None and current.model_file is not None and current.model_file.is_dir():
            # A Hugging Face or smp folder (the only model folders there are): itself, first.
            self.arch.insertItem(0, f"{current.model_file.name} (its model folder)",
                                 FOLDER + str(current.model_file))
            self.arch.setCurrentIndex(0)
        elif current is not None:
            i = self.arch.findData(current.arch)
            if i >= 0:
                self.arch.setCurrentIndex(i)
        self.config = QComboBox(self)
        self.config.addItems(["lite", "paper"])
        self.start_from = QComboBox(self)
        self.start_from.setToolTip("Trained weights to adapt (classes matched by name; a class "
                                   "the model does not know starts fresh), or random weights")
        self.lr = QDoubleSpinBox(self)
        self.lr.setDecimals(5)
        self.lr.setRange(1e-5, 0.1)
        self.lr.setSingleStep(1e-4)
        self.lr.setToolTip("AdamW learning rate; set for the chosen start (trained weights or "
                           "random), as measured in bench/bench_adapt.py")
        self.epochs = QSpinBox(self)
        self.epochs.setRange(1, 500)
        self.batch = QSpinBox(self)
        self.batch.setRange(1, 64)
        self.crop = QSpinBox(self)
        self.crop.setRange(32, 1024)
        self.crop.setSingleStep(32)
        self.start_from.currentIndexChanged.connect(self._follow_start)
        self.arch.currentIndexChanged.connect(self._fill_start_from)
        self.config.currentIndexChanged.connect(self._fill_start_from)
        self._fill_start_from()
        start = self._start_settings()
        self.epochs.setValue(start.epochs)
        self.batch.setValue(start.batch_size)
        self.crop.setValue(start.crop)
        self.count = QLabel("", self)          # filled by _count for the chosen architecture
        self.progress = QProgressBar(self)
        self.status = QLabel("", self)
        self.status.setWordWrap(True)
        self.plot = CurvePlot(self)
        self.start_button = QPushButton("Start training", self)
        self.arch.currentIndexChanged.connect(self._count)
        self._count()
        self.cancel_button = QPushButton("Close", self)
        self.start_button.clicked.connect(self.start)
        self.cancel_button.clicked.connect(self._cancel)
        form = QFormLayout()
        form.addRow("Architecture", self.arch)
        form.addRow("Configuration", self.config)
        form.addRow("Start from", self.start_from)
        form.addRow("Learning rate", self.lr)
        form.addRow("Epochs", self.epochs)
        form.addRow("Batch size", self.batch)
        form.addRow("Crop (px)", self.crop)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.start_button)
        buttons.addWidget(self.cancel_button)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.count)
        layout.addWidget(self.progress)
        layout.addWidget(self.plot)
        layout.addWidget(self.status)
        layout.addLayout(buttons)

    def _count(self, *_) -> None:
        """How many items the chosen architecture can learn from (Mask R-CNN: with objects)."""
        ws, arch = self.window.workspace, self.arch.currentData()
        n = len(trainable_items(ws, arch)) if ws is not None else 0
        what = "with objects " if _is_instance(arch) else ""
        self.count.setText(f"{n} corrected or reviewed item(s) {what}to learn from "
                           "(80% train, 20% validation)")
        self.start_button.setEnabled(n >= 2 and self.thread is None)

    def _fill_start_from(self, *_) -> None:
        """The trained checkpoints of the chosen architecture and configuration: the one picked
        in the Model panel first, then those trained on this workspace's classes; random last."""
        arch, config = self.arch.currentData(), self.config.currentText()
        folder = _model_folder(arch)
        self.config.setEnabled(folder is None)
        if folder is not None:
            self.start_from.clear()
            self.start_from.addItem(f"its own weights ({folder.name})", folder)
            return
        ws = self.window.workspace
        names = tuple(ws.classes.names) if ws is not None else ()
        panel = self.window.models.panel
        picked = panel.current_choice()
        fits = [e for e in panel.entries if e.trained and e.choice.checkpoint is not None
                and e.choice.arch == arch and e.choice.config == config]
        fits.sort(key=lambda e: (picked is None or e.choice.checkpoint != picked.checkpoint,
                                 e.classes != names))
        self.start_from.clear()
        for e in fits:
            same = "same classes" if e.classes == names else "classes matched by name"
            self.start_from.addItem(f"{e.choice.checkpoint.stem} ({same})", e.choice.checkpoint)
        self.start_from.addItem("random weights (train from scratch)", None)

    def _start_settings(self):
        """The measured defaults for the chosen start: ``FINE_TUNE`` from trained weights,
        ``FROM_SCRATCH`` from random ones."""
        return FINE_TUNE if self.start_from.currentData() is not None else FROM_SCRATCH

    def _follow_start(self, *_) -> None:
        """The learning rate follows the start; epochs, batch and crop keep what was typed."""
        self.lr.setValue(self._start_settings().lr)

    def start(self) -> None:
        ws = self.window.workspace
        if ws is None or self.thread is not None:
            return
        if not self.window.maybe_save():
            return
        stamp = time.strftime("%Y%m%d-%H%M%S")
        arch, config = self.arch.currentData(), self.config.currentText()
        root = user_data_dir()
        folder = _model_folder(arch)
        out = (root / "models" / f"{ws.root.name}-{folder.name}-{stamp}" if folder is not None
               else root / "models" / f"{ws.root.name}-{arch}-{config}-{stamp}.pt")
        out.parent.mkdir(parents=True, exist_ok=True)
        data_dir = root / "finetune" / f"{ws.root.name}-{stamp}"
        self.thread = TrainingThread(ws, arch, config, self.epochs.value(), self.crop.value(),
                                     out, data_dir, self.start_from.currentData(),
                                     self.lr.value(), self.batch.value(), self)
        self.thread.progressed.connect(self._progress)
        self.thread.message.connect(self.status.setText)
        self.thread.succeeded.connect(self._done)
        self.thread.failed.connect(lambda m: self.status.setText(f"Training failed: {m}"))
        self.thread.finished.connect(self._finished)
        self.start_button.setEnabled(False)
        self.cancel_button.setText("Cancel")
        self.window.begin_busy()
        self.thread.start()

    def _progress(self, p) -> None:
        total = p.epochs * max(p.steps, 1)
        self.progress.setMaximum(total)
        self.progress.setValue((p.epoch - 1) * max(p.steps, 1) + p.step)
        if p.val is None:
            self.plot.add_loss(p.loss)
        else:
            self.plot.add_miou(p.val.miou)
            self.status.setText(f"Epoch {p.epoch}/{p.epochs}: loss {p.loss:.3f}, validation mIoU "
                                f"{100 * p.val.miou:.1f}%" + (" (best so far)" if p.best else ""))

    def _done(self, result) -> None:
        self.result = result
        verb = "Stopped" if result.cancelled else "Finished"
        self.status.setText(f"{verb} after {result.epochs_done} epoch(s); best validation mIoU "
                            f"{100 * result.best_miou:.1f}% (epoch {result.best_epoch}). The "
                            f"model is in the picker: {result.out.name}")
        if result.out.is_dir():           # a model folder: it loads and joins the list
            self.window.models.load_model_file(result.out)
        else:
            self.window.models.start()    # re-list: the new checkpoint appears first

    def _finished(self) -> None:
        self.thread = None
        self.cancel_button.setText("Close")
        self._count()
        self.window.end_busy()

    def _cancel(self) -> None:
        if self.thread is not None:
            self.thread.cancel_flag.set()
            self.status.setText("Stopping after this step…")
        else:
            self.accept()

    def is_running(self) -> bool:
        return self.thread is not None
