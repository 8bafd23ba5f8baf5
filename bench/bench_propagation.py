"""Label propagation across frames against the model's own per-frame prediction.

A moving-phantom clip: a synthetic chest phantom (160 px) drifting right and down by a pixel or
two a frame and turning slowly, with its true labels moved the same way. From frame 0's true
labels, optical-flow propagation (segstudio.refine.flow) carries the labels forward; the bundled
chest U-Net predicts each frame on its own (the baseline). Both are scored against the truth.

    python bench/bench_propagation.py [--frames 16] [--method dis]
"""

from __future__ import annotations

import argparse

import cv2
import numpy as np

from segstudio.core.metrics import ConfusionMatrix
from segstudio.paths import weights_dir
from segstudio.refine.flow import warp_labels
from segstudio.train.synth import make_sample


def clip(frames: int):
    s = make_sample("xray", 0, size=160, seed=5)
    h, w = s.labels.shape
    for i in range(frames):
        m = cv2.getRotationMatrix2D((w / 2, h / 2), 0.6 * i, 1.0)
        m[:, 2] += (1.5 * i, 0.8 * i)
        img = cv2.warpAffine(s.image, m, (w, h), flags=cv2.INTER_LINEAR,
                             borderMode=cv2.BORDER_REFLECT)
        lab = cv2.warpAffine(s.labels, m, (w, h), flags=cv2.INTER_NEAREST,
                             borderMode=cv2.BORDER_REFLECT)
        yield img, lab


def miou(gt, pred) -> float:
    return ConfusionMatrix(4).update(gt, pred).scores().miou


def measure(frame_count: int, method: str) -> tuple[list[float], list[float]]:
    """mIoU of propagation and of the model, for each frame after the key frame."""
    from segstudio.models.engine import Predictor

    predictor = Predictor.from_checkpoint(weights_dir() / "chest_xray_unet_lite.pt",
                                          device="cpu", precision="fp32")
    frames = list(clip(frame_count))
    prop, model = [], []
    labels = frames[0][1]
    for k in range(1, len(frames)):
        labels = warp_labels(frames[k - 1][0], frames[k][0], labels, method)
        prop.append(miou(frames[k][1], labels))
        model.append(miou(frames[k][1], predictor.predict(frames[k][0]).labels))
    return prop, model


def quick() -> list[dict]:
    """A short run for ``bench/run_all.py``: 8 frames, DIS."""
    prop, model = measure(8, "dis")
    return [{"measure": "label propagation over 7 frames, mIoU (%)",
             "value": 100 * float(np.mean(prop)), "baseline": 100 * float(np.mean(model)),
             "goal": None, "met": None}]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=16)
    ap.add_argument("--method", default="dis", choices=["dis", "farneback"])
    args = ap.parse_args()
    prop, model = measure(args.frames, args.method)
    print(f"Moving phantom, {args.frames} frames (160 px), propagation from frame 0's true "
          f"labels ({args.method}) vs the bundled chest U-Net per frame; mIoU against the truth\n")
    print("| frames after the key frame | propagation mIoU | model per-frame mIoU (baseline) |")
    print("| --- | ---: | ---: |")
    for lo, hi in ((1, 3), (4, 7), (8, 11), (12, args.frames - 1)):
        if lo > len(prop):
            break
        sl = slice(lo - 1, min(hi, len(prop)))
        print(f"| {lo}–{min(hi, len(prop))} | {100 * np.mean(prop[sl]):.1f} % | "
              f"{100 * np.mean(model[sl]):.1f} % |")
    print(f"| all | {100 * np.mean(prop):.1f} % | {100 * np.mean(model):.1f} % |")


if __name__ == "__main__":
    main()
