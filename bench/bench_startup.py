"""Cold start: process launch → main window shown with the demo image on screen.

Each measurement is a fresh Python process (so imports are cold in the interpreter, though the
OS file cache is warm). The baseline, measured in the same run, is the least any PySide6 program
pays: a bare QMainWindow showing the same image in a QLabel. Reports medians and the ratio, and
checks that torch was not imported.

    python bench/bench_startup.py [--runs 7] [--platform offscreen|xcb]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

SEGSTUDIO = r"""
import sys, time, json
t0 = float(sys.argv[1])
from PySide6.QtWidgets import QApplication
from segstudio.ui.launchers import demo_paths
from segstudio.ui.main_window import MainWindow
app = QApplication([])
win = MainWindow()
win.interactive = False
win.resize(1280, 800)
win.show()
win.open_paths(demo_paths())
app.processEvents()
win.canvas.repaint()
t1 = time.time()
print(json.dumps({"seconds": t1 - t0, "torch": "torch" in sys.modules,
                  "shown": win.doc is not None}), flush=True)
win.models.shutdown()
import os
os._exit(0)
"""

BARE_QT = r"""
import sys, time, json
t0 = float(sys.argv[1])
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import QApplication, QLabel, QMainWindow
from segstudio.ui.launchers import demo_paths
from pathlib import Path
app = QApplication([])
win = QMainWindow()
label = QLabel()
first = sorted(p for p in demo_paths()[0].iterdir() if p.suffix.lower() == ".png")[0]
from segstudio.io.images import read_image
from segstudio.ui.canvas.render import rgb8_to_qimage
label.setPixmap(QPixmap.fromImage(rgb8_to_qimage(read_image(first).to_rgb8())))
win.setCentralWidget(label)
win.resize(1280, 800)
win.show()
app.processEvents()
label.repaint()
t1 = time.time()
print(json.dumps({"seconds": t1 - t0, "torch": "torch" in sys.modules, "shown": True}))
"""


def measure(code: str, platform: str) -> dict:
    env = dict(os.environ, QT_QPA_PLATFORM=platform)
    t0 = time.time()
    out = subprocess.run([sys.executable, "-c", code, repr(t0)], capture_output=True, text=True,
                         env=env, timeout=300)
    if out.returncode != 0:
        raise SystemExit(out.stderr)
    return json.loads(out.stdout.strip().splitlines()[-1])


def quick() -> list[dict]:
    """A short run for ``bench/run_all.py``: two cold starts of each program."""
    platform = os.environ.get("QT_QPA_PLATFORM", "offscreen")
    base, ours = (statistics.median(measure(code, platform)["seconds"] for _ in range(2))
                  for code in (BARE_QT, SEGSTUDIO))
    return [{"measure": "cold start to the demo window (s)", "value": ours, "baseline": base,
             "goal": None, "met": None}]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--platform", default=os.environ.get("QT_QPA_PLATFORM", "offscreen"))
    args = ap.parse_args()
    rows = {}
    for name, code in (("bare PySide6 window (baseline)", BARE_QT), ("segstudio", SEGSTUDIO)):
        runs = [measure(code, args.platform) for _ in range(args.runs)]
        assert all(r["shown"] for r in runs)
        rows[name] = (statistics.median(r["seconds"] for r in runs), any(r["torch"] for r in runs))
    base = rows["bare PySide6 window (baseline)"][0]
    print(f"Cold start to a visible window on the demo ({args.runs} runs each, median, "
          f"QT_QPA_PLATFORM={args.platform}, {os.cpu_count()} cores)\n")
    print("| program | seconds | × baseline | torch imported |")
    print("| --- | ---: | ---: | --- |")
    for name, (sec, torch) in rows.items():
        print(f"| {name} | {sec:.3f} | {sec / base:.2f} | {'yes' if torch else 'no'} |")


if __name__ == "__main__":
    main()
