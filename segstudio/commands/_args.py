"""Argument types for the commands' numeric options, checked where argparse reads them.

A value out of range (``--seed -1``, ``--lr nan``, ``--epochs 0``) is refused before any work
starts, as one ``segstudio COMMAND: error: argument --X: …`` line and exit status 2, instead of
failing deep inside numpy or torch. Each factory returns a function for ``type=``.
"""

from __future__ import annotations

import argparse
import math
from typing import Callable

SEED_MAX = 2 ** 32 - 1          # what every random generator used here accepts


def _shown(text: str) -> str:
    return repr(text if len(text) <= 40 else text[:37] + "...")


def whole(low: int, high: int | None = None, why: str = "") -> Callable[[str], int]:
    """A whole number in ``low..high`` (``high`` None: no upper bound); ``why`` explains a
    bound that is not obvious."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:          # also an integer of more digits than Python converts
            raise argparse.ArgumentTypeError(f"{_shown(text)} is not a whole number") from None
        if value < low or (high is not None and value > high):
            span = f"at least {low}" if high is None else f"between {low} and {high}"
            raise argparse.ArgumentTypeError(
                f"must be {span}{f' ({why})' if why else ''}, not {value}")
        return value

    parse.__name__ = "whole number"
    return parse


def number(low: float, high: float | None = None, *, low_open: bool = False,
           high_open: bool = False) -> Callable[[str], float]:
    """A finite number between ``low`` and ``high``; ``*_open`` excludes that end."""
    left, right = ("(" if low_open else "["), (")" if high_open or high is None else "]")
    span = f"{left}{low:g}, {'∞' if high is None else f'{high:g}'}{right}"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{_shown(text)} is not a number") from None
        inside = math.isfinite(value) and (value > low if low_open else value >= low)
        if inside and high is not None:
            inside = value < high if high_open else value <= high
        if not inside:
            raise argparse.ArgumentTypeError(
                f"must be a finite number in {span}, not {_shown(text)}")
        return value

    parse.__name__ = "number"
    return parse


SEED = whole(0, SEED_MAX)
FRACTION = number(0.0, 1.0, high_open=True)          # a share of items held out, 0 ≤ F < 1
THREADS = whole(1, 1024)
