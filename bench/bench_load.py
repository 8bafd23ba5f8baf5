"""Load: a 10,000-image workspace (open, list, filter, export) and one 8,000×8,000 image (open,
paint, save, export), with time and peak memory.

Each part runs in a child process of its own so its peak RSS is its own; the baseline is the
child's RSS after imports.

    python bench/bench_load.py [--images 10000] [--side 8000]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _peak_mb() -> float:
    """Peak RSS since the last ``_reset_peak`` (Linux VmHWM), else the process's peak."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _reset_peak() -> None:
    """Forget the peak of the setup (generating the files) so it does not hide the steps'."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def _timed(rows: list, what: str, call):
    t0 = time.perf_counter()
    out = call()
    rows.append((what, time.perf_counter() - t0, _rss_mb(), _peak_mb()))
    return out


def part_many(n: int, folder: Path) -> dict:
    """Open, list, filter, label a tenth and export a workspace of ``n`` small images."""
    from PIL import Image
    from PySide6.QtWidgets import QApplication

    from segstudio.core.classes import voc21
    from segstudio.io.workspace import ItemStatus, Workspace
    from segstudio.io.voc import write_voc
    from segstudio.ui.panels.files import ItemListModel, StatusFilter

    app = QApplication.instance() or QApplication([])  # noqa: F841 - models need one
    rng = np.random.default_rng(0)
    for i in range(n):
        sub = folder / f"batch{i // 1000:02d}"
        sub.mkdir(exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (24, 32, 3), np.uint8)).save(sub / f"img{i:05d}.png")
    _reset_peak()
    base = _rss_mb()
    rows: list = []
    ws = _timed(rows, "open (scan)", lambda: Workspace.open(folder, classes=voc21()))
    model, proxy = ItemListModel(), StatusFilter()
    proxy.setSourceModel(model)
    _timed(rows, "list (model reset + 50 visible rows)",
           lambda: (model.set_items(ws.items),
                    [model.data(model.index(r)) for r in range(50)]))

    def label_tenth():
        ws.deferred_save = lambda data: None  # one workspace-file write at the end, as a batch
        for item in ws.items[::10]:
            ws.save_labels(item, np.full((24, 32), 1, np.uint8), by="bench")
        ws.deferred_save = None
        ws.save()
    _timed(rows, f"label {len(ws.items[::10])} items + save workspace", label_tenth)
    model.set_items(ws.items)
    shown = _timed(rows, "filter (corrected only)",
                   lambda: (proxy.set_status(ItemStatus.CORRECTED.value), proxy.rowCount())[1])
    again = _timed(rows, "reopen (with workspace file)", lambda: Workspace.open(folder))
    result = _timed(rows, "export VOC (labelled items)",
                    lambda: write_voc(folder.parent / "export", again.samples(), again.classes,
                                      total=shown))
    return {"rows": rows, "base": base, "items": len(ws.items), "shown": shown,
            "exported": result.count}


def part_big(side: int, folder: Path) -> dict:
    """Open, paint, save and export one ``side``×``side`` image."""
    from PIL import Image

    from segstudio.core.classes import voc21
    from segstudio.core.labelmap import LabelMap
    from segstudio.io.workspace import Workspace
    from segstudio.io.images import read_image
    from segstudio.io.voc import write_voc

    ramp = np.linspace(0, 255, side, dtype=np.float32).astype(np.uint8)
    rgb = np.stack([np.broadcast_to(ramp, (side, side)),
                    np.broadcast_to(ramp[:, None], (side, side)),
                    np.full((side, side), 90, np.uint8)], axis=2)
    Image.fromarray(rgb).save(folder / "big.png", compress_level=1)
    del rgb
    _reset_peak()
    base = _rss_mb()
    rows: list = []
    ws = Workspace.open(folder, classes=voc21())
    image = _timed(rows, "open image", lambda: read_image(folder / "big.png"))
    lm = _timed(rows, "blank label map", lambda: LabelMap.blank(side, side))

    def paint():
        for k in range(20):
            with lm.step("brush"):
                y = 200 + k * (side - 400) / 20
                lm.paint_segment(100, y, side - 100, y + 50, 40, 1 + k % 5)
        lm.fill(side // 2, 10, 7)
    _timed(rows, "paint 20 strokes + fill", paint)
    _timed(rows, "save labels", lambda: ws.save_labels(ws.items[0], lm.array, by="bench"))
    del image
    _timed(rows, "export VOC", lambda: write_voc(folder / "export", ws.samples(), ws.classes,
                                                  val_fraction=0.0))
    return {"rows": rows, "base": base}


def _child(args) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "ws"
        folder.mkdir()
        out = part_many(args.images, folder) if args.part == "many" else part_big(args.side, folder)
    print(json.dumps(out))


def _table(title: str, out: dict) -> None:
    print(f"\n{title} (RSS after imports and setup: {out['base']:.0f} MB)\n")
    print("| step | time (s) | RSS after (MB) | peak RSS so far (MB) |")
    print("| --- | ---: | ---: | ---: |")
    for what, secs, rss, peak in out["rows"]:
        print(f"| {what} | {secs:.2f} | {rss:.0f} | {peak:.0f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=10_000)
    ap.add_argument("--side", type=int, default=8_000)
    ap.add_argument("--part", choices=("many", "big"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.part:
        _child(args)
        return
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    for part, title in (("many", f"Workspace of {args.images} images of 32×24"),
                        ("big", f"One {args.side}×{args.side} image")):
        proc = subprocess.run([sys.executable, __file__, "--part", part, "--images",
                               str(args.images), "--side", str(args.side)],
                              capture_output=True, text=True, env=env, check=True)
        out = json.loads(proc.stdout.strip().splitlines()[-1])
        _table(title, out)
        if part == "many":
            print(f"\n{out['items']} items listed, {out['shown']} shown by the filter, "
                  f"{out['exported']} exported.")


if __name__ == "__main__":
    main()
