"""Clean-ups of one class in a label map: remove small islands, fill enclosed holes, keep the
largest region, smooth the outline (median, opening, closing), grow or shrink by a margin.

All work through OpenCV (connected components, distance transforms, morphology) and array
operations, so a 4K map takes milliseconds. They return a new map and leave the input alone,
so the caller can record the change as one undoable edit. Pixels a class gives up go to the
class around them: whole regions to the class that surrounds them most, outline pixels to the
nearest other class.
"""

from __future__ import annotations

import cv2
import numpy as np

VOID = 255

# Neighbour offsets (dy, dx) of each connectivity.
_OFFSETS = {
    4: ((-1, 0), (1, 0), (0, -1), (0, 1)),
    8: ((-1, 0), (1, 0), (0, -1), (0, 1), (-1, -1), (-1, 1), (1, -1), (1, 1)),
}


class MorphologyError(ValueError):
    """Arguments that do not fit a label map clean-up."""


def _check(labels: np.ndarray, class_index: int, connectivity: int) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim != 2 or labels.dtype != np.uint8:
        raise MorphologyError(f"label map must be an H×W uint8 array, got {labels.dtype} "
                              f"{labels.shape}")
    if not (isinstance(class_index, (int, np.integer)) and 0 <= class_index < VOID):
        raise MorphologyError(f"class index must be a class (0–254), got {class_index!r}")
    if connectivity not in _OFFSETS:
        raise MorphologyError(f"connectivity must be 4 or 8, got {connectivity!r}")
    return labels


def _components(mask: np.ndarray, connectivity: int) -> tuple[int, np.ndarray, np.ndarray]:
    count, ids, stats, _ = cv2.connectedComponentsWithStats(
        mask.view(np.uint8), connectivity=connectivity, ltype=cv2.CV_32S)
    return count, ids, stats


def _surrounding_class(labels: np.ndarray, ids: np.ndarray, inside: np.ndarray, count: int,
                       connectivity: int) -> np.ndarray:
    """For each island id, the most common class among the pixels touching it (−1 if none).

    A pixel beside an island votes once for it, however many of the island's pixels it touches.
    Ties go to the lower class index, so void (255) only wins when it clearly surrounds.
    """
    h, w = labels.shape
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT if connectivity == 8 else cv2.MORPH_CROSS,
                                       (3, 3))
    # Only the ring of pixels just outside the islands can vote.
    ring = cv2.dilate(inside.view(np.uint8), kernel).view(bool) & ~inside
    ys, xs = np.nonzero(ring)
    pixel = ys.astype(np.int64) * w + xs
    pixels, islands = [], []
    for dy, dx in _OFFSETS[connectivity]:
        ny, nx = ys + dy, xs + dx
        ok = (ny >= 0) & (ny < h) & (nx >= 0) & (nx < w)
        neighbour = np.zeros(ys.size, np.int64)
        ny, nx = ny[ok], nx[ok]
        neighbour[ok] = np.where(inside[ny, nx], ids[ny, nx], 0)
        touching = neighbour > 0
        pixels.append(pixel[touching])
        islands.append(neighbour[touching])
    pixels, islands = np.concatenate(pixels), np.concatenate(islands)
    # One vote per (pixel, island) pair.
    pair = np.unique(pixels * count + islands)
    pixels, islands = pair // count, pair % count
    votes, tally = np.unique(islands * 256 + labels.reshape(-1)[pixels], return_counts=True)
    island_of, class_of = votes // 256, votes % 256
    order = np.lexsort((class_of, -tally, island_of))
    island_of, class_of = island_of[order], class_of[order]
    first = np.ones(island_of.size, bool)
    first[1:] = island_of[1:] != island_of[:-1]
    winner = np.full(count, -1, np.int64)
    winner[island_of[first]] = class_of[first]
    return winner


def remove_islands(labels: np.ndarray, class_index: int, min_size: int, connectivity: int = 8,
                   fill_with: str | int = "surrounding") -> np.ndarray:
    """Replace every connected component of ``class_index`` smaller than ``min_size`` pixels.

    ``fill_with="surrounding"`` gives each island the majority class of the pixels around it
    (an island with no neighbours, i.e. the whole image, stays); an integer gives them all that
    class (255 = void).
    """
    labels = _check(labels, class_index, connectivity)
    if int(min_size) != min_size or min_size < 1:
        raise MorphologyError(f"min_size must be a whole number of pixels ≥ 1, got {min_size!r}")
    if isinstance(fill_with, str):
        if fill_with != "surrounding":
            raise MorphologyError(f"fill_with must be 'surrounding' or a class index, got "
                                  f"{fill_with!r}")
    elif not (isinstance(fill_with, (int, np.integer)) and 0 <= fill_with <= VOID):
        raise MorphologyError(f"fill_with must be 'surrounding' or a class index 0–255, got "
                              f"{fill_with!r}")
    count, ids, stats = _components(labels == class_index, connectivity)
    small = stats[:, cv2.CC_STAT_AREA] < min_size
    small[0] = False   # component 0 is everything that is not the class
    out = labels.copy()
    if not small.any():
        return out
    inside = small[ids]
    if fill_with != "surrounding":
        out[inside] = fill_with
        return out
    _fill_from_surroundings(out, labels, ids, inside, count, connectivity)
    return out


def _fill_from_surroundings(out: np.ndarray, labels: np.ndarray, ids: np.ndarray,
                            inside: np.ndarray, count: int, connectivity: int) -> None:
    """Give each component marked ``inside`` the majority class around it, in ``out``."""
    winner = _surrounding_class(labels, ids, inside, count, connectivity)
    ys, xs = np.nonzero(inside)
    replacement = winner[ids[ys, xs]]
    keep = replacement >= 0
    out[ys[keep], xs[keep]] = replacement[keep]


def fill_holes(labels: np.ndarray, class_index: int, max_size: int | None = None,
               connectivity: int = 8) -> np.ndarray:
    """Give ``class_index`` to every hole in it: a connected region of other classes (void
    included) that the class encloses, i.e. one that does not reach the image border.

    ``connectivity`` is the class's; holes use the other one (4 for 8), so a hole whose only way
    out is a diagonal gap between class pixels counts as enclosed. ``max_size`` limits the
    filled holes to that many pixels.
    """
    labels = _check(labels, class_index, connectivity)
    if max_size is not None and (int(max_size) != max_size or max_size < 1):
        raise MorphologyError(f"max_size must be a whole number of pixels ≥ 1, got {max_size!r}")
    count, ids, stats = _components(labels != class_index, 12 - connectivity)
    h, w = labels.shape
    x, y = stats[:, cv2.CC_STAT_LEFT], stats[:, cv2.CC_STAT_TOP]
    reaches_border = ((x == 0) | (y == 0) | (x + stats[:, cv2.CC_STAT_WIDTH] == w)
                      | (y + stats[:, cv2.CC_STAT_HEIGHT] == h))
    hole = ~reaches_border
    hole[0] = False   # component 0 is the class itself
    if max_size is not None:
        hole &= stats[:, cv2.CC_STAT_AREA] <= max_size
    out = labels.copy()
    out[hole[ids]] = class_index
    return out


def keep_largest_region(labels: np.ndarray, class_index: int, connectivity: int = 8
                        ) -> np.ndarray:
    """Keep only the largest connected region of ``class_index``; every other region of it
    takes the majority class around it (as :func:`remove_islands` does). Of regions of equal
    size the first in reading order stays."""
    labels = _check(labels, class_index, connectivity)
    count, ids, stats = _components(labels == class_index, connectivity)
    out = labels.copy()
    if count <= 2:                  # none or one region: nothing to remove
        return out
    largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    drop = np.ones(count, bool)
    drop[[0, largest]] = False
    _fill_from_surroundings(out, labels, ids, drop[ids], count, connectivity)
    return out


SMOOTHING_METHODS = ("median", "opening", "closing")


def smooth_class(labels: np.ndarray, class_index: int, method: str = "median",
                 size: int = 5) -> np.ndarray:
    """Smooth the outline of ``class_index`` with a ``size`` × ``size`` kernel (odd, ≥ 3).

    ``median``: a pixel belongs to the class when most of its neighbourhood does (rounds
    corners, removes specks and notches smaller than the kernel); ``opening``: removes parts
    narrower than the disc-shaped kernel; ``closing``: fills gaps and notches narrower than it.
    Pixels added take the class; pixels removed take the nearest other class.
    """
    labels = _check(labels, class_index, 8)
    if method not in SMOOTHING_METHODS:
        raise MorphologyError(f"smoothing must be one of {', '.join(SMOOTHING_METHODS)}, got "
                              f"{method!r}")
    if int(size) != size or size < 3 or size % 2 == 0:
        raise MorphologyError(f"kernel size must be an odd whole number of pixels ≥ 3, got "
                              f"{size!r}")
    size = int(size)
    mask = (labels == class_index).view(np.uint8)
    if method == "median":
        smoothed = cv2.medianBlur(mask * np.uint8(255), size) > 127
    else:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))
        op = cv2.MORPH_OPEN if method == "opening" else cv2.MORPH_CLOSE
        smoothed = cv2.morphologyEx(mask, op, kernel).view(bool)
    return _with_mask(labels, class_index, smoothed)


def margin(labels: np.ndarray, class_index: int, pixels: int) -> np.ndarray:
    """Grow ``class_index`` by ``pixels`` (or shrink it, for a negative number): every pixel
    whose centre lies within that Euclidean distance of the class joins it (or, shrinking,
    every class pixel that close to another class leaves it, for the nearest other class).
    The image border is not an edge of the class: shrinking works from other classes only."""
    labels = _check(labels, class_index, 8)
    if int(pixels) != pixels:
        raise MorphologyError(f"margin must be a whole number of pixels, got {pixels!r}")
    pixels = int(pixels)
    mask = labels == class_index
    if not mask.any():
        raise MorphologyError(f"class {class_index} has no pixels to grow or shrink")
    if pixels == 0:
        return labels.copy()
    if pixels > 0:
        distance = cv2.distanceTransform((~mask).view(np.uint8), cv2.DIST_L2,
                                         cv2.DIST_MASK_PRECISE)
        return _with_mask(labels, class_index, distance <= pixels + 1e-3)
    distance = cv2.distanceTransform(mask.view(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    return _with_mask(labels, class_index, distance > -pixels + 1e-3)


def _with_mask(labels: np.ndarray, class_index: int, new_mask: np.ndarray) -> np.ndarray:
    """``labels`` with ``class_index`` exactly on ``new_mask``: pixels added take the class,
    pixels removed the class of the nearest pixel of another class (they stay if there is
    none, i.e. the class covered the whole map)."""
    mask = labels == class_index
    out = labels.copy()
    out[new_mask & ~mask] = class_index
    removed = mask & ~new_mask
    if not removed.any():
        return out
    others = ~mask
    if not others.any():
        return out
    # Each pixel learns the raster index (from 1) of its nearest non-class pixel.
    _, nearest = cv2.distanceTransformWithLabels(mask.view(np.uint8), cv2.DIST_L2, 5,
                                                 labelType=cv2.DIST_LABEL_PIXEL)
    out[removed] = labels[others][nearest[removed] - 1]
    return out
