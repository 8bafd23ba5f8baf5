"""Background work for the window: model loading and inference in a worker thread.

The worker owns the Predictor and so is the only place torch is imported; the GUI thread only
ever sees plain results through queued signals. Cancel is a flag the Predictor polls between
tiles, and the queue is checked between items, so Cancel stops within one item.
"""

from __future__ import annotations

import importlib
import threading
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from PySide6.QtCore import QObject, QThread, Signal, Slot


@dataclass(frozen=True)
class ModelChoice:
    """What the user picked: a bundled/user checkpoint, a registry model with random weights,
    or a model file of any format the user loaded (``model_file``: a TorchScript or ONNX file,
    a model folder, or a segstudio checkpoint)."""

    arch: str
    checkpoint: Path | None = None
    config: str = "lite"
    device: str = "auto"
    precision: str = "auto"
    model_file: Path | None = None

    @property
    def label(self) -> str:
        if self.model_file is not None:
            return self.model_file.name
        return self.checkpoint.name if self.checkpoint else f"{self.arch} ({self.config}, untrained)"

    def build_predictor(self, defer_calibration: bool = False):
        """The Predictor for this choice (imports torch: call it off the GUI thread).
        ``defer_calibration``: the first image in fp32 at once, ``auto``'s measurement after it
        (see :meth:`segstudio.models.engine.Predictor.calibrate`)."""
        from segstudio.models.engine import Predictor

        if self.model_file is not None:
            from segstudio.models.formats import load_any

            return Predictor.from_model(load_any(self.model_file), device=self.device,
                                        precision=self.precision,
                                        defer_calibration=defer_calibration)
        if self.checkpoint is not None:
            return Predictor.from_checkpoint(self.checkpoint, device=self.device,
                                             precision=self.precision,
                                             defer_calibration=defer_calibration)
        from segstudio.core.classes import chest_xray

        return Predictor.untrained(self.arch, chest_xray(), self.config, device=self.device,
                                   precision=self.precision)


@dataclass(frozen=True)
class CatalogEntry:
    """One line of the model picker."""

    choice: ModelChoice
    title: str
    trained: bool
    detail: str
    classes: tuple[str, ...] = ()          # a checkpoint's class names (empty: untrained)
    group: str = ""                        # the picker's heading this entry sits under
    broken: str = ""                       # why the file cannot be used (listed, not choosable)
    class_set: object = None               # a checkpoint's ClassSet (names and colours)


def model_info(predictor, label: str) -> dict:
    """What the Model panel shows of a loaded Predictor (sent from the worker as plain data)."""
    meta = predictor.meta
    return {"arch": meta.arch, "config": meta.config, "classes": meta.classes,
            "trained": predictor.trained, "device": str(predictor.device),
            "precision": predictor.precision, "precision_note": predictor.precision_note,
            "training": meta.training, "label": label,
            "foreign": bool(getattr(predictor, "foreign", False))}


USER_GROUP = "Your fine-tuned models"
UNTRAINED_GROUP = "Untrained: random weights"
BROKEN_GROUP = "Unusable checkpoint files"


def _mtime(path: Path) -> float:
    """A file's modification time; 0 for one that vanished or is a dangling link."""
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _class_group(meta) -> str:
    """A bundled checkpoint's heading: what it was trained to find."""
    names = [n for n in meta.classes.names if n != "background"]
    title = meta.classes.title if meta.classes.title not in ("", "custom") else "Trained"
    return f"{title} ({', '.join(names)})"


def _warm_up() -> None:
    """Import torchvision and every model module now.

    Importing them holds the GIL for up to a few hundred milliseconds (extension
    initialisation): done while the model list loads, those stalls stay out of model runs. A
    demo's first run comes before it (its model lists alone, and the chest U-Net needs no
    torchvision): the first result then waits for torch only.
    """
    import torchvision.models.segmentation  # noqa: F401
    import segstudio.models.engine  # noqa: F401
    for module in ("fcn", "segnet", "unet", "pspnet", "deeplab", "refinenet", "maskrcnn"):
        importlib.import_module(f"segstudio.models.{module}")


def build_catalog(folders: list[Path], only: Path | None = None) -> list[CatalogEntry]:
    """Trained checkpoints found in ``folders`` first, then every registry model untrained.

    ``only``: just that checkpoint's entry (a demo's model, listed before the others are read
    so that it runs at once; the full list follows)."""
    from segstudio.models.checkpoint import CheckpointError, read_meta
    from segstudio.models.registry import REGISTRY

    if only is None:
        _warm_up()
    entries: list[CatalogEntry] = []
    for folder in folders:
        # The user's fine-tuned models newest first; bundled ones grouped by what they find
        # (their class set), in name order within a group.
        files = sorted(Path(folder).glob("*.pt"))
        if only is not None:
            files = [p for p in files if p == only]
        user = folder == folders[0]
        if user:
            files.sort(key=_mtime, reverse=True)
        found = []
        for path in files:
            try:
                # The user's own files are checked weight by weight (a diverged fine-tune saves
                # NaN); the bundled ones are checked by the test suite.
                meta = read_meta(path, check_weights=user)
            except CheckpointError as exc:
                # One bad file is listed with its reason; it never hides the others.
                found.append(CatalogEntry(ModelChoice("?", path), f"{path.stem} — broken, "
                                          "cannot be used", False, str(exc),
                                          group=USER_GROUP if user else BROKEN_GROUP,
                                          broken=str(exc)))
                continue
            summary = meta.training or {}
            score = summary.get("val_mIoU")
            detail = f"{meta.arch} ({meta.config}), {len(meta.classes)} classes: " + ", ".join(
                meta.classes.names) + (f"; validation mIoU {score:.3f}" if isinstance(score, float) else "")
            group = USER_GROUP if user else _class_group(meta)
            found.append(CatalogEntry(ModelChoice(meta.arch, path, meta.config),
                                      f"{path.stem} — trained", bool(meta.trained), detail,
                                      tuple(meta.classes.names), group,
                                      class_set=meta.classes))
        if folder != folders[0]:
            first_seen = {}
            for e in found:
                first_seen.setdefault(e.group, len(first_seen))
            found.sort(key=lambda e: first_seen[e.group])          # stable: names stay sorted
        entries += found
    for spec in REGISTRY.values() if only is None else ():
        entries.append(CatalogEntry(ModelChoice(spec.name, None, spec.configs[0]),
                                    f"{spec.title} — untrained (random weights)", False,
                                    f"{spec.paper} ({spec.year}). {spec.description}",
                                    group=UNTRAINED_GROUP))
    return entries


@dataclass
class Job:
    """One item to segment: its workspace row, a way to get its RGB pixels, and optionally a
    way to store the prediction's files (run in the worker, so PNG encoding stays off the GUI
    thread)."""

    row: int
    load_rgb: Callable[[], np.ndarray]
    store: Callable[[object], None] | None = None


class _InferenceWorker(QObject):
    modelReady = Signal(object)            # dict: arch, classes, trained, device, precision, notes
    result = Signal(int, object)           # row, Prediction
    progress = Signal(int, int)            # done, total
    failed = Signal(int, str)              # row (-1: not about one item), message
    finished = Signal(bool)                # True if cancelled
    catalogReady = Signal(object)          # list[CatalogEntry]
    started = Signal(int)                  # row whose prediction begins now
    precisionSettled = Signal(object)      # model info once `auto` is measured (next image on)

    def __init__(self) -> None:
        super().__init__()
        self.cancel_flag = threading.Event()
        self.pause_flag = threading.Event()
        self._predictor = None
        self._choice: ModelChoice | None = None

    @Slot(object, object)
    def catalog(self, folders: list[Path], only: Path | None) -> None:
        try:
            self.catalogReady.emit(build_catalog(folders, only))
        except Exception as exc:   # noqa: BLE001
            self.failed.emit(-1, _message(exc))
        self.finished.emit(False)

    @Slot(object)
    def load(self, choice: ModelChoice) -> None:
        try:
            self._load(choice)
        except Exception as exc:   # noqa: BLE001 - every failure must reach the user as text
            self._predictor, self._choice = None, None
            self.failed.emit(-1, _message(exc))
            self.finished.emit(False)
            return
        self.finished.emit(False)

    def _load(self, choice: ModelChoice) -> None:
        pred = choice.build_predictor(defer_calibration=True)
        self._predictor, self._choice = pred, choice
        self.modelReady.emit(model_info(pred, choice.label))

    @Slot(object, object)
    def run(self, choice: ModelChoice, jobs: list[Job]) -> None:
        self.cancel_flag.clear()
        cancelled = False
        try:
            if self._predictor is None or self._choice != choice:
                self._load(choice)
            total = len(jobs)
            self.progress.emit(0, total)
            loaded: _Loaded | None = None
            for done, job in enumerate(jobs, 1):
                while self.pause_flag.is_set() and not self.cancel_flag.is_set():
                    self.cancel_flag.wait(0.05)
                if self.cancel_flag.is_set():
                    cancelled = True
                    break
                self.started.emit(job.row)
                try:
                    rgb = (loaded or _Loaded(job)).pixels()
                    loaded = None
                    prediction = self._predictor.predict(rgb, cancel=self.cancel_flag.is_set)
                    prediction.domain = _domain_finding(self._predictor.meta, prediction, rgb)
                    if job.store is not None:
                        job.store(prediction)
                except Exception as exc:   # noqa: BLE001
                    loaded = None
                    if type(exc).__name__ == "PredictionCancelled":
                        cancelled = True
                        break
                    self.failed.emit(job.row, _message(exc))
                    continue
                # Decode the next image before announcing this result: the GUI thread then
                # applies it while the network runs (which leaves Python's lock free), not while
                # the decoder holds the lock.
                if done < total and not self.cancel_flag.is_set():
                    loaded = _Loaded(jobs[done])
                self.result.emit(job.row, prediction)
                self.progress.emit(done, total)
                self._calibrate_if_due()
        except Exception as exc:   # noqa: BLE001
            self.failed.emit(-1, _message(exc))
        self.finished.emit(cancelled)


    def _calibrate_if_due(self) -> None:
        """``auto`` precision measured after the first result is on screen, not before it:
        the verdict applies from the next image. A cancel leaves it due for the next run."""
        pred = self._predictor
        if pred is None or not pred.calibration_due or self.cancel_flag.is_set():
            return
        try:
            pred.calibrate()
        except Exception as exc:   # noqa: BLE001 - a failed measurement keeps fp32, said so
            pred.precision, pred.precision_note = "fp32", f"fp32: measuring failed ({_message(exc)})"
        self.precisionSettled.emit(model_info(pred, self._choice.label))


def _domain_finding(meta, prediction, rgb):
    """How far ``rgb`` lies from the model's training data (None without a model card). The
    check describes a prediction; a failure in it must never cost the prediction itself."""
    from segstudio.models import domain

    try:
        return domain.check(meta, prediction, rgb)
    except Exception:   # noqa: BLE001
        return None


class _Loaded:
    """A job's pixels read ahead of time, or the error reading them gave (raised when used)."""

    def __init__(self, job: Job) -> None:
        self.rgb: np.ndarray | None = None
        self.error: Exception | None = None
        try:
            self.rgb = job.load_rgb()
        except Exception as exc:   # noqa: BLE001 - reported for this job when it is run
            self.error = exc

    def pixels(self) -> np.ndarray:
        if self.error is not None:
            raise self.error
        return self.rgb


def _message(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    known = {"CheckpointError", "PredictorError", "DeviceError", "ImageReadError",
             "WorkspaceError", "VideoError", "ModelFormatError"}
    if type(exc).__name__ in known:
        return text
    if isinstance(exc, MemoryError):
        return "Out of memory while running the model; try a smaller tile size or the CPU."
    # Unexpected: keep the last frame for a bug report, without flooding the user.
    last = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
    where = f" ({Path(last[0].filename).name}:{last[0].lineno})" if last else ""
    return f"{type(exc).__name__}: {text}{where}"


class ModelRunner(QObject):
    """Owns the worker thread; the window talks to this object only."""

    modelReady = Signal(object)
    result = Signal(int, object)
    progress = Signal(int, int)
    failed = Signal(int, str)
    finished = Signal(bool)
    catalogReady = Signal(object)
    started = Signal(int)
    precisionSettled = Signal(object)
    _catalog = Signal(object, object)
    _load = Signal(object)
    _run = Signal(object, object)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._thread = QThread()
        self._thread.setObjectName("segstudio-inference")
        self._worker = _InferenceWorker()
        self._worker.moveToThread(self._thread)
        self._catalog.connect(self._worker.catalog)
        self._load.connect(self._worker.load)
        self._run.connect(self._worker.run)
        for name in ("modelReady", "result", "progress", "failed", "catalogReady", "started",
                     "precisionSettled"):
            getattr(self._worker, name).connect(getattr(self, name))
        self._worker.finished.connect(self._on_finished)
        self._thread.start()
        self._active = 0

    @property
    def busy(self) -> bool:
        return self._active > 0

    def list_models(self, folders: list[Path], only: Path | None = None) -> None:
        """The model list of ``folders`` (see :func:`build_catalog`), to ``catalogReady``."""
        self._active += 1
        self._catalog.emit(folders, only)

    def load(self, choice: ModelChoice) -> None:
        self._active += 1
        self._load.emit(choice)

    def run(self, choice: ModelChoice, jobs: list[Job]) -> None:
        self._active += 1
        self._run.emit(choice, jobs)

    def cancel(self) -> None:
        self._worker.pause_flag.clear()
        self._worker.cancel_flag.set()

    def set_paused(self, paused: bool) -> None:
        """Hold the queue after the item in progress (a cancel still stops it)."""
        if paused:
            self._worker.pause_flag.set()
        else:
            self._worker.pause_flag.clear()

    @property
    def paused(self) -> bool:
        return self._worker.pause_flag.is_set()

    def _on_finished(self, cancelled: bool) -> None:
        self._active = max(0, self._active - 1)
        self.finished.emit(cancelled)

    def shutdown(self) -> None:
        self.cancel()
        self._thread.quit()
        self._thread.wait(30000)
