"""Rectangles in image pixel coordinates (half-open: ``x0 <= x < x1``)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Rect:
    """A half-open pixel rectangle; every edit of a label map reports the one it touched."""

    x0: int
    y0: int
    x1: int
    y1: int

    @classmethod
    def empty(cls) -> "Rect":
        return cls(0, 0, 0, 0)

    @classmethod
    def around(cls, cx: float, cy: float, radius: float) -> "Rect":
        """The smallest rectangle holding every pixel centre within ``radius`` of (cx, cy)."""
        import math

        return cls(math.floor(cx - radius), math.floor(cy - radius),
                   math.ceil(cx + radius) + 1, math.ceil(cy + radius) + 1)

    @property
    def width(self) -> int:
        return max(0, self.x1 - self.x0)

    @property
    def height(self) -> int:
        return max(0, self.y1 - self.y0)

    @property
    def area(self) -> int:
        return self.width * self.height

    def is_empty(self) -> bool:
        return self.width == 0 or self.height == 0

    def union(self, other: "Rect") -> "Rect":
        if self.is_empty():
            return other
        if other.is_empty():
            return self
        return Rect(min(self.x0, other.x0), min(self.y0, other.y0),
                    max(self.x1, other.x1), max(self.y1, other.y1))

    def clip(self, height: int, width: int) -> "Rect":
        r = Rect(max(0, self.x0), max(0, self.y0), min(width, self.x1), min(height, self.y1))
        return r if not r.is_empty() else Rect.empty()

    @property
    def slices(self) -> tuple[slice, slice]:
        """``(rows, cols)`` slices to index an H×W array with."""
        return slice(self.y0, self.y1), slice(self.x0, self.x1)
