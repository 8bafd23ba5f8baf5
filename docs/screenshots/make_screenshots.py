"""Regenerate the README's screenshots from the real program (offscreen Qt).

    QT_QPA_PLATFORM=offscreen python docs/screenshots/make_screenshots.py

The main-window screenshot in the README is taken under Xvfb by `segstudio --screenshot`
(see tests/e2e); this script adds the "Inside the model" views on the bundled demos.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("SEGSTUDIO_DATA_DIR", tempfile.mkdtemp())

from PySide6.QtWidgets import QApplication  # noqa: E402

HERE = Path(__file__).resolve().parent


def wait(app, cond, timeout=300):
    end = time.monotonic() + timeout
    while not cond():
        app.processEvents()
        time.sleep(0.005)
        if time.monotonic() > end:
            raise SystemExit("timed out")


def main() -> int:
    app = QApplication.instance() or QApplication(sys.argv[:1])
    from segstudio.ui.main_window import MainWindow

    win = MainWindow()
    win.interactive = False
    win.discard_changes_on_close = True
    win.resize(1400, 860)
    win.show()
    dock = win.explain
    idle = lambda: win.is_idle() and not dock.session.busy  # noqa: E731

    # The context lesson: PSPNet's pyramid bins as a grid, then DeepLab v3's ASPP field at a boat.
    assert win.open_demo("context")
    wait(app, lambda: win.doc is not None and win.doc.prediction is not None and idle())
    dock.parentWidget().raise_()
    combo = dock.picker.combo
    combo.setCurrentIndex(combo.findData("pspnet"))
    dock.picker.config_combo.setCurrentText("lite")
    wait(app, idle)
    dock.tabs.setCurrentWidget(dock.branches)
    assert dock.branches.show_grid()
    wait(app, lambda: idle() and dock.branches.thumbnails)
    dock.branches.show_contribution(1)
    wait(app, lambda: idle() and dock.branches.contribution is not None)
    win.grab().save(str(HERE / "activation-grid.png"))

    combo.setCurrentIndex(combo.findData("deeplabv3"))
    dock.tabs.setCurrentWidget(dock.receptive)
    dock.receptive.branch_combo.setCurrentText("backbone.layer2")
    win.tool_actions["Receptive field"].trigger()
    h, w = win.doc.labels.shape
    wait(app, idle)
    assert dock.receptive.pick_pixel(int(h * 0.4), int(w * 0.68))     # on the boat
    wait(app, lambda: idle() and dock.receptive.result is not None)
    win.grab().save(str(HERE / "receptive-field.png"))
    win.models.shutdown()
    print("wrote", *(p.name for p in sorted(HERE.glob("*.png"))))
    os._exit(0)


if __name__ == "__main__":
    main()
