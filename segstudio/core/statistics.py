"""Workspace statistics: how much of each class there is, and in how many images."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable

import numpy as np


@dataclass
class ClassStatistics:
    pixels: np.ndarray        # per class index 0..255: labelled pixels
    images: np.ndarray        # per class index 0..255: images containing the class
    labelled_images: int

    def share(self, index: int) -> float:
        """Share of the labelled (non-void) pixels that belong to class ``index``."""
        total = self.pixels[:255].sum()
        return float(self.pixels[index] / total) if total else 0.0


def class_statistics(label_maps: Iterable[np.ndarray],
                     cancelled: Callable[[], bool] | None = None) -> ClassStatistics:
    pixels = np.zeros(256, np.int64)
    images = np.zeros(256, np.int64)
    n = 0
    for labels in label_maps:
        if cancelled is not None and cancelled():
            break
        counts = np.bincount(np.asarray(labels, np.uint8).ravel(), minlength=256)
        pixels += counts
        images += counts > 0
        n += 1
    return ClassStatistics(pixels, images, n)


@dataclass
class ObjectStatistics:
    """Objects (instances) per class and per item."""

    per_class: np.ndarray            # per class index 0..255: objects of the class
    per_item: dict[str, int]         # item id → objects

    @property
    def total(self) -> int:
        return int(self.per_class.sum())


def object_statistics(maps: Iterable[tuple[str, np.ndarray, np.ndarray | None]],
                      cancelled: Callable[[], bool] | None = None) -> ObjectStatistics:
    """Count objects from ``(item id, class map, object map or None)``; an object's class is
    the one under its pixels (see :func:`segstudio.core.objectmap.object_classes`)."""
    from segstudio.core.objectmap import object_classes

    per_class = np.zeros(256, np.int64)
    per_item: dict[str, int] = {}
    for ident, labels, ids in maps:
        if cancelled is not None and cancelled():
            break
        found = {} if ids is None else object_classes(ids, labels)
        for cls in found.values():
            per_class[cls] += 1
        per_item[ident] = len(found)
    return ObjectStatistics(per_class, per_item)
