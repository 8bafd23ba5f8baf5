"""Time a network's bare eager fp32 forward against ``Predictor.predict`` on the same image.

The ratio is what the Predictor's extras cost (or save): normalisation, padding to the stride,
channels-last layout, mixed precision where chosen, softmax and the copy back to numpy. A second
ratio sets the precision ``--precision`` settles on (``auto`` by default: calibrated per model on
this machine) against a Predictor pinned to fp32, in the same run. ``--weights`` benchmarks
trained checkpoints (whose calibration is meaningful) instead of random registry networks.
Prints a markdown table; run ``python bench/bench_predictor.py --help`` for the options.
"""

from __future__ import annotations

import argparse
import copy
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from segstudio.core.classes import voc21
from segstudio.models import registry
from segstudio.models.checkpoint import CheckpointMeta, load_checkpoint
from segstudio.models.device import choose_device, cpu_flags, describe
from segstudio.models.precision import CalibrationCache
from segstudio.models.engine import Predictor

DEFAULT_MODELS = ("fcn8s", "unet", "deeplabv3", "pspnet", "deeplabv3_mobilenet_v3_large",
                  "deeplabv3_resnet50")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def interleaved_ms(fns, device: torch.device, runs: int, warmup: int) -> list[float]:
    """Median time of each function in ``fns``, timed in turns (a, b, a, b, ...) so that load
    from other programs falls on all of them alike."""
    for _ in range(warmup):
        for fn in fns:
            fn()
    _sync(device)
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(runs):
        for fn, out in zip(fns, times):
            start = time.perf_counter()
            fn()
            _sync(device)
            out.append((time.perf_counter() - start) * 1000)
    return [statistics.median(t) for t in times]


def bench_model(name: str, args: argparse.Namespace, device: torch.device,
                weights: str | None = None) -> dict:
    if weights:
        model, meta = load_checkpoint(weights, device="cpu")
        spec, config = registry.get_spec(meta.arch), meta.config
        model = model.eval().to(device)
    else:
        spec = registry.get_spec(name)
        config = args.config if args.config in spec.configs else spec.configs[-1]
        torch.manual_seed(0)
        model = registry.build_model(name, len(voc21()), config=config).eval().to(device)
        meta = CheckpointMeta(arch=name, config=config, classes=voc21(), trained=False)
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (args.size, args.size, 3), dtype=np.uint8)
    x01 = torch.from_numpy(image).permute(2, 0, 1).float().div(255).to(device)
    mean = torch.tensor(meta.mean, device=device).view(3, 1, 1)
    std = torch.tensor(meta.std, device=device).view(3, 1, 1)
    x = ((x01 - mean) / std).unsqueeze(0)

    def bare():
        with torch.no_grad():
            return model([x01]) if spec.instance else model(x)["out"]

    # Each Predictor gets its own copy: it may change the module's memory layout. A fresh
    # calibration cache, so the verdict is measured in this run rather than read back.
    cache = CalibrationCache(Path(tempfile.mkdtemp()) / "calibration.json")
    chosen, fp32 = (Predictor(copy.deepcopy(model), meta, device=describe(device),
                              precision=p, tile_size=args.tile_size, num_threads=args.threads,
                              source=weights, calibration_cache=cache)
                    for p in (args.precision, "fp32"))
    last = {}

    def predict():
        last["p"] = chosen.predict(image)

    def predict_fp32():
        fp32.predict(image)

    chosen.predict(image)          # settles "auto" before the timing starts
    eager, pred_ms, fp32_ms = interleaved_ms([bare, predict, predict_fp32], device, args.runs,
                                             args.warmup)
    p = last["p"]
    return {"model": Path(weights).stem if weights else name, "config": config, "eager": eager,
            "predictor": pred_ms, "fp32": fp32_ms, "precision": p.precision,
            "notes": "; ".join([p.precision_note] + p.notes)}


def quick() -> list[dict]:
    """A short run for ``bench/run_all.py``: the lite models and one torchvision model, fp32,
    520², median of 3; one thread, which a machine shared with other work disturbs least."""
    args = argparse.Namespace(config="lite", size=520, runs=3, warmup=1, precision="fp32",
                              tile_size=1024, threads=1)
    torch.set_num_threads(args.threads)
    rows = []
    for name in ("fcn8s", "unet", "deeplabv3", "pspnet", "deeplabv3_mobilenet_v3_large"):
        r = bench_model(name, args, torch.device("cpu"))
        rows.append({"measure": f"Predictor {name} ({r['config']}), 520², fp32, 1 thread (ms)",
                     "value": r["predictor"], "baseline": r["eager"], "goal": "≤ 1.10× bare",
                     "met": r["predictor"] <= 1.10 * r["eager"]})
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS), metavar="NAME",
                        help=f"registry names (default: {' '.join(DEFAULT_MODELS)})")
    parser.add_argument("--config", default="lite", choices=("lite", "paper"),
                        help="configuration where a model has it (torchvision ones: paper)")
    parser.add_argument("--size", type=int, default=520, help="square input side in px")
    parser.add_argument("--runs", type=int, default=5, help="timed runs; the median is shown")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--weights", nargs="+", default=[], metavar="FILE",
                        help="trained checkpoints to benchmark instead of --models")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16", "fp16"))
    parser.add_argument("--tile-size", type=int, default=1024)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                        help="torch CPU threads for both timings (default: all cores)")
    args = parser.parse_args(argv)

    device = choose_device(args.device)
    torch.set_num_threads(args.threads)
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else \
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, " \
        f"{torch.backends.cpu.get_cpu_capability()}"
    flags = sorted(cpu_flags() & {"avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile"})
    print(f"torch {torch.__version__} on {describe(device)} ({where}), {args.threads} "
          f"thread(s); CPU flags: {' '.join(flags) or 'unknown'}; ONEDNN_MAX_CPU_ISA="
          f"{os.environ.get('ONEDNN_MAX_CPU_ISA', '(unset)')}; {args.size}×{args.size} input, "
          f"median of {args.runs} interleaved run(s)\n")
    print(f"| model | config | eager fp32 ms | Predictor ms | Predictor / eager | precision "
          f"| {args.precision} / fp32 Predictor | notes |")
    print("|---|---|---:|---:|---:|---|---:|---|")
    jobs = [(Path(w).stem, w) for w in args.weights] or [(m, None) for m in args.models]
    for name, weights in jobs:
        try:
            r = bench_model(name, args, device, weights)
        except (KeyError, ValueError, RuntimeError) as exc:
            print(f"| {name} | – | – | – | – | – | – | skipped: {str(exc).splitlines()[0]} |")
            continue
        print(f"| {r['model']} | {r['config']} | {r['eager']:.1f} | {r['predictor']:.1f} | "
              f"{r['predictor'] / r['eager']:.2f} | {r['precision']} | "
              f"{r['predictor'] / r['fp32']:.2f} | {r['notes']} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
