"""The Prompt tool's model side: the weights, the image embedding, the decoder.

The weights are a Segment Anything or MedSAM file (Model ▸ Prompted segmenter…) or a SAM 2
model folder (Model ▸ Prompted segmenter: SAM 2 folder…, or else the folder chosen for video
tracking), remembered in the settings; one interface serves all three.
The image embedding (the heavy encoder pass) runs in a :class:`BackgroundTask` with progress in
the status bar and cancel on Esc, through an :class:`EmbeddingCache` (recent images in memory,
more on disk under the user data folder), so coming back to an image is instant; the next items
of the folder are embedded in advance (:mod:`.prompt_prefetch`), so moving on is instant too.
The decoder runs on the GUI thread: it is the cheap part, and the mask appears with the click.
torch is imported only once the tool is used, in the worker thread.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QFileDialog, QHBoxLayout, QMessageBox, QToolButton, QWidget

from segstudio.io.decode_memory import require_memory
from segstudio.paths import user_data_dir
from segstudio.ui.background.tasks import BackgroundTask
from segstudio.ui.controllers.prompt_prefetch import EXPECTED, EmbeddingPrefetch
from segstudio.ui.tools.prompt import PromptTool

WEIGHTS_KEY = "prompt/weights"
SAM2_FOLDER_KEY = "sam2/folder"         # the video tracking's folder, used when no other is set
WHERE_TO_GET = (
    "The Prompt tool needs a Segment Anything or MedSAM weights file, or a SAM 2 model folder, "
    "which segstudio never downloads. Get one yourself: the official Segment Anything release "
    "by Meta AI Research (its README links the ViT-B, ViT-L and ViT-H checkpoints, "
    "sam_vit_b/l/h_*.pth), MedSAM's ViT-B checkpoint for medical images (medsam_vit_b.pth, "
    "linked from the MedSAM project's README), or a SAM 2.1 folder in Hugging Face format "
    "(facebook/sam2.1-hiera-tiny, -small, -base-plus or -large: config.json and "
    "model.safetensors). Save it anywhere, then choose it with Model ▸ Prompted segmenter… "
    "(a file) or Prompted segmenter: SAM 2 folder…; segstudio remembers it. The network code "
    'comes from the segment-anything package (pip install "segstudio[sam]") or, for SAM 2, '
    'from transformers (pip install "segstudio[sam2]").')


class CandidateChooser(QWidget):
    """A row of buttons over the canvas, one per candidate mask, with its predicted IoU."""

    def __init__(self, canvas, on_choose) -> None:
        super().__init__(canvas)
        self._on_choose = on_choose
        self.buttons: list[QToolButton] = []
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.hide()

    def set_scores(self, scores, current: int) -> None:
        n = 0 if scores is None else len(scores)
        while len(self.buttons) < n:
            button = QToolButton(self)
            button.setCheckable(True)
            button.clicked.connect(lambda _=False, i=len(self.buttons): self._on_choose(i))
            self.layout().addWidget(button)
            self.buttons.append(button)
        for i, button in enumerate(self.buttons):
            button.setVisible(i < n)
            if i < n:
                button.setText(f"{i + 1}: {scores[i]:.2f}")
                button.setToolTip(f"Candidate mask {i + 1}, predicted IoU {scores[i]:.3f} "
                                  "(Shift+Q cycles)")
                button.setChecked(i == current)
        self.setVisible(n > 1)
        if n > 1:
            self.adjustSize()
            self.move(self.parentWidget().width() - self.width() - 8, 8)
            self.raise_()


class PromptSession(QObject):
    def __init__(self, window) -> None:
        super().__init__(window)
        self.window = window
        self.segmenter = None
        self._segmenter_path: str | None = None
        self.cache = None
        self.task: BackgroundTask | None = None
        self._task_target = None
        self._restart = False
        self.embedding = None
        self._embedded = None            # (document, display window) the embedding is of
        self._awaiting = None            # the target whose embedding the prefetch is making
        self.prefetch = EmbeddingPrefetch(self)
        self.prefetch.ready.connect(self._prefetched)
        self.prefetch.stopped.connect(self._prefetch_stopped)
        self.tool = PromptTool(window, self)
        window.tools[PromptTool.name] = self.tool
        self.chooser = CandidateChooser(window.canvas, self.tool.choose)
        window.documentShown.connect(self._document_shown)
        window._action("Prompt: next candidate mask", lambda: self.tool.next_candidate(),
                       "Shift+Q", tip="Show the prompted segmenter's next candidate mask")

    # -- weights -----------------------------------------------------------------------------
    def weights_path(self) -> str | None:
        """The weights file or SAM 2 folder chosen for the Prompt tool; else the SAM 2 folder
        chosen for tracking (one folder serves both)."""
        for key in (WEIGHTS_KEY, SAM2_FOLDER_KEY):
            value = self.window.settings.value(key, "")
            if value:
                return str(value)
        return None

    def choose_weights(self) -> None:
        current = self.weights_path()
        path, _ = QFileDialog.getOpenFileName(
            self.window, "Prompted segmenter weights (Segment Anything or MedSAM)",
            str(Path(current).parent) if current else str(Path.home()),
            "PyTorch weights (*.pth *.pt *.bin *.ckpt);;All files (*)")
        if path:
            self.set_weights(path)

    def choose_folder(self) -> None:
        """Model ▸ Prompted segmenter: SAM 2 folder…"""
        current = self.weights_path()
        path = QFileDialog.getExistingDirectory(
            self.window, "SAM 2 model folder for the Prompt tool (config.json and "
            "model.safetensors)", current if current and Path(current).is_dir()
            else str(Path.home()))
        if path:
            self.set_weights(path)

    def set_weights(self, path: str | Path) -> None:
        """Remember ``path`` (a weights file or a SAM 2 folder) and load it in the background
        (errors name the file)."""
        if Path(path).is_dir():
            from segstudio.models.sam2_prompts import Sam2Error, check_folder

            try:
                check_folder(path)
            except Sam2Error as exc:
                self.window.show_error(f"Prompted segmenter: {exc}")
                return
        self.window.settings.setValue(WEIGHTS_KEY, str(path))
        self.segmenter, self._segmenter_path = None, None
        self.embedding, self._embedded, self._awaiting = None, None, None
        self.prefetch.cancel()
        self.tool.clear()
        if self.task is not None:
            self.task.cancel()
            self._restart = True
            return
        if self.window.canvas.tool is self.tool and self.window.doc is not None:
            self.prepare()
        else:
            self._start(str(path), None, None)

    def hint(self) -> str:
        if self.weights_path() is None:
            return "Prompt tool: no weights file yet — Model ▸ Prompted segmenter…"
        if (self.task is not None and self._task_target is not None) or \
                self._awaiting is not None:
            return "Prompt tool: making the image embedding… (Esc cancels)"
        return ""

    def explain_missing(self) -> None:
        self.say("Prompt tool: no weights file yet — Model ▸ Prompted segmenter… chooses one "
                 "(Segment Anything or MedSAM; see F1 / the README)", 10000)
        if not self.window.interactive:
            return
        box = QMessageBox(QMessageBox.Icon.Information, "Prompted segmenter", WHERE_TO_GET,
                          QMessageBox.StandardButton.Close, self.window)
        choose = box.addButton("Choose weights file…", QMessageBox.ButtonRole.AcceptRole)
        folder = box.addButton("Choose SAM 2 folder…", QMessageBox.ButtonRole.AcceptRole)
        box.exec()
        if box.clickedButton() is choose:
            self.choose_weights()
        elif box.clickedButton() is folder:
            self.choose_folder()

    # -- embedding ---------------------------------------------------------------------------
    def activate(self) -> None:
        if self.weights_path() is None:
            self.explain_missing()
        else:
            self.prepare()

    def _target(self):
        doc = self.window.doc
        return None if doc is None else (doc, doc.window)

    def _same(self, a, b) -> bool:
        return a is not None and b is not None and a[0] is b[0] and a[1] == b[1]

    def prepare(self) -> None:
        """Make sure an embedding of the image as shown is ready or on its way."""
        target, path = self._target(), self.weights_path()
        if target is None or path is None:
            return
        if self.embedding is not None and self._same(self._embedded, target):
            return
        found, rgb = self._from_memory(target, path)
        if found:
            return
        if self.prefetch.running():
            if self.prefetch.busy_row == target[0].row:     # on its way: wait for it
                self._awaiting = target
                self.say("Prompt: finishing this image's embedding (started in advance)…")
                self.window.canvas.update()
                return
            self.prefetch.cancel()           # the encoder is needed here now
        if self.task is not None:
            if not self._same(self._task_target, target):
                self.task.cancel()
                self._restart = True
            return
        self._start(path, rgb if rgb is not None else target[0].display_rgb8(), target)

    def _start(self, path: str, rgb, target) -> None:
        cached = self.segmenter if self._segmenter_path == path else None
        folder = user_data_dir() / "prompt-embeddings"

        def job(progress, cancelled):
            import torch

            from segstudio.models.device import choose_device, default_num_threads
            from segstudio.models.prompt_cache import EmbeddingCache, weights_key
            from segstudio.models.prompt_precision import measure_on, settle_from_cache
            from segstudio.models.prompted import PromptedSegmenter

            if torch.get_num_threads() > default_num_threads():
                torch.set_num_threads(default_num_threads())
            from segstudio.models.prompt_memory import embed_bytes, load_bytes

            if cached is None:
                require_memory(load_bytes(path), f"loading {Path(path).name}")
            seg = cached or PromptedSegmenter.from_file(path, choose_device("auto"))
            if rgb is None:
                return seg, None, None
            if self.cache is None:
                self.cache = EmbeddingCache(folder)
            try:
                key = weights_key(path)
            except OSError as exc:
                raise ValueError(f"{Path(path).name}: cannot be read ({exc})") from None
            # The encoder's precision: a cached verdict, or one to measure on this image.
            due = settle_from_cache(seg, path)
            measured = []

            def embed():
                height, width = rgb.shape[:2]
                what = f"the image embedding of {width}×{height} pixels"
                require_memory(embed_bytes(seg.network, height, width), what)
                try:
                    if due is not None:
                        measured.append(due)
                        return measure_on(seg, path, rgb, due, progress, cancelled)
                    return seg.embed(rgb, progress, cancelled)
                except MemoryError as exc:  # the estimate let it start, the machine did not
                    raise MemoryError(str(exc) or f"not enough memory for {what}") from None

            emb = self.cache.get_or_compute(key, rgb, embed, seg.check_embedding, seg.precision)
            return seg, emb, bool(measured)

        # PromptedError is a ValueError; naming it here would import torch on the GUI thread.
        self.task = BackgroundTask(job, EXPECTED, self)
        self._task_target = target
        self.task.progressed.connect(self._progress)
        self.task.succeeded.connect(lambda result, p=path, t=target: self._done(result, p, t))
        self.task.failed.connect(self._failed)
        self.task.finished.connect(self._finished)
        self.window.begin_busy()
        self.say("Prompt: loading the weights…" if cached is None else
                 "Prompt: making the image embedding… (Esc cancels)")
        self.task.start()
        self.window.canvas.update()

    def _progress(self, done: int, total: int) -> None:
        self.say(f"Prompt: making the image embedding… {100 * done // max(total, 1)}% "
                 "(Esc cancels)")

    def _done(self, result, path: str, target) -> None:
        seg, emb, measured = result
        if self.weights_path() != path:
            return
        self.segmenter, self._segmenter_path = seg, path
        if emb is None:
            self.say(f"Prompted segmenter ready: {seg.name} on {seg.device.type}. Choose the "
                     "Prompt tool (Q) and click an object", 6000)
            return
        if self._same(target, self._target()):
            self.embedding, self._embedded = emb, target
            if measured:         # said once, when measured: it holds for the next images
                self.say(f"Prompt: {seg.name} ready on {seg.device.type}; this image's "
                         f"embedding in fp32, the next in {seg.precision} (image encoder "
                         f"{seg.precision_note})", 12000)
            else:
                self.say(f"Prompt: {seg.name} ready on {seg.device.type} (encoder "
                         f"{emb.precision}) — click an object (right-click: background), "
                         "drag a box; Enter keeps the mask", 6000)
            self.tool.refresh()
            self._prefetch_after(target)

    # -- the next items, in advance ----------------------------------------------------------
    def _key(self, path: str) -> str | None:
        from segstudio.models.prompt_cache import weights_key

        try:
            return weights_key(path)
        except OSError:
            return None

    def _from_memory(self, target, path: str):
        """Take the image's embedding from the cache's memory at once (made in advance, or
        earlier): no task, no wait. (whether it did, the picture as the network sees it when it
        was made here — handed on, so it is not made twice — or None)."""
        seg = self.segmenter
        if seg is None or self._segmenter_path != path or self.cache is None:
            return False, None
        if self.window.loader.wants_background(target[0].item):
            return False, None      # hashing a picture this large is the worker's job
        key = self._key(path)
        if key is None:
            return False, None
        rgb = target[0].display_rgb8()
        emb = self.cache.in_memory(key, rgb, seg.precision)
        if emb is None:
            return False, rgb
        self.embedding, self._embedded, self._awaiting = emb, target, None
        self.say(f"Prompt: {seg.name} — this image's embedding was ready (encoder "
                 f"{emb.precision}); click an object", 4000)
        self.tool.refresh()
        self.window.canvas.update()
        self._prefetch_after(target)
        return True, rgb

    def _prefetch_after(self, target) -> None:
        path, seg = self.weights_path(), self.segmenter
        if path is None or seg is None or self._segmenter_path != path:
            return
        if self._heavy_work_running():
            return              # a model run or tracking has the cores; not now

        key = self._key(path)
        if key is not None:
            self.prefetch.start(target[0].row, seg, path, key)

    def _heavy_work_running(self) -> bool:
        """A model run over items, or SAM 2 tracking, is using the machine."""
        window = self.window
        video = getattr(window, "video", None)
        return bool(window.models.runner.busy or (video is not None and video.task is not None))

    def _prefetched(self, row: int) -> None:
        """A row's embedding is ready: the image on screen, if it was waiting for it."""
        target = self._target()
        if self._awaiting is not None and self._same(self._awaiting, target) and \
                target[0].row == row:
            self._awaiting = None
            self.prepare()

    def _prefetch_stopped(self) -> None:
        """The advance work ended without the image that waits for it (cancelled, or it
        failed): make it now, on demand."""
        if self._awaiting is not None:
            self._awaiting = None
            if self.window.canvas.tool is self.tool:
                self.prepare()

    def _failed(self, message: str) -> None:
        if self.task is not None and self.task.was_cancelled:
            if not self._restart:
                self.say("Image embedding cancelled", 3000)
            return
        self.window.show_error(f"Prompted segmenter: {message}")

    def _finished(self) -> None:
        self.task, self._task_target = None, None
        self.window.end_busy()
        self.window.canvas.update()
        if self._restart:
            self._restart = False
            if self.window.canvas.tool is self.tool:
                self.prepare()

    def cancel_embedding(self) -> None:
        if self._awaiting is not None:      # the image waits for the advance work: stop it
            self._awaiting = None
            self.prefetch.cancel()
            self.say("Image embedding cancelled", 3000)
        if self.task is not None:
            self._restart = False
            self.task.cancel()

    def _document_shown(self, doc) -> None:
        if self._embedded is not None and self._embedded[0] is not doc:
            self.embedding, self._embedded = None, None     # the cache still has it
        self._awaiting = None
        if self.window.canvas.tool is self.tool:
            self.tool.clear()
            self.prepare()

    def shutdown(self) -> None:
        self.prefetch.shutdown()
        if self.task is not None:
            self._restart = False
            self.task.cancel()
            self.task.wait()

    # -- decoding ----------------------------------------------------------------------------
    def predict(self, points, labels, box, mask_input):
        """Masks for the prompts, or None while the embedding is still being made."""
        target = self._target()
        if self.segmenter is None or self.embedding is None or not self._same(self._embedded,
                                                                              target):
            if self.weights_path() is None:         # the dialog came when the tool was chosen
                self.say("Prompt tool: no weights file yet — Model ▸ Prompted segmenter…", 5000)
            else:
                self.prepare()
            return None
        from segstudio.models.prompted import PromptedError

        self.prefetch.gate.touch()           # the advance work waits while the person clicks
        threads = self.prefetch.click_threads()
        if threads is not None:
            import torch

            kept = torch.get_num_threads()
            torch.set_num_threads(threads)
        try:
            return self.segmenter.predict(self.embedding, points, labels, box,
                                          mask_input=mask_input)
        except PromptedError as exc:
            self.say(f"Prompt: {exc}", 5000)
            return None
        finally:
            if threads is not None:
                torch.set_num_threads(kept)

    def show_choices(self, scores, current: int) -> None:
        self.chooser.set_scores(scores, current)

    def say(self, message: str, timeout: int = 0) -> None:
        self.window.statusBar().showMessage(message, timeout)
