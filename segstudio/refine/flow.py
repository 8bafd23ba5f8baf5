"""Moving labels from one video frame to the next with dense optical flow.

The flow is computed from the *next* frame back to the labelled one, so every pixel of the next
frame looks up where it came from (backward warping): no holes, and labels are taken with
nearest-neighbour sampling so classes never blend. Pixels whose source lies outside the frame
become void (255) for the person to fill in.
"""

from __future__ import annotations

from typing import Callable, Iterable, Iterator

import cv2
import numpy as np

VOID = 255
METHODS = ("dis", "farneback")


class FlowError(ValueError):
    """Frames or labels that cannot be warped, with the reason."""


def _grey(rgb: np.ndarray) -> np.ndarray:
    rgb = np.asarray(rgb)
    if rgb.ndim == 2:
        return np.ascontiguousarray(rgb, np.uint8)
    if rgb.ndim == 3 and rgb.shape[2] == 3:
        return cv2.cvtColor(np.ascontiguousarray(rgb, np.uint8), cv2.COLOR_RGB2GRAY)
    raise FlowError(f"a frame must be H×W or H×W×3, got shape {rgb.shape}")


def backward_flow(prev_rgb: np.ndarray, next_rgb: np.ndarray, method: str = "dis") -> np.ndarray:
    """H×W×2 float32: for each pixel of ``next_rgb``, the offset to where it was in ``prev_rgb``."""
    a, b = _grey(prev_rgb), _grey(next_rgb)
    if a.shape != b.shape:
        raise FlowError(f"frames differ in size: {a.shape[::-1]} and {b.shape[::-1]}")
    if method == "dis":
        dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
        return dis.calc(b, a, None)
    if method == "farneback":
        return cv2.calcOpticalFlowFarneback(b, a, None, 0.5, 3, 21, 3, 5, 1.1, 0)
    raise FlowError(f"unknown optical flow method {method!r}; use {' or '.join(METHODS)}")


def warp_labels(prev_rgb: np.ndarray, next_rgb: np.ndarray, labels: np.ndarray,
                method: str = "dis") -> np.ndarray:
    """The labels of ``prev_rgb`` moved onto ``next_rgb``; void where the source left the frame."""
    labels = np.asarray(labels)
    if labels.shape != np.asarray(prev_rgb).shape[:2]:
        raise FlowError(f"labels of shape {labels.shape} do not fit a frame of "
                        f"{np.asarray(prev_rgb).shape[:2]}")
    flow = backward_flow(prev_rgb, next_rgb, method)
    h, w = labels.shape
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return cv2.remap(np.ascontiguousarray(labels, np.uint8), gx + flow[..., 0], gy + flow[..., 1],
                     cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT, borderValue=VOID)


def propagate(first_rgb: np.ndarray, first_labels: np.ndarray, frames: Iterable[np.ndarray],
              method: str = "dis", cancelled: Callable[[], bool] | None = None
              ) -> Iterator[np.ndarray]:
    """Carry ``first_labels`` frame by frame through ``frames``; yields each frame's labels."""
    prev, labels = first_rgb, first_labels
    for frame in frames:
        if cancelled is not None and cancelled():
            return
        labels = warp_labels(prev, frame, labels, method)
        prev = frame
        yield labels
