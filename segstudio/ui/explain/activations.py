"""Activation maps of a network's named branches, the grid of all of them, and Grad-CAM.

The maps come from forward hooks (``segstudio.explain.probes``): the network runs exactly as it
does for a prediction, and what a branch (a pyramid bin, an ASPP rate, a backbone stage) produced
is read on the way. Zeroing one branch and predicting again shows what it contributes.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QIcon, QImage, QPixmap
from PySide6.QtWidgets import (QButtonGroup, QComboBox, QFormLayout, QGridLayout, QHBoxLayout,
                               QLabel, QPushButton, QSlider, QStyle, QToolButton, QVBoxLayout,
                               QWidget)

from segstudio.ui.explain.colormap import (COLORMAPS, ColorBar, blend, colorize, format_value,
                                   heat_qimage, value_range)
from segstudio.ui.explain.figure_export import ColorBarSpec, Figure, Panel
from segstudio.ui.explain.replacement import replaced_labels_in, replacement_sources
from segstudio.ui.canvas.render import rgb8_to_qimage

REDUCTIONS = (("channel mean", "mean"), ("channel max", "max"), ("one channel", "channel"))
REPLACEMENTS = (("zeros", "zero"), ("its mean over reference images", "mean"),
                ("its output on another image", "swap"))
THUMBNAIL = 128
GRID_COLUMNS = 4            # branches per row of an exported grid figure
MIN_CELL = 96               # narrowest thumbnail (icon) of the on-screen grid, pixels
CHANGED_COLOUR = np.array([255, 0, 255], np.uint8)


def _fill_branches(combo: QComboBox, branches: dict[str, str]) -> None:
    """Refill ``combo`` with branch names, keeping the current one when it still exists."""
    current = combo.currentText()
    combo.blockSignals(True)
    combo.clear()
    for name, path in branches.items():
        combo.addItem(name, path)
        combo.setItemData(combo.count() - 1, path, Qt.ItemDataRole.ToolTipRole)
    if current in branches:
        combo.setCurrentText(current)
    combo.blockSignals(False)


def _thumbnail_size(h: int, w: int, longest: int = THUMBNAIL) -> tuple[int, int]:
    s = longest / max(h, w)
    return max(1, round(h * s)), max(1, round(w * s))


def _resize_rgb(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    img = rgb8_to_qimage(rgb).scaled(size[1], size[0], Qt.AspectRatioMode.IgnoreAspectRatio,
                                     Qt.TransformationMode.SmoothTransformation)
    img = img.convertToFormat(QImage.Format.Format_RGB888)
    arr = np.frombuffer(img.constBits(), np.uint8).reshape(img.height(), img.bytesPerLine())
    return arr[:, :3 * img.width()].reshape(img.height(), img.width(), 3).copy()


class ActivationsPanel(QWidget):
    """One branch as a heat layer over the image (mean, max or one channel), and Grad-CAM."""

    def __init__(self, window, session, heat, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.window, self.session, self.heat = window, session, heat
        self.result: dict | None = None
        self.branch_combo = QComboBox(self)
        self.reduction_combo = QComboBox(self)
        for text, mode in REDUCTIONS:
            self.reduction_combo.addItem(text, mode)
        self.channel_slider = QSlider(Qt.Orientation.Horizontal, self)
        self.channel_slider.setRange(0, 255)
        self.channel_label = QLabel("0", self)
        self.channel_slider.valueChanged.connect(lambda v: self.channel_label.setText(str(v)))
        self.channel_slider.sliderReleased.connect(self._channel_moved)
        self.reduction_combo.currentIndexChanged.connect(self._reduction_changed)
        self.colormap_combo = QComboBox(self)
        self.colormap_combo.addItems(COLORMAPS)
        self.colormap_combo.currentIndexChanged.connect(lambda _: self._redraw())
        self.opacity_slider = QSlider(Qt.Orientation.Horizontal, self)
        self.opacity_slider.setRange(0, 100)
        self.opacity_slider.setValue(60)
        self.opacity_slider.valueChanged.connect(lambda _: self._redraw())
        self.show_button = QPushButton("Show", self)
        self.show_button.setToolTip("Heat map of the chosen branch over the image")
        self.show_button.clicked.connect(self.show_activation)
        self.cam_button = QPushButton("Grad-CAM", self)
        self.cam_button.setToolTip("Where the chosen layer's features argue for the class "
                                   "selected in the Classes panel (Selvaraju et al., 2017)")
        self.cam_button.clicked.connect(self.show_grad_cam)
        self.clear_button = QPushButton("Hide", self)
        self.clear_button.clicked.connect(heat.clear)
        self.color_bar = ColorBar(self)
        self.info = QLabel("Choose a branch and press Show.", self)
        self.info.setWordWrap(True)

        form = QFormLayout()
        form.addRow("Branch", self.branch_combo)
        form.addRow("Reduction", self.reduction_combo)
        channel = QHBoxLayout()
        channel.addWidget(self.channel_slider, 1)
        channel.addWidget(self.channel_label)
        form.addRow("Channel", channel)
        form.addRow("Colours", self.colormap_combo)
        form.addRow("Opacity", self.opacity_slider)
        buttons = QHBoxLayout()
        for b in (self.show_button, self.cam_button, self.clear_button):
            buttons.addWidget(b)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addLayout(buttons)
        layout.addWidget(self.color_bar)
        layout.addWidget(self.info)
        layout.addStretch(1)
        session.sourceChanged.connect(self.refresh_branches)
        session.modelLoaded.connect(lambda _m: self.refresh_branches())
        self.refresh_branches()
        self._reduction_changed()

    def refresh_branches(self) -> None:
        _fill_branches(self.branch_combo, self.session.known_branches())

    def reset(self) -> None:
        self.result = None
        self.info.setText("Choose a branch and press Show.")

    def _reduction_changed(self, *_) -> None:
        self.channel_slider.setEnabled(self.reduction_combo.currentData() == "channel")

    def _channel_moved(self) -> None:
        if self.result is not None and self.result["kind"] == "activation":
            self.show_activation()

    def _mode(self):
        mode = self.reduction_combo.currentData()
        return self.channel_slider.value() if mode == "channel" else mode

    # -- jobs --------------------------------------------------------------------------------
    def show_activation(self) -> bool:
        branch, mode = self.branch_combo.currentText(), self._mode()
        if not self.session.has_branch(branch):
            return False

        def work(ctx):
            from segstudio.explain.probes import activation_map
            from segstudio.explain.taps import module_outputs

            loaded = ctx.load()
            path = loaded.branches[branch]
            t = module_outputs(loaded.model, {branch: path}, ctx.input(loaded))[branch]
            channels = int(t.shape[1]) if t.dim() == 4 else int(t.shape[0])
            chosen = min(mode, channels - 1) if isinstance(mode, int) else mode
            amap = activation_map(t, chosen, size=ctx.rgb.shape[:2])
            return {"kind": "activation", "map": amap, "branch": branch, "path": path,
                    "mode": chosen, "channels": channels, "shape": tuple(t.shape[-2:]),
                    "model": loaded.title}

        return self.session.submit("Activation map", work, self._shown)

    def show_grad_cam(self) -> bool:
        branch, cls = self.branch_combo.currentText(), self.window.current_class()
        if not self.session.has_branch(branch):
            return False

        def work(ctx):
            from segstudio.explain.cam import grad_cam

            loaded = ctx.load()
            path = loaded.branches[branch]
            if cls >= len(loaded.classes):
                raise ValueError(f"class {cls} is not one of the {len(loaded.classes)} classes "
                                 f"{loaded.title} predicts")
            cam = grad_cam(loaded.model, ctx.input(loaded), path, cls)
            return {"kind": "gradcam", "map": cam, "branch": branch, "path": path,
                    "class": f"{cls} ({loaded.classes[cls].name})", "model": loaded.title}

        return self.session.submit("Grad-CAM", work, self._shown)

    def _shown(self, result: dict) -> None:
        if self.window.doc is None or result["map"].shape != (self.window.doc.image.height,
                                                                self.window.doc.image.width):
            return
        if result["kind"] == "activation":
            self.channel_slider.setMaximum(result["channels"] - 1)
        self.result = result
        self._redraw()

    def _range(self) -> tuple[float, float]:
        if self.result["kind"] == "gradcam":
            return 0.0, 1.0
        return value_range(self.result["map"])

    def _describe(self) -> str:
        r = self.result
        if r["kind"] == "gradcam":
            return f"Grad-CAM of class {r['class']} at {r['branch']}"
        mode = r["mode"]
        how = f"channel {mode} of {r['channels']}" if isinstance(mode, int) else f"channel {mode}"
        return f"{r['branch']}: {how}"

    def _redraw(self) -> None:
        if self.result is None:
            return
        vmin, vmax = self._range()
        name = self.colormap_combo.currentText()
        self.heat.show(heat_qimage(self.result["map"], vmin, vmax, name,
                                   self.opacity_slider.value() / 100), "activations")
        label = "Grad-CAM" if self.result["kind"] == "gradcam" else "activation"
        self.color_bar.set_range(name, vmin, vmax, label)
        r = self.result
        shape = f"; map {r['shape'][0]}×{r['shape'][1]}" if "shape" in r else ""
        self.info.setText(f"{self._describe()} ({r['path']}){shape}; values "
                          f"{format_value(vmin)} … {format_value(vmax)}. {r['model']}")

    def figure(self) -> Figure | None:
        doc = self.window.doc
        if self.result is None or doc is None:
            return None
        rgb = doc.display_rgb8()
        vmin, vmax = self._range()
        name = self.colormap_combo.currentText()
        over = blend(rgb, colorize(self.result["map"], vmin, vmax, name),
                     self.opacity_slider.value() / 100)
        label = "Grad-CAM" if self.result["kind"] == "gradcam" else "activation"
        return Figure(self._describe(), [Panel(rgb, doc.item.id), Panel(over, label)],
                      [f"Model: {self.result['model']}",
                       f"Layer: {self.result['branch']} ({self.result['path']})",
                       (f"Settings: {self._describe()}; colour map {name}; values "
                        f"{format_value(vmin)} … {format_value(vmax)}")],
                      ColorBarSpec(name, vmin, vmax, label))


class BranchGridPanel(QWidget):
    """All branches side by side; a chosen branch's contribution by zeroing it."""

    def __init__(self, window, session, heat, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.window, self.session, self.heat = window, session, heat
        self.maps: list[dict] = []
        self.thumbnails: list[QToolButton] = []
        self.contribution: dict | None = None
        self.group = QButtonGroup(self)
        self.group.setExclusive(True)
        self.group.idClicked.connect(self.show_contribution)
        self.show_button = QPushButton("Show all branches", self)
        self.show_button.clicked.connect(self.show_grid)
        self.replace_combo = QComboBox(self)
        for text, how in REPLACEMENTS:
            self.replace_combo.addItem(text, how)
        self.replace_combo.setToolTip(
            "What takes the clicked branch's place. Zeros are off the branch's distribution "
            "(it follows a ReLU and is never zero on average); its mean over reference images "
            "keeps the distribution but says nothing about this image; its output on another "
            "image says what the branch saw there (the workspace's next image)")
        # No scroll area of its own: the dock's tab scrolls the whole view, so the grid keeps
        # its height when the contribution appears below it.
        self.grid_host = QWidget(self)
        self.grid = QGridLayout(self.grid_host)
        self.grid.setContentsMargins(0, 0, 0, 0)
        self.grid.setSpacing(4)
        self.columns = 1
        self.contribution_view = QLabel(self)
        self.contribution_view.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.info = QLabel("Each thumbnail is a branch's channel mean, scaled to its own range. "
                           "Click one to see what the prediction loses without it.", self)
        self.info.setWordWrap(True)
        replace = QHBoxLayout()
        replace.addWidget(QLabel("Replace the branch by", self))
        replace.addWidget(self.replace_combo, 1)
        layout = QVBoxLayout(self)
        layout.addWidget(self.show_button)
        layout.addLayout(replace)
        layout.addWidget(self.grid_host)
        layout.addWidget(self.contribution_view)
        layout.addWidget(self.info)
        layout.addStretch(1)

    def resizeEvent(self, event) -> None:  # noqa: N802
        super().resizeEvent(event)
        self._arrange()

    def _arrange(self) -> None:
        """As many thumbnails a row as the width holds, each as large as its cell allows."""
        if not self.thumbnails:
            return
        # Room for a vertical scroll bar is kept: when one appears the width shrinks, and a
        # grid planned for the full width would then need a horizontal one.
        margins = self.layout().contentsMargins()
        scroll_bar = self.style().pixelMetric(QStyle.PixelMetric.PM_ScrollBarExtent)
        width = self.width() - margins.left() - margins.right() - scroll_bar
        gap = self.grid.spacing()
        chrome = 8                   # a tool button's frame around its icon
        columns = max(1, min(len(self.thumbnails), (width + gap) // (MIN_CELL + chrome + gap)))
        cell = min(THUMBNAIL, (width + gap) // columns - gap - chrome)
        for button in self.thumbnails:
            self.grid.removeWidget(button)
        for i, button in enumerate(self.thumbnails):
            full = button.icon().availableSizes()
            if full:
                longest = max(full[0].width(), full[0].height())
                button.setIconSize(full[0] * (min(cell, longest) / longest))
            self.grid.addWidget(button, i // columns, i % columns)
        self.columns = columns

    def reset(self) -> None:
        self.contribution = None
        self.contribution_view.clear()
        self._grid_ready({"maps": [], "small": None, "model": ""})

    def show_grid(self) -> bool:
        branches = self.session.known_branches()

        def work(ctx):
            from segstudio.explain.probes import ProbeError, activation_map
            from segstudio.explain.taps import module_outputs

            loaded = ctx.load()
            names = branches or loaded.branches
            x = ctx.input(loaded)
            h, w = _thumbnail_size(*ctx.rgb.shape[:2])
            small = _resize_rgb(ctx.rgb, (h, w))
            maps = []
            for name, path in names.items():
                if ctx.cancelled():
                    break
                try:
                    t = module_outputs(loaded.model, {name: path}, x)[name]
                    amap = activation_map(t, "mean", size=(h, w))
                except ProbeError as exc:
                    maps.append({"name": name, "path": path, "error": str(exc)})
                    continue
                maps.append({"name": name, "path": path, "map": amap,
                             "shape": tuple(t.shape[1:])})
            return {"maps": maps, "small": small, "model": loaded.title}

        return self.session.submit("Branch grid", work, self._grid_ready)

    def _grid_ready(self, result: dict) -> None:
        for button in self.thumbnails:
            self.group.removeButton(button)
            button.deleteLater()
        self.thumbnails.clear()
        self.maps = result["maps"]
        self.model_title = result["model"]
        for i, entry in enumerate(self.maps):
            button = QToolButton(self.grid_host)
            button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextUnderIcon)
            button.setCheckable(True)
            if "map" in entry:
                entry["rgb"] = blend(result["small"], colorize(entry["map"],
                                                               *value_range(entry["map"])), 0.75)
                icon = QPixmap.fromImage(rgb8_to_qimage(entry["rgb"]))
                button.setIcon(QIcon(icon))
                button.setIconSize(QSize(icon.width(), icon.height()))
                c, fh, fw = entry["shape"]
                button.setText(f"{entry['name']}\n{c}×{fh}×{fw}")
            else:
                button.setText(f"{entry['name']}\n(not probed)")
                button.setEnabled(False)
            button.setToolTip(entry.get("error", entry["path"]))
            self.group.addButton(button, i)
            self.thumbnails.append(button)
        self._arrange()

    def show_contribution(self, index: int) -> bool:
        entry = self.maps[index]
        how = self.replace_combo.currentData()
        sources = replacement_sources(self.window, how)

        def work(ctx):
            from segstudio.explain.probes import label_transitions, predict_labels
            from segstudio.explain.taps import branch_effect, scripted_modules

            loaded = ctx.load()
            if loaded.foreign and scripted_modules(loaded.model):
                # Compiled code takes no hooks: the module is zeroed in a copy of its graph.
                if how != "zero":
                    raise ValueError("a TorchScript network's module can be replaced by zeros "
                                     "only (its compiled code takes no hooks for the others)")
                before, without = branch_effect(loaded.model, ctx.input(loaded), entry["path"])
            else:
                before = predict_labels(loaded.model, ctx.input(loaded))
                without = replaced_labels_in(ctx, loaded, [entry["name"]], how, sources)
            names = loaded.classes.names
            return {"name": entry["name"], "path": entry["path"], "without": without,
                    "how": how, "by": sources["note"],
                    "changed": without != before, "colours": loaded.classes.color_table(),
                    "model": loaded.title,
                    "transitions": [(_name(names, a), _name(names, b), n)
                                    for a, b, n in label_transitions(before, without)]}

        return self.session.submit("Branch contribution", work, self._contribution_ready)

    def _contribution_ready(self, result: dict) -> None:
        doc = self.window.doc
        changed = result["changed"]
        if doc is None or changed.shape != (doc.image.height, doc.image.width):
            return
        self.contribution = result
        n = int(changed.sum())
        share = n / changed.size
        result["count"], result["share"] = n, share
        self.heat.show(_changed_layer(changed), "contribution")
        rgb = self.contribution_rgb(doc.display_rgb8())
        h, w = _thumbnail_size(*rgb.shape[:2], longest=240)
        self.contribution_view.setPixmap(QPixmap.fromImage(rgb8_to_qimage(_resize_rgb(rgb,
                                                                                      (h, w)))))
        self.info.setText(f"{_without(result)} ({result['path']}): {n} pixels change "
                          f"class ({share:.1%} of the image), shown in magenta"
                          + (": " + transitions_text(result["transitions"]) if n else "."))

    def contribution_rgb(self, rgb: np.ndarray) -> np.ndarray:
        """The prediction without the branch over the image, changed pixels in magenta."""
        r = self.contribution
        labels = np.asarray(r["without"]).astype(np.intp).clip(0, 255)
        out = blend(rgb, r["colours"][labels], 0.5)
        out[r["changed"]] = CHANGED_COLOUR
        return out

    def figure(self) -> Figure | None:
        doc = self.window.doc
        shown = [m for m in self.maps if "rgb" in m]
        if doc is None or not shown:
            return None
        panels = [Panel(m["rgb"], m["name"]) for m in shown]
        caption = [f"Model: {self.model_title}",
                   "Layers: " + ", ".join(f"{m['name']} ({m['path']})" for m in shown),
                   "Settings: channel mean of each branch, each scaled to its own range"]
        if self.contribution is not None:
            c = self.contribution
            panels.append(Panel(self.contribution_rgb(doc.display_rgb8()),
                                f"without {c['name']}" if c["how"] == "zero"
                                else f"{c['name']} → {c['how']}"))
            caption.append(f"{_without(c)}: {c['count']} pixels change class "
                           f"({c['share']:.1%}), in magenta"
                           + (": " + transitions_text(c["transitions"]) if c["count"] else ""))
        return Figure("Branches side by side", panels, caption,
                      ColorBarSpec("viridis", 0.0, 1.0, "own range"), panel_height=160,
                      columns=GRID_COLUMNS)


def _without(result: dict) -> str:
    """``Without psp.bin1`` (zeroed), or ``psp.bin1 replaced by its mean over …``."""
    if result.get("how", "zero") == "zero":
        return f"Without {result['name']} (zeroed)"
    return f"{result['name']} replaced by {result['by']}"


def _name(names, index: int) -> str:
    return "void" if index == 255 else names[index] if index < len(names) else str(index)


def transitions_text(transitions, most: int = 4) -> str:
    """``"boat → car 1,204 px, boat → background 96 px"``: what the changed pixels became."""
    shown = [f"{a} → {b} {n:,} px" for a, b, n in transitions[:most]]
    rest = sum(n for *_, n in transitions[most:])
    return ", ".join(shown) + (f", other changes {rest:,} px" if rest else "")


def _changed_layer(changed: np.ndarray) -> QImage:
    """Magenta where the class changed, transparent elsewhere."""
    h, w = changed.shape
    bgra = np.zeros((h, w, 4), np.uint8)
    bgra[changed] = (220, 0, 220, 220)        # premultiplied magenta at 86 % opacity
    return QImage(bgra.data, w, h, 4 * w, QImage.Format.Format_ARGB32_Premultiplied).copy()

