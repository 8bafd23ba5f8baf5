"""Regenerate the README's screenshots from the real program (offscreen Qt).

    QT_QPA_PLATFORM=offscreen python docs/screenshots/make_screenshots.py

The main-window screenshot in the README is taken under Xvfb by `segstudio --screenshot FILE
--size 1280x720` (see tests/e2e), and `shapes-instances.png` is the canvas of `segstudio --demo
shapes --screenshot FILE` there; this script adds the "Inside the model" views on the bundled
demos and the main window in the dark colour scheme, all at 1280×720, a laptop's screen.
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


def settle(app) -> None:
    """Let pending layout and paint events run before a grab."""
    for _ in range(10):
        app.processEvents()
        time.sleep(0.02)


def main() -> int:
    app = QApplication.instance() or QApplication(sys.argv[:1])
    from segstudio.ui.launchers import open_demo
    from segstudio.ui.main_window import MainWindow

    win = MainWindow()
    win.interactive = False
    win.discard_changes_on_close = True
    win.resize(1280, 720)
    win.show()
    dock = win.explain
    idle = lambda: win.is_idle() and not dock.session.busy  # noqa: E731

    # The context lesson: PSPNet's pyramid bins as a grid, then DeepLab v3's ASPP field at a car.
    assert open_demo(win, "context")
    wait(app, lambda: win.doc is not None and win.doc.prediction is not None and idle())
    dock.parentWidget().raise_()
    combo = dock.picker.combo
    combo.setCurrentIndex(combo.findData("pspnet"))
    dock.picker.config_combo.setCurrentText("lite")
    wait(app, idle)
    dock.show_view(dock.branches)
    assert dock.branches.show_grid()
    wait(app, lambda: idle() and dock.branches.thumbnails)
    dock.branches.show_contribution(1)
    wait(app, lambda: idle() and dock.branches.contribution is not None)
    settle(app)
    win.grab().save(str(HERE / "activation-grid.png"))

    from segstudio.paths import weights_dir

    dock.picker.add_checkpoint(weights_dir() / "context_deeplabv3_lite.pt")
    dock.show_view(dock.receptive)
    wait(app, idle)
    dock.receptive.branch_combo.setCurrentText("backbone.layer2")
    win.tool_actions["Receptive field"].trigger()
    h, w = win.doc.labels.shape
    assert dock.receptive.pick_pixel(int(h * 0.58), int(w * 0.78))    # on a car
    wait(app, lambda: idle() and dock.receptive.result is not None)
    settle(app)
    win.grab().save(str(HERE / "receptive-field.png"))

    # FCN-8s, PSPNet and DeepLab v3, each trained on the context scenes, at the same pixel.
    dock.show_view(dock.context)
    assert dock.context.compare()
    wait(app, lambda: idle() and dock.context.results)
    settle(app)
    win.grab().save(str(HERE / "context.png"))

    win.models.shutdown()

    # The chest demo in the dark colour scheme, as a system set to dark shows it from the start.
    from PySide6.QtCore import Qt

    from segstudio.ui.theme import SchemeFollower

    SchemeFollower(app).apply(Qt.ColorScheme.Dark)
    win = MainWindow()
    win.interactive = False
    win.discard_changes_on_close = True
    win.resize(1280, 720)
    win.show()
    assert open_demo(win, "chest")
    wait(app, lambda: win.doc is not None and win.doc.prediction is not None and win.is_idle())
    settle(app)
    win.grab().save(str(HERE / "main-window-dark.png"))
    win.models.shutdown()
    print("wrote", *(p.name for p in sorted(HERE.glob("*.png"))))
    os._exit(0)


if __name__ == "__main__":
    main()
