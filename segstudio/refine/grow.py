"""Grow from seeds: a few painted strokes per class, and every pixel takes the class of the
seed it is best connected to along the image.

The growth is a seeded watershed (Meyer's flooding, through ``cv2.watershed``): regions grow
from their seeds in order of the intensity step ``|I(p) − I(q)|`` (the largest over the
channels) they must cross to reach a pixel, so two regions meet where the image changes most
between them. One deterministic pass with a bucket queue, no iterations to converge, cost
linear in the pixel count (about 0.3 s of CPU for 2048 × 2048, see bench/bench_grow.py). It
approximates the minimum spanning forest rooted at the seeds: OpenCV keeps a pixel's priority
from when it was first reached, so at a sharp corner a pixel or two reached across the edge
first can stay on the far side.

The image is smoothed first (a Gaussian of ``smoothing`` pixels), so that noise does not build
walls inside a region; edges wider than the noise survive it. The watershed lines OpenCV leaves
between regions are given to the neighbour across the smallest step, so every pixel has a class.
"""

from __future__ import annotations

import cv2
import numpy as np

NO_SEED = 255
DEFAULT_SMOOTHING = 1.5
# Peak bytes per pixel that growing allocates beyond its inputs (the smoothed, framed 3-channel
# copy, the int32 markers, the line assignment's int16 copy and masks, the result): 18 B/px
# measured on 3,000² grey and colour noise, the worst case for watershed lines, plus headroom.
BYTES_PER_PIXEL = 24

# The four neighbours (dy, dx) a watershed-line pixel may take its class from.
_NEIGHBOURS = ((-1, 0), (1, 0), (0, -1), (0, 1))


class GrowError(ValueError):
    """Seeds or an image that growing cannot work with."""


def memory_needed(height: int, width: int) -> int:
    """About the peak bytes :func:`grow_from_seeds` allocates for an image of this size, beyond
    the image and seeds it is given: what to check before growing."""
    return BYTES_PER_PIXEL * int(height) * int(width)


def seed_values(seeds: np.ndarray) -> np.ndarray:
    """Seeds read at any integer depth (a 16-bit PNG, say) as the H×W uint8 map growing takes,
    refusing every value that is neither a class (0–254) nor "no seed" (255) by name, instead
    of letting it wrap around modulo 256 (300 would become class 44)."""
    seeds = np.asarray(seeds)
    if seeds.dtype == np.uint8:
        return seeds
    if seeds.dtype.kind not in "iu":
        raise GrowError(f"seeds must hold whole numbers (class indices), got {seeds.dtype}")
    outside = (seeds < 0) | (seeds > NO_SEED)
    if outside.any():
        values = np.unique(seeds[outside])
        shown = ", ".join(str(int(v)) for v in values[:3]) + (", …" if values.size > 3 else "")
        raise GrowError(f"seed value{'s' if values.size > 1 else ''} {shown} "
                        f"{'are' if values.size > 1 else 'is'} neither a class (0–{NO_SEED - 1}) "
                        f"nor 'no seed' ({NO_SEED})")
    return seeds.astype(np.uint8)


def _check(image: np.ndarray, seeds: np.ndarray, smoothing: float) -> tuple[np.ndarray,
                                                                           np.ndarray]:
    image = np.asarray(image)
    seeds = np.asarray(seeds)
    if image.dtype != np.uint8:
        raise GrowError(f"the image to grow on must be 8-bit (as displayed), got {image.dtype}")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if not (image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 3)) or 0 in image.shape:
        raise GrowError(f"the image must be H×W grey or H×W×3 colour, got shape {image.shape}")
    if seeds.ndim != 2 or seeds.dtype != np.uint8:
        raise GrowError(f"seeds must be an H×W uint8 label map, got {seeds.dtype} {seeds.shape}")
    if seeds.shape != image.shape[:2]:
        raise GrowError(f"the seeds are {seeds.shape[1]}×{seeds.shape[0]} but the image is "
                        f"{image.shape[1]}×{image.shape[0]}")
    if not (np.isfinite(smoothing) and 0 <= smoothing <= 50):
        raise GrowError(f"smoothing must be 0–50 pixels, got {smoothing!r}")
    return np.ascontiguousarray(image), seeds


def seed_classes(seeds: np.ndarray) -> list[int]:
    """The classes that have at least one seed pixel, in order."""
    counts = np.bincount(np.asarray(seeds).reshape(-1), minlength=256)
    return [int(c) for c in np.flatnonzero(counts[:NO_SEED])]


def grow_from_seeds(image: np.ndarray, seeds: np.ndarray, *,
                    smoothing: float = DEFAULT_SMOOTHING) -> np.ndarray:
    """The H×W uint8 label map grown from ``seeds`` over ``image``.

    ``image``: H×W grey or H×W×3 RGB, 8-bit, as the user sees it (a deeper image through its
    display window). ``seeds``: H×W uint8, a class index (0–254) where the user painted a seed
    and 255 elsewhere (deeper seeds go through :func:`seed_values` first). Seed pixels keep their class; at least two classes must have seeds,
    since one class alone would simply take every pixel.
    """
    image, seeds = _check(image, seeds, float(smoothing))
    classes = seed_classes(seeds)
    if not classes:
        raise GrowError("there are no seeds: paint a few strokes of each class (every value "
                        f"but {NO_SEED} is a seed)")
    if len(classes) < 2:
        raise GrowError(f"only class {classes[0]} has seeds; paint seeds of at least one more "
                        "class (the background, say), or every pixel would take that class")
    feature = cv2.GaussianBlur(image, (0, 0), smoothing) if smoothing > 0 else image
    # OpenCV marks the outermost pixel frame as a watershed line; a replicated frame around
    # the image takes that role, so the image's own border pixels are grown like the rest.
    feature = cv2.copyMakeBorder(feature, 1, 1, 1, 1, cv2.BORDER_REPLICATE)
    if feature.ndim == 2:                     # cv2.watershed takes 3 channels only
        feature = cv2.cvtColor(feature, cv2.COLOR_GRAY2BGR)
    markers = np.zeros((seeds.shape[0] + 2, seeds.shape[1] + 2), np.int32)
    inner = markers[1:-1, 1:-1]
    seeded = seeds != NO_SEED
    inner[seeded] = seeds[seeded].astype(np.int32) + 1
    cv2.watershed(feature, markers)
    _assign_lines(markers, feature)
    return (inner - 1).astype(np.uint8)


def _assign_lines(markers: np.ndarray, feature: np.ndarray) -> None:
    """Give each watershed-line pixel (−1) inside the frame the region of the neighbour it
    differs least from; lines are a pixel wide, so one round reaches nearly all of them and a
    second the few where lines cross. A pixel the flooding never reached (0: OpenCV leaves one
    now and then where two regions meet in a corner on a flat image) is treated the same way."""
    h, w = markers.shape
    frame = np.zeros((h, w), bool)
    frame[1:-1, 1:-1] = True
    values = feature.astype(np.int16)
    while True:
        ys, xs = np.nonzero((markers <= 0) & frame)
        if ys.size == 0:
            return
        best_label = np.zeros(ys.size, np.int32)
        best_step = np.full(ys.size, np.iinfo(np.int32).max, np.int32)
        for dy, dx in _NEIGHBOURS:
            ny, nx = ys + dy, xs + dx
            label = markers[ny, nx]
            step = np.abs(values[ny, nx] - values[ys, xs]).max(axis=1).astype(np.int32)
            better = (label > 0) & frame[ny, nx] & (step < best_step)
            best_label[better], best_step[better] = label[better], step[better]
        # The grid is connected, so each round reaches at least one pixel.
        done = best_label > 0
        markers[ys[done], xs[done]] = best_label[done]
