"""Mapping labels from one class set to another by class name.

A label value means a class *name*; two sets that give the same index to different names (a
shapes model's "circle" and a chest workspace's "lungs") must never be mixed by index. A
:class:`ClassMapping` sends every index of a source set to the index of the same name in a
target set; names the target lacks are appended to it, so nothing is lost.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from segstudio.core.classes import ClassSet
from segstudio.core.palette import VOID_INDEX


def _key(name: str) -> str:
    return " ".join(name.casefold().split())


@dataclass(frozen=True)
class ClassMapping:
    """``source`` indices → indices of ``target`` (which holds ``added`` at its end)."""

    source: ClassSet
    target: ClassSet
    lut: np.ndarray            # 256 entries, uint8; void stays void
    added: tuple[str, ...]     # source names the target did not have, appended to it

    @classmethod
    def by_name(cls, source: ClassSet, target: ClassSet) -> "ClassMapping":
        """Match names case- and space-insensitively; append the ones ``target`` lacks (in
        their source colour unless the target already draws a class in it)."""
        index = {_key(n): i for i, n in enumerate(target.names)}
        merged = target
        added: list[str] = []
        lut = np.arange(256, dtype=np.uint8)
        for i, c in enumerate(source):
            j = index.get(_key(c.name))
            if j is None:
                merged = merged.with_class(c.name, None if c.color in merged.colors else c.color)
                j = len(merged) - 1
                index[_key(c.name)] = j
                added.append(c.name)
            lut[i] = j
        lut[VOID_INDEX] = VOID_INDEX
        return cls(source, merged, lut, tuple(added))

    @property
    def identity(self) -> bool:
        """True when no label value changes (the names agree index by index)."""
        n = len(self.source)
        return not self.added and bool((self.lut[:n] == np.arange(n)).all())

    def apply(self, labels: np.ndarray) -> np.ndarray:
        """``labels`` (source indices, uint8) as target indices; void stays void."""
        return self.lut[np.asarray(labels, np.uint8)]

    def changes(self) -> list[tuple[str, str]]:
        """``(source name, target name)`` for each source index whose name changes meaning if
        the labels were kept as numbers (what relabelling by index would do)."""
        out = []
        for i, c in enumerate(self.source):
            shown = self.target[i].name if i < len(self.target) else "(no class)"
            if _key(shown) != _key(c.name):
                out.append((c.name, shown))
        return out

    def describe(self) -> str:
        """One line for a dialog: which names are matched and which are added."""
        matched = [f"{c.name} → {self.target[int(self.lut[i])].name}"
                   for i, c in enumerate(self.source) if int(self.lut[i]) != i]
        parts = []
        if matched:
            parts.append("moved: " + ", ".join(matched[:6]) + (" …" if len(matched) > 6 else ""))
        if self.added:
            parts.append("added: " + ", ".join(self.added))
        return "; ".join(parts) or "every class keeps its index"


def same_names(a: ClassSet, b: ClassSet) -> bool:
    """The two sets give every index the same name (colours and titles may differ)."""
    return len(a) == len(b) and all(_key(x) == _key(y) for x, y in zip(a.names, b.names))


def remap_prediction(prediction, mapping: ClassMapping) -> None:
    """Rewrite a prediction's class indices (labels, class probabilities, each object's class)
    from the model's set into ``mapping.target``, in place. Probabilities of classes that map
    to one target class are added."""
    prediction.labels = mapping.apply(prediction.labels)
    probs = np.asarray(prediction.probabilities)
    out = np.zeros((len(mapping.target),) + probs.shape[1:], probs.dtype)
    for i in range(min(len(mapping.source), probs.shape[0])):
        out[int(mapping.lut[i])] += probs[i]
    prediction.probabilities = out
    objects = getattr(prediction, "objects", None)
    if objects is not None:
        prediction.objects = [(int(mapping.lut[c]) if 0 <= c < 256 else c, s)
                              for c, s in objects]
