"""Showing an edit: brush dab → label map → overlay → repainted canvas, by label map size.

For each size it times, per dab (median of many):
  - dirty-rect path: LabelMap.paint_segment + OverlayRenderer.update(dirty rect) + a synchronous
    repaint of the matching canvas area (what segstudio does);
  - full path (baseline, same run): the same dab, then the whole overlay re-coloured and the whole
    canvas repainted (what a renderer without dirty rectangles does).

    QT_QPA_PLATFORM=offscreen python bench/bench_edit.py [--sizes 1024 2048 4096] [--dabs 200]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from segstudio.core.classes import chest_xray  # noqa: E402
from segstudio.core.labelmap import LabelMap  # noqa: E402
from segstudio.ui.canvas.view import Canvas  # noqa: E402
from segstudio.ui.canvas.render import OverlayRenderer, rgb8_to_qimage  # noqa: E402


def run(size: int, dabs: int, diameter: int, full: bool) -> float:
    rng = np.random.default_rng(0)
    lm = LabelMap(np.zeros((size, size), np.uint8))
    overlay = OverlayRenderer(lm.array, chest_xray(), hidden={0})
    canvas = Canvas()
    canvas.resize(1000, 800)
    canvas.set_image(rgb8_to_qimage(np.full((size, size, 3), 90, np.uint8)))
    canvas.set_overlay(overlay.image)
    canvas.show()
    canvas.fit_to_window()
    QApplication.processEvents()
    times = []
    for i in range(dabs):
        x, y = rng.uniform(diameter, size - diameter, 2)
        t0 = time.perf_counter()
        rect = lm.paint_segment(x, y, x + 3, y + 2, diameter, 1 + i % 3)
        if full:
            overlay.render_all()
            canvas.repaint()
        else:
            overlay.update(rect)
            canvas.repaint(canvas.widget_rect(rect))
        times.append(time.perf_counter() - t0)
    canvas.close()
    return statistics.median(times) * 1000


def fill_times(size: int = 512, repeats: int = 30) -> tuple[float, float]:
    """Flood fill of a half-image region: LabelMap.fill (guard, undo tiles, dirty rect) vs the
    bare OpenCV flood fill it is built on."""
    import cv2

    labels = np.zeros((size, size), np.uint8)
    labels[:, size // 2] = 1                      # a wall: the fill covers the left half
    bare, ours = [], []
    for i in range(repeats):
        work = labels.copy()
        mask = np.zeros((size + 2, size + 2), np.uint8)
        t0 = time.perf_counter()
        cv2.floodFill(work, mask, (5, 5), 2, 0, 0, 4)
        bare.append(time.perf_counter() - t0)
        lm = LabelMap(labels)
        t0 = time.perf_counter()
        lm.fill(5, 5, 2 + i % 2)
        ours.append(time.perf_counter() - t0)
    return statistics.median(bare) * 1000, statistics.median(ours) * 1000


def quick() -> list[dict]:
    """A short run for ``bench/run_all.py``: 1024² map, 50 dabs."""
    app = QApplication.instance() or QApplication([])  # noqa: F841
    dirty = run(1024, 50, 21, full=False)
    whole = run(1024, 10, 21, full=True)
    return [{"measure": "brush dab to repainted overlay, 1024² (ms)", "value": dirty,
             "baseline": whole, "goal": "≤ 5 ms", "met": dirty <= 5.0}]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1024, 2048, 4096])
    ap.add_argument("--dabs", type=int, default=200)
    ap.add_argument("--diameter", type=int, default=21)
    args = ap.parse_args()
    app = QApplication.instance() or QApplication([])  # noqa: F841
    print(f"Brush dab ({args.diameter} px) to repainted overlay, median of {args.dabs} dabs, "
          f"canvas 1000×800 fitted, QT_QPA_PLATFORM={os.environ['QT_QPA_PLATFORM']}\n")
    print("| label map | dirty rect (ms) | full re-render (ms, baseline) | full ÷ dirty |")
    print("| --- | ---: | ---: | ---: |")
    for size in args.sizes:
        dirty = run(size, args.dabs, args.diameter, full=False)
        whole = run(size, max(20, args.dabs // 10), args.diameter, full=True)
        print(f"| {size}² | {dirty:.2f} | {whole:.1f} | {whole / dirty:.0f}× |")
    bare, ours = fill_times()
    print("\nFlood fill of half a 512² map (median of 30)\n")
    print("| fill | ms | × bare OpenCV |")
    print("| --- | ---: | ---: |")
    print(f"| cv2.floodFill alone (baseline) | {bare:.2f} | 1.00 |")
    print(f"| LabelMap.fill (guard, undo tiles, dirty rect) | {ours:.2f} | {ours / bare:.2f} |")


if __name__ == "__main__":
    main()
