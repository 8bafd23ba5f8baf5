"""The prompt encoder's precision: ``auto`` measured once per weights file and machine.

The image encoder (a ViT) is the slow part of prompted segmentation: seconds per image on a
CPU in fp32. Its reduced precision follows the Predictor's rules (:mod:`.precision`): a
candidate only where the device computes it natively (:func:`.device.auto_candidate`), kept only
when at least 15 % faster and when it agrees with fp32 on at least 99.5 % of what the user gets:
the mask pixels the decoder gives from the two embeddings for a few standard prompts. The
measurement runs on the first image the segmenter embeds: one pass in each precision, fp32
first, with no warm-up pass (setting up kernels is lost in an encoder pass of seconds), so it
costs one bf16 pass more than the embedding itself. The fp32 embedding is the one returned:
the first image is always fp32. The verdict goes into the Predictor's calibration cache under
its own key, checked on reading like every entry there.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from segstudio.models.device import auto_candidate, describe
from segstudio.models.precision import (Calibration, CalibrationCache, checkpoint_fingerprint,
                                        decide, machine_signature)
from segstudio.models.prompted import ImageEmbedding, PromptedSegmenter

# The standard prompts, as fractions of the image: the centre and the four quadrants' centres
# as single object points (three candidates each), and the middle half as a box.
STANDARD_POINTS = ((0.5, 0.5), (0.25, 0.25), (0.75, 0.25), (0.25, 0.75), (0.75, 0.75))
STANDARD_BOX = (0.25, 0.25, 0.75, 0.75)


def calibration_key(segmenter: PromptedSegmenter, weights: str | Path,
                    candidate: str) -> str | None:
    """The cache key of the encoder of ``weights`` on this machine (None: not cacheable)."""
    try:
        return " | ".join(("prompt encoder", checkpoint_fingerprint(weights), candidate,
                           machine_signature(describe(segmenter.device),
                                             torch.get_num_threads())))
    except OSError:
        return None


def settle_from_cache(segmenter: PromptedSegmenter, weights: str | Path,
                      cache: CalibrationCache | None = None) -> str | None:
    """Set the segmenter's precision where nothing needs measuring; the candidate still to be
    measured on the next image otherwise (None when there is none)."""
    candidate = auto_candidate(segmenter.device)
    if candidate is None:
        why = ("this CPU has no native bf16 units" if segmenter.device.type == "cpu"
               else f"no reduced precision is used on {segmenter.device.type}")
        segmenter.precision, segmenter.precision_note = "fp32", f"fp32: {why}"
        return None
    key = calibration_key(segmenter, weights, candidate)
    found = (cache or CalibrationCache()).get(key) if key else None
    if found is not None:
        _keep(segmenter, found)
        return None
    segmenter.precision = "fp32"
    segmenter.precision_note = f"fp32 until {candidate} is measured against it on the next image"
    return candidate


def measure_on(segmenter: PromptedSegmenter, weights: str | Path, rgb8: np.ndarray,
               candidate: str, progress: Callable[[int, int], None] | None = None,
               cancelled: Callable[[], bool] | None = None,
               cache: CalibrationCache | None = None) -> ImageEmbedding:
    """Measure ``candidate`` against fp32 on ``rgb8``, keep and cache the verdict, and return
    the image's fp32 embedding. ``progress`` sees both passes as one task. A cancel stops it
    with nothing stored: it is measured again next time."""
    first: list[ImageEmbedding] = []

    def run(precision: str) -> tuple[np.ndarray, None]:
        done = len(first)                # passes before this one: 0 (fp32) or 1

        def step(i: int, n: int) -> None:
            if progress is not None:
                progress(done * n + i, 2 * n)

        emb = segmenter.embed(rgb8, step, cancelled, precision)
        if precision == "fp32":
            first.append(emb)
        return standard_masks(segmenter, emb), None

    height, width = rgb8.shape[:2]
    sync = torch.cuda.synchronize if segmenter.device.type == "cuda" else (lambda: None)
    found = decide(candidate, run, f"{width}×{height}", repeats=1, sync=sync, warm_up=False)
    key = calibration_key(segmenter, weights, candidate)
    if key:
        (cache or CalibrationCache()).put(key, found)
    _keep(segmenter, found)
    return first[0]


def standard_masks(segmenter: PromptedSegmenter, emb: ImageEmbedding) -> np.ndarray:
    """The decoder's masks for the standard prompts (every candidate), stacked as uint8, at
    the resolution of the encoder's input (the image as the network sees it)."""
    height, width = emb.original_size
    h, w = emb.input_size
    found = [segmenter.predict(emb, [(fx * (width - 1), fy * (height - 1))], [1])
             for fx, fy in STANDARD_POINTS]
    x0, y0, x1, y1 = STANDARD_BOX
    found.append(segmenter.predict(emb, box=(x0 * width, y0 * height, x1 * width,
                                             y1 * height)))
    logits = torch.from_numpy(np.concatenate([p.low_res for p in found]))[None]
    size = segmenter.img_size
    big = F.interpolate(logits, (size, size), mode="bilinear", align_corners=False)
    return (big[0, :, :h, :w] > 0).numpy().astype(np.uint8)


def _keep(segmenter: PromptedSegmenter, found: Calibration) -> None:
    segmenter.precision, segmenter.precision_note = found.chosen, found.describe()
