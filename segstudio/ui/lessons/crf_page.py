"""Lesson 3, the dense CRF: DeepLab v1 and v2 before and after, its kernel widths as sliders."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QSlider

from segstudio.ui.explain.figure_export import Figure, Panel
from segstudio.ui.lessons.page import LessonPage
from segstudio.ui.lessons.pictures import label_rgb

# (attribute of CrfParams, what the slider says, range, start): the three kernel widths.
WIDTHS = (("bilateral_sxy", "θα (px)", 5, 160, 80),
          ("bilateral_srgb", "θβ (levels)", 1, 40, 13),
          ("gaussian_sxy", "θγ (px)", 1, 10, 3))


class CrfPage(LessonPage):
    TITLE = "Dense CRF"
    EXPLANATION = (
        "<b>The fully connected CRF.</b> DeepLab's scores come from a stride-8 network and "
        "are smooth across edges. The dense CRF (Krähenbühl &amp; Koltun 2011) links every pair "
        "of pixels by an appearance kernel — pixels within θα pixels and θβ colour levels "
        "of each other prefer one label — and a smoothness kernel of width θγ that removes "
        "isolated pixels; DeepLab v1 and v2 run it after the network (Chen et al. §4) and "
        "measure its gain in a narrow band around the true edges, as this lab does. Change "
        "the widths and measure again; the CRF runs in its own process.")

    def add_controls(self, layout) -> None:
        self.sliders: dict[str, QSlider] = {}
        for attr, text, lo, hi, start in WIDTHS:
            label = QLabel(f"{text} {start}", self)
            slider = QSlider(Qt.Orientation.Horizontal, self)
            slider.setRange(lo, hi)
            slider.setValue(start)
            slider.setMaximumWidth(110)
            slider.setToolTip(f"CRF kernel width {text}; Measure to apply")
            slider.valueChanged.connect(lambda v, lab=label, t=text: lab.setText(f"{t} {v}"))
            layout.addWidget(label)
            layout.addWidget(slider)
            self.sliders[attr] = slider
        self._crf = None

    def params(self):
        from segstudio.refine.crf import CrfParams

        return CrfParams(**{attr: float(s.value()) for attr, s in self.sliders.items()})

    def job(self, kind: str, n: int):
        from segstudio.refine.crf_process import CrfProcess

        if self._crf is None:
            self._crf = CrfProcess()
        crf, params = self._crf, self.params()

        def work(progress, cancelled):
            from segstudio.explain.lessons.crf_lab import run_crf_lab
            from segstudio.refine.crf import CrfCancelled

            def refine(rgb, probs, p):
                crf.submit(rgb, probs, p)
                while True:
                    if cancelled():
                        crf.cancel()
                        raise CrfCancelled("cancelled")
                    try:
                        return crf.result(timeout=0.2)
                    except TimeoutError:
                        continue

            try:
                return run_crf_lab(kind, n, params, refine=refine, progress=progress,
                                   cancelled=cancelled)
            except CrfCancelled:
                return None
        return work

    def numbers(self, lab) -> list[str]:
        p = lab.params
        lines = [f"Dense CRF θα {p.bilateral_sxy:g} px, θβ {p.bilateral_srgb:g}, w(1) "
                 f"{p.bilateral_compat:g}, θγ {p.gaussian_sxy:g} px, w(2) {p.gaussian_compat:g}, "
                 f"{p.iterations} iterations; mean IoU on {lab.images} held-out {lab.kind} "
                 "scenes (seed 1), before → after:"]
        for r in lab.results:
            bands = ", ".join(f"{k} px {r.trimap_before[k]:.1%} → {r.trimap_after[k]:.1%}"
                              for k in r.trimap_before)
            lines.append(f"{r.arch}: whole {r.miou_before:.1%} → {r.miou_after:.1%}; "
                         f"trimap {bands}")
        return lines

    def build_figure(self, lab) -> Figure:
        from segstudio.train.synth import classes_for

        table = classes_for("xray" if lab.kind == "chest" else "context").color_table()
        panels = [Panel(lab.example_rgb, "held-out scene 0"),
                  Panel(label_rgb(lab.example_gt, table), "ground truth")]
        for r in lab.results:
            panels += [Panel(label_rgb(r.example_before, table), f"{r.arch}"),
                       Panel(label_rgb(r.example_after, table), f"{r.arch} + dense CRF")]
        return Figure(f"Dense CRF: DeepLab v1 and v2 before and after ({lab.kind})", panels,
                      panel_height=200, columns=len(panels))

    def _succeeded(self, result) -> None:
        if result is None:
            self.status.setText("Cancelled.")
            return
        super()._succeeded(result)

    def shutdown(self) -> None:
        super().shutdown()
        if self._crf is not None:
            self._crf.close()
            self._crf = None
