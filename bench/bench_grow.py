"""Grow from seeds on large images: the whole tool against ``cv2.watershed`` alone.

The scene: two discs of different brightness on a darker field with Gaussian noise, a short
stroke of seeds in each disc and one in a corner of the field (the synthetic test of
``tests/refine/test_grow.py``, scaled up). Rows, each the median of ``--repeats`` runs:

- ``cv2.watershed`` alone on the already smoothed 3-channel image (the baseline);
- ``grow_from_seeds`` on the 8-bit grey image (smoothing, watershed, watershed lines);
- the background job of Smart ▸ Grow from seeds on a 16-bit image: window to 8 bits, grow,
  and colour the preview overlay (what happens between a seed stroke and its preview);
- with ``--window``, the same in the real main window: a seed stroke through the seed map,
  the growth in its background thread, the preview set and the canvas repainted.

OpenCV runs on ``--threads`` threads (default 2, the target machine's cores).

    QT_QPA_PLATFORM=offscreen python bench/bench_grow.py [--sizes 1024 2048] [--repeats 5]
        [--window]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import cv2
import numpy as np

from segstudio.core.classes import chest_xray
from segstudio.io.images import apply_window
from segstudio.refine.grow import DEFAULT_SMOOTHING, NO_SEED, grow_from_seeds


WINDOW = (32768.0, 65536.0)   # the 16-bit display window of the scene


def scene(size: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """16-bit image, seeds and true labels of the two-disc scene at ``size`` × ``size``."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    first = (xx - 0.3 * size) ** 2 + (yy - 0.35 * size) ** 2 < (0.17 * size) ** 2
    second = (xx - 0.68 * size) ** 2 + (yy - 0.65 * size) ** 2 < (0.22 * size) ** 2
    truth = np.where(first, 1, np.where(second, 2, 0)).astype(np.uint8)
    image = np.choose(truth, np.float32([20000, 37500, 50000]))
    image += rng.normal(0, 5000, truth.shape).astype(np.float32)
    image = np.clip(image, 0, 65535).astype(np.uint16)
    seeds = np.full((size, size), NO_SEED, np.uint8)
    s = size / 256
    thick = max(3, round(3 * s))
    cv2.line(seeds, (int(70 * s), int(90 * s)), (int(85 * s), int(92 * s)), 1, thick)
    cv2.line(seeds, (int(170 * s), int(165 * s)), (int(180 * s), int(170 * s)), 2, thick)
    cv2.line(seeds, (int(5 * s), int(240 * s)), (int(40 * s), int(250 * s)), 0, thick)
    return image, seeds, truth


def timed(fn, repeats: int):
    """Median wall and CPU seconds (all threads of this process) of ``fn()``, its result.

    On a machine shared with other work the wall time stretches with the load; the CPU time
    hardly does, and bounds the wall time on an idle machine from above."""
    walls, cpus, result = [], [], None
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        result = fn()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls), statistics.median(cpus), result


def in_window(deep: np.ndarray, seeds: np.ndarray, repeats: int):
    """Median wall and CPU seconds from a seed stroke to its preview on the window's canvas."""
    import tempfile
    from pathlib import Path

    from PIL import Image
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from segstudio.ui.main_window import MainWindow

    app = QApplication.instance() or QApplication([])
    with tempfile.TemporaryDirectory() as tmp:
        Image.fromarray(deep).save(Path(tmp) / "deep.png")
        win = MainWindow(QSettings(str(Path(tmp) / "s.ini"), QSettings.Format.IniFormat))
        win.interactive = False
        win.discard_changes_on_close = True
        win.resize(1280, 800)
        win.show()
        win.open_paths([Path(tmp)])
        grow = win.smart.grow
        walls, cpus = [], []
        for i in range(repeats + 1):
            grow.start()
            for cls in np.unique(seeds[seeds != NO_SEED]):
                grow.seeds.paint_mask(seeds == cls, int(cls))
            grow.seeds.paint_disk(5.0 + i, 5.0, 3, 0)                 # the stroke timed
            wall, cpu = time.perf_counter(), time.process_time()
            grow.seeds_changed()
            while grow.task is not None or grow.preview is None:
                app.processEvents()
                time.sleep(0.001)
            win.canvas.repaint()
            if i:                                                     # the first one warms up
                walls.append(time.perf_counter() - wall)
                cpus.append(time.process_time() - cpu)
            result = grow.preview
            grow.cancel()
        win.close()
    return statistics.median(walls), statistics.median(cpus), result


def watershed_alone(grey: np.ndarray, seeds: np.ndarray):
    """The baseline: ``cv2.watershed`` alone on the already smoothed image, as a function."""
    smooth = cv2.GaussianBlur(np.repeat(grey[:, :, None], 3, axis=2), (0, 0),
                              DEFAULT_SMOOTHING)
    markers = np.where(seeds == NO_SEED, 0, seeds.astype(np.int32) + 1)

    def baseline():
        m = markers.copy()
        cv2.watershed(smooth, m)
        return np.where(m > 0, m - 1, NO_SEED).astype(np.uint8)

    return baseline


def quick() -> list[dict]:
    """A short run for ``bench/run_all.py``: 2048², a stroke to its preview in the window."""
    cv2.setNumThreads(2)
    deep, seeds, _ = scene(2048)
    base, _, _ = timed(watershed_alone(apply_window(deep, *WINDOW), seeds), 2)
    wall, cpu, _ = in_window(deep, seeds, 2)
    return [{"measure": f"grow: seed stroke to preview, 2048² (s; CPU {cpu:.2f} s)",
             "value": wall, "baseline": base, "goal": "≤ 1 s", "met": wall <= 1.0}]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1024, 2048])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--window", action="store_true",
                        help="also time a stroke to its preview in the real main window")
    args = parser.parse_args()
    cv2.setNumThreads(args.threads)
    from segstudio.ui.canvas.render import OverlayRenderer   # QImage only; no window is opened

    window = WINDOW
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"OpenCV {cv2.__version__}, {cv2.getNumThreads()} threads, {os.cpu_count()} CPUs, "
          f"load average {load:.1f}, median of {args.repeats}\n")
    print("| image | step | wall s | CPU s | × baseline (wall) | pixels right |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    for size in args.sizes:
        deep, seeds, truth = scene(size)
        grey = apply_window(deep, *window)
        baseline = watershed_alone(grey, seeds)
        overlay = OverlayRenderer(np.zeros_like(seeds), chest_xray())

        def preview():
            labels = grow_from_seeds(apply_window(deep, *window), seeds)
            overlay.set_labels(labels)
            return labels

        rows = [("cv2.watershed alone, smoothed image (baseline)", baseline),
                ("grow_from_seeds, 8-bit grey", lambda: grow_from_seeds(grey, seeds)),
                ("GUI job: 16-bit → window → grow → preview overlay", preview)]
        if args.window:
            rows.append(("main window: seed stroke → preview on the canvas", None))
        base = None
        for name, fn in rows:
            if fn is None:
                seconds, cpu, labels = in_window(deep, seeds, args.repeats)
            else:
                seconds, cpu, labels = timed(fn, args.repeats)
            base = base or seconds
            right = (labels == truth).mean()
            print(f"| {size}×{size} | {name} | {seconds:.3f} | {cpu:.3f} | "
                  f"{seconds / base:.2f} | {right:.4f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
