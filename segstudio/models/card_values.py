"""The values a model card may hold, each checked as it is read: a card is written by training
on real images, so a grey mean of -1e308, a confidence of 5, a negative count or NaN cannot come
from one, and a card holding such a value is not used (:mod:`segstudio.models.model_card`).
Each check raises :class:`~segstudio.io.cache_entry.EntryMismatch` saying what is wrong."""

from __future__ import annotations

from segstudio.io.cache_entry import EntryMismatch, expect_count, expect_number, shown

GREY_MAX = 65535.0          # no grey statistic of an image (8 or 16 bits) lies beyond this


def plain_list(value, what: str) -> list:
    """A JSON list (absent: empty)."""
    if value is None:
        return []
    if not isinstance(value, (list, tuple)):
        raise EntryMismatch(f"{what} is {shown(value)}, not a list")
    return value


def text(value, what: str) -> str:
    if not isinstance(value, str):
        raise EntryMismatch(f"{what} is {shown(value)}, not text")
    return value


def _two(value, what: str) -> list:
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise EntryMismatch(f"{what} is {shown(value)}, not a pair of numbers")
    return value


def size(value, what: str) -> tuple[int, int]:
    """(width, height) of an image: two whole numbers from 1."""
    a, b = _two(value, what)
    return expect_count(a, what, low=1), expect_count(b, what, low=1)


def pair_range(value, what: str, low: float, high: float) -> tuple[float, float]:
    """A [min, max] pair of numbers in ``low``..``high``, min not above max."""
    a, b = (expect_number(x, what, low=low, high=high) for x in _two(value, what))
    if a > b:
        raise EntryMismatch(f"{what} run from {shown(a)} down to {shown(b)}")
    return a, b


def grey(value, what: str) -> float:
    return expect_number(value, what, low=0, high=GREY_MAX)


def optional(value, what: str, high: float | None) -> float | None:
    """A number from 0 (to ``high``), or None when the card records none."""
    return None if value is None else expect_number(value, what, low=0, high=high)
