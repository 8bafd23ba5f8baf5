"""Does the window stay responsive? The longest gap of a 5 ms QTimer while work runs.

Phases, each measured in the same run on the real main window (offscreen):
  idle (baseline)  — nothing running;
  model            — the Model panel's "Run on all" with DeepLabV3-ResNet50 (torchvision layout,
                     untrained: the cost is the same) on 520×520 images, in the worker thread;
  dense CRF        — Smart ▸ Dense CRF on a 1000×750 image, in its own process;
  VOC export       — File ▸ Export VOC of the workspace, in a background thread.

    QT_QPA_PLATFORM=offscreen python bench/bench_stall.py [--images 6]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402
from PySide6.QtCore import QElapsedTimer, QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402


class GapMeter:
    def __init__(self) -> None:
        self.timer = QTimer()
        self.timer.setInterval(5)
        self.timer.timeout.connect(self._tick)
        self.clock = QElapsedTimer()
        self.gaps: list[float] = []

    def start(self) -> None:
        self.gaps = []
        self.clock.start()
        self.timer.start()

    def _tick(self) -> None:
        self.gaps.append(self.clock.nsecsElapsed() / 1e6)
        self.clock.restart()

    def stop(self) -> tuple[float, float]:
        self.timer.stop()
        g = sorted(self.gaps[1:]) or [0.0]
        return g[-1], g[int(0.99 * (len(g) - 1))]


def wait(app, condition, timeout=600.0) -> None:
    end = time.monotonic() + timeout
    while not condition():
        app.processEvents()
        time.sleep(0.001)
        if time.monotonic() > end:
            raise SystemExit("timed out")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=6)
    args = ap.parse_args()
    app = QApplication.instance() or QApplication([])
    from segstudio.ui.launchers import export_voc_dialog
    from segstudio.ui.main_window import MainWindow

    tmp = Path(tempfile.mkdtemp())
    rng = np.random.default_rng(0)
    for i in range(args.images):
        Image.fromarray(rng.integers(0, 255, (520, 520, 3), dtype=np.uint8)).save(tmp / f"{i:02d}.png")
    Image.fromarray(rng.integers(0, 255, (750, 1000, 3), dtype=np.uint8)).save(tmp / "zz_big.png")
    win = MainWindow()
    win.interactive = False
    win.discard_changes_on_close = True
    win.resize(1280, 800)
    win.show()
    win.open_paths([tmp])
    win.models.start()
    wait(app, lambda: win.models._catalog_loaded and win.is_idle())
    meter = GapMeter()
    rows = []

    meter.start()
    end = time.monotonic() + 3
    wait(app, lambda: time.monotonic() > end)
    rows.append(("idle (baseline)", *meter.stop(), "—"))

    panel = win.models.panel
    panel.model_combo.setCurrentIndex(next(i for i, e in enumerate(panel.entries)
                                           if e.choice.arch == "deeplabv3_resnet50"))
    t0 = time.monotonic()
    meter.start()
    win.models.run_all()
    wait(app, win.is_idle)
    rows.append((f"model: DeepLabV3-ResNet50 on {args.images + 1} images", *meter.stop(),
                 f"{time.monotonic() - t0:.1f} s"))

    win.show_row(len(win.workspace.items) - 1)
    for item in win.workspace.items:
        shape = win.workspace.read_image(item).pixels.shape[:2]
        win.workspace.save_labels(item, rng.integers(0, 4, shape).astype(np.uint8))
    win.show_row(0)
    win.show_row(len(win.workspace.items) - 1)
    t0 = time.monotonic()
    meter.start()
    win.smart.run_crf("labels")
    wait(app, win.is_idle)
    rows.append(("dense CRF, 1000×750, 5 iterations", *meter.stop(), f"{time.monotonic() - t0:.1f} s"))

    dialog = export_voc_dialog(win)
    dialog.out_edit.setText(str(tmp / "export"))
    t0 = time.monotonic()
    meter.start()
    dialog.start()
    wait(app, lambda: dialog.task is None)
    rows.append((f"VOC export of {args.images + 1} items", *meter.stop(), f"{time.monotonic() - t0:.1f} s"))
    win.smart.close()
    win.models.shutdown()

    print(f"Longest gap of a 5 ms QTimer on the GUI thread ({os.cpu_count()} cores, "
          f"QT_QPA_PLATFORM={os.environ['QT_QPA_PLATFORM']})\n")
    print("| work running | longest gap (ms) | 99th percentile (ms) | duration |")
    print("| --- | ---: | ---: | ---: |")
    for name, worst, p99, dur in rows:
        print(f"| {name} | {worst:.1f} | {p99:.1f} | {dur} |")
    sys.stdout.flush()
    # Leave without tearing down Qt and torch objects in interpreter shutdown order.
    os._exit(0)


if __name__ == "__main__":
    main()
