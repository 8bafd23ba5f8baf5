"""SAM 2 tracking: ``segstudio``'s streamed session against the library's own whole-video loop.

Both run the same randomly initialised SAM 2 (the ``transformers`` classes; the timings do not
depend on the weights) on the same generated video, each in a fresh process so that its peak
resident memory is its own; decoding is included in both:

- library (baseline): every frame decoded, ``init_video_session(video=frames)``, the prompt
  added with a pass on its frame, ``propagate_in_video_iterator``, ``post_process_masks`` per
  frame, as the library's documentation shows;
- app: :meth:`Sam2VideoTracker.track` reading frames one at a time from ``VideoSource``, with
  the object-id map made for each frame (what ``segstudio track`` writes, less the PNG).

Times are the best of the runs (``--pairs`` processes per path, in turns, each warmed up once
and then timed ``--repeats`` times), since other programs on the machine only ever add time.

``--shape tiny-random`` is the small network the tests use (64² input); ``--shape hiera-tiny``
is a random network of SAM 2.1 tiny's real shape (1024² input, 39.0 M parameters), which gives
the per-frame time a laptop CPU would see with the real tiny weights; ``--shape hiera-small``
is SAM 2.1 small's (the same Hiera widths with 11 blocks in the third stage and global
attention in blocks 7, 10 and 13, as its published configuration has).

Run: ``python bench/bench_sam2_track.py --shape tiny-random --frames 300 --threads 1``
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

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
MARK = "@@sam2@@ "


def _model(folder: Path, shape: str) -> Path:
    sys.path[:0] = [str(ROOT / "tests"), str(ROOT)]
    if shape == "tiny-random":
        from sam2_doubles import save_tiny_sam2

        return save_tiny_sam2(folder)
    import torch
    from transformers import Sam2VideoConfig, Sam2VideoModel

    from sam2_doubles import default_processor_files

    torch.manual_seed(0)
    config = Sam2VideoConfig()                              # the defaults are SAM 2.1 hiera-tiny
    if shape == "hiera-small":
        backbone = config.vision_config.backbone_config
        backbone.blocks_per_stage = [1, 2, 11, 2]
        backbone.global_attention_blocks = [7, 10, 13]
    model = Sam2VideoModel(config).eval()
    with torch.no_grad():
        model.mask_decoder.pred_obj_score_head.proj_out.bias.fill_(2.0)
    model.save_pretrained(folder)
    default_processor_files(folder, 1024)
    return folder


def _child(mode: str, folder: str, video: str, threads: int, runs: int) -> None:
    import numpy as np
    import torch

    torch.set_num_threads(threads)
    sys.path[:0] = [str(ROOT)]
    from segstudio.io.video import VideoSource
    from segstudio.models.sam2_video import (Sam2VideoTracker, TrackPrompt, group_by_frame,
                                             library_inputs)

    prompts = [TrackPrompt(0, 1, [(12.0, 20.0)], [1])]
    if mode == "app":
        tracker = Sam2VideoTracker.from_folder(folder, torch.device("cpu"))

        def run() -> int:
            n = 0
            with VideoSource(video) as source:
                for result in tracker.track(source.read, source.frame_count, prompts):
                    result.object_map()
                    n += 1
            return n
    else:
        from transformers import Sam2VideoModel, Sam2VideoProcessor

        model = Sam2VideoModel.from_pretrained(folder, local_files_only=True).eval()
        processor = Sam2VideoProcessor.from_pretrained(folder, local_files_only=True)

        def run() -> int:
            with VideoSource(video) as source:
                frames = [np.array(source.read(i)) for i in range(source.frame_count)]
            session = processor.init_video_session(video=frames, inference_device="cpu",
                                                   dtype=torch.float32)
            for index, group in group_by_frame(prompts).items():
                processor.add_inputs_to_inference_session(session, frame_idx=index,
                                                          **library_inputs(group))
                model(inference_session=session, frame_idx=index)
            size = [[session.video_height, session.video_width]]
            n = 0
            for o in model.propagate_in_video_iterator(session):
                masks = processor.post_process_masks([o.pred_masks], original_sizes=size,
                                                     binarize=False)[0]
                (masks > 0).numpy()
                n += 1
            return n
    run()                                  # warm-up: first calls allocate and pick kernels
    times, cpu = [], []
    for _ in range(runs):
        began, began_cpu = time.perf_counter(), time.process_time()
        frames_done = run()
        times.append(time.perf_counter() - began)
        cpu.append(time.process_time() - began_cpu)
    seconds = min(times)                   # the least disturbed by other programs
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(MARK + json.dumps({"mode": mode, "seconds": seconds, "cpu": min(cpu),
                             "frames": frames_done, "peak": peak}), flush=True)


def _run(mode: str, folder: Path, video: Path, threads: int, runs: int) -> dict:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT),
                                                                    os.environ.get("PYTHONPATH")])))
    done = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--child", mode,
                           str(folder), str(video), str(threads), str(runs)],
                          capture_output=True, text=True, env=env, cwd=ROOT)
    for line in done.stdout.splitlines():
        if line.startswith(MARK):
            return json.loads(line[len(MARK):])
    raise SystemExit(f"{mode} failed: {done.stderr.strip()[-600:]}")


def measure(shape: str, frames: int, size: int, threads: int, repeats: int,
            pairs: int = 2) -> list[dict]:
    sys.path[:0] = [str(ROOT / "tests"), str(ROOT)]
    from sam2_doubles import moving_frames, write_video

    with tempfile.TemporaryDirectory() as tmp:
        folder = _model(Path(tmp) / "model", shape)
        video = write_video(Path(tmp) / "clip.avi", moving_frames(frames, size, size))
        # ``pairs`` processes per path, in turns; each times ``repeats`` runs after a warm-up.
        runs = {"app": [], "library": []}
        for i in range(pairs):
            for mode in (("library", "app") if i % 2 == 0 else ("app", "library")):
                runs[mode].append(_run(mode, folder, video, threads, repeats))
    rows = []
    for mode, results in runs.items():
        rows.append({"mode": mode,
                     "ms_per_frame": 1000 * min(r["seconds"] / r["frames"] for r in results),
                     "cpu_ms_per_frame": 1000 * min(r["cpu"] / r["frames"] for r in results),
                     "peak_mib": max(r["peak"] for r in results) / 2 ** 20,
                     "frames": results[0]["frames"]})
    return rows


def quick() -> list[dict]:
    """A short run for ``bench/run_all.py``: SAM 2.1 tiny's real shape (random weights) on 3
    frames of 128², one process per path, one timed run each after the warm-up (about a
    minute: each frame is a full 1024² encoder pass)."""
    rows = measure("hiera-tiny", 3, 128, threads=1, repeats=1, pairs=1)
    app, lib = (next(r for r in rows if r["mode"] == m) for m in ("app", "library"))
    ratio = app["cpu_ms_per_frame"] / lib["cpu_ms_per_frame"]
    return [{"measure": "SAM 2 tracking, CPU ms per frame (SAM 2.1 tiny's shape, 1 thread; "
                        f"peak {app['peak_mib']:.0f} MiB)",
             "value": app["cpu_ms_per_frame"], "baseline": lib["cpu_ms_per_frame"],
             "goal": "≤ 1.1× the library's loop", "met": ratio <= 1.1}]


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        _child(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), int(sys.argv[6]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", choices=("tiny-random", "hiera-tiny", "hiera-small"),
                        default="tiny-random")
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--size", type=int, default=64, help="video frame side in pixels")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per process")
    parser.add_argument("--pairs", type=int, default=2, help="processes per path")
    args = parser.parse_args()
    rows = measure(args.shape, args.frames, args.size, args.threads, args.repeats, args.pairs)
    import platform

    print(f"SAM 2 tracking, {args.shape} (random weights), {args.frames} frames of "
          f"{args.size}×{args.size}, {args.threads} thread(s), best of {args.pairs}×{args.repeats} "
          f"runs; "
          f"{platform.processor() or platform.machine()}\n")
    print("| path | ms per frame | CPU ms per frame | peak resident MiB | frames |")
    print("|---|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['mode']} | {r['ms_per_frame']:.1f} | {r['cpu_ms_per_frame']:.1f} | "
              f"{r['peak_mib']:.0f} | {r['frames']} |")
    app, lib = (next(r for r in rows if r["mode"] == m) for m in ("app", "library"))
    print(f"\napp / library: {app['ms_per_frame'] / lib['ms_per_frame']:.2f}× wall time, "
          f"{app['cpu_ms_per_frame'] / lib['cpu_ms_per_frame']:.2f}× CPU time (goal ≤ 1.1×; "
          "on a shared machine the CPU time is the steadier figure)")


if __name__ == "__main__":
    main()
