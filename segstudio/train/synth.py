"""Procedural demo datasets: one entry point over the ``xray``, ``context`` and ``shapes`` kinds.

Sample ``i`` of a set depends only on ``(kind, seed, i, size)``, never on how many samples are
asked for, so a set can be extended or regenerated piecewise and a held-out set is simply one
made with another seed. The ``xray`` images are synthetic phantoms, not patient data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np

from segstudio.core.classes import ClassSet
from segstudio.train.synth_context import context_classes, make_context
from segstudio.train.synth_shapes import make_shapes, shapes_classes
from segstudio.train.synth_xray import XrayShift, make_xray, to_rgb8, xray_classes

KINDS = ("xray", "context", "shapes")
DESCRIPTIONS = {
    "xray": "synthetic chest radiograph phantoms (not patient data): lungs, heart, clavicles",
    "context": "boat-or-car scenes where only water or road, far away, tells the class",
    "shapes": "overlapping circles, squares and triangles with instance ids (for Mask R-CNN)",
}
MIN_SIZE, MAX_SIZE = 32, 2048


class SynthError(ValueError):
    """A request the generators cannot serve (unknown kind, size out of range)."""


@dataclass(frozen=True)
class SynthSample:
    """One generated sample. ``image`` is H×W×3 uint8 RGB; ``grey16`` holds the full 16-bit
    phantom for ``xray`` (else None); ``instances`` holds instance ids for ``shapes``."""

    id: str
    image: np.ndarray
    labels: np.ndarray
    instances: np.ndarray | None = None
    grey16: np.ndarray | None = None


def classes_for(kind: str) -> ClassSet:
    """The class set a kind's labels use."""
    return {"xray": xray_classes, "context": context_classes,
            "shapes": shapes_classes}[_check_kind(kind)]()


def _check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise SynthError(f"unknown demo data kind {kind!r}; choose one of {', '.join(KINDS)}")
    return kind


def _check_size(size: int) -> int:
    if not MIN_SIZE <= int(size) <= MAX_SIZE:
        raise SynthError(f"image size {size} is outside {MIN_SIZE}..{MAX_SIZE} pixels")
    return int(size)


def make_sample(kind: str, index: int, *, size: int = 128, seed: int = 0,
                shift: XrayShift | None = None, surface: int | None = None) -> SynthSample:
    """Sample ``index`` of the ``kind`` set made with ``seed``; ``shift`` (``xray`` only) draws
    the phantom in another domain, with the same anatomy before the shift moves it; ``surface``
    (``context`` only: water or road) draws the same scene with that surface."""
    _check_kind(kind)
    size = _check_size(size)
    if shift is not None and kind != "xray":
        raise SynthError(f"a domain shift applies to xray phantoms, not to {kind!r}")
    if surface is not None and kind != "context":
        raise SynthError(f"a surface applies to context scenes, not to {kind!r}")
    # The kind's position in KINDS keeps sets of different kinds with one seed independent.
    rng = np.random.default_rng([int(seed), KINDS.index(kind), int(index)])
    sid = f"{kind}_{int(index):05d}"
    if kind == "xray":
        grey16, labels = make_xray(rng, size, shift)
        return SynthSample(sid, to_rgb8(grey16), labels, grey16=grey16)
    if kind == "context":
        image, labels = make_context(rng, size, surface)
        return SynthSample(sid, image, labels)
    image, labels, instances = make_shapes(rng, size)
    return SynthSample(sid, image, labels, instances=instances)


def generate(kind: str, n: int, *, size: int = 128, seed: int = 0,
             cancel: Callable[[], bool] | None = None,
             shift: XrayShift | None = None) -> Iterator[SynthSample]:
    """Yield samples ``0..n-1`` of the ``kind`` set; stops early when ``cancel()`` is true."""
    _check_kind(kind)
    _check_size(size)
    if n < 1:
        raise SynthError(f"asked for {n} samples; need at least 1")
    for i in range(n):
        if cancel is not None and cancel():
            return
        yield make_sample(kind, i, size=size, seed=seed, shift=shift)
