"""The "Inside the model" session: the model and image its views share, and the work they queue.

Every view (activations, branch grid, Grad-CAM, receptive fields, context) asks the session for
work on the image on screen; the session runs one job at a time in a background thread, loading
the chosen network there (torch is never imported on the GUI thread), and keeps loaded networks
so that switching views does not load them again.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np
from PySide6.QtCore import QObject, Signal

from segstudio.ui.background.tasks import BackgroundTask

FOLLOW_PANEL = "__model_panel__"
KEPT_MODELS = 6
ONNX_VIEWS = ("an ONNX model runs in ONNX Runtime, outside torch: it has no modules to read "
              "(activations, Grad-CAM) and no gradients (Grad-CAM, the effective field), and "
              "the receptive-field tracer cannot follow it; export the network as TorchScript "
              "to look inside it")
_KNOWN_ERRORS = {"ProbeError", "CamError", "EffectiveFieldError", "ReceptiveFieldError",
                 "CheckpointError", "ModelConfigError", "UnknownModelError", "ExplainError"}


class ExplainError(Exception):
    """A view cannot be computed for this model, layer or image; the message says why."""


@dataclass(frozen=True)
class ModelSource:
    """Which network a view runs: a registry model with random weights, a checkpoint, or a
    model file of another format (``model_file``: TorchScript, a Hugging Face or smp folder)."""

    arch: str
    config: str = "lite"
    checkpoint: Path | None = None
    num_classes: int = 2
    device: str = "auto"
    model_file: Path | None = None

    @property
    def is_onnx(self) -> bool:
        return self.model_file is not None and self.model_file.suffix.lower() == ".onnx"


@dataclass
class LoadedModel:
    """A network ready to probe, with what is needed to feed it an image."""

    source: ModelSource
    model: Any                      # torch.nn.Module
    arch: str
    config: str
    trained: bool
    classes: Any                    # ClassSet
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    format: str = "segstudio"       # a model file's format (segstudio.models.formats.FORMATS)
    root: str = ""                  # the path of the file's own network inside ``model``
    tree: list = field(default_factory=list)        # (path under root, class name) per module
    modules: dict = field(default_factory=dict)     # picked module: name -> path in ``model``

    @property
    def foreign(self) -> bool:
        """A network from a model file of another library: no registry branches, no twin."""
        return self.format != "segstudio"

    @property
    def branches(self) -> dict[str, str]:
        if self.foreign:
            return dict(self.modules)
        from segstudio.models.registry import get_spec

        return dict(get_spec(self.arch).branches)

    @property
    def title(self) -> str:
        state = "trained" if self.trained else "untrained"
        if self.foreign:
            return f"{self.source.model_file.name} ({self.arch}, {state})"
        name = self.source.checkpoint.name if self.source.checkpoint else self.arch
        return f"{name} ({self.arch}, {self.config}, {state})"

    def to_input(self, rgb: np.ndarray):
        """The image as the network's normalised 3×H×W float input."""
        import torch

        x = torch.from_numpy(np.array(rgb, np.uint8)).permute(2, 0, 1).float().div_(255.0)
        mean = torch.tensor(self.mean).view(3, 1, 1)
        std = torch.tensor(self.std).view(3, 1, 1)
        return x.sub_(mean).div_(std)


def load_model(source: ModelSource, classes) -> LoadedModel:
    """Build or load ``source`` (run in a worker thread: it imports torch)."""
    import torch

    from segstudio.models.checkpoint import IMAGENET_MEAN, IMAGENET_STD, load_checkpoint
    from segstudio.models.device import choose_device, default_num_threads
    from segstudio.models.registry import build_model

    # Leave a core to the GUI thread, as the Predictor does.
    if torch.get_num_threads() > default_num_threads():
        torch.set_num_threads(default_num_threads())
    device = choose_device(source.device)
    if source.model_file is not None:
        return _load_model_file(source, device)
    if source.checkpoint is not None:
        model, meta = load_checkpoint(source.checkpoint, device=device)
        return LoadedModel(source, model.eval(), meta.arch, meta.config, bool(meta.trained),
                           meta.classes, tuple(meta.mean), tuple(meta.std))
    # A fixed seed: the same untrained network every time, so views can be compared.
    torch.manual_seed(0)
    model = build_model(source.arch, source.num_classes, source.config).eval().to(device)
    return LoadedModel(source, model, source.arch, source.config, False, classes,
                       IMAGENET_MEAN, IMAGENET_STD)


def _load_model_file(source: ModelSource, device) -> LoadedModel:
    """A model file through the formats' one interface, wrapped as the Predictor runs it."""
    from segstudio.models.formats.shown import ShownNet
    from segstudio.explain.taps import module_tree
    from segstudio.models.formats import ModelFormatError, load_any

    if source.is_onnx:
        raise ExplainError(f"{source.model_file.name}: {ONNX_VIEWS}")
    try:
        found = load_any(source.model_file)
    except ModelFormatError as exc:
        raise ExplainError(str(exc)) from None
    meta = found.meta
    if found.format == "segstudio":
        return LoadedModel(source, found.net.eval().to(device), meta.arch, meta.config,
                           bool(meta.trained), meta.classes, tuple(meta.mean), tuple(meta.std))
    if found.format == "onnx":
        raise ExplainError(f"{source.model_file.name}: {ONNX_VIEWS}")
    model = ShownNet(found.net, found.stride, found.input_size).eval()
    if not found.cpu_only:
        model = model.to(device)
    # ShownNet.net is the formats' AsLogits; its ``net`` the file's network (for Hugging Face
    # a wrapper whose ``model`` is the transformers model the user knows).
    root = "net.net.model" if found.format == "huggingface" else "net.net"
    return LoadedModel(source, model, meta.arch, meta.config, True, meta.classes,
                       tuple(meta.mean), tuple(meta.std), format=found.format, root=root,
                       tree=module_tree(model, root))


def random_twin(loaded: LoadedModel, seed: int = 1):
    """The same architecture with fresh random weights (the baseline of the effective field)."""
    import torch

    from segstudio.models.registry import build_model

    torch.manual_seed(seed)
    device = next(loaded.model.parameters()).device
    return build_model(loaded.arch, len(loaded.classes), loaded.config).eval().to(device)


def rate_of(branch: str) -> int | None:
    """The atrous rate in a branch name such as ``aspp.rate12``."""
    m = re.search(r"rate(\d+)$", branch)
    return int(m.group(1)) if m else None


def bin_of(branch: str) -> int | None:
    """The pyramid bin count in a branch name such as ``psp.bin6``."""
    m = re.search(r"bin(\d+)$", branch)
    return int(m.group(1)) if m else None


class JobContext:
    """What a job sees in the worker thread: the image, the session's models, a cancel flag."""

    def __init__(self, session: "ExplainSession", source: ModelSource | None, rgb: np.ndarray,
                 cancelled: Callable[[], bool]) -> None:
        self.session = session
        self.source = source
        self.rgb = rgb
        self.cancelled = cancelled

    def input(self, loaded: LoadedModel):
        """The image normalised for ``loaded`` (3×H×W float tensor)."""
        return loaded.to_input(self.rgb)

    def load(self, source: ModelSource | None = None) -> LoadedModel:
        source = source or self.source
        if source is None:
            raise ExplainError("no model chosen: pick one in the Model panel or above")
        cache = self.session.models
        if source in cache:
            cache.move_to_end(source)
            return cache[source]
        loaded = load_model(source, self.session.classes)
        cache[source] = loaded
        while len(cache) > KEPT_MODELS:
            cache.popitem(last=False)
        if source == self.source:
            self.session.last_loaded = loaded
            self.session.modelLoaded.emit(loaded)      # queued to the GUI thread
        return loaded


class ExplainSession(QObject):
    """Runs the views' jobs one after another off the GUI thread, on the image on screen."""

    modelLoaded = Signal(object)        # LoadedModel of the chosen source
    sourceChanged = Signal()
    busyChanged = Signal(bool)

    def __init__(self, window) -> None:
        super().__init__(window)
        self.window = window
        self.models: OrderedDict[ModelSource, LoadedModel] = OrderedDict()
        self.picked: ModelSource | None = None        # None: follow the Model panel
        self.pixel: tuple[int, int] | None = None     # (y, x) last clicked in the RF tool
        self._queue: list[tuple[str, Callable, Callable]] = []
        self._task: BackgroundTask | None = None
        self.last_loaded: LoadedModel | None = None
        self.generation = 0             # counts model changes: older results are not shown
        # Worker-side caches (only jobs touch them, one job at a time).
        self.fields: dict = {}          # (source, image size) -> {module path: ReceptiveField}
        self.twins: dict = {}           # random-weight twins for effective fields
        self.classes = window.classes           # read by jobs: a snapshot, not the live window
        window.models.panel.choiceChanged.connect(self._panel_choice_changed)

    # -- model choice ------------------------------------------------------------------------
    def current_source(self) -> ModelSource | None:
        choice = self.window.models.panel.current_choice()
        device = choice.device if choice is not None else "auto"
        if self.picked is not None:
            # The Model panel's device applies; an untrained model predicts as many classes
            # as the window has right now.
            n = self.picked.num_classes if self.picked.checkpoint else len(self.window.classes)
            return replace(self.picked, num_classes=n, device=device)
        if choice is None:
            return None
        if choice.model_file is not None:
            return ModelSource("", "", None, len(self.window.classes), device,
                               model_file=choice.model_file)
        arch = "" if choice.arch == "?" else choice.arch
        return ModelSource(arch, choice.config, choice.checkpoint, len(self.window.classes),
                           device)

    def pick(self, source: ModelSource | None) -> None:
        self.picked = source
        self._source_changed()

    def _source_changed(self) -> None:
        self.generation += 1
        self.sourceChanged.emit()
        source = self.current_source()
        # A checkpoint names its architecture inside, a model file its modules: load it.
        if source is not None and not source.is_onnx and not self.known_branches():
            self.submit("Loading the model", lambda ctx: ctx.load(), lambda _loaded: None,
                        needs_image=False)

    def _panel_choice_changed(self, _choice) -> None:
        if self.picked is None:
            self._source_changed()

    def known_branches(self) -> dict[str, str]:
        """The probe branches of the chosen model, as far as is known before it loads."""
        from segstudio.models.registry import REGISTRY

        source = self.current_source()
        if source is None:
            return {}
        if source.arch in REGISTRY:
            return dict(REGISTRY[source.arch].branches)
        if self.last_loaded is not None and self.last_loaded.source == source:
            return self.last_loaded.branches
        return {}

    def loaded_file(self) -> LoadedModel | None:
        """The chosen model file's network once it has loaded (None before, or for another
        kind of choice)."""
        source = self.current_source()
        loaded = self.last_loaded
        if source is None or source.model_file is None or loaded is None \
                or loaded.source != source or not loaded.foreign:
            return None
        return loaded

    def pick_module(self, name: str | None) -> None:
        """Look at module ``name`` (a path in the model file's own network) in every view."""
        loaded = self.loaded_file()
        if loaded is None:
            return
        loaded.modules = {name: f"{loaded.root}.{name}"} if name else {}
        self.sourceChanged.emit()         # the views take the module as their branch

    def has_branch(self, branch: str) -> bool:
        """True if ``branch`` names a branch to look at; otherwise say in the status bar why not."""
        if branch:
            return True
        source = self.current_source()
        if source is not None and source.is_onnx:
            message = f"{source.model_file.name}: {ONNX_VIEWS}"
        elif source is not None and source.model_file is not None and not self.busy:
            message = (f"{source.model_file.name}: pick a module in the tree under the model "
                       "to look at")
        elif source is None:
            message = "No model chosen: pick one in the Model panel or in Inside the model"
        elif self.busy:
            message = "The model is still loading; its branches appear when it is ready"
        else:
            message = "This model has no probed branches"
        self.window.statusBar().showMessage(message, 4000)
        return False

    # -- jobs --------------------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        return self._task is not None or bool(self._queue)

    def submit(self, name: str, work: Callable[[JobContext], Any],
               done: Callable[[Any], None], *, needs_image: bool = True) -> bool:
        """Queue ``work(ctx)`` for the image on screen; ``done(result)`` runs on the GUI thread.

        A job of the same ``name`` still waiting is replaced: only the latest request counts.
        """
        doc = self.window.doc
        if doc is None and needs_image:
            self.window.statusBar().showMessage("Open an image first", 4000)
            return False
        rgb = doc.image.to_rgb8() if doc is not None else np.zeros((1, 1, 3), np.uint8)
        source = self.current_source()
        self.classes = self.window.classes
        self._queue = [q for q in self._queue if q[0] != name]

        def deliver(result, doc=doc, generation=self.generation) -> None:
            # A result for another image, or of the model chosen before, is of no use now.
            if self.window.doc is doc and self.generation == generation:
                done(result)

        self._queue.append((name, lambda cancelled: work(JobContext(self, source, rgb,
                                                                     cancelled)), deliver))
        if self._task is None:
            self.window.begin_busy()
            self.busyChanged.emit(True)
            self._next()
        return True

    def _next(self) -> None:
        if not self._queue:
            self._task = None
            self.busyChanged.emit(False)
            self.window.end_busy()
            return
        name, work, done = self._queue.pop(0)
        task = BackgroundTask(lambda _progress, cancelled: _guarded(work, cancelled),
                              (ExplainError,), self)
        task.succeeded.connect(lambda result: None if task.was_cancelled else done(result))
        task.failed.connect(lambda message: self.window.show_error(f"{name}: {message}"))
        task.finished.connect(self._finished)
        self._task = task
        self.window.statusBar().showMessage(f"{name}…", 3000)
        task.start()

    def _finished(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.deleteLater()
        self._next()

    def cancel(self) -> None:
        """Drop waiting jobs and ask the running one to stop; its result is not shown."""
        self._queue.clear()
        if self._task is not None:
            self._task.cancel()

    def shutdown(self) -> None:
        self.cancel()
        if self._task is not None:
            self._task.wait(60000)



def _guarded(work: Callable[[Callable[[], bool]], Any], cancelled) -> Any:
    """Run ``work``; failures the user can cause become an ExplainError with their message."""
    try:
        return work(cancelled)
    except ExplainError:
        raise
    except Exception as exc:   # noqa: BLE001 - reported in the status bar, never a crash
        if type(exc).__name__ in _KNOWN_ERRORS:
            raise ExplainError(str(exc)) from exc
        if isinstance(exc, MemoryError):
            raise ExplainError("out of memory: try a lite model or a smaller image") from exc
        raise ExplainError(f"{type(exc).__name__}: {exc}") from exc
