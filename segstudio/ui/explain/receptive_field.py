"""Receptive fields on the canvas, effective fields beside them, and the context comparison.

Click a pixel with the receptive-field tool: the canvas shows the theoretical field of the chosen
branch as a box, each ASPP rate's 3×3 atrous taps as dots in its own colour (rate 24 reaches four
times as far as rate 6), each PSP bin's pooling cell, and image-level pooling as the whole image.
The dock shows the effective field (Luo et al., 2016) of the same unit for the model's weights
and for random weights. The context view compares FCN, PSPNet and DeepLab v3 at that pixel.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QPainter, QPen, QPixmap
from PySide6.QtWidgets import (QCheckBox, QComboBox, QFormLayout, QGridLayout, QLabel,
                               QPushButton, QVBoxLayout, QWidget)

from segstudio.ui.explain.colormap import BRANCH_COLORS, blend, colorize
from segstudio.ui.explain.session import ModelSource, bin_of, random_twin, rate_of
from segstudio.ui.explain.figure_export import ColorBarSpec, Figure, Panel
from segstudio.ui.explain.activations import _fill_branches, _resize_rgb, _thumbnail_size
from segstudio.ui.canvas.render import rgb8_to_qimage
from segstudio.ui.tools.base import Tool

CONTEXT_MODELS = (("FCN-8s", ("fcn8s", "fcn16s", "fcn32s")), ("PSPNet", ("pspnet",)),
                  ("DeepLab v3", ("deeplabv3",)))
DOT_RADIUS = 4.0            # screen pixels
KEPT_TWINS = 2              # random-weight networks kept for effective fields


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


def branch_marks(branches: dict[str, str], fields: dict, y: int, x: int,
                 size: tuple[int, int]) -> list[dict]:
    """Per ASPP rate / PSP bin / image pooling: what that branch alone samples around (y, x)."""
    from segstudio.explain.receptive_field import atrous_sampling_grid, unit_at

    h, w = size
    marks = []
    for name, path in branches.items():
        rf = fields.get(path)
        rate, bins = rate_of(name), bin_of(name)
        colour = BRANCH_COLORS[len(marks) % len(BRANCH_COLORS)]
        if rf is not None and (rate is not None or name.endswith("1x1")):
            centre = rf.centre(*unit_at(rf, y, x))
            taps = atrous_sampling_grid(rate or 0, 3, centre, rf)
            spread = rate * rf.jump[1] if rate else 0
            marks.append({"name": name, "kind": "taps", "taps": taps, "colour": colour,
                          "text": f"{name}: 3×3 taps {spread:g} px apart" if rate else
                                  f"{name}: one tap per unit"})
        elif bins is not None:
            row, col = min(bins - 1, y * bins // h), min(bins - 1, x * bins // w)
            cell = (row * h // bins, col * w // bins, -(-(row + 1) * h // bins),
                    -(-(col + 1) * w // bins))
            marks.append({"name": name, "kind": "cell", "box": cell, "colour": colour,
                          "text": f"{name}: pools a {cell[2] - cell[0]}×{cell[3] - cell[1]} px "
                                  f"cell ({bins}×{bins} grid)"})
        elif "image_pool" in name:
            marks.append({"name": name, "kind": "cell", "box": (0, 0, h, w), "colour": colour,
                          "text": f"{name}: the whole image"})
    return marks


def draw_marks(painter: QPainter, result: dict, scale: float) -> None:
    """Draw a field result in image coordinates (the painter already maps image → target)."""
    r = DOT_RADIUS / scale
    painter.save()
    painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
    for mark in result["marks"]:
        pen = QPen(QColor(*mark["colour"]), 2)
        pen.setCosmetic(True)
        painter.setPen(pen)
        if mark["kind"] == "taps":
            painter.setBrush(QColor(*mark["colour"]))
            for ty, tx in mark["taps"]:
                painter.drawEllipse(QPointF(tx + 0.5, ty + 0.5), r, r)
        else:
            painter.setBrush(Qt.BrushStyle.NoBrush)
            t, left, b, right = mark["box"]
            painter.drawRect(QRectF(left, t, right - left, b - t))
    t, left, b, right = result["box"]
    for colour, width, style in ((QColor(0, 0, 0), 4, Qt.PenStyle.SolidLine),
                                 (QColor(255, 255, 255), 2, Qt.PenStyle.DashLine)):
        pen = QPen(colour, width, style)
        pen.setCosmetic(True)
        painter.setPen(pen)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawRect(QRectF(left, t, right - left, b - t))
    y, x = result["pixel"]
    painter.setPen(QPen(QColor(0, 0, 0), 1 / scale))
    painter.setBrush(QColor(255, 40, 40))
    painter.drawEllipse(QPointF(x + 0.5, y + 0.5), 1.5 * r, 1.5 * r)
    if result["marks"]:
        painter.scale(1 / scale, 1 / scale)      # the key is drawn in screen pixels
        _draw_key(painter, result["marks"])
    painter.restore()


def _draw_key(painter: QPainter, marks: list[dict]) -> None:
    """Which colour is which branch, in the image's top-left corner, on a dark plate."""
    font = QFont(painter.font())
    font.setPixelSize(12)
    painter.setFont(font)
    line = 16
    width = max(painter.fontMetrics().horizontalAdvance(m["name"]) for m in marks) + 28
    painter.setPen(Qt.PenStyle.NoPen)
    painter.setBrush(QColor(0, 0, 0, 170))
    painter.drawRect(QRectF(4, 4, width, line * len(marks) + 8))
    for i, mark in enumerate(marks):
        y = 8 + i * line
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor(*mark["colour"]))
        painter.drawEllipse(QPointF(16, y + line / 2), DOT_RADIUS, DOT_RADIUS)
        painter.setPen(QColor(255, 255, 255))
        painter.drawText(QRectF(26, y, width - 24, line),
                         Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, mark["name"])


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
        self.erf_check = QCheckBox("Effective field (trained vs random weights)", self)
        self.erf_check.setChecked(True)
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
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.erf_check)
        layout.addWidget(self.field_label)
        layout.addWidget(self.legend)
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

        def work(ctx):
            from segstudio.explain.effective_rf import effective_rf
            from segstudio.explain.receptive_field import box_at, unit_at

            loaded = ctx.load()
            size = ctx.rgb.shape[:2]
            fields = _fields(ctx, loaded, size)
            path = loaded.branches[branch]
            if path not in fields:
                raise ValueError(f"{branch} ({path}) did not run on this image, so it has no "
                                 "receptive field here")
            rf = fields[path]
            unit = unit_at(rf, y, x)
            result = {"branch": branch, "path": path, "pixel": (y, x), "field": rf,
                      "unbounded": box_at(rf, *unit), "box": box_at(rf, *unit, image_size=size),
                      "marks": branch_marks(loaded.branches, fields, y, x, size),
                      "model": loaded.title, "trained": loaded.trained, "erf": []}
            if with_erf:
                twin_key = (loaded.arch, loaded.config, len(loaded.classes),
                            str(next(loaded.model.parameters()).device))
                twins = ctx.session.twins
                if twin_key not in twins:
                    while len(twins) >= KEPT_TWINS:     # a paper-size twin is large
                        twins.pop(next(iter(twins)))
                    twins[twin_key] = random_twin(loaded)
                image = ctx.input(loaded)
                for model in (loaded.model, twins[twin_key]):
                    if ctx.cancelled():
                        break
                    result["erf"].append(effective_rf(model, image, y, x, output=path))
            return result

        return self.session.submit("Receptive field", work, self._ready)

    def _ready(self, result: dict) -> None:
        doc = self.window.doc
        if doc is None or result["pixel"] != self.session.pixel:
            return
        self.result = result
        rf, (t, left, b, right) = result["field"], result["unbounded"]
        self.field_label.setText(
            f"{result['branch']} ({result['path']}) at pixel x {result['pixel'][1]}, y "
            f"{result['pixel'][0]}: field {rf.size[1]:g}×{rf.size[0]:g} px (w×h), jump "
            f"{rf.jump[1]:g}×{rf.jump[0]:g} px; box x {left}…{right}, y {t}…{b}"
            + (" (wider than the image)" if (t, left, b, right) != result["box"] else ""))
        self.legend.setText("<br>".join(
            f"<span style='color: rgb{tuple(m['colour'])}'>&#9679;</span> {m['text']}"
            for m in result["marks"]))
        titles = (("this model's weights" if result["trained"]
                   else "this model's weights (untrained)"), "random weights")
        for view, text, erf, title in zip(self.erf_views, self.erf_texts, result["erf"], titles):
            rgb = self.erf_rgb(erf)
            h, w = _thumbnail_size(*rgb.shape[:2], longest=160)
            view.setPixmap(QPixmap.fromImage(rgb8_to_qimage(_resize_rgb(rgb, (h, w)))))
            view.setMinimumSize(w, h)
            text.setText(f"{title}: 95 % of the gradient in {erf.mass95_share:.1%} of the "
                         "theoretical field")
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
                                                   f"{erf.mass95_share:.0%}"))
        rf = r["field"]
        return Figure("Receptive field", panels,
                      [f"Model: {r['model']}", f"Layer: {r['branch']} ({r['path']})",
                       f"Settings: theoretical field {rf.size[1]:g}×{rf.size[0]:g} px, jump "
                       f"{rf.jump[1]:g} px (white box); " + "; ".join(m["text"] for m in
                                                                       r["marks"])],
                      ColorBarSpec("inferno", 0.0, 1.0, "|gradient| / max") if r["erf"] else None)


class ContextPanel(QWidget):
    """FCN vs PSPNet vs DeepLab v3 on the image on screen, with their fields at one pixel."""

    def __init__(self, window, session, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.window, self.session = window, session
        self.results: list[dict] = []
        self.compare_button = QPushButton("Compare FCN, PSPNet and DeepLab v3", self)
        self.compare_button.clicked.connect(self.compare)
        self.views = [QLabel(self) for _ in CONTEXT_MODELS]
        self.erf_views = [QLabel(self) for _ in CONTEXT_MODELS]
        self.texts = [QLabel(self) for _ in CONTEXT_MODELS]
        grid = QGridLayout()
        for i, widgets in enumerate(zip(self.views, self.erf_views, self.texts)):
            for row, widget in enumerate(widgets):
                widget.setAlignment(Qt.AlignmentFlag.AlignCenter)
                grid.addWidget(widget, row, i)
        for text in self.texts:
            text.setWordWrap(True)      # only text wraps: a wrapping picture label gets squashed
        info = QLabel("Each model's prediction with its theoretical field at the pixel last "
                      "clicked with the receptive-field tool (white box), and below it the "
                      "effective field there: where the output really looks.", self)
        info.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.addWidget(self.compare_button)
        layout.addWidget(info)
        layout.addLayout(grid)
        layout.addStretch(1)

    def reset(self) -> None:
        self.results = []
        for label in self.views + self.erf_views + self.texts:
            label.clear()

    def compare(self) -> bool:
        doc = self.window.doc
        if doc is None:
            return False
        y, x = self.session.pixel or (doc.image.height // 2, doc.image.width // 2)
        n = len(self.window.classes)
        class_names = self.window.classes.names
        current = self.session.current_source()
        device = current.device if current is not None else "auto"

        def work(ctx):
            from segstudio.explain.effective_rf import effective_rf
            from segstudio.explain.probes import predict_labels
            from segstudio.explain.receptive_field import box_at, unit_at
            from segstudio.models.checkpoint import CheckpointError, read_meta
            from segstudio.paths import user_data_dir, weights_dir

            # Per architecture, a trained checkpoint for this image's classes (the chest
            # models must not be asked about boats); any trained one only if none matches.
            found, fallback = {}, {}
            for folder in (weights_dir(), user_data_dir() / "models"):
                for path in sorted(folder.glob("*.pt")) if folder.is_dir() else ():
                    try:
                        meta = read_meta(path)
                    except CheckpointError:
                        continue
                    if meta.trained:
                        fits = meta.classes.names == class_names
                        (found if fits else fallback).setdefault(meta.arch, path)
            found = {**fallback, **found}
            size = ctx.rgb.shape[:2]
            results = []
            for title, archs in CONTEXT_MODELS:
                path = next((found[a] for a in archs if a in found), None)
                source = ModelSource(archs[0], "lite", path, n, device)
                loaded = ctx.load(source)
                image = ctx.input(loaded)
                labels = predict_labels(loaded.model, image)
                rf = _fields(ctx, loaded, size)[""]
                erf = effective_rf(loaded.model, image, y, x)
                results.append({"title": title, "model": loaded.title, "trained": loaded.trained,
                                "labels": labels, "colours": loaded.classes.color_table(),
                                "field": rf, "marks": [], "pixel": (y, x),
                                "box": box_at(rf, *unit_at(rf, y, x), image_size=size),
                                "share": erf.mass95_share, "heat": erf.heat})
            return results

        return self.session.submit("Context comparison", work, self._ready)

    def _ready(self, results: list[dict]) -> None:
        doc = self.window.doc
        if doc is None:
            return
        self.results = results
        for view, erf_view, text, r in zip(self.views, self.erf_views, self.texts, results):
            rgb = self.panel_rgb(doc.display_rgb8(), r)
            h, w = _thumbnail_size(*rgb.shape[:2], longest=150)
            view.setPixmap(QPixmap.fromImage(rgb8_to_qimage(_resize_rgb(rgb, (h, w)))))
            heat = ReceptiveFieldPanel.erf_rgb(r)
            erf_view.setPixmap(QPixmap.fromImage(rgb8_to_qimage(_resize_rgb(heat, (h, w)))))
            view.setMinimumSize(w, h)
            erf_view.setMinimumSize(w, h)
            state = "trained" if r["trained"] else "UNTRAINED: random weights, noise"
            text.setText(f"<b>{r['title']}</b> — {state}<br>field {r['field'].size[1]:g} px; "
                         f"95 % of the effective field in {r['share']:.1%} of it")

    @staticmethod
    def panel_rgb(rgb: np.ndarray, r: dict) -> np.ndarray:
        """The prediction over the image with the field box burnt in (for thumbnails)."""
        labels = np.asarray(r["labels"]).astype(np.intp).clip(0, 255)
        out = blend(rgb, r["colours"][labels], 0.5)
        t, left, b, right = r["box"]
        out[t:b, [left, right - 1]] = 255
        out[[t, b - 1], left:right] = 255
        return out

    def figure(self) -> Figure | None:
        doc = self.window.doc
        if not self.results or doc is None:
            return None
        rgb = doc.display_rgb8()
        panels = []
        for r in self.results:
            state = "trained" if r["trained"] else "untrained"
            out = blend(rgb, r["colours"][np.asarray(r["labels"]).astype(np.intp)], 0.5)
            panels.append(Panel(out, f"{r['title']} ({state})",
                                lambda p, s, r=r: draw_marks(p, r, s)))
        panels += [Panel(ReceptiveFieldPanel.erf_rgb(r), f"{r['title']}: effective field")
                   for r in self.results]
        y, x = self.results[0]["pixel"]
        return Figure("Context: FCN vs PSPNet vs DeepLab v3", panels,
                      ["Models: " + "; ".join(r["model"] for r in self.results),
                       "Layer: model output (white box: theoretical field at the red dot)",
                       f"Settings: pixel x {x}, y {y}; " + "; ".join(
                           f"{r['title']} field {r['field'].size[1]:g} px, 95 % ERF mass in "
                           f"{r['share']:.0%}" for r in self.results)],
                      ColorBarSpec("inferno", 0.0, 1.0, "|gradient| / max"), panel_height=240,
                      columns=len(CONTEXT_MODELS))


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
