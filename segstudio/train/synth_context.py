"""Scenes whose object class is decided by the surroundings alone (PSPNet, Zhao et al. 2017, §1).

Every object is drawn from one distribution of shapes and colours; it is labelled *boat* when it
lies in water and *car* when it lies on a road. Objects are large (a quarter of the image or so)
and flat-coloured, so a pixel deep inside one sees only object within a small receptive field:
only a network whose field reaches past the object's border to the water or asphalt around it can
name it. Water and road are themselves easy to tell apart locally (colour and texture).
"""

from __future__ import annotations

import cv2
import numpy as np

from segstudio.core.classes import ClassSet

BACKGROUND, WATER, ROAD, BOAT, CAR = 0, 1, 2, 3, 4
_OBJECT_RGB = (205, 60, 40)
_STRIPE_RGB = (245, 235, 220)


def context_classes() -> ClassSet:
    """background (grass), water, road, boat, car."""
    return ClassSet(
        ["background", "water", "road", "boat", "car"],
        [(0, 0, 0), (40, 110, 230), (128, 128, 128), (0, 220, 220), (230, 160, 0)],
        title="Context: boat vs car",
    )


def _texture(rng: np.random.Generator, size: int, base: tuple[int, int, int], amp: float,
             scale: float) -> np.ndarray:
    cells = max(2, int(size / scale))
    coarse = rng.standard_normal((cells, cells)).astype(np.float32)
    n = cv2.resize(coarse, (size, size), interpolation=cv2.INTER_CUBIC)[:, :, None]
    fine = rng.standard_normal((size, size, 1)).astype(np.float32) * 0.35
    return np.asarray(base, np.float32)[None, None, :] + amp * (n + fine)


def _regions(rng: np.random.Generator, size: int) -> np.ndarray:
    """Region map: water and road as two bands cut by a wavy boundary, in random order and
    orientation, with a strip of grass (background) between or beside them."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    angle = rng.uniform(0, np.pi)
    u = (xx - 0.5) * np.cos(angle) + (yy - 0.5) * np.sin(angle)
    v = -(xx - 0.5) * np.sin(angle) + (yy - 0.5) * np.cos(angle)
    u = u + 0.04 * np.sin(2 * np.pi * (v * rng.uniform(1, 2.5) + rng.uniform(0, 1)))
    layout = rng.integers(0, 4)
    regions = np.zeros((size, size), np.uint8)
    if layout == 0:     # only water, grass around it
        regions[np.abs(u) < rng.uniform(0.3, 0.45)] = WATER
    elif layout == 1:   # only road
        regions[np.abs(u) < rng.uniform(0.3, 0.45)] = ROAD
    else:               # both, separated by a grass strip
        gap = rng.uniform(0.04, 0.12)
        first, second = (WATER, ROAD) if layout == 2 else (ROAD, WATER)
        regions[u < -gap / 2] = first
        regions[u > gap / 2] = second
    return regions


def _object_mask(rng: np.random.Generator, size: int, centre: tuple[float, float],
                 length: float) -> np.ndarray:
    """One object: an elongated rounded hull at a random angle (the same family for both
    classes), returned as a uint8 mask."""
    mask = np.zeros((size, size), np.uint8)
    w = length * rng.uniform(0.5, 0.7)
    angle = rng.uniform(0, 180)
    box = cv2.boxPoints(((centre[0], centre[1]), (length, w), angle))
    cv2.fillConvexPoly(mask, np.round(box).astype(np.int32), 1)
    r = max(1, int(w * 0.3))
    mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN,
                            cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1)))
    return mask


def make_context(rng: np.random.Generator, size: int = 128) -> tuple[np.ndarray, np.ndarray]:
    """One scene: ``(image H×W×3 uint8, labels H×W uint8)``; every boat lies wholly in water
    and every car wholly on road, with a margin of that surface all round it."""
    regions = _regions(rng, size)
    image = _texture(rng, size, (70, 120, 50), 14, size / 10)          # grass
    water = _texture(rng, size, (40, 90, 160), 12, size / 16)
    water += 10 * np.sin(np.arange(size, dtype=np.float32) * rng.uniform(0.5, 0.9))[:, None,
                                                                                       None]
    road = _texture(rng, size, (95, 95, 100), 6, size / 20)
    image = np.where((regions == WATER)[:, :, None], water, image)
    image = np.where((regions == ROAD)[:, :, None], road, image)
    labels = regions.copy()

    margin = max(3, size // 20)
    taken = np.zeros((size, size), np.uint8)
    for _ in range(int(rng.integers(1, 3))):
        length = size * rng.uniform(0.3, 0.42)
        # Centres far enough inside one surface that the whole object (plus a margin) fits.
        for surface in rng.permutation([WATER, ROAD]):
            inside = ((regions == surface) & (taken == 0)).astype(np.uint8)
            if not inside.any():
                continue
            dist = cv2.distanceTransform(np.pad(inside, 1), cv2.DIST_L2, 5)[1:-1, 1:-1]
            ys, xs = np.nonzero(dist > length / 2 + margin)
            if len(ys) == 0:
                continue
            k = int(rng.integers(len(ys)))
            mask = _object_mask(rng, size, (float(xs[k]), float(ys[k])), length)
            cls = BOAT if surface == WATER else CAR
            labels[mask > 0] = cls
            stripe = cv2.erode(mask, np.ones((3, 3), np.uint8), iterations=max(1, size // 40))
            colour = np.where(stripe[:, :, None] > 0, _STRIPE_RGB, _OBJECT_RGB)
            shade = rng.uniform(0.9, 1.1)
            image = np.where(mask[:, :, None] > 0, colour * shade, image)
            taken |= cv2.dilate(mask, np.ones((2 * margin + 1, 2 * margin + 1), np.uint8))
            break
    image = cv2.GaussianBlur(image.astype(np.float32), (0, 0), 0.6)
    image += rng.normal(0, 3, image.shape).astype(np.float32)
    return np.clip(image, 0, 255).astype(np.uint8), labels
