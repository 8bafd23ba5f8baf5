"""Receptive fields on the canvas, effective fields beside them, and the context comparison.

Click a pixel with the receptive-field tool: the canvas shows the exact theoretical field of the
chosen branch's unit there as a box, each ASPP rate's 3×3 atrous taps as dots in its own colour
(hollow where they read only padding), each PSP bin's pooling cell, and image-level pooling as
the whole image. The dock shows the effective field (Luo et al., 2016) of the prediction at that
pixel, the gradient of the predicted class's logit, for the model's weights and for random
weights, averaged over one or more images, with its centre of mass. The context view
(:mod:`segstudio.ui.explain.context`) compares FCN, PSPNet and DeepLab v3 at that pixel.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtGui import QPainter, QPixmap
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QCheckBox, QComboBox, QFormLayout, QGridLayout, QLabel, QSpinBox,
                               QVBoxLayout, QWidget)

from segstudio.ui.canvas.render import rgb8_to_qimage
from segstudio.ui.explain.activations import _fill_branches, _resize_rgb, _thumbnail_size
from segstudio.ui.explain.colormap import colorize
from segstudio.ui.explain.field_marks import branch_marks, draw_marks
from segstudio.ui.explain.figure_export import ColorBarSpec, Figure, Panel
from segstudio.ui.explain.session import random_twin, rate_of
from segstudio.ui.explain.tap_curve import TapCurveView
from segstudio.ui.tools.base import Tool

KEPT_TWINS = 2              # random-weight networks kept for effective fields
MAX_AVERAGED = 32           # images an effective field may average over
ERF_QUANTITY = "gradient of the predicted class's logit at this pixel"


def _fields(ctx, loaded, size) -> dict:
    """Theoretical fields of every branch and of the output, kept per model and image size."""
    from segstudio.explain.receptive_field import (MODEL_OUTPUT, ReceptiveFieldError,
                                                   receptive_field, receptive_fields)

    cache = ctx.session.fields
    key = (loaded.source, size)
    if key not in cache:
        paths = list(dict.fromkeys(list(loaded.branches.values()) + [MODEL_OUTPUT]))
        try:
            cache[key] = receptive_fields(loaded.model, paths, size)
        except ReceptiveFieldError:
            found = {}
            for path in paths:        # one branch that never runs must not hide the others
                try:
                    found[path] = receptive_field(loaded.model, path, size)
                except ReceptiveFieldError:
                    continue
            cache[key] = found
    return cache[key]


def _unit_fields(ctx, loaded, size) -> dict:
    """Per-unit fields (:mod:`segstudio.explain.pixel_fields`) of every branch and the output."""
    from segstudio.explain.pixel_fields import pixel_fields
    from segstudio.explain.receptive_field import MODEL_OUTPUT

    cache = ctx.session.fields
    key = (loaded.source, size, "units")
    if key not in cache:
        paths = list(dict.fromkeys(list(loaded.branches.values()) + [MODEL_OUTPUT]))
        cache[key] = pixel_fields(loaded.model, paths, size, skip_missing=True)
    return cache[key]


def _tap_curve(loaded):
    """DeepLab v3's Fig. 4 for the model's first atrous branch, and its rates; None if none."""
    from segstudio.explain.atrous import atrous_conv, tap_curve

    rates = [rate_of(n) for n in loaded.branches if rate_of(n)]
    for name, path in loaded.branches.items():
        if rate_of(name):
            conv = atrous_conv(loaded.model.get_submodule(path))
            if conv is not None:
                return tap_curve(conv, 65), rates
    return None, ()


def erf_text(title: str, erf) -> str:
    """One effective field in words: what was differentiated, its mass, and its centre."""
    (cy, cx), (dy, dx) = erf.center, erf.offset
    return (f"{title}: {ERF_QUANTITY}, mean over {erf.images} image(s). 95 % of it in "
            f"{erf.mass95_px} px = {erf.shares_text()}; {erf.peak_px} px at e⁻² (13.5 %) of its "
            "peak or more, the area Luo et al.'s Gaussian reading gives (its 2σ disc). "
            f"Centre of mass x {cx:.1f}, y {cy:.1f}: {dx:+.1f}, {dy:+.1f} px from the click.")


RANDOM_WIDER = (
    "On the bundled context models random weights give the wider field, by the 95 % mass and "
    "by the peak area alike: the opposite of Luo et al., who saw effective fields grow in "
    "training. The 95 % "
    "mass counts a faint, diffuse tail, which untrained weights spread over the whole field; "
    "the peak area ignores tails, but a trained model's gradient has a sharp peak at the "
    "pixel itself, so by it too the trained field is the narrower. Neither number says what "
    "the prediction uses; the ablation does.")


class ReceptiveFieldTool(Tool):
    """Click a pixel to see what the chosen branch's unit there can see."""

    name = "Receptive field"
    shortcut = "I"

    def __init__(self, window, panel: "ReceptiveFieldPanel") -> None:
        super().__init__(window)
        self.panel = panel

    def press(self, pos, event) -> None:
        self.panel.pick_pixel(int(np.floor(pos.y())), int(np.floor(pos.x())))


class ReceptiveFieldPanel(QWidget):
    def __init__(self, window, session, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.window, self.session = window, session
        self.result: dict | None = None
        self.branch_combo = QComboBox(self)
        self.branch_combo.currentIndexChanged.connect(self._branch_changed)
        self.erf_check = QCheckBox("Effective field of the prediction (trained vs random "
                                   "weights)", self)
        self.erf_check.setChecked(True)
        self.images_spin = QSpinBox(self)
        self.images_spin.setRange(1, MAX_AVERAGED)
        self.images_spin.setToolTip("Average the effective field over this image and up to "
                                    "N - 1 more images of the workspace of the same size, as "
                                    "Luo et al. do")
        self.tap_curve = TapCurveView(self)
        self.field_label = QLabel("Pick the receptive-field tool (I) and click a pixel.", self)
        self.field_label.setWordWrap(True)
        self.legend = QLabel(self)
        self.legend.setWordWrap(True)
        self.legend.setTextFormat(Qt.TextFormat.RichText)
        self.erf_views = [QLabel(self), QLabel(self)]
        self.erf_texts = [QLabel(self), QLabel(self)]
        grid = QGridLayout()
        for i in range(2):
            self.erf_views[i].setAlignment(Qt.AlignmentFlag.AlignCenter)
            self.erf_texts[i].setWordWrap(True)
            grid.addWidget(self.erf_views[i], 0, i)
            grid.addWidget(self.erf_texts[i], 1, i)
        form = QFormLayout()
        form.addRow("Branch", self.branch_combo)
        form.addRow("Images averaged", self.images_spin)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.erf_check)
        layout.addWidget(self.field_label)
        layout.addWidget(self.legend)
        layout.addWidget(self.tap_curve)
        layout.addLayout(grid)
        layout.addStretch(1)
        window.canvas.decorations.append(self._draw)
        session.sourceChanged.connect(self.refresh_branches)
        session.modelLoaded.connect(lambda _m: self.refresh_branches())
        self.refresh_branches()

    def refresh_branches(self) -> None:
        _fill_branches(self.branch_combo, self.session.known_branches())

    def _branch_changed(self, *_) -> None:
        if self.session.pixel is not None and self.window.doc is not None:
            self.pick_pixel(*self.session.pixel)

    def reset(self) -> None:
        self.result = None
        self.field_label.setText("Pick the receptive-field tool (I) and click a pixel.")
        self.legend.clear()
        self.tap_curve.set_curve(None)
        for view, text in zip(self.erf_views, self.erf_texts):
            view.clear()
            text.clear()
        self.window.canvas.update()

    def pick_pixel(self, y: int, x: int) -> bool:
        doc = self.window.doc
        branch = self.branch_combo.currentText()
        if doc is None or not (0 <= y < doc.image.height and 0 <= x < doc.image.width):
            return False
        if not self.session.has_branch(branch):
            return False
        self.session.pixel = (y, x)
        with_erf = self.erf_check.isChecked()
        wanted = self.images_spin.value() - 1
        others = self._other_images(wanted) if with_erf else []

        def work(ctx):
            from segstudio.explain.effective_rf import prediction_erf
            from segstudio.explain.receptive_field import MODEL_OUTPUT
            from segstudio.models.registry import REGISTRY

            loaded = ctx.load()
            size = ctx.rgb.shape[:2]
            if loaded.foreign:         # a model file's network: no branches, maybe no theory
                from segstudio.ui.explain.foreign_field import field_at

                return field_at(ctx, loaded, branch, y, x, with_erf,
                                _read_same_size(others, size, wanted) if with_erf else [],
                                traced=lambda: (_fields(ctx, loaded, size),
                                                _unit_fields(ctx, loaded, size)),
                                describe=erf_text, quantity=ERF_QUANTITY)
            fields = _fields(ctx, loaded, size)
            units = _unit_fields(ctx, loaded, size)
            path = loaded.branches[branch]
            if path not in fields or path not in units:
                raise ValueError(f"{branch} ({path}) did not run on this image, so it has no "
                                 "receptive field here")
            per_unit = units[path]
            x0, y0, x1, y1 = per_unit.box(*per_unit.unit_at(y, x))
            box = (y0, x0, y1 + 1, x1 + 1)
            clipped = (max(y0, 0), max(x0, 0), min(y1 + 1, size[0]), min(x1 + 1, size[1]))
            result = {"branch": branch, "path": path, "pixel": (y, x), "field": fields[path],
                      "sizes": per_unit.size_range(), "unbounded": box, "box": clipped,
                      "marks": branch_marks(loaded.branches, fields, y, x, size, units),
                      "model": loaded.title, "trained": loaded.trained, "erf": [],
                      "center": None, "curve": _tap_curve(loaded)}
            detector = loaded.arch in REGISTRY and REGISTRY[loaded.arch].instance
            if with_erf and (detector or MODEL_OUTPUT not in units):
                result["erf_note"] = (f"{loaded.title} predicts objects, not one score per "
                                      "pixel: its predictions have no effective field here")
            elif with_erf:
                twin_key = (loaded.arch, loaded.config, len(loaded.classes),
                            str(next(loaded.model.parameters()).device))
                twins = ctx.session.twins
                if twin_key not in twins:
                    while len(twins) >= KEPT_TWINS:     # a paper-size twin is large
                        twins.pop(next(iter(twins)))
                    twins[twin_key] = random_twin(loaded)
                images = [ctx.input(loaded)] + [loaded.to_input(rgb)
                                                for rgb in _read_same_size(others, size, wanted)]
                for model in (loaded.model, twins[twin_key]):
                    if ctx.cancelled():
                        break
                    result["erf"].append(prediction_erf(
                        model, images, y, x, field=units[MODEL_OUTPUT], cancelled=ctx.cancelled))
                if result["erf"]:
                    result["center"] = result["erf"][0].center
            return result

        return self.session.submit("Receptive field", work, self._ready)

    def _other_images(self, n: int) -> list:
        """Up to ``n`` image files of the workspace other than the one on screen (video frames
        are left out), read later in the worker thread."""
        ws, doc = self.window.workspace, self.window.doc
        if n <= 0 or ws is None or doc is None:
            return []
        return [ws.source_path(item) for item in ws.items
                if item.frame is None and item is not doc.item][:4 * n]

    def _ready(self, result: dict) -> None:
        doc = self.window.doc
        if doc is None or result["pixel"] != self.session.pixel:
            return
        self.result = result
        if result["field"] is None:
            self._show_field_note(result)
            return
        rf, (t, left, b, right) = result["field"], result["unbounded"]
        (h_min, h_max), (w_min, w_max) = result["sizes"]
        spread = "" if (h_min, w_min) == (h_max, w_max) else (
            f"; its units see {w_min}–{w_max} × {h_min}–{h_max} px, depending on the pixel")
        self.field_label.setText(
            f"{result['branch']} ({result['path']}) at pixel x {result['pixel'][1]}, y "
            f"{result['pixel'][0]}: field {right - left}×{b - t} px (w×h) here, jump "
            f"{rf.jump[1]:g}×{rf.jump[0]:g} px; box x {left}…{right - 1}, y {t}…{b - 1}"
            + (" (wider than the image)" if (t, left, b, right) != result["box"] else "")
            + spread)
        self.legend.setText("<br>".join(
            f"<span style='color: rgb{tuple(m['colour'])}'>&#9679;</span> {m['text']}"
            for m in result["marks"]))
        self.tap_curve.set_curve(*result["curve"])
        for view, text in zip(self.erf_views, self.erf_texts):
            view.clear()
            text.clear()
        titles = (("this model's weights" if result["trained"]
                   else "this model's weights (untrained)"), "random weights")
        self._show_erfs(result, titles)
        if "erf_note" in result:
            self.erf_views[0].clear()
            self.erf_texts[0].setText(result["erf_note"])
        self.window.canvas.update()

    def _show_erfs(self, result: dict, titles) -> None:
        """The effective fields as pictures, each with its text (a model file's result brings
        its own texts: a field measured against the image, and why there is no twin)."""
        texts = result.get("erf_texts") or [
            erf_text(t, e) + (f" {RANDOM_WIDER}" if t == "random weights" else "")
            for t, e in zip(titles, result["erf"])]
        for view, erf in zip(self.erf_views, result["erf"]):
            rgb = self.erf_rgb(erf)
            h, w = _thumbnail_size(*rgb.shape[:2], longest=160)
            view.setPixmap(QPixmap.fromImage(rgb8_to_qimage(_resize_rgb(rgb, (h, w)))))
            view.setMinimumSize(w, h)
        for label, text in zip(self.erf_texts, texts):
            label.setText(text)

    def _show_field_note(self, result: dict) -> None:
        """A result without a theoretical field: why not, and the effective field alone."""
        self.field_label.setText(result["field_note"])
        self.legend.clear()
        self.tap_curve.set_curve(None)
        for view, text in zip(self.erf_views, self.erf_texts):
            view.clear()
            text.clear()
        self._show_erfs(result, ())
        self.window.canvas.update()

    @staticmethod
    def erf_rgb(erf) -> np.ndarray:
        """An effective field (an ERF, or a dict with its ``heat``) coloured from 0 to its peak."""
        heat = erf["heat"] if isinstance(erf, dict) else erf.heat
        return colorize(heat, 0.0, float(heat.max()) or 1.0, "inferno")

    def _draw(self, painter: QPainter, canvas) -> None:
        if self.result is None or canvas.image_size is None:
            return
        painter.save()
        painter.translate(canvas.offset)
        painter.scale(canvas.scale, canvas.scale)
        draw_marks(painter, self.result, canvas.scale)
        painter.restore()

    def figure(self) -> Figure | None:
        doc = self.window.doc
        if self.result is None or doc is None:
            return None
        r = self.result
        where = f"{r['branch']} at x {r['pixel'][1]}, y {r['pixel'][0]}"
        panels = [Panel(doc.display_rgb8(), where, lambda p, s: draw_marks(p, r, s))]
        names = ("model weights" if r["trained"] else "model weights (untrained)",
                 "random weights")
        for erf, name in zip(r["erf"], names):
            panels.append(Panel(self.erf_rgb(erf), f"ERF, {name}: 95 % in "
                                                   f"{erf.mass95_in_image_share:.1%} of the field "
                                                   f"in the image ({erf.mass95_share:.1%} of all)"))
        if r["field"] is None:
            return Figure("Receptive field", panels,
                          [f"Model: {r['model']}", f"Layer: {r['branch']} ({r['path']})",
                           f"Settings: {r['field_note']}"],
                          ColorBarSpec("inferno", 0.0, 1.0, "|gradient| / max") if r["erf"]
                          else None)
        rf, (t, left, b, right) = r["field"], r["unbounded"]
        erf_note = (f"; effective field: {ERF_QUANTITY}, over {r['erf'][0].images} image(s), "
                    "measured against the unclipped field of the output pixel; cyan cross: "
                    "its centre of mass") if r["erf"] else ""
        return Figure("Receptive field", panels,
                      [f"Model: {r['model']}", f"Layer: {r['branch']} ({r['path']})",
                       f"Settings: theoretical field {right - left}×{b - t} px at the pixel, "
                       f"jump {rf.jump[1]:g} px (white box); " + "; ".join(
                           m["text"] for m in r["marks"]) + erf_note],
                      ColorBarSpec("inferno", 0.0, 1.0, "|gradient| / max") if r["erf"] else None)


def _read_same_size(paths: list, size, limit: int) -> list:
    """Up to ``limit`` RGB images of ``paths`` that have ``size`` (others, and unreadable
    files, are skipped)."""
    from segstudio.io.images import ImageReadError, read_image

    found = []
    for path in paths:
        if len(found) >= limit:
            break
        try:
            rgb = read_image(path).to_rgb8()
        except (ImageReadError, OSError, ValueError):
            continue
        if rgb.shape[:2] == tuple(size):
            found.append(rgb)
    return found


def install_rf_tool(window, panel: ReceptiveFieldPanel) -> ReceptiveFieldTool:
    """Register the receptive-field tool with the window's tools, Edit menu and tool bar."""
    from PySide6.QtWidgets import QToolBar

    tool = ReceptiveFieldTool(window, panel)
    window.tools[tool.name] = tool
    edit = next((a.menu() for a in window.menuBar().actions()
                 if a.menu() is not None and a.text().replace("&", "") == "Edit"), None)
    action = window._action(f"{tool.name} tool", lambda _=False: window.set_tool(tool.name),
                            tool.shortcut, edit)
    action.setCheckable(True)
    window.tool_group.addAction(action)
    window.tool_actions[tool.name] = action
    toolbar = window.findChild(QToolBar, "toolbar-tools")
    if toolbar is not None:
        # Beside the other tools: before the first separator (None appends).
        separator = next((a for a in toolbar.actions() if a.isSeparator()), None)
        toolbar.insertAction(separator, action)
    return tool
