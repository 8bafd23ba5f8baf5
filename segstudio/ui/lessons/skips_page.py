"""Lesson 2, skips: FCN-32s, 16s and 8s side by side, boundary accuracy, the skips zeroed."""

from __future__ import annotations

from segstudio.ui.explain.figure_export import Figure, Panel
from segstudio.ui.lessons.page import LessonPage
from segstudio.ui.lessons.pictures import label_rgb


def _band_text(trimap: dict[int, float]) -> str:
    return ", ".join(f"{k} px {v:.1%}" for k, v in trimap.items())


class SkipsPage(LessonPage):
    TITLE = "Skips"
    EXPLANATION = (
        "<b>Skip connections.</b> FCN-32s upsamples class scores from pool5 alone, 32× in one "
        "step; FCN-16s adds scores predicted from pool4 (stride 16), FCN-8s also from pool3 "
        "(stride 8), each fused by addition after a 2× upsampling (Long et al. §4.2). What the "
        "finer layers add is the outline: the mean IoU within k pixels of the true label edges "
        "(the trimap measure, k = 2, 4, 8, 16) rises far more than whole-image mIoU. The "
        "last rows zero the trained nets' skip branches live (score_pool4, score_pool3 output "
        "zeros): the fused scores were learned together, so a net without its skip is worse "
        "than one trained without it.")

    def job(self, kind: str, n: int):
        def work(progress, cancelled):
            from segstudio.explain.lessons.skips import run_skips_lab

            return run_skips_lab(kind, n, progress=progress, cancelled=cancelled)
        return work

    def numbers(self, lab) -> list[str]:
        lines = [f"Mean IoU on {lab.images} held-out {lab.kind} scenes (seed 1), whole image and "
                 "within k px of the true edges:"]
        lines += [f"{v.label}: whole {v.miou:.1%}; trimap {_band_text(v.trimap)}"
                  for v in lab.variants]
        return lines

    def build_figure(self, lab) -> Figure:
        from segstudio.train.synth import classes_for

        table = classes_for("xray" if lab.kind == "chest" else "context").color_table()
        panels = [Panel(lab.example_rgb, "held-out scene 0"),
                  Panel(label_rgb(lab.example_gt, table), "ground truth")]
        panels += [Panel(label_rgb(v.example, table), v.label.replace("score_", ""))
                   for v in lab.variants]
        return Figure(f"Skips: FCN-32s, 16s, 8s and their skips zeroed ({lab.kind})", panels,
                      panel_height=180, columns=4)
