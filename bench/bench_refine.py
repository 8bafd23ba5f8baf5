"""Timings of the smart correction tools on a 512×512 scene, as a markdown table.

The scene is a generated "context" image (grass, water, road, a boat or car) with its true
labels. The "network" output the CRF refines is the truth blurred and shifted by a few pixels,
with noise, so the table also shows how much the CRF gives back (pixel accuracy before → after).
CrfProcess rows also give the longest pause of a thread in the calling process that wakes every
5 ms: the figure a GUI thread would see. In-process rows show the same for contrast.

    python bench/bench_refine.py [--repeats 3] [--size 512]
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time

import cv2
import numpy as np

from segstudio.refine.crf import CrfParams, refine_labels, refine_probabilities
from segstudio.refine.crf_process import CrfProcess
from segstudio.refine.grabcut import WORK_PIXELS, grabcut_box, grabcut_refine
from segstudio.refine.morphology import fill_holes, remove_islands
from segstudio.train.synth import make_sample


class Ticker:
    """A thread that sleeps 5 ms at a time and records the longest gap between its wake-ups."""

    def __init__(self) -> None:
        self.longest = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        last = time.perf_counter()
        while not self._stop.is_set():
            time.sleep(0.005)
            now = time.perf_counter()
            self.longest = max(self.longest, now - last)
            last = now

    def __enter__(self) -> Ticker:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def timed(fn, repeats: int, ticking: bool = False):
    """Median seconds of ``fn()`` over ``repeats`` runs, its last result, the longest tick gap."""
    times, gaps, result = [], [], None
    for _ in range(repeats):
        with Ticker() as ticker:
            start = time.perf_counter()
            result = fn()
            times.append(time.perf_counter() - start)
        gaps.append(ticker.longest)
    return statistics.median(times), result, (max(gaps) if ticking else None)


def network_like(labels: np.ndarray, classes: int, seed: int = 0) -> np.ndarray:
    """Soft, shifted, noisy class probabilities around ``labels`` (C×H×W float32)."""
    rng = np.random.default_rng(seed)
    onehot = np.eye(classes, dtype=np.float32)[np.roll(labels, (4, -5), axis=(0, 1))]
    soft = cv2.GaussianBlur(onehot, (0, 0), 6.0).reshape(labels.shape + (classes,))
    soft = soft + rng.uniform(0, 0.25, soft.shape).astype(np.float32)
    return (soft / soft.sum(axis=2, keepdims=True)).transpose(2, 0, 1).copy()


def quick() -> list[dict]:
    """A short run for ``bench/run_all.py``: the dense CRF on 512², 21 classes, 5 iterations,
    in-process (baseline) and through the warm CrfProcess, whose caller must keep ticking."""
    sample = make_sample("context", 0, size=512, seed=0)
    probs = network_like(sample.labels, 21)
    alone, _, _ = timed(lambda: refine_probabilities(sample.image, probs), 1)
    with CrfProcess() as worker:
        worker.submit(sample.image, probs)
        worker.result()                                   # the worker's start-up

        def through_worker():
            worker.submit(sample.image, probs)
            return worker.result()

        seconds, _, gap = timed(through_worker, 2, ticking=True)
    return [{"measure": f"dense CRF 512², 21 classes, 5 it., in its worker (ms; longest "
                        f"5 ms-tick gap of the caller {gap * 1000:.0f} ms)",
             "value": seconds * 1000, "baseline": alone * 1000,
             "goal": "caller's gap ≤ 20 ms", "met": gap <= 0.020}]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--size", type=int, default=512)
    args = parser.parse_args()
    sample = make_sample("context", 0, size=args.size, seed=0)
    image, truth = sample.image, sample.labels
    size = f"{args.size}×{args.size}"
    rows = []

    def accuracy(labels):
        return float((labels == truth).mean())

    for classes in (5, 21):
        probs = network_like(truth, classes)
        before = accuracy(probs.argmax(0))
        for iterations in (5, 10):
            params = CrfParams(iterations=iterations)
            t, q, gap = timed(lambda: refine_probabilities(image, probs, params), args.repeats,
                              ticking=True)
            rows.append((f"CRF in-process, {classes} classes, {iterations} it.", size, t, gap,
                         f"pixel acc. {before:.3f} → {accuracy(q.argmax(0)):.3f}"))

    probs = network_like(truth, 21)
    with CrfProcess() as worker:
        start = time.perf_counter()
        worker.submit(image, probs)
        submit_ms = (time.perf_counter() - start) * 1000
        worker.result()
        cold = time.perf_counter() - start
        rows.append(("CrfProcess, first job (worker start-up)", size + ", 21 cl.", cold, None,
                     f"submit() returned in {submit_ms:.1f} ms"))

        calls = []

        def through_worker():
            start = time.perf_counter()
            worker.submit(image, probs)
            submitted = time.perf_counter()
            while (out := worker.poll()) is None:
                time.sleep(0.01)
            calls.append((submitted - start, time.perf_counter() - last_poll[0]))
            return out

        last_poll = [0.0]
        original_poll = worker.poll

        def timed_poll():
            last_poll[0] = time.perf_counter()
            return original_poll()

        worker.poll = timed_poll
        t, q, gap = timed(through_worker, args.repeats, ticking=True)
        same = np.array_equal(q, refine_probabilities(image, probs))
        submit_ms = statistics.median(c[0] for c in calls) * 1000
        poll_ms = statistics.median(c[1] for c in calls) * 1000
        rows.append(("CrfProcess, warm worker, 5 it.", size + ", 21 cl.", t, gap,
                     f"submit() {submit_ms:.1f} ms, the poll() that returns the result "
                     f"{poll_ms:.1f} ms; same result as in-process: {same}"))

        big = CrfParams(iterations=50)
        worker.submit(image, probs, big)
        time.sleep(0.5)
        start = time.perf_counter()
        worker.cancel()
        rows.append(("CrfProcess.cancel() of a 50-iteration job", size, time.perf_counter() - start,
                     None, "worker process ended"))

    hand = truth.copy()
    hand[::37, ::41] = 0   # specks of a wrong class, as a careless brush leaves
    t, out, _ = timed(lambda: refine_labels(image, hand, 5), args.repeats)
    rows.append(("CRF refine_labels, 5 classes, 5 it.", size, t, None,
                 f"pixel acc. {accuracy(hand):.4f} → {accuracy(out):.4f}"))

    obj = int(np.bincount(truth.ravel(), minlength=5)[3:].argmax()) + 3   # boat or car
    ys, xs = np.nonzero(truth == obj)
    box = (xs.min() - 6, ys.min() - 6, xs.max() + 7, ys.max() + 7)
    true_obj = truth == obj

    def iou(mask):
        return float((mask & true_obj).sum() / (mask | true_obj).sum())

    box_size = f"{box[2] - box[0]}×{box[3] - box[1]} box"
    t, mask, _ = timed(lambda: grabcut_box(image, box, work_pixels=10 ** 7), 1)
    rows.append(("GrabCut box, 5 it., full resolution", box_size, t, None,
                 f"object IoU {iou(mask):.3f}"))
    t, mask, _ = timed(lambda: grabcut_box(image, box), args.repeats)
    rows.append((f"GrabCut box, 5 it., cut on ≤ {WORK_PIXELS} px", box_size, t, None,
                 f"object IoU {iou(mask):.3f}"))
    rough = np.where(cv2.dilate(true_obj.astype(np.uint8), np.ones((9, 9), np.uint8)) > 0,
                     obj, truth).astype(np.uint8)
    t, mask, _ = timed(lambda: grabcut_refine(image, rough, obj), args.repeats)
    rows.append(("GrabCut refine of a class, band 12", size, t, None,
                 f"object IoU {iou(rough == obj):.3f} → {iou(mask):.3f}"))

    noisy = truth.copy()
    rng = np.random.default_rng(3)
    noisy[rng.random(truth.shape) < 0.01] = 1   # 1 % specks of water everywhere
    t, out, _ = timed(lambda: remove_islands(noisy, 1, 20), args.repeats)
    rows.append(("remove_islands (1 % specks)", size, t, None,
                 f"wrong pixels {int((noisy != truth).sum())} → {int((out != truth).sum())}"))
    holed = truth.copy()
    holed[rng.random(truth.shape) < 0.01] = 255
    t, out, _ = timed(lambda: fill_holes(holed, 0), args.repeats)
    rows.append(("fill_holes", size, t, None, "void pin-holes in the grass closed"))

    print("| operation | input | median ms | longest 5 ms-tick gap | notes |")
    print("|---|---|---:|---:|---|")
    for name, what, seconds, gap, notes in rows:
        gap_text = "" if gap is None else f"{gap * 1000:.0f} ms"
        print(f"| {name} | {what} | {seconds * 1000:.1f} | {gap_text} | {notes} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
