"""Undo history memory: tile diffs against full snapshots, by label map size.

For each size, 250 brush strokes (21 px wide, ~60 px long) at random places; reports the bytes
the history holds and what keeping a full copy of the map per step (the baseline) would hold.

    python bench/bench_history.py [--steps 250]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from segstudio.core.labelmap import LabelMap


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=250)
    args = ap.parse_args()
    print(f"Undo history after {args.steps} strokes (21 px brush)\n")
    print("| label map | history (MB) | full snapshots (MB, baseline) | snapshots ÷ history | "
          "undo all (s) |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for size in (1024, 2048, 4096):
        rng = np.random.default_rng(0)
        lm = LabelMap.blank(size, size)
        for i in range(args.steps):
            x, y = rng.uniform(30, size - 90, 2)
            with lm.step("brush"):
                for k in range(6):
                    lm.paint_segment(x + 10 * k, y + 4 * k, x + 10 * (k + 1), y + 4 * (k + 1),
                                     21, 1 + i % 3)
        hist = lm.history.nbytes / 2**20
        full = args.steps * lm.array.nbytes / 2**20
        t0 = time.perf_counter()
        while lm.undo() is not None:
            pass
        undo = time.perf_counter() - t0
        assert not lm.array.any()
        print(f"| {size}² | {hist:.1f} | {full:.0f} | {full / hist:.0f}× | {undo:.2f} |")


if __name__ == "__main__":
    main()
