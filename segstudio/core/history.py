"""Undo/redo as tile diffs: a step keeps only the tiles an edit changed, before and after.

Besides the label map the history can hold further planes of the same size (the object map of
:mod:`segstudio.core.objectmap`): their tiles are keyed ``(plane, row, col)`` and live in the
same steps, so an edit that changes the classes and the objects is undone in one go.

Memory therefore grows with the area edited, not with image size × steps: a 5-pixel brush dab on
a 4096 × 4096 map costs a few 64 × 64 tiles, not 16 MB. The history is bounded both in steps and
in bytes; the oldest steps go first.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np

from segstudio.core.geometry import Rect

TILE = 64


@dataclass
class Step:
    """One undoable edit: the tiles it changed, as (row, col) → (before, after)."""

    name: str
    tiles: dict[tuple, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)

    @property
    def nbytes(self) -> int:
        return sum(b.nbytes + a.nbytes for b, a in self.tiles.values())

    def rect(self, tile: int = TILE) -> Rect:
        r = Rect.empty()
        for key, (before, _) in self.tiles.items():
            ty, tx = key[-2:]
            h, w = before.shape
            r = r.union(Rect(tx * tile, ty * tile, tx * tile + w, ty * tile + h))
        return r


class History:
    """Undo and redo stacks for one label map.

    The owner calls :meth:`before_write` with the rectangle it is about to change (the tiles are
    copied once per step), then :meth:`commit` to close the step; unchanged tiles are dropped.
    """

    def __init__(self, max_steps: int = 1000, max_bytes: int = 256 * 2**20, tile: int = TILE):
        if max_steps < 1:
            raise ValueError("max_steps must be at least 1")
        self.max_steps = max_steps
        self.max_bytes = max_bytes
        self.tile = tile
        self._undo: deque[Step] = deque()
        self._redo: list[Step] = []
        self._open: dict[tuple[int, int], np.ndarray] | None = None
        self._open_name = ""
        self._bytes = 0
        self.planes: dict[str, np.ndarray] = {}     # further arrays recorded with the labels

    # -- recording ---------------------------------------------------------------------------
    def open_step(self, name: str) -> None:
        if self._open is None:
            self._open = {}
            self._open_name = name

    @property
    def step_is_open(self) -> bool:
        return self._open is not None

    def before_write(self, labels: np.ndarray, rect: Rect, plane: str | None = None) -> None:
        """Remember the tiles under ``rect`` as they are before the first write of this step;
        ``plane`` names one of :attr:`planes` (None: the label map itself)."""
        if self._open is None or rect.is_empty():
            return
        t = self.tile
        if plane is not None:
            labels = self.planes[plane]
        for ty in range(rect.y0 // t, (rect.y1 - 1) // t + 1):
            for tx in range(rect.x0 // t, (rect.x1 - 1) // t + 1):
                key = (ty, tx) if plane is None else (plane, ty, tx)
                if key not in self._open:
                    self._open[key] = labels[ty * t:(ty + 1) * t, tx * t:(tx + 1) * t].copy()

    def commit(self, labels: np.ndarray) -> Step | None:
        """Close the open step; return it, or None if it changed nothing."""
        if self._open is None:
            return None
        t = self.tile
        step = Step(self._open_name)
        for key, before in self._open.items():
            ty, tx = key[-2:]
            source = labels if len(key) == 2 else self.planes[key[0]]
            after = source[ty * t:(ty + 1) * t, tx * t:(tx + 1) * t]
            if not np.array_equal(before, after):
                step.tiles[key] = (before, after.copy())
        self._open = None
        if not step.tiles:
            return None
        self._undo.append(step)
        self._bytes += step.nbytes
        self._drop_redo()
        self._enforce_bounds()
        return step

    # -- replaying ---------------------------------------------------------------------------
    @property
    def can_undo(self) -> bool:
        return bool(self._undo)

    @property
    def can_redo(self) -> bool:
        return bool(self._redo)

    @property
    def undo_name(self) -> str | None:
        return self._undo[-1].name if self._undo else None

    @property
    def redo_name(self) -> str | None:
        return self._redo[-1].name if self._redo else None

    def undo(self, labels: np.ndarray) -> Rect | None:
        if not self._undo:
            return None
        step = self._undo.pop()
        self._bytes -= step.nbytes
        self._apply(labels, step, which=0)
        self._redo.append(step)
        self._bytes += step.nbytes
        return step.rect(self.tile)

    def redo(self, labels: np.ndarray) -> Rect | None:
        if not self._redo:
            return None
        step = self._redo.pop()
        self._apply(labels, step, which=1)
        self._undo.append(step)
        return step.rect(self.tile)

    def clear(self) -> None:
        self._undo.clear()
        self._redo.clear()
        self._open = None
        self._bytes = 0

    # -- accounting --------------------------------------------------------------------------
    @property
    def nbytes(self) -> int:
        """Bytes held by the undo and redo stacks together."""
        return self._bytes

    def __len__(self) -> int:
        return len(self._undo)

    def _apply(self, labels: np.ndarray, step: Step, which: int) -> None:
        t = self.tile
        for key, pair in step.tiles.items():
            ty, tx = key[-2:]
            tile = pair[which]
            h, w = tile.shape
            target = labels if len(key) == 2 else self.planes.get(key[0])
            if target is not None:
                target[ty * t:ty * t + h, tx * t:tx * t + w] = tile

    def _drop_redo(self) -> None:
        for step in self._redo:
            self._bytes -= step.nbytes
        self._redo.clear()

    def _enforce_bounds(self) -> None:
        while len(self._undo) > self.max_steps or (self._bytes > self.max_bytes and len(self._undo) > 1):
            self._bytes -= self._undo.popleft().nbytes
