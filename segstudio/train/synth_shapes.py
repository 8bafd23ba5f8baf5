"""Scenes of overlapping coloured shapes with instance ids, for instance segmentation.

Circles, squares and triangles of random size, colour and rotation are dropped on a textured
background, later ones on top. Each kept shape has an instance id (1, 2, …) in a separate map, so
the same scene trains Mask R-CNN (boxes, labels and masks per instance) and a semantic network.
"""

from __future__ import annotations

import cv2
import numpy as np

from segstudio.core.classes import ClassSet

SHAPES = ("circle", "square", "triangle")
MIN_VISIBLE = 0.4    # a shape mostly hidden by later ones is dropped (no ambiguous instances)


def shapes_classes() -> ClassSet:
    return ClassSet(["background", *SHAPES],
                    [(0, 0, 0), (230, 60, 60), (60, 180, 75), (70, 110, 240)],
                    title="Shapes")


def _draw(shape: str, mask: np.ndarray, cx: float, cy: float, r: float, angle: float) -> None:
    if shape == "circle":
        cv2.circle(mask, (int(round(cx)), int(round(cy))), int(round(r)), 1, -1)
        return
    sides = 4 if shape == "square" else 3
    t = angle + np.arange(sides) * 2 * np.pi / sides
    pts = np.stack([cx + r * np.cos(t), cy + r * np.sin(t)], 1)
    cv2.fillConvexPoly(mask, np.round(pts).astype(np.int32), 1)


def make_shapes(rng: np.random.Generator, size: int = 128,
                max_shapes: int = 5) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One scene: ``(image H×W×3 uint8, labels H×W uint8, instances H×W uint8)``; label
    ``k`` is ``SHAPES[k-1]``, instance 0 is background and ids run 1..n without gaps."""
    base = rng.uniform(40, 200, 3).astype(np.float32)
    cells = max(2, size // 16)
    noise = cv2.resize(rng.standard_normal((cells, cells, 3)).astype(np.float32), (size, size),
                       interpolation=cv2.INTER_CUBIC)
    image = base[None, None, :] + 18 * noise
    owner = np.zeros((size, size), np.int32)        # which drawn shape a pixel shows (0 = none)
    kinds: list[int] = []
    areas: list[int] = []
    for _ in range(int(rng.integers(2, max_shapes + 1))):
        kind = int(rng.integers(len(SHAPES)))
        r = size * rng.uniform(0.08, 0.2)
        cx, cy = rng.uniform(r * 0.6, size - r * 0.6, 2)
        mask = np.zeros((size, size), np.uint8)
        _draw(SHAPES[kind], mask, cx, cy, r, rng.uniform(0, 2 * np.pi))
        if not mask.any():
            continue
        colour = rng.uniform(0, 255, 3)
        # Keep shapes visible against the background: push colours away from it.
        if np.abs(colour - base).max() < 60:
            colour = np.where(base > 127, colour * 0.3, 255 - (255 - colour) * 0.3)
        shading = 1 + 0.15 * noise[:, :, :1]
        image = np.where(mask[:, :, None] > 0, colour[None, None, :] * shading, image)
        kinds.append(kind + 1)
        areas.append(int(mask.sum()))
        owner[mask > 0] = len(kinds)

    labels = np.zeros((size, size), np.uint8)
    instances = np.zeros((size, size), np.uint8)
    visible = np.bincount(owner.ravel(), minlength=len(kinds) + 1)
    next_id = 1
    for i, kind in enumerate(kinds, start=1):
        here = owner == i
        if visible[i] < MIN_VISIBLE * areas[i - 1]:
            labels[here] = 255                        # a sliver: void rather than a guess
            continue
        labels[here] = kind
        instances[here] = next_id
        next_id += 1
    image += rng.normal(0, 4, image.shape).astype(np.float32)
    return np.clip(image, 0, 255).astype(np.uint8), labels, instances
