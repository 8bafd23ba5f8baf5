"""Small pictures for the lesson figures: label maps in class colours, signed heat maps,
kernels enlarged pixel for pixel."""

from __future__ import annotations

import numpy as np

from segstudio.ui.explain.colormap import colorize

# Which of the 2×2 cells won the max-pool: ↖ ↗ ↙ ↘.
POSITION_COLOURS = np.array([(230, 159, 0), (86, 180, 233), (0, 158, 115), (204, 121, 167)],
                            np.uint8)
POSITION_NAMES = ("top left", "top right", "bottom left", "bottom right")


def label_rgb(labels: np.ndarray, colour_table: np.ndarray) -> np.ndarray:
    """H×W labels as RGB through a 256 × 3 class colour table."""
    return colour_table[np.asarray(labels).astype(np.intp).clip(0, 255)]


def enlarge(rgb: np.ndarray, side: int) -> np.ndarray:
    """``rgb`` repeated pixel for pixel so that its longer side is about ``side`` pixels."""
    factor = max(1, side // max(rgb.shape[:2]))
    return np.repeat(np.repeat(rgb, factor, axis=0), factor, axis=1)


def heat(values: np.ndarray, vmin: float | None = None, vmax: float | None = None,
         name: str = "viridis") -> np.ndarray:
    """A heat map of ``values`` between ``vmin`` and ``vmax`` (default: their range)."""
    v = np.asarray(values, np.float64)
    lo = float(v.min()) if vmin is None else vmin
    hi = float(v.max()) if vmax is None else vmax
    return colorize(v, lo, hi, name)


def kernel_rgb(kernel: np.ndarray, vmax: float, side: int = 160) -> np.ndarray:
    """A 2-D kernel drawn 0..``vmax`` in inferno, enlarged pixel for pixel."""
    return enlarge(heat(kernel, 0.0, vmax, "inferno"), side)


def positions_rgb(winners: np.ndarray, side: int = 256) -> np.ndarray:
    """Which 2×2 position won each max-pool cell, one colour per position."""
    return enlarge(POSITION_COLOURS[np.asarray(winners).astype(np.intp)], side)
