"""Refuse to start on a Qt binding that corrupts Python's reference to ``None``.

PySide6 6.12.0 returns ``None`` from every C++ method that returns ``void`` without taking a
reference to it. Since Python 3.12 ``None`` is immortal and nothing happens, but on 3.10 and
3.11 each such call (``label.setText``, ``widget.update``, ``processEvents`` ...) lowers the
count by one, and after some thousands of them (minutes of mouse movement in the window) the
interpreter aborts with "deallocating None": the window vanishes and unsaved edits with it.
The check below calls one such method a few dozen times and watches the count, so a broken
installation is named at start-up instead of crashing mid-session.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import partial

PROBE_CALLS = 64


class BindingDefect(RuntimeError):
    """The installed Qt binding mismanages references; the message says what to install."""


def none_refcount_drift(call: Callable[[], object], calls: int = PROBE_CALLS) -> int:
    """How much ``sys.getrefcount(None)`` changed over ``calls`` calls of ``call``.

    Zero for a sound binding; ``-calls`` for one that drops a reference per call. Always zero
    where ``None`` is immortal (Python 3.12 and later), which is also where the defect is
    harmless.
    """
    if sys.version_info >= (3, 12):
        return 0
    before = sys.getrefcount(None)
    for _ in range(calls):
        call()
    return sys.getrefcount(None) - before


def check_qt_binding(call: Callable[[], object] | None = None) -> None:
    """Raise :class:`BindingDefect` when PySide6's ``void`` methods leak ``None`` references.

    ``call`` replaces the probe (a ``void`` method of a fresh QObject) in tests.
    """
    import PySide6
    from PySide6.QtCore import QObject

    if call is None:
        probe = QObject()
        # setObjectName returns void: the binding must hand back a counted reference to None.
        call = partial(probe.setObjectName, "probe")
    drift = none_refcount_drift(call)
    # Other threads may create or drop references meanwhile; a defect shows as about one per call.
    if drift <= -PROBE_CALLS // 2:
        raise BindingDefect(
            f"PySide6 {PySide6.__version__} on Python {sys.version_info.major}."
            f"{sys.version_info.minor} loses a reference to None on every call that returns "
            "nothing, and the program would abort after a few minutes of use. Install another "
            "version, e.g.  pip install \"PySide6-Essentials>=6.6,!=6.12.0\"  (segstudio's own "
            "requirements do this), or run on Python 3.12 or newer.")
