"""Tracking accuracy: SAM 2 against optical-flow propagation on a video with known masks.

The video is generated, so every frame's true object map is known: on a textured background,
a disc glides right, a bar glides left and passes behind the disc (occluded for a stretch of
frames, then out again), and an ellipse breathes (its axes grow and shrink) while drifting
down. Each object is given on frame 0 only:

- optical flow (``segstudio.refine.flow.propagate``, the app's propagation before SAM 2) gets
  frame 0's true object map and carries it from frame to frame;
- SAM 2 (``--weights DIR``, a trained SAM 2 / SAM 2.1 folder) gets one click at each object's
  centre on frame 0 (what a person gives) and tracks with :class:`Sam2VideoTracker`, the code
  behind ``segstudio track`` and the window's Track.

Each frame is scored per object (IoU against the truth; an object hidden on a frame is left out
of that frame's mean) and the table gives the mean IoU over frames, over the occlusion stretch,
and over the last quarter of the clip (what drift has done by then).

Without ``--weights`` only optical flow is measured. ``--random`` tracks with a randomly
initialised network of the tests' tiny shape: it checks that the harness runs, and its IoU
means nothing.

    python bench/bench_sam2_accuracy.py [--weights DIR] [--frames 48] [--size 256]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent / "tests"), str(HERE.parent)]

OBJECTS = {1: "disc (moving)", 2: "bar (occluded, moving)", 3: "ellipse (deforming)"}


def scene(frames: int = 48, size: int = 256, seed: int = 0):
    """(frames RGB uint8, true object maps uint8, frames on which the bar is partly hidden)."""
    rng = np.random.default_rng(seed)
    noise = cv2.GaussianBlur(rng.random((size, size)).astype(np.float32), (0, 0), 3)
    noise = (noise - noise.min()) / (np.ptp(noise) + 1e-9)
    background = np.stack([60 + 70 * noise, 70 + 50 * noise[::-1], 50 + 60 * noise.T],
                          -1).astype(np.uint8)
    images, truths, hidden = [], [], []
    s = size / 256.0
    for i in range(frames):
        t = i / max(frames - 1, 1)
        image, truth = background.copy(), np.zeros((size, size), np.uint8)
        # the bar first (the disc passes in front of it)
        bx = int((200 - 150 * t) * s)
        bar = np.zeros_like(truth)
        cv2.rectangle(bar, (bx - int(28 * s), int(70 * s)), (bx + int(28 * s), int(96 * s)), 1,
                      -1)
        image[bar > 0] = (40, 110, 220)
        truth[bar > 0] = 2
        # the disc, in front
        cx = int((40 + 160 * t) * s)
        disc = np.zeros_like(truth)
        cv2.circle(disc, (cx, int(84 * s)), int(24 * s), 1, -1)
        image[disc > 0] = (230, 200, 50)
        before = int((truth == 2).sum())
        truth[disc > 0] = 1
        if int((truth == 2).sum()) < before:
            hidden.append(i)
        # the ellipse, breathing while it drifts down
        axes = (int((30 + 12 * np.sin(2 * np.pi * 2 * t)) * s),
                int((18 - 7 * np.sin(2 * np.pi * 2 * t)) * s))
        ellipse = np.zeros_like(truth)
        cv2.ellipse(ellipse, (int(128 * s), int((150 + 60 * t) * s)), axes, 20 * t * 90, 0, 360,
                    1, -1)
        image[ellipse > 0] = (200, 60, 150)
        truth[ellipse > 0] = 3
        images.append(cv2.GaussianBlur(image, (3, 3), 0))
        truths.append(truth)
    return images, truths, hidden


def iou_per_object(found: np.ndarray, truth: np.ndarray) -> dict[int, float]:
    """IoU of each object present in ``truth``."""
    out = {}
    for obj in OBJECTS:
        t = truth == obj
        if not t.any():
            continue
        f = found == obj
        out[obj] = float((t & f).sum() / (t | f).sum())
    return out


def by_flow(images, truths, method: str = "dis") -> list[np.ndarray]:
    from segstudio.refine.flow import propagate

    return [truths[0]] + list(propagate(images[0], truths[0], images[1:], method))


def by_sam2(images, truths, folder: Path) -> list[np.ndarray]:
    import torch

    from segstudio.models.sam2_video import Sam2VideoTracker, TrackPrompt

    prompts = []
    for obj in OBJECTS:
        ys, xs = np.nonzero(truths[0] == obj)
        # the object pixel nearest its centroid (a person clicks inside the object)
        k = int(np.argmin((xs - xs.mean()) ** 2 + (ys - ys.mean()) ** 2))
        prompts.append(TrackPrompt(0, obj, [(float(xs[k]), float(ys[k]))], [1]))
    tracker = Sam2VideoTracker.from_folder(folder, torch.device("cpu"))
    found = [None] * len(images)
    for r in tracker.track(lambda i: images[i], len(images), prompts):
        found[r.index] = r.object_map()
    return found


def score(found, truths, hidden) -> dict:
    per_frame = [iou_per_object(f, t) for f, t in zip(found, truths)]
    means = [float(np.mean(list(d.values()))) for d in per_frame]
    late = means[len(means) * 3 // 4:]
    occluded = [per_frame[i][2] for i in hidden if 2 in per_frame[i]]
    per_object = {obj: float(np.mean([d[obj] for d in per_frame if obj in d])) for obj in OBJECTS}
    return {"mean": float(np.mean(means[1:])), "late": float(np.mean(late)),
            "occluded": float(np.mean(occluded)) if occluded else float("nan"),
            "per_object": per_object, "per_frame": means}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", metavar="DIR", help="a trained SAM 2 / SAM 2.1 folder")
    parser.add_argument("--random", action="store_true",
                        help="track with a random tiny network (checks the harness only)")
    parser.add_argument("--frames", type=int, default=48)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--per-frame", action="store_true", help="print each frame's mean IoU")
    args = parser.parse_args()
    images, truths, hidden = scene(args.frames, args.size)
    rows = {"optical flow (DIS) from frame 0's true map": score(by_flow(images, truths), truths,
                                                               hidden)}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.weights) if args.weights else None
        if args.random:
            from sam2_doubles import save_tiny_sam2

            folder = save_tiny_sam2(Path(tmp) / "random", size=64)
        if folder is not None:
            name = "SAM 2, random tiny network (harness check only)" if args.random else \
                f"SAM 2 ({folder.name}), one click per object on frame 0"
            rows[name] = score(by_sam2(images, truths, folder), truths, hidden)
    print(f"{args.frames} generated frames of {args.size}²; the bar is partly hidden on "
          f"{len(hidden)} frames ({hidden[0] if hidden else '-'}–{hidden[-1] if hidden else '-'})"
          "; mean IoU against the true masks, frame 0 left out\n")
    print("| method | mean IoU | while occluded (bar) | last quarter | disc | bar | ellipse |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, r in rows.items():
        p = r["per_object"]
        print(f"| {name} | {r['mean']:.3f} | {r['occluded']:.3f} | {r['late']:.3f} | "
              f"{p[1]:.3f} | {p[2]:.3f} | {p[3]:.3f} |")
    if not args.weights:
        print("\nSAM 2's row needs a trained folder: --weights DIR (none is downloaded).")
    if args.per_frame:
        for name, r in rows.items():
            print(f"\n{name}: " + " ".join(f"{v:.2f}" for v in r["per_frame"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
