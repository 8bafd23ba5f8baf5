"""Every benchmark in one short run: one table of measure, baseline, ratio, goal and verdict.

Each script's ``quick()`` runs in a fresh process of its own (the scripts set torch and OpenCV
thread counts, open Qt windows and some leave with ``os._exit``), with small sizes and few
repeats, so the whole table takes a few minutes on 2 cores. The figures are short versions of
those in BENCHMARKS.md: run a script itself for the full measurement.

    QT_QPA_PLATFORM=offscreen python bench/run_all.py [--only bench_maskrcnn ...]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# (script, what it stands for), in the order of the table
SCRIPTS = (
    ("bench_startup", "start-up"),
    ("bench_first_overlay", "first overlay"),
    ("bench_edit", "brush"),
    ("bench_predictor", "Predictor per model"),
    ("bench_maskrcnn", "Mask R-CNN"),
    ("bench_formats", "model files against their own forward"),
    ("bench_stall", "stall (model, CRF)"),
    ("bench_grow", "grow"),
    ("bench_prompt", "prompt click"),
    ("bench_sam2_click", "SAM 2 click on a prefetched image"),
    ("bench_sam2_track", "SAM 2 tracking"),
    ("bench_video", "video fps"),
    ("bench_propagation", "propagation"),
    ("bench_refine", "CRF"),
)
MARK = "@@run_all@@ "
TIMEOUT_S = 300


def _child(script: str) -> None:
    """In the child process: run ``script``'s quick() and print its rows as one JSON line."""
    sys.path[:0] = [str(HERE), str(ROOT)]
    module = __import__(script)
    rows = module.quick()
    print(MARK + json.dumps(rows), flush=True)
    os._exit(0)


def run_one(script: str) -> tuple[list[dict], float]:
    """The rows of ``script``'s quick(), or one row saying why there are none; its seconds."""
    env = dict(os.environ, QT_QPA_PLATFORM=os.environ.get("QT_QPA_PLATFORM", "offscreen"),
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT),
                                                        os.environ.get("PYTHONPATH")])))
    start = time.perf_counter()
    try:
        done = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--child", script],
                              capture_output=True, text=True, env=env, timeout=TIMEOUT_S,
                              cwd=ROOT)
    except subprocess.TimeoutExpired:
        return [_failed(script, f"over {TIMEOUT_S} s")], time.perf_counter() - start
    seconds = time.perf_counter() - start
    for line in done.stdout.splitlines():
        if line.startswith(MARK):
            return json.loads(line[len(MARK):]), seconds
    why = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
    return [_failed(script, why[:120])], seconds


def _failed(script: str, why: str) -> dict:
    return {"measure": f"{script}: failed ({why})", "value": None, "baseline": None,
            "goal": None, "met": None}


def machine_line() -> str:
    """CPU flags that decide the kernels, the caps set on them, torch and the GPU."""
    import torch

    from segstudio.models.device import cpu_flags

    flags = cpu_flags() & {"avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile"}
    gpu = (torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU")
    load = " / ".join(f"{v:.1f}" for v in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    return (f"CPU flags: {' '.join(sorted(flags)) or 'unknown'}; {os.cpu_count()} cores; "
            f"ONEDNN_MAX_CPU_ISA={os.environ.get('ONEDNN_MAX_CPU_ISA', '(unset)')}; "
            f"ATEN_CPU_CAPABILITY={os.environ.get('ATEN_CPU_CAPABILITY', '(unset)')}; "
            f"torch {torch.__version__} ({torch.backends.cpu.get_cpu_capability()}); {gpu}; "
            f"load average {load}")


def _number(value) -> str:
    if value is None:
        return "—"
    return f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"


def table(rows: list[dict]) -> str:
    lines = ["| measure | value | baseline | ratio | goal | met |",
             "| --- | ---: | ---: | ---: | --- | --- |"]
    for r in rows:
        ratio = r.get("ratio")
        if ratio is None and r.get("value") is not None and r.get("baseline"):
            ratio = r["value"] / r["baseline"]
        met = {True: "yes", False: "**no**", None: "—"}[r.get("met")]
        lines.append(f"| {r['measure']} | {_number(r.get('value'))} | "
                     f"{_number(r.get('baseline'))} | "
                     f"{'—' if ratio is None else f'{ratio:.2f}'} | {r.get('goal') or '—'} | "
                     f"{met} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=[s for s, _ in SCRIPTS], metavar="SCRIPT",
                        help="run only these scripts")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(args.child)
    print(f"before: {machine_line()}", flush=True)
    start = time.perf_counter()
    rows = []
    for script, what in SCRIPTS:
        if args.only and script not in args.only:
            continue
        got, seconds = run_one(script)
        rows += got
        print(f"  {what} ({script}): {seconds:.0f} s", file=sys.stderr, flush=True)
    print(f"after {time.perf_counter() - start:.0f} s: {machine_line()}\n")
    print(table(rows))
    failed = sum(r.get("value") is None for r in rows)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
