"""Time the Predictor on the bundled Mask R-CNN against torchvision's bare forward.

torchvision's forward already includes its post-processing: boxes back to the image's size and
every detection's mask pasted onto a whole-image canvas. The Predictor runs the same network
but for the mask head, which it runs only on the detections it shows (score at least 0.5; on
the CPU, with at least 2 or 16 of them as the whole batch would take the same kernels), pastes
those on their own boxes, and builds the class probabilities, labels and instance map, which
the bare forward does not. Both run in fp32 under ``torch.inference_mode`` (``no_grad`` makes
the network 1-3 % slower) on the same 520² image (the random image of ``bench_predictor.py``
by default, or a generated ``shapes`` scene), timed in turns, median of ``--runs``.

    python bench/bench_maskrcnn.py [--runs 15] [--threads 1] [--image noise|scene]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

from segstudio.models.checkpoint import load_checkpoint
from segstudio.models.device import cpu_flags
from segstudio.models.engine import Predictor

WEIGHTS = Path(__file__).resolve().parents[1] / "resources" / "weights" / \
    "shapes_maskrcnn_lite.pt"
GOAL = 1.0  # the Predictor at most as slow as the bare forward


def test_image(kind: str, size: int) -> np.ndarray:
    if kind == "noise":
        return np.random.default_rng(0).integers(0, 256, (size, size, 3), dtype=np.uint8)
    from segstudio.train.synth import generate

    return next(iter(generate("shapes", 1, size=size, seed=3))).image


def measure(runs: int = 15, threads: int = 1, image: str = "noise", size: int = 520) -> dict:
    """Median ms of the bare forward and of ``Predictor.predict``, timed in turns."""
    torch.set_num_threads(threads)
    model, meta = load_checkpoint(WEIGHTS, device="cpu")
    model.eval()
    rgb = test_image(image, size)
    x = torch.from_numpy(rgb.copy()).permute(2, 0, 1).float().div(255)
    predictor = Predictor(model, meta, device="cpu", precision="fp32", num_threads=threads)

    def bare():
        with torch.inference_mode():                # as the Predictor runs the network
            return model([x])[0]

    found = bare()
    shown = len(predictor.predict(rgb).objects)
    times = {"bare": [], "predictor": []}
    for _ in range(runs):
        for name, fn in (("bare", bare), ("predictor", lambda: predictor.predict(rgb))):
            start = time.perf_counter()
            fn()
            times[name].append((time.perf_counter() - start) * 1000)
    bare_ms, pred_ms = (statistics.median(times[k]) for k in ("bare", "predictor"))
    return {"image": image, "size": size, "threads": threads, "runs": runs, "bare": bare_ms,
            "predictor": pred_ms, "ratio": pred_ms / bare_ms,
            "detections": len(found["scores"]), "shown": shown}


def quick() -> list[dict]:
    """A short run for ``bench/run_all.py``."""
    rows = []
    for image in ("noise", "scene"):
        r = measure(runs=7, threads=1, image=image)
        rows.append({"measure": f"Mask R-CNN Predictor, {image} {r['size']}², fp32, 1 thread "
                                "(ms)",
                     "value": r["predictor"], "baseline": r["bare"], "ratio": r["ratio"],
                     "goal": f"≤ {GOAL:.1f}× bare forward", "met": r["ratio"] <= GOAL})
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15, help="timed runs of each (median)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads for both")
    parser.add_argument("--image", nargs="+", default=["noise", "scene"],
                        choices=("noise", "scene"))
    parser.add_argument("--size", type=int, default=520)
    args = parser.parse_args(argv)
    flags = sorted(cpu_flags() & {"avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile"})
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"torch {torch.__version__}, {torch.backends.cpu.get_cpu_capability()}, CPU flags: "
          f"{' '.join(flags) or 'unknown'}; ONEDNN_MAX_CPU_ISA="
          f"{os.environ.get('ONEDNN_MAX_CPU_ISA', '(unset)')}, ATEN_CPU_CAPABILITY="
          f"{os.environ.get('ATEN_CPU_CAPABILITY', '(unset)')}; {args.threads} thread(s); "
          f"load average {load:.1f} at the start\n")
    print("| image | detections (shown) | bare forward ms | Predictor ms | Predictor ÷ bare |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for kind in args.image:
        r = measure(args.runs, args.threads, kind, args.size)
        print(f"| {kind} {r['size']}² | {r['detections']} ({r['shown']}) | {r['bare']:.1f} | "
              f"{r['predictor']:.1f} | {r['ratio']:.2f} |", flush=True)
    if hasattr(os, "getloadavg"):
        print(f"\nload average {os.getloadavg()[0]:.1f} at the end; goal ≤ {GOAL:.1f}×")
    return 0


if __name__ == "__main__":
    sys.exit(main())
