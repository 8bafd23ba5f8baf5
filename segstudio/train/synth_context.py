"""Scenes whose object class is decided by evidence far from the object (PSPNet, Zhao et al.
2017, §1; DeepLab v3, Chen et al. 2017, §3.3).

Every object is drawn from one distribution of shapes and colours and lies on neutral ground
(grass, labelled background). Each scene has one surface, water or road, as a band along one side
of the image, always at least ``GAP`` of the image size away from every object: an object is a
*boat* when the scene's surface is water (a hull drawn up on the bank) and a *car* when it is road
(parked on the verge). Within a field that reaches less than that gap, boat and car pixels look
exactly alike (the object and grass around it); only a branch that sees the whole image, such
as PSPNet's global bin or DeepLab v3's image pooling, can name them. Water and road are themselves
easy to tell apart locally (colour and texture).

The geometry scales with the image, so the gap only exceeds what a fixed-field network can use
in large enough scenes: at 256 px it is 141 px, beyond what FCN-8s learns to use; at 128 px
(70 px) FCN-8s' 7 × 7 fc6 on its stride-32 pool5 map already covers the whole image.
"""

from __future__ import annotations

import cv2
import numpy as np

from segstudio.core.classes import ClassSet

BACKGROUND, WATER, ROAD, BOAT, CAR = 0, 1, 2, 3, 4
_OBJECT_RGB = (205, 60, 40)
_STRIPE_RGB = (245, 235, 220)
#: The least distance between an object and the water or road, as a share of the image size.
GAP = 0.55
_BAND = (0.16, 0.2)        # width of the water or road band, share of the image size
_LENGTH = (0.12, 0.16)     # object length, share of the image size


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


def _band(rng: np.random.Generator, size: int) -> np.ndarray:
    """Boolean map of the surface: a band along one side (turned by up to 20°), wavy edge."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    angle = rng.integers(0, 4) * np.pi / 2 + rng.uniform(-0.35, 0.35)
    u = (xx - 0.5) * np.cos(angle) + (yy - 0.5) * np.sin(angle)
    v = -(xx - 0.5) * np.sin(angle) + (yy - 0.5) * np.cos(angle)
    edge = float(u.max()) - rng.uniform(*_BAND)
    return u + 0.025 * np.sin(2 * np.pi * (v * rng.uniform(1, 2.5) + rng.uniform(0, 1))) > edge


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


def make_context(rng: np.random.Generator, size: int = 128,
                 surface: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """One scene: ``(image H×W×3 uint8, labels H×W uint8)``; one surface (water or road) along a
    side, one or two objects on grass at least ``GAP · size`` from it, all boats or all cars.

    ``surface`` (WATER or ROAD) forces the surface while every random draw stays as it was: the
    same generator state gives the same scene with the other surface (its twin), the band, the
    objects, the grass and the noise unchanged, the objects boats on water and cars on road."""
    drawn = WATER if rng.random() < 0.5 else ROAD
    if surface is not None and surface not in (WATER, ROAD):
        raise ValueError(f"surface must be WATER ({WATER}) or ROAD ({ROAD}), not {surface!r}")
    surface = drawn if surface is None else surface
    band = _band(rng, size)
    image = _texture(rng, size, (70, 120, 50), 14, size / 10)          # grass
    water = _texture(rng, size, (40, 90, 160), 12, size / 16)
    water += 10 * np.sin(np.arange(size, dtype=np.float32) * rng.uniform(0.5, 0.9))[:, None,
                                                                                       None]
    road = _texture(rng, size, (95, 95, 100), 6, size / 20)
    image = np.where(band[:, :, None], water if surface == WATER else road, image)
    labels = np.where(band, surface, BACKGROUND).astype(np.uint8)

    # Distance of every pixel to the surface, and to the image border.
    to_band = cv2.distanceTransform((~band).astype(np.uint8), cv2.DIST_L2, 5)
    to_edge = cv2.distanceTransform(np.pad(np.ones((size, size), np.uint8), 1), cv2.DIST_L2,
                                    5)[1:-1, 1:-1]
    gap, border = GAP * size, max(2, size // 32)
    cls = BOAT if surface == WATER else CAR
    taken = np.zeros((size, size), np.uint8)
    for _ in range(int(rng.integers(1, 3))):
        length = size * rng.uniform(*_LENGTH)
        # Centres from which the whole object keeps the gap to the surface and stays inside.
        ok = (to_band > gap + length / 2) & (to_edge > border + length / 2) & (taken == 0)
        ys, xs = np.nonzero(ok)
        if len(ys) == 0:
            continue
        k = int(rng.integers(len(ys)))
        mask = _object_mask(rng, size, (float(xs[k]), float(ys[k])), length)
        labels[mask > 0] = cls
        stripe = cv2.erode(mask, np.ones((3, 3), np.uint8), iterations=max(1, size // 48))
        colour = np.where(stripe[:, :, None] > 0, _STRIPE_RGB, _OBJECT_RGB)
        shade = rng.uniform(0.9, 1.1)
        image = np.where(mask[:, :, None] > 0, colour * shade, image)
        taken |= cv2.dilate(mask, np.ones((3, 3), np.uint8), iterations=int(length * 0.6))
    image = cv2.GaussianBlur(image.astype(np.float32), (0, 0), 0.6)
    image += rng.normal(0, 3, image.shape).astype(np.float32)
    return np.clip(image, 0, 255).astype(np.uint8), labels
