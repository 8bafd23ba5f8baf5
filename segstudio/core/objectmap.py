"""ObjectMap: the objects of an item, an H×W id map kept beside (and consistent with) its classes.

Ids follow Pascal VOC's ``SegmentationObject``: 0 no object, 1..254 objects, 255 void. Every
object has one class. The rules that keep the two maps in step:

* painting a class with the ordinary tools over an object's pixels takes them out of the object
  when the new class differs from the object's (so painting background, or void, over an object
  shrinks it, and painting its own class changes nothing);
* the object tools (new object, grow, shrink, delete, merge, split, change class) write both maps
  in one undo step: a new or grown object's pixels get its class, pixels shrunk away or of a
  deleted object become background, a merged object takes the class of the one kept.

The id map lives in the label map's :class:`~segstudio.core.history.History` as the plane
``"objects"``, so undo and redo restore both maps together. No Qt, no torch.
"""

from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

from segstudio.core.geometry import Rect
from segstudio.core.labelmap import LabelMap

PLANE = "objects"
VOID_OBJECT = 255
MAX_OBJECTS = 254
BACKGROUND = 0


class ObjectMapError(ValueError):
    """An object edit that cannot be made (unknown id, too many objects, a cut that cuts
    nothing)."""


def object_classes(ids: np.ndarray, labels: np.ndarray) -> dict[int, int]:
    """The class of each object: the most common non-void class under its pixels."""
    ids, labels = np.asarray(ids), np.asarray(labels)
    inside = (ids > 0) & (ids < VOID_OBJECT) & (labels != 255)
    if not inside.any():
        return {}
    pairs = np.bincount(ids[inside].astype(np.int64) * 256 + labels[inside], minlength=65536)
    table = pairs.reshape(256, 256)
    return {int(k): int(table[k].argmax()) for k in np.flatnonzero(table.sum(axis=1))}


def consistent_ids(ids: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """``ids`` with every object pixel whose class is not its object's class (see
    :func:`object_classes`) taken out of the object, so that each object has one class; an
    object map written by another tool, or beside labels changed elsewhere, obeys the rule."""
    ids, labels = np.asarray(ids, np.uint8), np.asarray(labels)
    classes = object_classes(ids, labels)
    lut = np.full(256, -1, np.int16)
    for k, c in classes.items():
        lut[k] = c
    expected = lut[ids]
    inside = (ids > 0) & (ids < VOID_OBJECT)
    leave = inside & (labels.astype(np.int16) != expected)
    if not leave.any():
        return ids
    out = ids.copy()
    out[leave] = 0
    return out


def compact_ids(ids: np.ndarray) -> np.ndarray:
    """``ids`` renumbered 1..N without gaps, keeping their order (255 stays void)."""
    ids = np.asarray(ids, np.uint8)
    counts = np.bincount(ids.ravel(), minlength=256)
    present = [k for k in range(1, VOID_OBJECT) if counts[k]]
    lut = np.arange(256, dtype=np.uint8)
    lut[1:VOID_OBJECT] = 0
    for new, old in enumerate(present, start=1):
        lut[old] = new
    return lut[ids]


def objects_from_instances(instances: np.ndarray) -> np.ndarray:
    """A detector's instance-id map (any integer type) as an object map; ids past 254 are
    dropped, since a VOC object map cannot hold them."""
    inst = np.asarray(instances)
    return np.where((inst > 0) & (inst <= MAX_OBJECTS), inst, 0).astype(np.uint8)


class ObjectMap:
    """The object ids of one label map; create it with :meth:`of` or :meth:`attach`."""

    def __init__(self, labels: LabelMap, ids: np.ndarray | None = None) -> None:
        if ids is None:
            ids = np.zeros(labels.shape, np.uint8)
        ids = np.asarray(ids)
        if ids.shape != labels.shape:
            raise ObjectMapError(f"an object map of {ids.shape} does not fit labels of "
                                 f"{labels.shape}")
        self.labels = labels
        self._ids = np.ascontiguousarray(consistent_ids(ids, labels.array), dtype=np.uint8).copy()
        self._classes = object_classes(self._ids, labels.array)
        self._expected_revision: int | None = None
        self.prediction_revision: int | None = None     # the labels' revision when predicted
        labels.objects = self
        labels.history.planes[PLANE] = self._ids
        labels.write_hooks.append(self._reconcile)
        labels.add_listener(self._after_change)

    @classmethod
    def of(cls, labels: LabelMap) -> "ObjectMap":
        """The label map's object map, created (empty) when it has none yet."""
        return labels.objects if labels.objects is not None else cls(labels)

    @classmethod
    def attach(cls, labels: LabelMap, ids: np.ndarray | None) -> "ObjectMap | None":
        """Attach saved ids (None: nothing, the item has no objects)."""
        return None if ids is None else cls(labels, ids)

    # -- reading -----------------------------------------------------------------------------
    @property
    def array(self) -> np.ndarray:
        view = self._ids.view()
        view.setflags(write=False)
        return view

    def at(self, x: int, y: int) -> int:
        h, w = self._ids.shape
        return int(self._ids[y, x]) if 0 <= y < h and 0 <= x < w else 0

    def classes(self) -> dict[int, int]:
        """Class of each object present, by id."""
        return dict(self._classes)

    def class_of(self, k: int) -> int:
        if k not in self._classes:
            raise ObjectMapError(f"there is no object {k}")
        return self._classes[k]

    def counts(self) -> dict[int, int]:
        """Pixel count of each object, by id (ascending)."""
        counts = np.bincount(self._ids.ravel(), minlength=256)
        return {k: int(counts[k]) for k in range(1, VOID_OBJECT) if counts[k]}

    def has_objects(self) -> bool:
        return bool(self._classes)

    @property
    def as_predicted(self) -> bool:
        """Nothing has changed since the objects came from a prediction."""
        return self.prediction_revision == self.labels.revision

    def next_id(self) -> int:
        """The id a new object gets: one past the largest (a gap once 254 is used)."""
        return self._free_id(set())

    def bounds(self, k: int) -> Rect:
        ys, xs = np.nonzero(self._ids == k)
        if ys.size == 0:
            return Rect.empty()
        return Rect(int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)

    # -- consistency -------------------------------------------------------------------------
    def _reconcile(self, rect: Rect) -> None:
        """After a class write in ``rect``: object pixels whose class is no longer their
        object's leave it. Runs inside the write's undo step."""
        self._expected_revision = self.labels.revision + 1
        if not self._classes:
            return
        lut = np.full(256, -1, np.int16)
        for k, c in self._classes.items():
            lut[k] = c
        ids, labels = self._ids[rect.slices], self.labels.array[rect.slices]
        expected = lut[ids]
        leave = (expected >= 0) & (labels.astype(np.int16) != expected)
        if leave.any():
            self._write(leave, rect, 0)

    def _after_change(self, _rect: Rect) -> None:
        if self.labels.revision != self._expected_revision:    # undo, redo: read them anew
            self._classes = object_classes(self._ids, self.labels.array)
        self._expected_revision = None

    def _write(self, mask: np.ndarray, rect: Rect, value: int) -> None:
        """Set ``value`` where ``mask`` (over ``rect``) is true, recorded for undo; an object
        that loses its last pixel is forgotten. Costs the rectangle, not the map, unless an
        object has left the rectangle entirely (then one pass over the map to see if it is
        gone)."""
        if rect.is_empty():
            return
        region = self._ids[rect.slices]
        touched = np.bincount(region[mask], minlength=256)
        self.labels.history.before_write(self._ids, rect, PLANE)
        region[mask] = value
        for k in np.flatnonzero(touched[1:VOID_OBJECT]) + 1:
            if k != value and int(k) in self._classes and not (region == k).any() \
                    and not (self._ids == k).any():
                del self._classes[int(k)]

    def _done(self, rect: Rect) -> Rect:
        self._expected_revision = self.labels.revision + 1
        self.labels.mark_changed(rect)
        return rect

    # -- edits, each one undo step -----------------------------------------------------------
    def paint_new(self, mask: np.ndarray, rect: Rect, cls: int) -> int:
        """A new object of class ``cls`` where ``mask`` (covering ``rect``) is true; its id."""
        rect, mask = _clip(mask, rect, self._ids.shape)
        if not mask.any():
            raise ObjectMapError("the new object covers no pixel of the image")
        _object_class(cls)
        k = self.next_id()
        with self.labels.step("new object"):
            self._classes[k] = int(cls)
            self.labels.paint_mask(mask, int(cls), rect, name="new object")
            self._write(mask, rect, k)
        self._done(rect)
        return k

    def grow(self, k: int, mask: np.ndarray, rect: Rect) -> Rect:
        """Add the pixels of ``mask`` to object ``k`` (they take its class)."""
        cls = self.class_of(k)
        rect, mask = _clip(mask, rect, self._ids.shape)
        with self.labels.step("grow object"):
            self.labels.paint_mask(mask, cls, rect, name="grow object")
            self._write(mask, rect, k)
        return self._done(rect)

    def shrink(self, k: int, mask: np.ndarray, rect: Rect) -> Rect:
        """Take the pixels of ``mask`` out of object ``k``; they become background."""
        self.class_of(k)
        rect, mask = _clip(mask, rect, self._ids.shape)
        mine = mask & (self._ids[rect.slices] == k)
        with self.labels.step("shrink object"):
            self._write(mine, rect, 0)
            self.labels.paint_mask(mine, BACKGROUND, rect, name="shrink object")
        return self._done(rect)

    def delete(self, k: int) -> Rect:
        """Remove object ``k``: its pixels become background and belong to no object."""
        self.class_of(k)
        rect = self.bounds(k)
        mine = self._ids[rect.slices] == k
        with self.labels.step("delete object"):
            self._write(mine, rect, 0)
            self.labels.paint_mask(mine, BACKGROUND, rect, name="delete object")
            self._classes.pop(k, None)
        return self._done(rect)

    def set_class(self, k: int, cls: int) -> Rect:
        """Give object ``k`` the class ``cls`` (all its pixels)."""
        self.class_of(k)
        _object_class(cls)
        rect = self.bounds(k)
        mine = self._ids[rect.slices] == k
        with self.labels.step("object class"):
            self._classes[k] = int(cls)
            self.labels.paint_mask(mine, int(cls), rect, name="object class")
        return self._done(rect)

    def merge(self, keep: int, other: int) -> Rect:
        """Object ``other`` joins ``keep`` and takes its class."""
        cls = self.class_of(keep)
        self.class_of(other)
        if keep == other:
            raise ObjectMapError("pick two different objects to merge")
        rect = self.bounds(keep).union(self.bounds(other))
        theirs = self._ids[rect.slices] == other
        with self.labels.step("merge objects"):
            self._write(theirs, rect, keep)
            self._classes.pop(other, None)
            self.labels.paint_mask(theirs, cls, rect, name="merge objects")
        return self._done(rect)

    def split(self, k: int, line: Sequence[tuple[float, float]], width: int = 1) -> list[int]:
        """Cut object ``k`` along the polyline ``line`` (image coordinates). The largest piece
        keeps the id, the others get new ids of the same class; pixels under the line join a
        neighbouring piece. Returns the ids of all pieces."""
        cls = self.class_of(k)
        rect = self.bounds(k)
        mine = self._ids[rect.slices] == k
        cut = np.zeros(mine.shape, np.uint8)
        pts = (np.floor(np.asarray(line, np.float64)) - [rect.x0, rect.y0]).astype(np.int32)
        if len(pts) < 2:
            raise ObjectMapError("draw a line of at least two points to split an object")
        cv2.polylines(cut, [pts], False, 1, thickness=max(1, int(width)), lineType=cv2.LINE_8)
        kept = mine & (cut == 0)
        n, pieces = cv2.connectedComponents(kept.astype(np.uint8), connectivity=4)
        if n <= 2:
            raise ObjectMapError(f"the line does not cut object {k} in two")
        sizes = np.bincount(pieces[kept], minlength=n)
        order = [int(i) for i in np.argsort(-sizes[1:], kind="stable") + 1]
        new_ids = {order[0]: k}
        for piece in order[1:]:
            new_ids[piece] = self._free_id(set(new_ids.values()))
        relabel = np.zeros(n, np.int32)
        for piece, nid in new_ids.items():
            relabel[piece] = nid
        result = relabel[pieces]
        for _ in range(max(1, int(width))):          # the line's pixels join a neighbour
            grown = cv2.dilate(result.astype(np.uint8), np.ones((3, 3), np.uint8))
            fill = mine & (result == 0) & (grown > 0)
            result[fill] = grown[fill]
        result[mine & (result == 0)] = k
        with self.labels.step("split object"):
            self._write(mine, rect, 0)
            self._ids[rect.slices][mine] = result[mine]
            for nid in new_ids.values():
                self._classes[nid] = cls
        self._done(rect)
        return sorted(new_ids.values())

    def _free_id(self, taken: set[int]) -> int:
        """The next id after every used and ``taken`` one, or the first gap past 254."""
        used = set(self.counts()) | taken
        if max(used, default=0) < MAX_OBJECTS:
            return max(used, default=0) + 1
        free = [i for i in range(1, MAX_OBJECTS + 1) if i not in used]
        if not free:
            raise ObjectMapError(f"an item holds at most {MAX_OBJECTS} objects (the VOC "
                                 "object map has one byte per pixel)")
        return free[0]

    def replace(self, ids: np.ndarray, *, name: str = "objects") -> Rect:
        """Replace the whole id map (a prediction, an import); classes are read from the label
        map, so replace the labels first (in the same step, for one undo)."""
        ids = np.asarray(ids)
        if ids.shape != self._ids.shape:
            raise ObjectMapError(f"an object map of {ids.shape} does not fit {self._ids.shape}")
        full = Rect(0, 0, self._ids.shape[1], self._ids.shape[0])
        with self.labels.step(name):
            self.labels.history.before_write(self._ids, full, PLANE)
            self._ids[...] = ids.astype(np.uint8)
            self._classes = object_classes(self._ids, self.labels.array)
        return self._done(full)


def _object_class(cls: int) -> None:
    if int(cls) in (BACKGROUND, VOID_OBJECT):
        raise ObjectMapError("an object cannot be background or void; pick a class for it (or "
                             "delete the object)")


def _clip(mask: np.ndarray, rect: Rect, shape: tuple[int, int]) -> tuple[Rect, np.ndarray]:
    mask = np.asarray(mask, bool)
    if mask.shape != (rect.height, rect.width):
        raise ObjectMapError(f"mask of shape {mask.shape} does not cover {rect}")
    clipped = rect.clip(*shape)
    if clipped.is_empty():
        return clipped, np.zeros((0, 0), bool)
    return clipped, mask[clipped.y0 - rect.y0:clipped.y1 - rect.y0,
                         clipped.x0 - rect.x0:clipped.x1 - rect.x0]


def take_prediction(labels: LabelMap, instances: np.ndarray | None) -> None:
    """Make a prediction's objects the label map's (call it inside the step that replaces the
    labels, so both are one undo step); a prediction without instances clears them."""
    if instances is None:
        if labels.objects is not None and labels.objects.has_objects():
            labels.objects.replace(np.zeros(labels.shape, np.uint8), name="prediction")
        return
    objects = ObjectMap.of(labels)
    objects.replace(objects_from_instances(instances), name="prediction")
    objects.prediction_revision = labels.revision
