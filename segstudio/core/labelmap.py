"""LabelMap: the H×W class-index image a person corrects, with undo and dirty rectangles.

Every edit (brush dab or stroke segment, flood fill, polygon, pasted prediction) works on the
bounding rectangle of what it can touch, records the tiles it changes in the :class:`History`,
tells listeners the rectangle, and returns it, so the screen repaints only that part.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Callable, Iterator, Sequence

import cv2
import numpy as np

from segstudio.core.geometry import Rect
from segstudio.core.history import History

VOID = 255


class LabelMapError(ValueError):
    """An edit or an array that does not fit the label map."""


@dataclass(frozen=True)
class PaintGuard:
    """Limits every painting tool honours.

    ``only_over``: paint only pixels whose current class is in this set ("preserve others").
    ``intensity`` with ``low``/``high``: paint only where the image intensity (an H×W array the
    size of the map) lies inside ``[low, high]`` — threshold painting, as radiology tools offer.
    """

    only_over: frozenset[int] | None = None
    intensity: np.ndarray | None = None
    low: float = float("-inf")
    high: float = float("inf")

    def allowed(self, labels: np.ndarray, rect: Rect) -> np.ndarray | None:
        """Boolean mask over ``rect`` of pixels the guard lets an edit change (None: all)."""
        mask = None
        if self.only_over is not None:
            mask = np.isin(labels[rect.slices], list(self.only_over))
        if self.intensity is not None:
            region = self.intensity[rect.slices]
            if region.ndim == 3:
                region = region.mean(axis=2)
            inside = (region >= self.low) & (region <= self.high)
            mask = inside if mask is None else mask & inside
        return mask


NO_GUARD = PaintGuard()


def _snap(v: float, diameter: float) -> float:
    if round(diameter) % 2 == 1:
        return float(np.floor(v)) + 0.5
    return float(np.round(v))


def segment_mask(x0: float, y0: float, x1: float, y1: float, diameter: float,
                 shape: tuple[int, int]) -> tuple[np.ndarray, Rect]:
    """The pixels a brush of ``diameter`` covers along a segment (see
    :meth:`LabelMap.paint_segment`), as a mask over the returned rectangle of a map of
    ``shape``; an empty rectangle when the segment lies outside."""
    diameter = max(float(diameter), 1.0)
    r = diameter / 2.0
    x0, y0, x1, y1 = (_snap(v, diameter) for v in (x0, y0, x1, y1))
    box = Rect(int(np.floor(min(x0, x1) - r)), int(np.floor(min(y0, y1) - r)),
               int(np.ceil(max(x0, x1) + r)) + 1, int(np.ceil(max(y0, y1) + r)) + 1)
    box = box.clip(*shape)
    if box.is_empty():
        return np.zeros((0, 0), bool), Rect.empty()
    cy = np.arange(box.y0, box.y1, dtype=np.float32)[:, None] + 0.5
    cx = np.arange(box.x0, box.x1, dtype=np.float32)[None, :] + 0.5
    dx, dy = x1 - x0, y1 - y0
    length2 = dx * dx + dy * dy
    if length2 == 0:
        d2 = (cx - x0) ** 2 + (cy - y0) ** 2
    else:
        t = np.clip(((cx - x0) * dx + (cy - y0) * dy) / length2, 0.0, 1.0)
        d2 = (cx - (x0 + t * dx)) ** 2 + (cy - (y0 + t * dy)) ** 2
    return d2 <= r * r + 1e-6, box


def polygon_mask(points: Sequence[tuple[float, float]]) -> tuple[np.ndarray, Rect]:
    """The pixels of a closed polygon with its outline (see :meth:`LabelMap.fill_polygon`), as
    a mask over its bounding rectangle (not clipped to any map)."""
    if len(points) < 3:
        raise LabelMapError(f"a polygon needs at least 3 points; got {len(points)}")
    pts = np.floor(np.asarray(points, dtype=np.float64)).astype(np.int64)
    box = Rect(int(pts[:, 0].min()), int(pts[:, 1].min()),
               int(pts[:, 0].max()) + 1, int(pts[:, 1].max()) + 1)
    mask = np.zeros((box.height, box.width), np.uint8)
    cv2.fillPoly(mask, [(pts - [box.x0, box.y0]).astype(np.int32)], 1, lineType=cv2.LINE_8)
    return mask.astype(bool), box


class LabelMap:
    """An H×W uint8 label map (255 = void) with undo history and change listeners."""

    def __init__(self, labels: np.ndarray, *, history: History | None = None) -> None:
        labels = np.asarray(labels)
        if labels.ndim != 2:
            raise LabelMapError(f"a label map is 2-D; got shape {labels.shape}")
        if labels.dtype != np.uint8:
            if labels.size and (labels.min() < 0 or labels.max() > 255):
                raise LabelMapError("label values must lie in 0..255")
            labels = labels.astype(np.uint8)
        self._labels = np.ascontiguousarray(labels).copy()
        self.history = history if history is not None else History()
        self._listeners: list[Callable[[Rect], None]] = []
        self._depth = 0
        self.revision = 0
        # Called with each written rectangle inside its undo step (the object map keeps itself
        # consistent there); ``objects`` is the item's ObjectMap once it has one.
        self.write_hooks: list[Callable[[Rect], None]] = []
        self.objects = None

    @classmethod
    def blank(cls, height: int, width: int, value: int = 0) -> "LabelMap":
        return cls(np.full((height, width), value, dtype=np.uint8))

    # -- reading -----------------------------------------------------------------------------
    @property
    def array(self) -> np.ndarray:
        """The labels. Read-only view: change them through the edit methods."""
        view = self._labels.view()
        view.setflags(write=False)
        return view

    @property
    def shape(self) -> tuple[int, int]:
        return self._labels.shape  # type: ignore[return-value]

    @property
    def height(self) -> int:
        return self._labels.shape[0]

    @property
    def width(self) -> int:
        return self._labels.shape[1]

    def at(self, x: int, y: int) -> int | None:
        if 0 <= y < self.height and 0 <= x < self.width:
            return int(self._labels[y, x])
        return None

    def class_counts(self) -> np.ndarray:
        """Pixel count of every value 0..255."""
        # OpenCV's float32 histogram is exact below 2^24 pixels, so large maps are counted in
        # bands of rows (np.bincount would make an 8-byte copy of every pixel first).
        counts = np.zeros(256, np.int64)
        rows = max(1, (2**24 - 1) // max(1, self.width))
        for y in range(0, self.height, rows):
            band = self._labels[y:y + rows]
            if band.size >= 2**24:          # one row wider than 2^24 pixels
                counts += np.bincount(band.ravel(), minlength=256)
                continue
            counts += cv2.calcHist([band], [0], None, [256], [0, 256]).ravel().astype(np.int64)
        return counts

    # -- listening ---------------------------------------------------------------------------
    def add_listener(self, callback: Callable[[Rect], None]) -> None:
        self._listeners.append(callback)

    def remove_listener(self, callback: Callable[[Rect], None]) -> None:
        with contextlib.suppress(ValueError):
            self._listeners.remove(callback)

    def mark_changed(self, rect: Rect) -> None:
        """Tell listeners that ``rect`` changed through a plane of the history (the objects)."""
        self._changed(rect)

    def _changed(self, rect: Rect) -> None:
        if rect.is_empty():
            return
        self.revision += 1
        for cb in list(self._listeners):
            cb(rect)

    # -- steps -------------------------------------------------------------------------------
    @contextlib.contextmanager
    def step(self, name: str) -> Iterator[None]:
        """Group edits (a whole brush stroke, say) into one undo step."""
        if self._depth == 0:
            self.history.open_step(name)
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1
            if self._depth == 0:
                self.history.commit(self._labels)

    def begin_step(self, name: str) -> None:
        if self._depth == 0:
            self.history.open_step(name)
        self._depth += 1

    def end_step(self) -> None:
        if self._depth == 0:
            return
        self._depth -= 1
        if self._depth == 0:
            self.history.commit(self._labels)

    def undo(self) -> Rect | None:
        rect = self.history.undo(self._labels)
        if rect is not None:
            self._changed(rect)
        return rect

    def redo(self) -> Rect | None:
        rect = self.history.redo(self._labels)
        if rect is not None:
            self._changed(rect)
        return rect

    # -- the one write path ------------------------------------------------------------------
    def paint_mask(self, mask: np.ndarray, value: int, rect: Rect | None = None,
                   guard: PaintGuard = NO_GUARD, *, name: str = "paint") -> Rect:
        """Set ``value`` where ``mask`` is true; ``mask`` covers ``rect`` (default: the map).

        Every other edit ends here, so guards, history and listeners apply to all of them alike.
        """
        if not 0 <= int(value) <= 255:
            raise LabelMapError(f"label value {value} is outside 0..255")
        full = Rect(0, 0, self.width, self.height)
        rect = full if rect is None else rect
        if mask.shape != (rect.height, rect.width):
            raise LabelMapError(f"mask of shape {mask.shape} does not cover {rect}")
        clipped = rect.clip(self.height, self.width)
        if clipped.is_empty():
            return Rect.empty()
        mask = mask[clipped.y0 - rect.y0:clipped.y1 - rect.y0, clipped.x0 - rect.x0:clipped.x1 - rect.x0]
        allowed = guard.allowed(self._labels, clipped)
        if allowed is not None:
            mask = mask & allowed
        region = self._labels[clipped.slices]
        mask = mask & (region != value)
        rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
        if rows.size == 0:
            return Rect.empty()
        dirty = Rect(clipped.x0 + int(cols[0]), clipped.y0 + int(rows[0]),
                     clipped.x0 + int(cols[-1]) + 1, clipped.y0 + int(rows[-1]) + 1)
        with self.step(name):
            self.history.before_write(self._labels, dirty)
            region[mask] = value
            for hook in list(self.write_hooks):
                hook(dirty)
        self._changed(dirty)
        return dirty

    # -- edits -------------------------------------------------------------------------------
    def paint_disk(self, x: float, y: float, diameter: float, value: int,
                   guard: PaintGuard = NO_GUARD) -> Rect:
        """A round dab: pixels whose centres lie within ``diameter / 2`` of (x, y).

        Coordinates are continuous image coordinates; pixel (col, row) has its centre at
        (col + 0.5, row + 0.5), so a 1-pixel brush paints exactly the pixel under the point.
        """
        return self.paint_segment(x, y, x, y, diameter, value, guard)

    def paint_segment(self, x0: float, y0: float, x1: float, y1: float, diameter: float,
                      value: int, guard: PaintGuard = NO_GUARD, *, name: str = "brush") -> Rect:
        """A stroke segment: every pixel centre within ``diameter / 2`` of the segment.

        Painting segments between successive mouse positions keeps strokes continuous however
        fast the mouse moves. Ends snap to the pixel grid as paint programs do: an odd diameter
        centres on a pixel, an even one on a pixel corner, so every dab is symmetric.
        """
        mask, box = segment_mask(x0, y0, x1, y1, diameter, self.shape)
        if box.is_empty():
            return Rect.empty()
        return self.paint_mask(mask, value, box, guard, name=name)

    def fill(self, x: int, y: int, value: int, *, connectivity: int = 4,
             guard: PaintGuard = NO_GUARD) -> Rect:
        """Flood fill the connected region of the class under (x, y); it stops at other classes."""
        if connectivity not in (4, 8):
            raise LabelMapError("connectivity must be 4 or 8")
        if self.at(x, y) is None:
            return Rect.empty()
        mask = np.zeros((self.height + 2, self.width + 2), np.uint8)
        flags = connectivity | cv2.FLOODFILL_MASK_ONLY | (1 << 8)
        _, _, _, (bx, by, bw, bh) = cv2.floodFill(self._labels, mask, (int(x), int(y)),
                                                   0, 0, 0, flags)
        box = Rect(bx, by, bx + bw, by + bh)
        region = mask[1 + box.y0:1 + box.y1, 1 + box.x0:1 + box.x1].astype(bool)
        return self.paint_mask(region, value, box, guard, name="fill")

    def fill_polygon(self, points: Sequence[tuple[float, float]], value: int,
                     guard: PaintGuard = NO_GUARD) -> Rect:
        """Fill a closed polygon given in image coordinates.

        Each vertex stands for the pixel it lies in; the pixels on the outline are filled too,
        as in labelme, so a polygon clicked around an object's edge pixels keeps them.
        """
        mask, box = polygon_mask(points)
        if box.clip(self.height, self.width).is_empty():
            return Rect.empty()
        return self.paint_mask(mask, value, box, guard, name="polygon")

    def replace(self, labels: np.ndarray, *, name: str = "replace") -> Rect:
        """Replace the whole map (a pasted prediction, a smart tool's result): one undo step."""
        labels = np.asarray(labels)
        if labels.shape != self.shape:
            raise LabelMapError(f"labels of shape {labels.shape} do not fit a map of {self.shape}")
        diff = labels != self._labels
        rows, cols = np.flatnonzero(diff.any(axis=1)), np.flatnonzero(diff.any(axis=0))
        if rows.size == 0:
            return Rect.empty()
        dirty = Rect(int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1)
        with self.step(name):
            self.history.before_write(self._labels, dirty)
            self._labels[dirty.slices] = labels[dirty.slices]
            for hook in list(self.write_hooks):
                hook(dirty)
        self._changed(dirty)
        return dirty
