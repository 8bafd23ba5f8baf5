"""A cache entry is used only after it is checked against what it claims to be a cache of.

A cache only saves time. Its files outlive versions of the app, can be cut short, copied under
another name or edited by hand, so an entry may claim to be one thing and hold another: another
image's embedding, a feature map of another shape, a time of 0 ms. Such an entry must never
reach the user as a traceback or a wrong answer. :func:`take_entry` reads an entry and checks
it in one step; an entry that fails either is dropped (deleted: it is the cache's own data,
never the user's), one line says why, and the caller computes it afresh as if it had never
been cached. The ``check`` argument is not optional: a cache cannot read an entry without
saying what the entry must be.

The small ``expect_*`` checks raise :class:`EntryMismatch` with a reason a person can read;
they are also used for other numbers read back from files (a model card's statistics).
"""

from __future__ import annotations

import logging
import math
from typing import Any, Callable, TypeVar

T = TypeVar("T")
log = logging.getLogger("segstudio.cache")


class EntryMismatch(ValueError):
    """A value that is not what it claims to be; the message says how."""


def take_entry(where: str, read: Callable[[], T], check: Callable[[T], None],
               drop: Callable[[], None], redo: str = "computed") -> T | None:
    """``read()``'s entry once ``check(entry)`` passes; else None after ``drop()``.

    ``read`` parses the stored entry and ``check`` holds it against what it claims (its key,
    the input it was made from, the shape and range its consumer needs). Any failure of
    either, a damaged file as much as a forged value, drops the entry and logs one line naming
    ``where`` it was and why; the caller then makes it again (``redo`` says how: computed,
    measured).
    """
    try:
        entry = read()
        check(entry)
    except Exception as exc:   # noqa: BLE001 - a damaged entry can fail any way its reader can
        reason = _reason(exc)
        try:
            drop()
        except OSError:
            pass                    # a cache that cannot be cleaned is only slower
        log.warning("warning: dropped cache entry %s: %s; it is %s again", where, reason, redo)
        return None
    return entry


def _reason(exc: BaseException) -> str:
    if isinstance(exc, EntryMismatch):
        return str(exc)
    text = str(exc).strip()
    first = text.splitlines()[0][:200] if text else ""
    return f"unreadable ({type(exc).__name__}{': ' + first if first else ''})"


def shown(value: Any) -> str:
    """A value from a file as short text: a number of 300 digits or a list nested 10,000 deep
    must not become the message."""
    if isinstance(value, float):
        return f"{value:.6g}"
    try:
        text = repr(value)
    except (ValueError, RecursionError):
        return "(too large to show)"
    return text if len(text) <= 60 else text[:57] + "..."


def expect_equal(found: Any, expected: Any, what: str) -> None:
    """``found`` is what the entry claims; ``expected`` what it must be for this use."""
    if found != expected:
        raise EntryMismatch(f"{what} is {shown(found)}, not {shown(expected)}")


def expect_number(value: Any, what: str, *, low: float | None = None,
                  high: float | None = None, positive: bool = False) -> float:
    """A finite real number (not a bool, not text) in ``low``..``high``, above 0 if
    ``positive``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise EntryMismatch(f"{what} is {shown(value)}, not a number")
    try:
        number = float(value)
    except OverflowError:
        raise EntryMismatch(f"{what} is a whole number too large to be real") from None
    if not math.isfinite(number):
        raise EntryMismatch(f"{what} is {shown(number)}, not a finite number")
    if positive and number <= 0:
        raise EntryMismatch(f"{what} is {shown(number)}, not above 0")
    if (low is not None and number < low) or (high is not None and number > high):
        raise EntryMismatch(f"{what} is {shown(number)}, outside "
                            f"{'-∞' if low is None else shown(float(low))}–"
                            f"{'∞' if high is None else shown(float(high))}")
    return number


def expect_count(value: Any, what: str, *, low: int = 0) -> int:
    """A whole number from ``low`` (a count or a size)."""
    number = expect_number(value, what)
    if not number.is_integer():
        raise EntryMismatch(f"{what} is {shown(number)}, not a whole number")
    if number < low:
        raise EntryMismatch(f"{what} is {shown(value)}, below {low}")
    return int(value)


def expect_one_of(value: Any, allowed: tuple, what: str) -> Any:
    """One of ``allowed`` (names a cache knows)."""
    if isinstance(value, bool) or value not in allowed:
        raise EntryMismatch(f"{what} is {shown(value)}, not one of "
                            f"{', '.join(map(str, allowed))}")
    return value
