"""The Smart menu: GrabCut, dense CRF, label clean-ups and grow from seeds, each one undoable
step that says how many pixels it changed.

GrabCut and the clean-ups are OpenCV calls that release the GIL, so they run in a background
thread. The dense CRF holds the GIL for its whole run, so it runs in a separate process
(:class:`segstudio.refine.crf_process.CrfProcess`) that Cancel can stop at once.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QObject, QTimer
from PySide6.QtWidgets import (QComboBox, QDialog, QDialogButtonBox, QDoubleSpinBox,
                               QFormLayout, QInputDialog, QSpinBox)

from segstudio.core.labelmap import NO_GUARD
from segstudio.ui.controllers.grow_seeds import GrowFromSeeds
from segstudio.ui.background.tasks import BackgroundTask
from segstudio.ui.tools.grabcut_box import GrabCutBoxTool


class CrfSettingsDialog(QDialog):
    """The CRF's kernels (Krähenbühl & Koltun §2), starting from the defaults."""

    FIELDS = (("iterations", "Iterations", 1, 50, 0), ("gaussian_sxy", "Smoothness width θγ", 0.5, 50, 1),
              ("gaussian_compat", "Smoothness weight w(2)", 0, 20, 1),
              ("bilateral_sxy", "Appearance width θα", 1, 300, 1),
              ("bilateral_srgb", "Colour tolerance θβ", 0.5, 100, 1),
              ("bilateral_compat", "Appearance weight w(1)", 0, 20, 1))

    def __init__(self, params, parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Dense CRF settings")
        form = QFormLayout(self)
        self.spins = {}
        for name, label, lo, hi, decimals in self.FIELDS:
            spin = QSpinBox(self) if decimals == 0 else QDoubleSpinBox(self)
            spin.setRange(lo, hi)
            if decimals:
                spin.setDecimals(decimals)
            spin.setValue(getattr(params, name))
            form.addRow(label, spin)
            self.spins[name] = spin
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                                   | QDialogButtonBox.StandardButton.Cancel
                                   | QDialogButtonBox.StandardButton.RestoreDefaults, self)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        buttons.button(QDialogButtonBox.StandardButton.RestoreDefaults).clicked.connect(
            self.restore_defaults)
        form.addRow(buttons)

    def restore_defaults(self) -> None:
        from segstudio.refine.crf import CrfParams

        for name, spin in self.spins.items():
            spin.setValue(getattr(CrfParams(), name))

    def params(self):
        from segstudio.refine.crf import CrfParams

        return CrfParams(**{n: s.value() for n, s in self.spins.items()})


class SmoothDialog(QDialog):
    """Smoothing of one class: the method and the kernel size (odd, in pixels)."""

    def __init__(self, method: str, size: int, parent=None) -> None:
        from segstudio.refine.morphology import SMOOTHING_METHODS

        super().__init__(parent)
        self.setWindowTitle("Smooth the current class")
        form = QFormLayout(self)
        self.method_box = QComboBox(self)
        self.method_box.addItems(SMOOTHING_METHODS)
        self.method_box.setCurrentText(method)
        self.method_box.setToolTip("median: rounds the outline, removes specks and notches; "
                                   "opening: removes thin parts; closing: fills gaps and holes")
        self.size_spin = QSpinBox(self)
        self.size_spin.setRange(3, 201)
        self.size_spin.setSingleStep(2)
        self.size_spin.setSuffix(" px")
        self.size_spin.setValue(size)
        form.addRow("Method", self.method_box)
        form.addRow("Kernel size", self.size_spin)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                                   | QDialogButtonBox.StandardButton.Cancel, self)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    def method(self) -> str:
        return self.method_box.currentText()

    def size(self) -> int:
        """The kernel size, made odd (an even size would shift the outline by half a pixel)."""
        return self.size_spin.value() | 1


class SmartTools(QObject):
    def __init__(self, window) -> None:
        super().__init__(window)
        self.window = window
        from segstudio.refine.crf import CrfParams

        self.crf_params = CrfParams()
        self.crf = None
        self.task: BackgroundTask | None = None
        self._crf_timer = QTimer(self, interval=50)
        self._crf_timer.timeout.connect(self._poll_crf)
        self._crf_doc = None
        window.tools[GrabCutBoxTool.name] = GrabCutBoxTool(window, self.grabcut_box)
        self.grow = GrowFromSeeds(window)        # adds the seed tool
        self.island_size = 50
        self.smooth_method, self.smooth_size, self.margin_px = "median", 5, 2
        self.last_changed: int | None = None     # pixels the last tool changed
        self.last_caveat = ""                      # what the last tool said about its result

    def build_menu(self, menu) -> None:
        w = self.window
        w._action("GrabCut: refine the current class", self.grabcut_refine, "Shift+G", menu)
        menu.addSeparator()
        w._action("Dense CRF: refine the labels", lambda: self.run_crf("labels"), "Shift+C", menu)
        w._action("Dense CRF: refine the prediction", lambda: self.run_crf("probs"), None, menu)
        w._action("CRF settings…", self.crf_settings, None, menu)
        w._action("Cancel CRF", self.cancel_crf, None, menu)
        menu.addSeparator()
        w._action("Remove small islands of the current class…", self.ask_remove_islands, None, menu)
        w._action("Fill holes in the current class", self.fill_holes, None, menu)
        w._action("Keep the largest region of the current class", self.keep_largest, None, menu,
                  "Every other region of the class goes to the class around it")
        w._action("Smooth the current class…", self.ask_smooth, None, menu,
                  "Median, opening or closing of the class's outline with a kernel size")
        w._action("Grow or shrink the current class…", self.ask_margin, None, menu,
                  "Move the class's outline out (or in) by a number of pixels")
        menu.addSeparator()
        self.grow.add_to_menu(menu)

    # -- helpers -----------------------------------------------------------------------------
    def _context(self):
        doc = self.window.doc
        if doc is None:
            return None
        return doc, doc.image.to_rgb8(doc.window), np.array(doc.labels.array), \
            self.window.current_class()

    def _run(self, name: str, compute, apply, unchanged: str = "", caveat=None) -> bool:
        """Run ``compute()`` off the GUI thread, then ``apply(result)`` as one undo step, and
        say how many pixels it changed (with the hint ``unchanged`` when none, and what
        ``caveat(result)`` says about a result that is doubtful)."""
        if self.task is not None:
            self.window.statusBar().showMessage("A smart tool is still running", 3000)
            return False
        from segstudio.refine.grabcut import GrabCutError
        from segstudio.refine.morphology import MorphologyError

        doc = self.window.doc
        self.task = BackgroundTask(lambda progress, cancelled: compute(),
                                   (GrabCutError, MorphologyError, ValueError), self)

        def done(result):
            if self.window.doc is doc:
                before = np.array(doc.labels.array)
                apply(doc, result)
                changed = int((np.asarray(doc.labels.array) != before).sum())
                self.last_changed = changed
                doubt = caveat(result) if caveat is not None else ""
                self.last_caveat = doubt
                self.window.statusBar().showMessage(
                    (f"{name}: {changed:,} pixels changed (Ctrl+Z undoes it)" if changed else
                     f"{name} changed no pixels" + (f": {unchanged}" if unchanged else ""))
                    + (f". {doubt}" if doubt else ""), 12000 if doubt else 8000)

        self.task.succeeded.connect(done)
        self.task.failed.connect(lambda m: self.window.show_error(f"{name}: {m}"))
        self.task.finished.connect(self._finished)
        self.window.begin_busy()
        self.task.start()
        return True

    def _finished(self) -> None:
        self.task = None
        self.window.end_busy()

    # -- GrabCut -----------------------------------------------------------------------------
    def grabcut_box(self, rect) -> bool:
        from segstudio.refine.grabcut import grabcut_box, nearly_whole_box

        ctx = self._context()
        if ctx is None:
            return False
        doc, rgb, _, cls = ctx
        guard = self.window.guard()
        return self._run("GrabCut", lambda: grabcut_box(rgb, rect),
                         lambda d, mask: d.labels.paint_mask(mask, cls, guard=guard, name="grabcut"),
                         ("the Paint options (only over a class, intensity range) may forbid it; "
                          if guard is not NO_GUARD else "")
                         + "nothing in the box stood apart from its surroundings in this window, "
                         "or the class already covers it; try a tighter box, or set the window "
                         "(right-drag) so that the object shows clearly",
                         lambda mask: "It kept nearly the whole box: it found no edge between "
                         "the object and its surroundings there; check the outline, or draw "
                         "the box looser so its corners show background"
                         if nearly_whole_box(mask, rect) else "")

    def grabcut_refine(self) -> bool:
        from segstudio.refine.grabcut import grabcut_refine

        ctx = self._context()
        if ctx is None:
            return False
        doc, rgb, labels, cls = ctx
        if not (labels == cls).any():
            self.window.statusBar().showMessage(
                f"Paint a rough {self.window.classes[cls].name} region first", 4000)
            return False

        def apply(d, mask):
            new = np.array(d.labels.array)
            new[(new == cls) & ~mask] = 0
            new[mask] = cls
            d.labels.replace(new, name="grabcut refine")

        return self._run("GrabCut refine", lambda: grabcut_refine(rgb, labels, cls), apply,
                         "the region already follows the object's edge as seen in this window")

    # -- clean-ups ---------------------------------------------------------------------------
    def ask_remove_islands(self) -> None:
        n, ok = QInputDialog.getInt(self.window, "Remove small islands",
                                    "Smallest region to keep (pixels):", self.island_size, 1, 10**7)
        if ok:
            self.remove_islands(n)

    def remove_islands(self, min_size: int) -> bool:
        from segstudio.refine.morphology import remove_islands

        ctx = self._context()
        if ctx is None:
            return False
        self.island_size = min_size
        _, _, labels, cls = ctx
        return self._run("Remove islands", lambda: remove_islands(labels, cls, min_size),
                         lambda d, new: d.labels.replace(new, name="remove islands"))

    def fill_holes(self) -> bool:
        from segstudio.refine.morphology import fill_holes

        ctx = self._context()
        if ctx is None:
            return False
        _, _, labels, cls = ctx
        return self._run("Fill holes", lambda: fill_holes(labels, cls),
                         lambda d, new: d.labels.replace(new, name="fill holes"))

    def keep_largest(self) -> bool:
        from segstudio.refine.morphology import keep_largest_region

        ctx = self._context()
        if ctx is None:
            return False
        _, _, labels, cls = ctx
        return self._run("Keep the largest region", lambda: keep_largest_region(labels, cls),
                         lambda d, new: d.labels.replace(new, name="keep largest region"),
                         "the class has one region or none")

    def ask_smooth(self) -> None:
        dialog = SmoothDialog(self.smooth_method, self.smooth_size, self.window)
        if dialog.exec():
            self.smooth(dialog.method(), dialog.size())

    def smooth(self, method: str, size: int) -> bool:
        from segstudio.refine.morphology import smooth_class

        ctx = self._context()
        if ctx is None:
            return False
        self.smooth_method, self.smooth_size = method, size
        _, _, labels, cls = ctx
        return self._run(f"Smoothing ({method}, {size} px)",
                         lambda: smooth_class(labels, cls, method, size),
                         lambda d, new: d.labels.replace(new, name=f"smooth ({method})"),
                         "the outline has no detail smaller than the kernel")

    def ask_margin(self) -> None:
        n, ok = QInputDialog.getInt(self.window, "Grow or shrink the current class",
                                    "Pixels to grow by (negative shrinks):", self.margin_px,
                                    -1000, 1000)
        if ok:
            self.margin(n)

    def margin(self, pixels: int) -> bool:
        from segstudio.refine.morphology import margin

        ctx = self._context()
        if ctx is None:
            return False
        self.margin_px = pixels
        _, _, labels, cls = ctx
        word = "Grow" if pixels >= 0 else "Shrink"
        return self._run(f"{word} by {abs(pixels)} px", lambda: margin(labels, cls, pixels),
                         lambda d, new: d.labels.replace(new, name="margin"))

    # -- dense CRF (separate process) --------------------------------------------------------
    def crf_settings(self) -> None:
        dialog = CrfSettingsDialog(self.crf_params, self.window)
        if dialog.exec():
            self.crf_params = dialog.params()

    def run_crf(self, kind: str) -> bool:
        from segstudio.refine.crf import CrfError
        from segstudio.refine.crf_process import CrfProcess

        ctx = self._context()
        if ctx is None:
            return False
        doc, rgb, labels, _ = ctx
        if kind == "probs" and doc.prediction is None:
            self.window.statusBar().showMessage("No prediction for this image yet: run a model "
                                                "(Ctrl+R)", 4000)
            return False
        if self.crf is None:
            self.crf = CrfProcess()
        try:
            if kind == "probs":
                self.crf.submit(rgb, doc.prediction.probabilities, self.crf_params, kind="probs")
            else:
                self.crf.submit(rgb, labels, self.crf_params, kind="labels",
                                num_classes=len(self.window.classes))
        except CrfError as exc:
            self.window.show_error(f"Dense CRF: {exc}")
            return False
        if self._crf_doc is None:
            self.window.begin_busy()
        self._crf_doc, self._crf_kind = doc, kind
        self._crf_timer.start()
        self.window.statusBar().showMessage("Dense CRF running…")
        return True

    def _poll_crf(self) -> None:
        from segstudio.refine.crf import CrfCancelled, CrfError

        try:
            result = self.crf.poll()
        except CrfCancelled:
            self._crf_done("Dense CRF cancelled")
            return
        except CrfError as exc:
            self._crf_done("")
            self.window.show_error(f"Dense CRF: {exc}")
            return
        if result is None:
            progress = self.crf.progress
            if progress:
                self.window.statusBar().showMessage(
                    f"Dense CRF: iteration {progress[0]} of {progress[1]}…")
            return
        doc = self._crf_doc
        labels = result.argmax(axis=0).astype(np.uint8) if self._crf_kind == "probs" else result
        changed = 0
        if doc is self.window.doc:
            changed = int((np.asarray(doc.labels.array) != labels).sum())
            doc.labels.replace(labels, name="dense CRF")
        self.last_changed = changed
        self._crf_done(f"Dense CRF: {changed:,} pixels changed (Ctrl+Z undoes it)" if changed
                       else "Dense CRF changed no pixels")

    def _crf_done(self, message: str) -> None:
        self._crf_timer.stop()
        if self._crf_doc is not None:
            self._crf_doc = None
            self.window.end_busy()
        if message:
            self.window.statusBar().showMessage(message, 4000)

    def cancel_crf(self) -> None:
        if self.crf is not None and self._crf_doc is not None:
            self.crf.cancel()
            self._crf_done("Dense CRF cancelled")

    def close(self) -> None:
        self.grow.close()
        self._crf_timer.stop()
        if self.crf is not None:
            self.crf.close()
            self.crf = None
