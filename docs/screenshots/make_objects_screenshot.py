"""Regenerate ``objects.png`` from the real program (offscreen Qt):

    QT_QPA_PLATFORM=offscreen python docs/screenshots/make_objects_screenshot.py

The bundled shapes scene opened as a folder of photos, the bundled Mask R-CNN run on it (fp32),
one object given another class, a merged pair split apart, a false detection deleted, and the
split pair selected, with every object outlined and the Objects panel listing them.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from PySide6.QtWidgets import QApplication

from make_screenshots import HERE, wait   # the same offscreen setup and waiting


def main() -> int:
    import numpy as np

    from segstudio.paths import resources_dir
    from segstudio.train.synth import make_sample
    from segstudio.train.synth_shapes import shapes_classes
    from segstudio.ui.main_window import MainWindow

    app = QApplication.instance() or QApplication(sys.argv[:1])
    folder = Path(tempfile.mkdtemp()) / "photos"
    folder.mkdir()
    shutil.copy(resources_dir() / "demo" / "shapes_01.png", folder / "shapes_01.png")
    win = MainWindow()
    win.interactive = False
    win.discard_changes_on_close = True
    win.resize(1280, 720)
    win.show()
    assert win.open_paths([folder], classes=shapes_classes())
    panel = win.models.panel
    panel.precision_combo.setCurrentText("fp32")
    win.models.start()
    wait(app, lambda: win.models._catalog_loaded and win.is_idle())
    panel.select_entry(next(i for i, e in enumerate(panel.entries)
                            if e.choice.arch == "maskrcnn" and e.trained))
    assert win.models.run_current()
    wait(app, lambda: win.doc.prediction is not None and win.is_idle())
    objects = win.doc.labels.objects
    ids = sorted(objects.classes())
    # The scene is sample 2 of the seed-2026 shapes set: its truth says which class is wrong
    # and which detection is false.
    truth = make_sample("shapes", 2, size=256, seed=2026)
    for k in ids:
        want = int(np.bincount(truth.labels[objects.array == k], minlength=256)[1:255].argmax()) + 1
        if want != objects.class_of(k):
            win.objects.select([k])
            win.legend.select_class(want)
            win.objects.set_class_selected()
    for k in ids:
        mine = objects.array == k
        best = max((np.sum(mine & (truth.instances == t)) / np.sum(mine | (truth.instances == t))
                    for t in np.unique(truth.instances) if 0 < t < 255), default=0.0)
        if best < 0.5:
            win.objects.select([k])
            win.objects.delete_selected()
    # The two overlapping circles made one object (as a detector may), then split apart again.
    centre = {k: np.argwhere(objects.array == k).mean(axis=0) for k in objects.classes()}
    pairs = [(np.hypot(*(centre[a] - centre[b])), a, b) for a in centre for b in centre
             if a < b and objects.class_of(a) == objects.class_of(b)]
    _, a, b = min(pairs)
    (ya, xa), (yb, xb) = centre[a], centre[b]
    win.objects.select([a, b])
    win.objects.merge_selected()
    mx, my, dx, dy = (xa + xb) / 2, (ya + yb) / 2, xb - xa, yb - ya
    pieces = win.objects.split([(mx - dy, my + dx), (mx + dy, my - dx)])
    win.objects.select(pieces[:1] or [a])
    win.objects.panel.parentWidget().raise_()
    win.instances_action.setChecked(True)
    win.layers.set_instances(True)
    for _ in range(20):
        app.processEvents()
        time.sleep(0.02)
    win.grab().save(str(HERE / "objects.png"))
    win.models.shutdown()
    print("wrote objects.png")
    os._exit(0)


if __name__ == "__main__":
    main()
