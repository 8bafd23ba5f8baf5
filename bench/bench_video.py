"""Frames per second of the video pipeline against the model alone on the same frames.

Three timings in one run, with one Predictor, on a generated clip:

- model alone: ``Predictor.predict`` on frames decoded beforehand (the ceiling);
- one after another: decode, predict, then colour the overlay and write the label PNG, per frame;
- pipeline: ``predict_frames`` with the same post-processing, decode and writing overlapped.

The goal is a pipeline at 90% or more of the model-alone rate. Many short runs, the three
timings interleaved, because on a shared machine the load changes from second to second; the
ratio is the median of the per-run ratios. Prints a markdown table; run
``python bench/bench_video.py --help`` for the options.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from segstudio.core.classes import chest_xray
from segstudio.io.video import VideoSource
from segstudio.io.voc import save_label_png
from segstudio.models.engine import Predictor
from segstudio.models.video_pipeline import blend_overlay, predict_frames


def make_clip(path: Path, frames: int, size: int, fps: float = 25.0) -> None:
    """A textured background with moving discs, so that decoding has real work to do."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (size, size))
    if not writer.isOpened():
        sys.exit(f"cannot write the test clip {path}")
    rng = np.random.default_rng(0)
    base = cv2.GaussianBlur(rng.integers(0, 256, (size, size, 3), dtype=np.uint8), (0, 0), 3)
    for i in range(frames):
        frame = base.copy()
        for k in range(4):
            cx = int((0.2 + 0.6 * ((i * (k + 1) / frames) % 1.0)) * size)
            cy = int((0.2 + 0.15 * k) * size)
            cv2.circle(frame, (cx, cy), size // 10, (40 * k, 200 - 30 * k, 90 + 40 * k), -1)
        writer.write(frame)
    writer.release()


class PostProcess:
    """What a frame's result goes through after the network: the overlay colouring and the
    label PNG, as the GUI's run and the overlay export do."""

    def __init__(self, folder: Path, source: VideoSource, classes) -> None:
        self.folder, self.source, self.classes = folder, source, classes
        self.table = classes.color_table()
        self.shown = np.zeros(256, bool)
        self.shown[1:len(classes)] = True

    def __call__(self, frame: int, prediction) -> None:
        blend_overlay(self.source.read(frame), prediction.labels, self.table, self.shown, 0.5)
        save_label_png(self.folder / f"{frame:06d}.png", prediction.labels, self.classes)


def time_model_alone(predictor: Predictor, frames: list[np.ndarray]) -> float:
    start = time.perf_counter()
    for rgb in frames:
        predictor.predict(rgb)
    return time.perf_counter() - start


def time_one_after_another(predictor: Predictor, clip: Path, count: int, out: Path) -> float:
    with VideoSource(clip, cache_frames=2) as source:
        post = PostProcess(out, source, predictor.meta.classes)
        start = time.perf_counter()
        for i in range(count):
            post(i, predictor.predict(source.read(i)))
        return time.perf_counter() - start


def time_pipeline(predictor: Predictor, clip: Path, count: int, out: Path):
    with VideoSource(clip, cache_frames=8) as source:
        post = PostProcess(out, source, predictor.meta.classes)
        stats = predict_frames(source, predictor, range(count), post)
    if stats.frames != count:
        sys.exit(f"the pipeline delivered {stats.frames} of {count} frames")
    return stats


def measure(args: argparse.Namespace):
    """The Predictor, and per run the seconds of the model alone, one after another, and the
    pipeline, with the pipeline's stage statistics."""
    predictor = Predictor.untrained(args.model, chest_xray(), "lite", device=args.device,
                                    precision=args.precision, num_threads=args.threads)
    with tempfile.TemporaryDirectory(prefix="bench-video-") as tmp:
        tmp = Path(tmp)
        clip = tmp / "clip.avi"
        make_clip(clip, args.frames, args.size)
        with VideoSource(clip, cache_frames=1) as source:
            decoded = [np.array(source.read(i)) for i in range(args.frames)]
        for rgb in decoded[:3]:
            predictor.predict(rgb)          # warm-up: allocator, kernels, autotuning
        alone, serial, piped, stats = [], [], [], []
        for r in range(args.runs):
            alone.append(time_model_alone(predictor, decoded))
            out = tmp / f"serial{r}"
            out.mkdir()
            serial.append(time_one_after_another(predictor, clip, args.frames, out))
            out = tmp / f"pipeline{r}"
            out.mkdir()
            s = time_pipeline(predictor, clip, args.frames, out)
            piped.append(s.seconds)
            stats.append(s)
    return predictor, alone, serial, piped, stats


def quick() -> list[dict]:
    """A short run for ``bench/run_all.py``: 8 frames, 3 runs, 1 torch thread."""
    args = argparse.Namespace(model="unet", size=256, frames=8, runs=3, threads=1,
                              device="cpu", precision="fp32")
    _, alone, _, piped, _ = measure(args)
    ratio = statistics.median(a / p for a, p in zip(alone, piped))
    return [{"measure": "video pipeline, U-Net lite 256², 1 thread (frames/s)",
             "value": args.frames / statistics.median(piped),
             "baseline": args.frames / statistics.median(alone), "ratio": ratio,
             "goal": "≥ 0.9× model alone", "met": ratio >= 0.9}]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="unet", help="registry model, lite (default unet)")
    parser.add_argument("--size", type=int, default=256, help="frame side in pixels (256)")
    parser.add_argument("--frames", type=int, default=12, help="frames in the clip (12)")
    parser.add_argument("--runs", type=int, default=15,
                        help="repeats of each timing, interleaved; the median counts (15)")
    parser.add_argument("--threads", type=int,
                        help="torch CPU threads (default: the GUI's, all cores but one)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto (cpu)")
    parser.add_argument("--precision", default="fp32", choices=("auto", "fp32", "bf16", "fp16"))
    args = parser.parse_args()
    predictor, alone, serial, piped, stats = measure(args)

    n = args.frames
    fps_alone, fps_serial, fps_pipe = (n / statistics.median(t) for t in (alone, serial, piped))
    # Ratios are taken run by run, then the median: the three timings of one run sit close
    # in time, so a load change on a shared machine moves them together.
    vs_serial = statistics.median(a / s for a, s in zip(alone, serial))
    vs_pipe = statistics.median(a / p for a, p in zip(alone, piped))
    mid = sorted(stats, key=lambda s: s.seconds)[len(stats) // 2]
    print(f"{args.model} (lite, untrained), {n} frames of {args.size}×{args.size}, "
          f"{predictor.device} {predictor.precision}, torch threads {torch.get_num_threads()}, "
          f"{os.cpu_count()} cores, {platform.processor() or platform.machine()}; "
          f"median of {args.runs} interleaved runs\n")
    print("| timing | frames/s | vs model alone (median of per-run ratios) |")
    print("|---|---:|---:|")
    print(f"| model alone (frames decoded beforehand) | {fps_alone:.1f} | 1.00 |")
    print(f"| decode → model → colour + PNG, one after another | {fps_serial:.1f} | "
          f"{vs_serial:.2f} |")
    print(f"| pipeline (stages overlapped) | {fps_pipe:.1f} | **{vs_pipe:.2f}** |")
    print("\nper run, pipeline vs model alone: "
          + ", ".join(f"{a / p:.2f}" for a, p in zip(alone, piped)))
    print(f"\npipeline stage busy time (median run, {mid.seconds:.2f} s wall): decode "
          f"{mid.decode_seconds:.2f} s, model {mid.work_seconds:.2f} s, colour + PNG "
          f"{mid.write_seconds:.2f} s; the model waited {mid.starved_seconds:.2f} s for frames")
    return 0


if __name__ == "__main__":
    sys.exit(main())
