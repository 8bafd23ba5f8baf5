"""Only regular files are ever opened for reading.

Opening a named pipe (FIFO) blocks until something writes to it, a device may never end, and a
socket cannot be opened at all; a file called ``a.png`` can be any of them. Every reader checks
the kind of file first (:func:`check_regular`) and opens through :func:`open_regular`, which
also re-checks the opened descriptor, so a file swapped for a pipe in between is still refused
and never waited on.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import BinaryIO

_KINDS = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


class NotRegularFileError(OSError):
    """A path that names a folder, pipe, device or socket; ``reason`` says which."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{self.path.name}: {reason}")


def kind_problem(mode: int) -> str | None:
    """Why a file of ``st_mode`` ``mode`` must not be read, or None for a regular file."""
    if stat.S_ISREG(mode):
        return None
    for test, name in _KINDS:
        if test(mode):
            return f"this is {name}, not a regular file, so it is not opened"
    return "this is not a regular file, so it is not opened"


def check_regular(path: str | Path) -> os.stat_result:
    """``os.stat(path)`` of a regular file (symbolic links followed).

    Raises :class:`NotRegularFileError` for anything else, and ``FileNotFoundError`` (or another
    ``OSError``) when the path cannot be examined.
    """
    st = os.stat(path)
    reason = kind_problem(st.st_mode)
    if reason is not None:
        raise NotRegularFileError(path, reason)
    return st


def is_regular(path: str | Path) -> bool:
    """True for an existing regular file (or a link to one); never blocks."""
    try:
        check_regular(path)
    except OSError:
        return False
    return True


def open_regular(path: str | Path) -> BinaryIO:
    """Open a regular file for binary reading without ever blocking on a pipe or device."""
    check_regular(path)
    # O_NONBLOCK makes opening a pipe return at once (it has no effect on a regular file), so
    # a file replaced by a pipe after the check above is caught below instead of hanging.
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    fd = os.open(path, flags)
    try:
        reason = kind_problem(os.fstat(fd).st_mode)
        if reason is not None:
            raise NotRegularFileError(path, reason)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_regular_text(path: str | Path, encoding: str = "utf-8") -> str:
    """The text of a regular file; a pipe or device raises :class:`NotRegularFileError`."""
    with open_regular(path) as f:
        return f.read().decode(encoding)
