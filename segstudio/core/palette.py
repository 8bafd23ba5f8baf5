"""The Pascal VOC colour map.

VOC gives class ``i`` the colour whose bits interleave the bits of ``i`` from the top bit down
(the ``bitget`` rule of the VOC devkit's ``labelcolormap.m``). Index 255 ("void", the ignore
label) is drawn (224, 224, 192).
"""

from __future__ import annotations

import numpy as np

VOID_INDEX = 255


def voc_colormap(n: int = 256) -> np.ndarray:
    """Return an ``n × 3`` uint8 array: row ``i`` is the VOC colour of class ``i``."""
    cmap = np.zeros((n, 3), dtype=np.uint8)
    for i in range(n):
        r = g = b = 0
        c = i
        for shift in range(7, -1, -1):
            r |= ((c >> 0) & 1) << shift
            g |= ((c >> 1) & 1) << shift
            b |= ((c >> 2) & 1) << shift
            c >>= 3
        cmap[i] = (r, g, b)
    return cmap


VOC_COLORMAP = voc_colormap()
VOC_COLORMAP.setflags(write=False)
VOID_COLOR = tuple(int(v) for v in VOC_COLORMAP[VOID_INDEX])
