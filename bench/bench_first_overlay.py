"""First overlay: process launch → the demo's first prediction painted on the canvas.

Each measurement is a fresh process running the real app (``segstudio`` with no arguments: the
chest demo, its bundled model run at once) on the offscreen platform, with an empty user data
folder, as on a first launch: no cached precision verdict. The clock stops when the canvas has
painted the overlay of the first applied prediction. The baseline, measured in the same run and
alternating with it, is a fresh process doing nothing but ``import torch, torchvision``: the
least any program that runs a torchvision model pays before its first result. Reports medians,
the phases of the app's median run, and whether the goal (baseline + 0.8 s) is met.

    QT_QPA_PLATFORM=offscreen python bench/bench_first_overlay.py [--runs 5]

Run it again under ``ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=default`` for a CPU without
bf16 units (no calibration is due there).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

GOAL_MARGIN_S = 0.8

APP = r"""
import sys, time, json, os
t0 = float(sys.argv[1])
marks = {}
def mark(name):
    marks.setdefault(name, round(time.time() - t0, 3))
from segstudio.ui.canvas.view import Canvas
from segstudio.ui.controllers.model_runs import ModelRuns
applied = []
paint = Canvas.paintEvent
def painted(self, event):
    paint(self, event)
    mark("window painted")
    if applied and self._overlay is not None:
        mark("overlay painted")
        print(json.dumps({"seconds": marks["overlay painted"], "marks": marks,
                          "precision": applied[0]}), flush=True)
        os._exit(0)
Canvas.paintEvent = painted
for name, label in (("_catalog_ready", "model list ready"), ("model_ready", "model loaded"),
                    ("apply", "result applied")):
    def hooked(self, *args, _orig=getattr(ModelRuns, name), _label=label):
        _orig(self, *args)
        mark(_label)
        if _label == "result applied":
            applied.append(args[1].precision)
    setattr(ModelRuns, name, hooked)
from segstudio.cli import main
main([])
print(json.dumps({"seconds": None, "marks": marks}), flush=True)
"""

IMPORT = r"""
import sys, time, json
t0 = float(sys.argv[1])
import torch, torchvision
print(json.dumps({"seconds": round(time.time() - t0, 3)}), flush=True)
"""


def measure(code: str) -> dict:
    """One fresh process running ``code``, with an empty user data folder."""
    with tempfile.TemporaryDirectory(prefix="segstudio-first-overlay-") as data:
        env = dict(os.environ, QT_QPA_PLATFORM=os.environ.get("QT_QPA_PLATFORM", "offscreen"),
                   SEGSTUDIO_DATA_DIR=data)
        t0 = time.time()
        out = subprocess.run([sys.executable, "-c", code, repr(t0)], capture_output=True,
                             text=True, env=env, timeout=300)
    lines = out.stdout.strip().splitlines()
    if not lines:
        raise SystemExit(f"no result (exit {out.returncode}): {out.stderr.strip()[-400:]}")
    found = json.loads(lines[-1])
    if found["seconds"] is None:
        raise SystemExit(f"the app closed before painting an overlay: {out.stderr[-400:]}")
    return found


def interleaved(runs: int) -> tuple[list[dict], list[dict]]:
    """``runs`` of each program, alternating (the order swapped every other round), so a change
    of load on a shared machine falls on both alike."""
    base, app = [], []
    for i in range(runs):
        order = ((IMPORT, base), (APP, app)) if i % 2 == 0 else ((APP, app), (IMPORT, base))
        for code, into in order:
            into.append(measure(code))
    return base, app


def quick() -> list[dict]:
    """A short run for ``bench/run_all.py``: three launches of each, alternating."""
    base, app = interleaved(3)
    b = statistics.median(r["seconds"] for r in base)
    a = statistics.median(r["seconds"] for r in app)
    return [{"measure": "launch to the demo's first overlay (s)", "value": a, "baseline": b,
             "goal": f"≤ import torch, torchvision + {GOAL_MARGIN_S} s",
             "met": a <= b + GOAL_MARGIN_S}]


def _runs(found: list[dict]) -> str:
    return ", ".join(f"{r['seconds']:.2f}" for r in found)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    base, app = interleaved(args.runs)
    b = statistics.median(r["seconds"] for r in base)
    a = statistics.median(r["seconds"] for r in app)
    middle = sorted(app, key=lambda r: r["seconds"])[len(app) // 2]
    print(f"Launch to the demo's first overlay ({args.runs} runs each, alternating, median; "
          f"{os.cpu_count()} cores; ONEDNN_MAX_CPU_ISA="
          f"{os.environ.get('ONEDNN_MAX_CPU_ISA', '(unset)')}, ATEN_CPU_CAPABILITY="
          f"{os.environ.get('ATEN_CPU_CAPABILITY', '(unset)')})\n")
    print("| program | seconds (median) | all runs |")
    print("| --- | ---: | --- |")
    print(f"| `import torch, torchvision` (baseline) | {b:.2f} | "
          f"{_runs(base)} |")
    print(f"| segstudio demo, first overlay | {a:.2f} | "
          f"{_runs(app)} |")
    print(f"\ngoal ≤ baseline + {GOAL_MARGIN_S} s = {b + GOAL_MARGIN_S:.2f} s: "
          f"{'met' if a <= b + GOAL_MARGIN_S else 'NOT met'} "
          f"(first result in {middle['precision']})")
    print("phases of the median run (s from launch): " + ", ".join(
        f"{k} {v:.2f}" for k, v in sorted(middle["marks"].items(), key=lambda kv: kv[1])))


if __name__ == "__main__":
    main()
