"""Smart ▸ Grow from seeds: paint a few strokes per class, see every pixel assigned along the
image's edges, accept the result as one undo step.

The session keeps its own seed map (255 = no seed) beside the image's labels, drawn on top of
the canvas at full strength, and a preview of the grown labels shown in place of the label
overlay. Each finished stroke grows again in a background thread (OpenCV releases the GIL);
strokes made meanwhile are folded into one more run when it ends, so the preview always
catches up with the latest seeds. Nothing touches the labels until Accept.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QObject, QPointF, QRectF, Qt
from PySide6.QtGui import QAction, QImage, QKeySequence
from PySide6.QtWidgets import QDoubleSpinBox, QLabel, QToolBar

from segstudio.core.labelmap import LabelMap
from segstudio.io.decode_memory import require_memory
from segstudio.refine.grow import (DEFAULT_SMOOTHING, NO_SEED, GrowError, grow_from_seeds,
                                   memory_needed)
from segstudio.refine.grow import seed_classes
from segstudio.ui.canvas.render import OverlayRenderer
from segstudio.ui.background.tasks import BackgroundTask
from segstudio.ui.tools.seeds import SeedTool


def grow_input(image, window) -> np.ndarray:
    """The 8-bit image the user sees: grey stays one channel, colour is RGB."""
    return image.to_grey8(window) if image.is_grey else image.to_rgb8(window)


class SeedMask:
    """The outline drawn around the seeds: where there is a seed, a colour that stands out
    against that seed's class colour (near white around dark classes, such as the black
    background of the bundled class sets; near black around light ones), clear elsewhere.
    Drawn a few screen pixels off in every direction under the coloured seeds, it rings them,
    so a seed shows on any image: its fill or its ring differs from what lies under it."""

    LIGHT = np.uint32(0xF0F0F0F0)       # premultiplied ARGB32, alpha 240
    DARK = np.uint32(0xF0101010)
    RING_PX = 2                         # screen pixels of outline around each stroke

    def __init__(self, seeds: np.ndarray, classes) -> None:
        self._seeds = seeds
        colours = classes.color_table()[:, :3].astype(np.float64)
        luma = colours @ np.array([0.299, 0.587, 0.114])
        self._table = np.where(luma < 128, self.LIGHT, self.DARK).astype(np.uint32)
        self._table[NO_SEED] = 0
        h, w = seeds.shape
        self.image = QImage(w, h, QImage.Format.Format_ARGB32_Premultiplied)
        self.image.fill(0)
        ptr = self.image.bits()
        raw = np.frombuffer(ptr, np.uint8, count=self.image.sizeInBytes())
        self._words = raw.reshape(h, self.image.bytesPerLine() // 4, 4)[:, :w].view(
            np.uint32)[..., 0]

    def update(self, rect) -> None:
        rect = rect.clip(*self._seeds.shape)
        if not rect.is_empty():
            self._words[rect.slices] = self._table[self._seeds[rect.slices]]

    @classmethod
    def offsets(cls) -> list[tuple[int, int]]:
        """Where the outline is drawn, in screen pixels: a ring ``RING_PX`` wide."""
        r = cls.RING_PX
        return [(dx, dy) for dx in (-r, 0, r) for dy in (-r, 0, r) if dx or dy]


class GrowFromSeeds(QObject):
    def __init__(self, window) -> None:
        super().__init__(window)
        self.window = window
        self.tool = SeedTool(window, self)
        window.tools[SeedTool.name] = self.tool
        self.doc = None
        self.seeds: LabelMap | None = None
        self.preview: np.ndarray | None = None       # the grown labels shown, or None
        self._seed_overlay: OverlayRenderer | None = None
        self._seed_mask: SeedMask | None = None
        self._preview_overlay: OverlayRenderer | None = None
        self.task: BackgroundTask | None = None
        self._again = False                          # seeds changed while a growth ran
        self._accept_when_done = False
        self.smoothing = DEFAULT_SMOOTHING
        window.canvas.decorations.append(self._draw_seeds)
        window.documentShown.connect(lambda _doc: self.cancel("the image changed"))
        self.bar = self._build_bar()

    # -- menu and tool bar -------------------------------------------------------------------
    def _build_bar(self) -> QToolBar:
        w = self.window
        self.accept_action = QAction("Keep the grown labels", w)
        self.accept_action.setIconText("Accept")
        self.accept_action.setShortcut(QKeySequence("Ctrl+Return"))
        self.accept_action.setToolTip("Write the grown labels into the image's labels "
                                      "(one undo step)")
        self.accept_action.triggered.connect(self.accept)
        self.cancel_action = QAction("Cancel grow from seeds", w)
        self.cancel_action.setIconText("Cancel")
        self.cancel_action.setToolTip("Drop the seeds and the preview; the labels stay as "
                                      "they were (Esc)")
        self.cancel_action.triggered.connect(lambda: self.cancel())
        self.clear_action = QAction("Clear seeds", w)
        self.clear_action.setIconText("Clear seeds")
        self.clear_action.setToolTip("Remove every seed and start again")
        self.clear_action.triggered.connect(self.clear_seeds)
        # While seeds are painted, Ctrl+Z takes back a seed stroke, not a label edit the preview
        # hides; the label undo and redo are off meanwhile, so the keys are never ambiguous.
        self.undo_seed_action = QAction("Undo seed stroke (grow from seeds)", w)
        self.undo_seed_action.setShortcut(QKeySequence(QKeySequence.StandardKey.Undo))
        self.undo_seed_action.setToolTip("Take back the last seed stroke")
        self.undo_seed_action.triggered.connect(lambda: self._seed_history("undo"))
        self.redo_seed_action = QAction("Redo seed stroke (grow from seeds)", w)
        self.redo_seed_action.setShortcut(QKeySequence("Ctrl+Shift+Z"))
        self.redo_seed_action.setToolTip("Put back the seed stroke last taken back")
        self.redo_seed_action.triggered.connect(lambda: self._seed_history("redo"))
        for act in (self.accept_action, self.cancel_action, self.clear_action,
                    self.undo_seed_action, self.redo_seed_action):
            act.setStatusTip(act.toolTip())
            w.addAction(act)
        bar = QToolBar("Grow from seeds", w)
        bar.setObjectName("toolbar-grow-seeds")
        bar.addWidget(QLabel(" Grow from seeds: smoothing ", bar))
        self.smoothing_spin = QDoubleSpinBox(bar)
        self.smoothing_spin.setRange(0.0, 10.0)
        self.smoothing_spin.setSingleStep(0.5)
        self.smoothing_spin.setSuffix(" px")
        self.smoothing_spin.setValue(self.smoothing)
        self.smoothing_spin.setToolTip("Gaussian smoothing of the image before growing; raise "
                                       "it on noisy images, lower it for fine detail")
        self.smoothing_spin.valueChanged.connect(self._set_smoothing)
        bar.addWidget(self.smoothing_spin)
        for act in (self.accept_action, self.cancel_action, self.clear_action):
            bar.addAction(act)
        # Below the canvas, beside the status bar's messages, so the tool bars keep their places.
        w.addToolBar(Qt.ToolBarArea.BottomToolBarArea, bar)
        bar.hide()
        self._set_enabled(False)
        return bar

    def add_to_menu(self, menu) -> None:
        act = self.window.tool_actions[SeedTool.name]
        act.setToolTip(SeedTool.tip)
        act.setStatusTip(SeedTool.tip)
        act.triggered.connect(self.start)
        menu.addAction(act)
        for a in (self.accept_action, self.cancel_action, self.clear_action):
            menu.addAction(a)

    def _set_enabled(self, active: bool) -> None:
        for act in (self.accept_action, self.cancel_action, self.clear_action,
                    self.undo_seed_action, self.redo_seed_action):
            act.setEnabled(active)
        for name in ("undo_action", "redo_action"):      # built after this bar
            act = getattr(self.window, name, None)
            if act is not None:
                act.setEnabled(not active)

    def _seed_history(self, which: str) -> None:
        if not self.active:
            return
        if getattr(self.seeds, which)() is None:
            self._say(f"Grow from seeds: no seed stroke to {which}")
            return
        self.seeds_changed()

    # -- session -----------------------------------------------------------------------------
    @property
    def active(self) -> bool:
        return self.seeds is not None

    def start(self) -> bool:
        """Begin a session on the image on screen (a no-op if one is running)."""
        doc = self.window.doc
        if doc is None:
            return False
        if self.active and self.doc is doc:
            return True
        self.cancel()
        self.doc = doc
        self.seeds = LabelMap.blank(doc.image.height, doc.image.width, NO_SEED)
        self.seeds.add_listener(self._seeds_painted)
        self._seed_overlay = OverlayRenderer(self.seeds.array, self.window.classes,
                                             hidden={NO_SEED})
        self._seed_mask = SeedMask(self.seeds.array, self.window.classes)
        self.preview = None
        self._set_enabled(True)
        self.bar.show()
        if self.window.canvas.tool is not self.tool:
            self.window.set_tool(SeedTool.name)
        self._say("Grow from seeds: paint a few strokes inside each region, one class at a time "
                  "(Shift+drag rubs seeds out); Ctrl+Enter accepts, Esc cancels")
        return True

    def cancel(self, why: str = "") -> None:
        """End the session without touching the labels."""
        if not self.active:
            return
        self._end()
        self._say("Grow from seeds cancelled" + (f" ({why})" if why else "")
                  + ": the labels are as they were")

    def _end(self) -> None:
        if self.task is not None:
            self.task.cancel()
        self.seeds = None
        self.doc = None
        self.preview = None
        self._seed_overlay = self._preview_overlay = self._seed_mask = None
        self._again = self._accept_when_done = False
        self._set_enabled(False)
        self.bar.hide()
        win = self.window
        win.canvas.set_overlay(win.doc.overlay.image if win.doc is not None else None)

    def clear_seeds(self) -> None:
        if not self.active:
            return
        self.seeds.replace(np.full(self.seeds.shape, NO_SEED, np.uint8), name="clear seeds")
        self.preview = None
        self.window.canvas.set_overlay(self.doc.overlay.image)
        self._say("Seeds cleared")

    def accept(self) -> bool:
        """Write the grown labels into the image's labels as one undo step."""
        if not self.active:
            return False
        if self.task is not None or self._again:
            self._accept_when_done = True
            self._say("Grow from seeds: accepting as soon as the growth catches up")
            return True
        if self.preview is None:
            self._say("Grow from seeds: nothing to accept yet; paint seeds of at least two "
                      "classes")
            return False
        doc, grown = self.doc, self.preview
        guard = self.window.guard()
        before = np.array(doc.labels.array)
        with doc.labels.step("grow from seeds"):
            for cls in np.unique(grown):
                doc.labels.paint_mask(grown == cls, int(cls), guard=guard,
                                      name="grow from seeds")
        changed = int((np.asarray(doc.labels.array) != before).sum())
        self._end()
        self.window.set_tool("Brush")
        self._say(f"Grow from seeds: {changed:,} pixels changed (Ctrl+Z undoes it)")
        return True

    # -- growing -----------------------------------------------------------------------------
    def _set_smoothing(self, value: float) -> None:
        self.smoothing = float(value)
        self.seeds_changed()

    def _seeds_painted(self, rect) -> None:
        if self._seed_overlay is not None:
            self._seed_overlay.update(rect)
            self._seed_mask.update(rect)
        self.window.canvas.update_image_rect(rect)

    def seeds_changed(self) -> None:
        """Grow again from the current seeds (after the running growth, if any)."""
        if not self.active:
            return
        if self.task is not None:
            self._again = True
            return
        classes = seed_classes(self.seeds.array)
        if len(classes) < 2:
            self.preview = None
            self.window.canvas.set_overlay(self.doc.overlay.image)
            names = ", ".join(self._name(c) for c in classes) or "none yet"
            self._say(f"Grow from seeds: seeds of {names}; paint seeds of another class too")
            return
        self._again = False
        image, window = self.doc.image, self.doc.window
        seeds, smoothing = np.array(self.seeds.array), self.smoothing
        def job(progress, cancelled):
            # The display copy and what growing allocates, checked before either is taken.
            what = f"growing {seeds.shape[1]}×{seeds.shape[0]} pixels"
            require_memory(3 * seeds.size + memory_needed(*seeds.shape), what)
            try:
                return grow_from_seeds(grow_input(image, window), seeds, smoothing=smoothing)
            except MemoryError as exc:      # the estimate let it start, the machine did not
                raise MemoryError(str(exc) or f"not enough memory for {what}") from None

        self.task = BackgroundTask(job, (GrowError, MemoryError), self)
        session = (self.doc, self.seeds)
        self.task.succeeded.connect(lambda grown: self._grown(session, grown))
        self.task.failed.connect(lambda m: self._failed(session, m))
        self.task.finished.connect(self._finished)
        self.window.begin_busy()
        self.task.start()
        self._say("Growing from the seeds…")

    def _grown(self, session, grown: np.ndarray) -> None:
        if not self._current(session):
            return                                   # cancelled or restarted meanwhile
        self.preview = grown
        if self._preview_overlay is None:
            self._preview_overlay = OverlayRenderer(grown, self.window.classes,
                                                    hidden=self.window.hidden)
        else:
            self._preview_overlay.set_labels(grown)
        self.window.canvas.set_overlay(self._preview_overlay.image)
        counts = np.bincount(grown.reshape(-1), minlength=256)
        summary = ", ".join(f"{self._name(c)} {counts[c] / grown.size:.0%}"
                            for c in np.flatnonzero(counts))
        self._say(f"Grow from seeds preview: {summary} (Ctrl+Enter accepts)")

    def _current(self, session) -> bool:
        """Whether a growth started for ``session`` (document, seed map) still matters."""
        doc, seeds = session
        return self.active and doc is self.doc and seeds is self.seeds

    def _failed(self, session, message: str) -> None:
        if self._current(session):                   # the preview no longer fits the seeds
            self.preview = None
            self.window.canvas.set_overlay(self.doc.overlay.image)
        self.window.show_error(f"Grow from seeds: {message}")

    def _finished(self) -> None:
        self.task = None
        self.window.end_busy()
        if not self.active:
            return
        if self._again:
            self.seeds_changed()
        elif self._accept_when_done:
            self._accept_when_done = False
            self.accept()

    # -- drawing and messages ----------------------------------------------------------------
    def _draw_seeds(self, painter, canvas) -> None:
        if self._seed_overlay is None or self.doc is not self.window.doc:
            return
        image = self._seed_overlay.image
        # Only the part of the seed map inside the canvas is drawn (cheap when zoomed in).
        seen = QRectF(canvas.to_image(QPointF(0, 0)),
                      canvas.to_image(QPointF(canvas.width(), canvas.height())))
        src = seen.intersected(QRectF(0, 0, image.width(), image.height()))
        if src.isEmpty():
            return
        src = QRectF(src.toAlignedRect()).intersected(QRectF(0, 0, image.width(),
                                                             image.height()))
        target = QRectF(canvas.to_widget(src.topLeft()), canvas.to_widget(src.bottomRight()))
        for dx, dy in SeedMask.offsets():
            painter.drawImage(target.translated(dx, dy), self._seed_mask.image, src)
        painter.drawImage(target, image, src)

    def _name(self, index: int) -> str:
        classes = self.window.classes
        return classes[index].name if index < len(classes) else f"class {index}"

    def _say(self, message: str) -> None:
        self.window.statusBar().showMessage(message, 8000)

    def close(self) -> None:
        if self.task is not None:
            self.task.cancel()
            self.task.wait()
