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
