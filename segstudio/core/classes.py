"""Class sets: the names and colours of the classes a label map holds.

A label map stores class indices ``0 … n-1``; ``255`` is *void* (ignored by training and by
metrics), as in Pascal VOC. A :class:`ClassSet` says what each index means and how to draw it.
"""

from __future__ import annotations

import math
import operator
import re
from collections import abc
from dataclasses import dataclass
from typing import Iterable, Iterator, Sequence

import numpy as np

from segstudio.core.palette import VOC_COLORMAP, VOID_COLOR, VOID_INDEX

Color = tuple[int, int, int]

VOC21_NAMES = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat",
    "chair", "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant",
    "sheep", "sofa", "train", "tvmonitor",
)


class ClassSetError(ValueError):
    """A class set file or definition that cannot be used, with the reason."""


@dataclass(frozen=True)
class ClassCode:
    """A coded concept naming what a class is, for formats that want codes (DICOM SEG's
    segmented property type): coding scheme (``SCT`` for SNOMED CT, ``99…`` for private ones),
    code value and meaning, optionally with the category it belongs to (another code)."""

    scheme: str
    value: str
    meaning: str
    category: "ClassCode | None" = None

    def to_dict(self) -> dict:
        data = {"scheme": self.scheme, "value": self.value, "meaning": self.meaning}
        if self.category is not None:
            data["category"] = self.category.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: object, *, where: str = "code", nested: bool = False) -> "ClassCode":
        """A code from a class-set file, every part checked: a dict of ``scheme`` (up to 16
        letters, digits, ``-``, ``_`` or ``.``), ``value`` (up to 64 characters) and ``meaning``
        (up to 64), none holding a backslash or a control character."""
        if not isinstance(data, dict):
            raise ClassSetError(f"{where} must be an object with scheme, value and meaning")
        unknown = set(data) - {"scheme", "value", "meaning"} - (set() if nested else {"category"})
        if unknown:
            raise ClassSetError(
                f"{where} has unknown field(s): {_shown(sorted(map(str, unknown)))}")
        scheme = _code_text(data.get("scheme"), f"{where}.scheme", 16)
        if not _SCHEME.fullmatch(scheme):
            raise ClassSetError(f"{where}.scheme {_shown(scheme)} must be letters, digits, '-', "
                                "'_' or '.'")
        category = None
        if not nested and data.get("category") is not None:
            category = cls.from_dict(data["category"], where=f"{where}.category", nested=True)
        return cls(scheme, _code_text(data.get("value"), f"{where}.value", 64),
                   _code_text(data.get("meaning"), f"{where}.meaning", 64), category)


@dataclass(frozen=True)
class SegClass:
    """One class: its index in the label map, its name, its display colour and, when the class
    set gives one, the code saying what it is."""

    index: int
    name: str
    color: Color
    code: ClassCode | None = None


class ClassSet:
    """An ordered set of classes; index ``i`` of a label map is ``self[i]``.

    Class sets are values: renaming or recolouring returns a new set, so a label map drawn with
    the old set is never silently reinterpreted.
    """

    IGNORE_INDEX = VOID_INDEX
    VOID_COLOR: Color = VOID_COLOR

    def __init__(self, names: Sequence[str], colors: Sequence[Sequence[int]] | None = None,
                 *, title: str = "custom",
                 codes: Sequence[ClassCode | None] | None = None) -> None:
        names = [str(n).strip() for n in names]
        if not names:
            raise ClassSetError("a class set needs at least one class")
        if len(names) > 255:
            raise ClassSetError(f"{len(names)} classes: at most 255 fit beside the void index 255")
        if any(not n for n in names):
            raise ClassSetError("class names must not be empty")
        if len(set(names)) != len(names):
            dup = sorted({n for n in names if names.count(n) > 1})
            raise ClassSetError(f"class names must be unique; repeated: {', '.join(dup)}")
        if colors is None:
            colors = [tuple(int(c) for c in VOC_COLORMAP[i]) for i in range(len(names))]
        if len(colors) != len(names):
            raise ClassSetError(f"{len(names)} names but {len(colors)} colours")
        cols: list[Color] = []
        for c in colors:
            rgb = _rgb(c)
            if rgb is None:
                raise ClassSetError(f"colour {_shown(c)} is not an RGB triple of 0-255 values")
            cols.append(rgb)
        codes = list(codes) if codes is not None else [None] * len(names)
        if len(codes) != len(names) or not all(c is None or isinstance(c, ClassCode)
                                                for c in codes):
            raise ClassSetError(f"{len(names)} names but {len(codes)} codes")
        self._names = tuple(names)
        self._colors = tuple(cols)
        self._codes = tuple(codes)
        self.title = title

    # -- reading -----------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._names)

    def __getitem__(self, index: int) -> SegClass:
        if not 0 <= index < len(self._names):
            raise IndexError(f"class index {index} is outside 0..{len(self._names) - 1}")
        return SegClass(index, self._names[index], self._colors[index], self._codes[index])

    def __iter__(self) -> Iterator[SegClass]:
        return (self[i] for i in range(len(self)))

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, ClassSet) and self._names == other._names
                and self._colors == other._colors)

    def __hash__(self) -> int:
        return hash((self._names, self._colors))

    def __repr__(self) -> str:
        return f"ClassSet({self.title!r}, {list(self._names)!r})"

    @property
    def names(self) -> tuple[str, ...]:
        return self._names

    @property
    def colors(self) -> tuple[Color, ...]:
        return self._colors

    @property
    def codes(self) -> tuple[ClassCode | None, ...]:
        """Each class's code, None where the class set gives none. Codes describe classes for
        other formats; they are not part of a set's identity (equality compares names and
        colours, what the label maps mean and show)."""
        return self._codes

    def index_of(self, name: str) -> int:
        try:
            return self._names.index(name)
        except ValueError:
            raise KeyError(f"no class named {name!r} in {self.title}") from None

    def color_table(self) -> np.ndarray:
        """A 256 × 3 uint8 lookup table: class colours, VOC colours past them, void at 255."""
        table = VOC_COLORMAP.copy()
        table[: len(self)] = np.asarray(self._colors, dtype=np.uint8)
        table[VOID_INDEX] = self.VOID_COLOR
        return table

    def palette(self) -> list[int]:
        """The flat 768-entry palette a 'P'-mode PNG stores (for Pillow's ``putpalette``)."""
        return self.color_table().reshape(-1).tolist()

    # -- deriving ----------------------------------------------------------------------------
    def renamed(self, index: int, name: str) -> "ClassSet":
        names = list(self._names)
        names[self[index].index] = name
        return ClassSet(names, self._colors, title=self.title, codes=self._codes)

    def recolored(self, index: int, color: Sequence[int]) -> "ClassSet":
        colors = list(self._colors)
        colors[self[index].index] = tuple(color)  # type: ignore[arg-type]
        return ClassSet(self._names, colors, title=self.title, codes=self._codes)

    def with_class(self, name: str, color: Sequence[int] | None = None) -> "ClassSet":
        color = color if color is not None else tuple(int(c) for c in VOC_COLORMAP[len(self)])
        return ClassSet([*self._names, name], [*self._colors, tuple(color)], title=self.title,
                        codes=[*self._codes, None])

    # -- files -------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {
            "title": self.title,
            "ignore_index": VOID_INDEX,
            "classes": [{"index": c.index, "name": c.name, "color": list(c.color),
                         **({"code": c.code.to_dict()} if c.code is not None else {})}
                        for c in self],
        }

    @classmethod
    def from_dict(cls, data: dict) -> "ClassSet":
        try:
            entries = sorted(data["classes"], key=lambda e: _index(e["index"]))
            indices = [_index(e["index"]) for e in entries]
            if indices != list(range(len(entries))):
                raise ClassSetError(f"class indices must run 0..{len(entries) - 1} without gaps")
            codes = [None if e.get("code") is None
                     else ClassCode.from_dict(e["code"], where=f"class {i} code")
                     for i, e in enumerate(entries)]
            return cls([e["name"] for e in entries], [e["color"] for e in entries],
                       title=str(data.get("title", "custom")), codes=codes)
        except ClassSetError:
            raise
        except (KeyError, TypeError, ValueError) as exc:
            raise ClassSetError(f"not a class set: {exc!r}") from None

_SCHEME = re.compile(r"[A-Za-z0-9_.\-]+")


def _code_text(value: object, where: str, limit: int) -> str:
    """A code's text part: a non-empty string of at most ``limit`` characters with no backslash
    (DICOM's value separator) and no control character."""
    if not isinstance(value, str) or not value.strip():
        raise ClassSetError(f"{where} must be a non-empty string, not {_shown(value)}")
    value = value.strip()
    if len(value) > limit:
        raise ClassSetError(f"{where} is {len(value)} characters long; at most {limit} fit")
    if "\\" in value or any(ord(c) < 32 or 127 <= ord(c) < 160 for c in value):
        raise ClassSetError(f"{where} {_shown(value)} holds a backslash or a control character")
    return value


def _whole(value: object) -> int | None:
    """``value`` as an int when it is a whole number (``12`` or ``12.0``), else None: strings,
    booleans, fractions, NaN and infinities are neither class indices nor colour values."""
    if isinstance(value, bool):
        return None
    if isinstance(value, float):
        return int(value) if math.isfinite(value) and value.is_integer() else None
    try:
        return operator.index(value)  # int and numpy integers
    except TypeError:
        return None


def _rgb(color: object) -> Color | None:
    """A colour as three ints in 0..255, or None when it is anything else."""
    if not isinstance(color, (abc.Sequence, np.ndarray)) or isinstance(color, (str, bytes)):
        return None
    values = [_whole(v) for v in color]
    if len(values) != 3 or any(v is None or not 0 <= v <= 255 for v in values):
        return None
    return values[0], values[1], values[2]  # type: ignore[return-value]


def _shown(value: object) -> str:
    """A bad value, shortened for a message (a file may hold a number of more digits than
    Python prints, or a list nested too deeply to print)."""
    try:
        text = repr(tuple(value) if isinstance(value, list) else value)
    except (ValueError, RecursionError):
        return "(too large to show)"
    return text if len(text) <= 60 else text[:57] + "..."


def _index(value: object) -> int:
    index = _whole(value)
    if index is None:
        raise ClassSetError(f"class index {_shown(value)} is not a whole number")
    return index


def voc21() -> ClassSet:
    """The 21 Pascal VOC 2012 classes with the standard VOC colour map."""
    return ClassSet(VOC21_NAMES, title="Pascal VOC 21")


def chest_xray() -> ClassSet:
    """Chest radiograph anatomy: heart red, lungs green, clavicles blue."""
    return ClassSet(
        ["background", "lungs", "heart", "clavicles"],
        [(0, 0, 0), (0, 200, 0), (220, 0, 0), (0, 90, 255)],
        title="Chest X-ray",
    )


PRESETS = {"voc21": voc21, "chest-xray": chest_xray}


def preset(name: str) -> ClassSet:
    try:
        return PRESETS[name]()
    except KeyError:
        raise ClassSetError(f"unknown class preset {name!r}; known: {', '.join(PRESETS)}") from None


def from_names(names: Iterable[str], title: str = "custom") -> ClassSet:
    return ClassSet(list(names), title=title)
