"""The context comparison: FCN vs PSPNet vs DeepLab v3 on the image on screen, each with its
theoretical field and the effective field of its prediction at the pixel last clicked."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import (QComboBox, QGridLayout, QHBoxLayout, QLabel, QPushButton,
                               QVBoxLayout, QWidget)

from segstudio.ui.explain.colormap import blend
from segstudio.ui.explain.session import ModelSource
from segstudio.ui.explain.figure_export import ColorBarSpec, Figure, Panel
from segstudio.ui.explain.activations import _resize_rgb, _thumbnail_size
from segstudio.ui.explain.replacement import replaced_labels_in, replacement_sources
from segstudio.ui.explain.field_marks import draw_marks
from segstudio.ui.explain.receptive_field import (ERF_QUANTITY, ReceptiveFieldPanel, _fields,
                                                 _unit_fields)
from segstudio.ui.canvas.render import rgb8_to_qimage

CONTEXT_MODELS = (("FCN-8s", ("fcn8s", "fcn16s", "fcn32s")), ("PSPNet", ("pspnet",)),
                  ("DeepLab v3", ("deeplabv3",)))

# What the bundled context models do on 100 held-out 256 px scenes (resources/weights/README.md;
# tests/explain/test_context_lesson.py checks the claim on eight of them).
LESSON = ("In the boat-or-car scenes a boat and a car are the same object on the same grass; "
          "only the water or road along one side, at least 141 px away in a 256 px scene, "
          "tells them apart. Measured on 100 held-out scenes: PSPNet 82 % mean boat/car IoU, "
          "25 % with its global bin zeroed; DeepLab v3 84 %, 48 % without its image pooling "
          "(Branches view, or segstudio predict --ablate); FCN-8s, with no global branch, "
          "gives 43 % of boat and car pixels the other class.")


GLOBAL_BRANCHES = {"pspnet": "psp.bin1", "deeplabv3": "aspp.image_pool"}
"""The branch that sees the whole image, per model of the comparison that has one."""
GLOBAL_CHOICES = (("kept", None), ("zeros", "zero"), ("their mean over reference scenes", "mean"),
                  ("their output on another image", "swap"))
MEASURED_SCENES = 8

# The counterfactuals on 100 held-out scenes (python -m segstudio.explain.counterfactual;
# tests/explain/test_counterfactual.py checks the method against hooks written by hand).
COUNTERFACTUALS = (
    "What replaces the global branch matters. Zeros are off its distribution (it follows a "
    "ReLU); its mean over 16 reference scenes keeps the distribution but drops this scene; its "
    "output on the same scene with the other surface (water ↔ road) keeps everything but the "
    "distant evidence. Boat/car IoU on 100 held-out scenes (as generated; the figures above "
    "are of their JPEG copies), kept → zeros / mean / swap: "
    "PSPNet 83.4 → 25.3 / 22.4 / 0.2 %, DeepLab v3 84.2 → 48.5 / 22.1 / 0.1 %; the swap turns "
    "98 % (PSPNet) and 95 % (DeepLab v3) of the boat and car pixels into the other class, "
    "zeros 47 % and 15 %, the mean 50 % and 48 %.")


SURFACES = ("water", "road")
"""The classes of the distant evidence in the boat-or-car scenes."""


def surface_region(labels: np.ndarray, class_names) -> np.ndarray | None:
    """The water or road pixels of a label map (the image's labels, or a model's prediction in
    the same classes): where a context model must look to tell a boat from a car. None when the
    classes have no water or road, or none is there."""
    names = list(class_names)
    ids = [names.index(c) for c in SURFACES if c in names]
    if not ids:
        return None
    region = np.isin(labels, ids)
    return region if region.any() else None


def _band_text(band: dict | None, html: bool = True) -> str:
    """The share of the effective field on the water or road, if measured."""
    if band is None:
        return ""
    return (f"{'<br>' if html else ', '}{band['share']:.1%} of the effective field on the "
            f"water or road ({band['source']})")


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
                      f"effective field there ({ERF_QUANTITY}): where the prediction really "
                      "looks. Shares are first of the part of the field inside the image (the "
                      "pixels a prediction can use), then of the whole unclipped field, padding "
                      "included.", self)
        info.setWordWrap(True)
        self.lesson = QLabel(LESSON, self)
        self.lesson.setWordWrap(True)
        self.global_combo = QComboBox(self)
        for text, how in GLOBAL_CHOICES:
            self.global_combo.addItem(text, how)
        self.global_combo.setToolTip("What PSPNet's global bin and DeepLab v3's image pooling "
                                     "output in the comparison (the effective fields are of "
                                     "the whole models); a swap takes the workspace's next "
                                     "image")
        self.measure_button = QPushButton(f"Measure zeros, mean and swap on {MEASURED_SCENES} "
                                          "held-out scenes", self)
        self.measure_button.clicked.connect(self.measure)
        self.counterfactuals = QLabel(COUNTERFACTUALS, self)
        self.counterfactuals.setWordWrap(True)
        self.measured = QLabel(self)
        self.measured.setWordWrap(True)
        self.measurement: list[dict] = []
        choice = QHBoxLayout()
        choice.addWidget(QLabel("Global branches", self))
        choice.addWidget(self.global_combo, 1)
        layout = QVBoxLayout(self)
        layout.addWidget(self.compare_button)
        layout.addLayout(choice)
        layout.addWidget(info)
        layout.addWidget(self.lesson)
        layout.addLayout(grid)
        layout.addWidget(self.counterfactuals)
        layout.addWidget(self.measure_button)
        layout.addWidget(self.measured)
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
        # The water or road of the labels on the canvas (drawn, or a model run's), one region
        # for all three models, read here on the GUI thread; without any, each model's own
        # prediction of it.
        labelled = surface_region(np.array(doc.labels.array), class_names)
        how = self.global_combo.currentData()
        sources = replacement_sources(self.window, how) if how else {}

        def work(ctx):
            from segstudio.explain.effective_rf import prediction_erf
            from segstudio.explain.probes import predict_labels

            found = _checkpoints(class_names)
            size = ctx.rgb.shape[:2]
            results = []
            for title, archs in CONTEXT_MODELS:
                path = next((found[a] for a in archs if a in found), None)
                source = ModelSource(archs[0], "lite", path, n, device)
                loaded = ctx.load(source)
                image = ctx.input(loaded)
                labels = predict_labels(loaded.model, image)
                replaced = None
                if how and loaded.arch in GLOBAL_BRANCHES:
                    labels = replaced_labels_in(ctx, loaded, [GLOBAL_BRANCHES[loaded.arch]], how,
                                                sources)
                    replaced = f"{GLOBAL_BRANCHES[loaded.arch]} replaced by {sources['note']}"
                rf = _fields(ctx, loaded, size)[""]
                erf = prediction_erf(loaded.model, image, y, x,
                                     field=_unit_fields(ctx, loaded, size)[""])
                x0, y0, x1, y1 = erf.box
                region, source = labelled, "as labelled on the canvas"
                if region is None and loaded.classes.names == class_names:
                    region, source = surface_region(labels, class_names), "as it predicts it"
                band = None if region is None else {"share": erf.region_share(region),
                                                    "source": source}
                results.append({"title": title, "model": loaded.title, "trained": loaded.trained,
                                "band": band, "replaced": replaced,
                                "labels": labels, "colours": loaded.classes.color_table(),
                                "field": rf, "marks": [], "pixel": (y, x), "erf": erf,
                                "box": (max(y0, 0), max(x0, 0), min(y1 + 1, size[0]),
                                        min(x1 + 1, size[1])), "center": erf.center,
                                "share": erf.mass95_share,
                                "image_share": erf.mass95_in_image_share, "heat": erf.heat})
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
            erf = r["erf"]
            x0, _, x1, _ = erf.box
            text.setText(f"<b>{r['title']}</b> — {state}<br>field {x1 - x0 + 1} px wide at "
                         f"the pixel ({erf.inside_share:.0%} of it inside the image); 95 % of "
                         f"the effective field in {erf.mass95_in_image_share:.1%} of the part "
                         f"inside the image ({erf.mass95_share:.1%} of the whole); centre of mass "
                         f"{erf.offset[1]:+.1f}, {erf.offset[0]:+.1f} px from the pixel"
                         + _band_text(r["band"])
                         + (f"<br>prediction with {r['replaced']} (the effective field is of "
                            "the whole model)" if r.get("replaced") else ""))

    def measure(self) -> bool:
        """Boat/car IoU and flipped boat/car pixels of the bundled context PSPNet and DeepLab v3
        with the global branch kept, zeroed, replaced by its mean and swapped with its output on
        each scene's twin, on held-out scenes generated on the spot."""
        current = self.session.current_source()
        device = current.device if current is not None else "auto"

        def work(ctx):
            from segstudio.explain.counterfactual import context_counterfactuals
            from segstudio.train.synth_context import context_classes

            found = _checkpoints(context_classes().names, fallback=False)
            rows = []
            for title, arch in (("PSPNet", "pspnet"), ("DeepLab v3", "deeplabv3")):
                if arch not in found:
                    raise ValueError(f"no {title} trained on the context scenes is installed")
                loaded = ctx.load(ModelSource(arch, "lite", found[arch], 5, device))
                row = context_counterfactuals(loaded.model, loaded.to_input, loaded.branches,
                                              GLOBAL_BRANCHES[arch], n=MEASURED_SCENES,
                                              cancelled=ctx.cancelled)
                rows.append({"title": title, "model": loaded.title, **row})
            return rows

        return self.session.submit("Counterfactuals", work, self._measured)

    def _measured(self, rows: list[dict]) -> None:
        self.measurement = rows
        self.measured.setText(measurement_html(rows))

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
                       f"Settings: pixel x {x}, y {y}; effective field: {ERF_QUANTITY}; "
                       + "; ".join(f"{r['title']} field {r['erf'].box[2] - r['erf'].box[0] + 1}"
                                   f" px, 95 % ERF mass in {r['image_share']:.1%} of its part "
                                   f"inside the image ({r['share']:.1%} of all of it)"
                                   + _band_text(r["band"], html=False)
                                   for r in self.results)],
                      ColorBarSpec("inferno", 0.0, 1.0, "|gradient| / max"), panel_height=240,
                      columns=len(CONTEXT_MODELS))


def _checkpoints(class_names, fallback: bool = True) -> dict:
    """Per architecture, a trained checkpoint for these classes (the chest models must not be
    asked about boats); with ``fallback``, any trained one where none matches."""
    from segstudio.models.checkpoint import CheckpointError, read_meta
    from segstudio.paths import user_data_dir, weights_dir

    found, others = {}, {}
    for folder in (weights_dir(), user_data_dir() / "models"):
        for path in sorted(folder.glob("*.pt")) if folder.is_dir() else ():
            try:
                meta = read_meta(path)
            except CheckpointError:
                continue
            if meta.trained:
                fits = list(meta.classes.names) == list(class_names)
                (found if fits else others).setdefault(meta.arch, path)
    return {**others, **found} if fallback else found


def measurement_html(rows: list[dict]) -> str:
    """The measured counterfactuals as a small table."""
    head = ("<tr><th></th><th>kept</th><th>zeros</th><th>mean</th><th>swap</th></tr>")
    body = []
    for r in rows:
        iou = "".join(f"<td>{r['iou'][k]:.1f} %</td>" for k in ("full", "zero", "mean", "swap"))
        flips = "".join(f"<td>{r['flipped'][k]:.1f} %</td>" for k in ("zero", "mean", "swap"))
        body.append(f"<tr><td>{r['title']} boat/car IoU</td>{iou}</tr>"
                    f"<tr><td>{r['title']} boat/car pixels flipped</td><td></td>{flips}</tr>")
    scenes = rows[0]["scenes"] if rows else 0
    return (f"Measured on {scenes} held-out 256 px scenes (generated now), the global branch "
            f"kept or replaced:<table>{head}{''.join(body)}</table>")
