"""GrabCut (Rother, Kolmogorov & Blake, SIGGRAPH 2004) through OpenCV: cut an object out of a
box the user drags, or tighten the outline of a class already painted.

GrabCut models the colours of object and background with Gaussian mixtures and separates them
by a graph cut, re-estimating the mixtures each iteration (§3). Both functions work on a crop
around the object, so the cost follows the object's size, not the image's; the ring of the crop
outside the object is the background the model learns from, which keeps it local. A crop
larger than ``work_pixels`` is cut at a reduced scale; refine the edge afterwards with the CRF
if it must be exact to the pixel.
"""

from __future__ import annotations

import cv2
import numpy as np

VOID = 255
# The cut runs on at most this many pixels (a 256×256 crop): about half a second on one core.
WORK_PIXELS = 256 * 256
# A box's cut that keeps less than this share of the box has collapsed: on low-contrast grey
# images (radiographs) a loose box teaches the object's model mostly surroundings, and the
# graph cut gives everything to the background. It is tried again with probable foreground
# only in the box's central ellipse (the object a person boxes sits in its middle), shrinking.
COLLAPSED = 0.01
FOREGROUND_CORES = (1.0, 0.6, 0.4)
WHOLE_BOX = 0.97


class GrabCutError(ValueError):
    """Arguments that GrabCut cannot work with."""


def _check_image(image: np.ndarray, window: tuple[float, float] | None = None) -> np.ndarray:
    image = np.asarray(image)
    if image.dtype != np.uint8:
        image = display_grey8(image, window)
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] != 3 or 0 in image.shape:
        raise GrabCutError(f"GrabCut image must be H×W×3 RGB or H×W grey, got shape {image.shape}")
    return image


def display_grey8(image: np.ndarray, window: tuple[float, float] | None = None) -> np.ndarray:
    """A deeper grey image (16-bit, float after a DICOM rescale) as the 8 bits the user sees
    through ``window`` (centre, width); without one, through its full value range.

    GrabCut's colour models and its edge weights work on 8-bit values; cutting the raw 15 or 16
    bits would spread a few hundred visible grey levels over tens of thousands.
    """
    from segstudio.io.images import apply_window, window_from_range

    image = np.asarray(image)
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim != 2 or image.dtype.kind not in "uif" or 0 in image.shape:
        raise GrabCutError(f"GrabCut takes 8-bit (uint8) RGB, or grey of any depth, got "
                           f"{image.dtype} {image.shape}")
    if window is None:
        finite = image[np.isfinite(image)] if image.dtype.kind == "f" else image
        if finite.size == 0:
            raise GrabCutError("GrabCut image has no finite values")
        window = window_from_range(finite.min(), finite.max())
    try:
        return apply_window(image, *window)
    except ValueError as exc:
        raise GrabCutError(f"GrabCut display window: {exc}") from None


def _check_iterations(iterations: int) -> None:
    if int(iterations) != iterations or iterations < 1:
        raise GrabCutError(f"GrabCut iterations must be a whole number ≥ 1, got {iterations!r}")


def _cut(image: np.ndarray, seeds: np.ndarray, crop: tuple[int, int, int, int],
         iterations: int, work_pixels: int) -> np.ndarray:
    """Run GrabCut on ``crop`` (x0, y0, x1, y1) of ``image`` from a GC_* ``seeds`` map of the
    same crop; return the whole image's boolean foreground.

    Max-flow time grows faster than the pixel count, so a crop larger than ``work_pixels`` is
    cut at a reduced scale and its mask scaled back (smoothly, then thresholded); certain
    background stays background at full resolution.
    """
    x0, y0, x1, y1 = crop
    if not np.isin(seeds, (cv2.GC_BGD, cv2.GC_PR_BGD)).any():
        raise GrabCutError("GrabCut found no background to learn from: the region covers the "
                           "whole image")
    # OpenCV expects BGR; the colour models do not care about the channel order, but keep to it.
    patch = np.ascontiguousarray(image[y0:y1, x0:x1, ::-1])
    h, w = seeds.shape
    scale = min(1.0, (work_pixels / (h * w)) ** 0.5)
    labels = seeds.copy()
    if scale < 1.0:
        size = (max(2, round(w * scale)), max(2, round(h * scale)))
        patch = cv2.resize(patch, size, interpolation=cv2.INTER_AREA)
        labels = cv2.resize(labels, size, interpolation=cv2.INTER_NEAREST)
    background = np.zeros((1, 65), np.float64)
    foreground = np.zeros((1, 65), np.float64)
    cv2.grabCut(patch, labels, None, background, foreground, int(iterations),
                cv2.GC_INIT_WITH_MASK)
    mask = (labels == cv2.GC_FGD) | (labels == cv2.GC_PR_FGD)
    if scale < 1.0:
        mask = cv2.resize(mask.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR) > 0.5
        mask &= seeds != cv2.GC_BGD
    out = np.zeros(image.shape[:2], bool)
    out[y0:y1, x0:x1] = mask
    return out


def _check_work_pixels(work_pixels: int) -> None:
    if int(work_pixels) != work_pixels or work_pixels < 64:
        raise GrabCutError(f"GrabCut work_pixels must be a whole number ≥ 64, got {work_pixels!r}")


def _grow(x0: int, y0: int, x1: int, y1: int, margin: int, h: int, w: int):
    return max(0, x0 - margin), max(0, y0 - margin), min(w, x1 + margin), min(h, y1 + margin)


def grabcut_box(image_rgb8: np.ndarray, rect: tuple[int, int, int, int],
                iterations: int = 5, *, work_pixels: int = WORK_PIXELS,
                window: tuple[float, float] | None = None) -> np.ndarray:
    """The object inside the half-open box ``rect = (x0, y0, x1, y1)`` as an H×W bool mask.

    Pixels outside the box are background for certain, those inside probably foreground (the
    paper's initialisation, §3). The corners may be given in any order and are clipped to the
    image; the box must leave some of the image outside it. A grey image deeper than 8 bits is
    cut as seen through ``window`` (see :func:`display_grey8`).
    """
    image = _check_image(image_rgb8, window)
    _check_iterations(iterations)
    _check_work_pixels(work_pixels)
    h, w = image.shape[:2]
    try:
        xa, ya, xb, yb = (int(round(v)) for v in rect)
    except (TypeError, ValueError):
        raise GrabCutError(f"GrabCut box must be four numbers (x0, y0, x1, y1), got {rect!r}") \
            from None
    x0, x1 = sorted((xa, xb))
    y0, y1 = sorted((ya, yb))
    x0, y0, x1, y1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
    if x1 - x0 < 2 or y1 - y0 < 2:
        raise GrabCutError(f"GrabCut box {tuple(rect)} holds less than 2×2 pixels of the "
                           f"{w}×{h} image")
    if (x0, y0, x1, y1) == (0, 0, w, h):
        raise GrabCutError(f"GrabCut box {tuple(rect)} covers the whole {w}×{h} image; draw it "
                           "around the object so that some background is outside it")
    # Enough background around the box for its colour model, but local to the object.
    crop = _grow(x0, y0, x1, y1, max(16, max(x1 - x0, y1 - y0) // 2), h, w)
    box_pixels = (x1 - x0) * (y1 - y0)
    for core in FOREGROUND_CORES:
        mask = _cut(image, _box_seeds(crop, (x0, y0, x1, y1), core), crop, iterations,
                    work_pixels)
        if mask.sum() >= COLLAPSED * box_pixels:
            return mask
    raise GrabCutError(
        f"GrabCut found no object in the box {tuple(rect)}: inside and around it the pixels "
        "look alike (too little contrast for its grey-level models). Draw the box closer "
        "around the object, or use Grow from seeds or the brush.")


def _box_seeds(crop, box, core: float) -> np.ndarray:
    """The GC_* seeds of a box in ``crop``: outside the box background for certain; inside it
    probable foreground, or (``core`` < 1) probable foreground only in the ellipse of ``core``
    times the box's half-axes and probable background in the rest of the box."""
    cx0, cy0, cx1, cy1 = crop
    x0, y0, x1, y1 = box
    seeds = np.full((cy1 - cy0, cx1 - cx0), cv2.GC_BGD, np.uint8)
    inner = (slice(y0 - cy0, y1 - cy0), slice(x0 - cx0, x1 - cx0))
    if core >= 1.0:
        seeds[inner] = cv2.GC_PR_FGD
        return seeds
    seeds[inner] = cv2.GC_PR_BGD
    yy, xx = np.mgrid[y0:y1, x0:x1]
    ax, ay = (x1 - x0) / 2 * core, (y1 - y0) / 2 * core
    ellipse = ((xx + 0.5 - (x0 + x1) / 2) / ax) ** 2 + ((yy + 0.5 - (y0 + y1) / 2) / ay) ** 2 <= 1
    seeds[inner][ellipse] = cv2.GC_PR_FGD
    return seeds


def nearly_whole_box(mask: np.ndarray, rect) -> bool:
    """True when a box's cut kept nearly all of the box (it found no edge inside it): worth
    saying, since a box drawn loosely around the object should leave its corners out."""
    x0, x1 = sorted(int(round(v)) for v in (rect[0], rect[2]))
    y0, y1 = sorted(int(round(v)) for v in (rect[1], rect[3]))
    h, w = mask.shape
    x0, y0, x1, y1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
    area = max(1, (x1 - x0) * (y1 - y0))
    return bool(mask[y0:y1, x0:x1].sum() >= WHOLE_BOX * area)


def grabcut_refine(image_rgb8: np.ndarray, labels: np.ndarray, class_index: int,
                   iterations: int = 5, band: int = 12, *,
                   work_pixels: int = WORK_PIXELS,
                   window: tuple[float, float] | None = None) -> np.ndarray:
    """Tighten the region of ``class_index`` to the object under it; an H×W bool mask.

    The class's pixels are probable foreground, a ``band`` of pixels around them probable
    background, everything further away background for certain; so the region may shrink
    anywhere and grow by at most ``band`` pixels. A region that misses much of the object needs
    a band that reaches the object's edge: object pixels beyond the band would teach the
    background model the object's colours. A deeper grey image is cut through ``window``.
    """
    image = _check_image(image_rgb8, window)
    _check_iterations(iterations)
    _check_work_pixels(work_pixels)
    labels = np.asarray(labels)
    h, w = image.shape[:2]
    if labels.shape != (h, w) or labels.dtype != np.uint8:
        raise GrabCutError(f"GrabCut label map is {labels.dtype} {labels.shape}; expected uint8 "
                           f"{(h, w)} to match the image")
    if not (isinstance(class_index, (int, np.integer)) and 0 <= class_index < VOID):
        raise GrabCutError(f"class index must be a class (0–254), got {class_index!r}")
    if int(band) != band or band < 1:
        raise GrabCutError(f"GrabCut band must be a whole number of pixels ≥ 1, got {band!r}")
    region = labels == class_index
    if not region.any():
        raise GrabCutError(f"class {class_index} has no pixels in the label map to refine")
    ys, xs = np.nonzero(region)
    # The band, plus as much again of certain background for the colour model.
    crop = _grow(int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1,
                 2 * band, h, w)
    x0, y0, x1, y1 = crop
    inside = region[y0:y1, x0:x1].astype(np.uint8)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * band + 1, 2 * band + 1))
    near = cv2.dilate(inside, kernel).astype(bool)
    seeds = np.full(inside.shape, cv2.GC_BGD, np.uint8)
    seeds[near] = cv2.GC_PR_BGD
    seeds[inside.astype(bool)] = cv2.GC_PR_FGD
    return _cut(image, seeds, crop, iterations, work_pixels)
