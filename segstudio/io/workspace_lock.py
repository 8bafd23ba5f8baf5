"""The workspace file's lock: one segstudio at a time reads, merges and writes it.

Every write of ``segstudio-workspace.json`` (the window's background writer, every command)
goes through :func:`write_merged`, which holds :func:`workspace_lock` from reading the file to
renaming the new one into place, and merges with what another process wrote since this one's
base (``workspace_merge``). The lock is ``filelock``'s (``flock`` on Unix) on the hidden
``.segstudio-workspace.json.lock`` beside the workspace file; the holder's process id goes into
``.segstudio-workspace.json.owner`` so that a writer that waits too long can say who holds it.
Both names start with a dot and end in neither an image suffix nor ``.part``: scans, exports,
label paths and the clean-up of killed saves never see them.
"""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path
from typing import Iterator

from filelock import FileLock, Timeout

from segstudio.io import atomic
from segstudio.io.workspace_error import WorkspaceError
from segstudio.io.workspace_file import (encode_workspace_file, parse_workspace_file,
                                         read_workspace_bytes)
from segstudio.io.workspace_merge import merge_workspace_data

LOCK_TIMEOUT_S = 60.0            # how long a writer waits for another segstudio's change
_OWNER_BYTES = 64
_NO_WAIT = getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0)   # no pipe, no link

_locks: dict[str, FileLock] = {}
_locks_guard = threading.Lock()


def lock_path(file: Path) -> Path:
    """The hidden lock file of the workspace file ``file``."""
    return file.parent / f".{file.name}.lock"


def owner_path(file: Path) -> Path:
    """The hidden note of which process holds the lock of ``file``."""
    return file.parent / f".{file.name}.owner"


@contextlib.contextmanager
def workspace_lock(file: Path, timeout: float | None = None) -> Iterator[None]:
    """Hold the lock of the workspace file ``file`` for the block.

    Re-entrant within a thread (a transaction's saves take it again); other threads and other
    processes wait. After ``timeout`` seconds (default :data:`LOCK_TIMEOUT_S`) of waiting, a
    :class:`WorkspaceError` names the process holding it; a folder where the lock cannot be
    made (read-only) is a :class:`WorkspaceError` too.
    """
    file = Path(file)
    lock = _lock_of(file)
    wait = LOCK_TIMEOUT_S if timeout is None else timeout
    try:
        lock.acquire(timeout=wait)
    except Timeout:
        raise WorkspaceError(
            f"{file.name} in {file.parent.name or file.parent} is being changed by another "
            f"segstudio ({_holder(file)}); try again") from None
    except OSError as e:
        raise WorkspaceError(f"{file.name}: cannot be saved ({e.strerror or e})") from None
    try:
        if lock.lock_counter == 1:
            _note_owner(file)
        yield
    finally:
        lock.release()


def _lock_of(file: Path) -> FileLock:
    """One lock object per lock file and process, so that a thread re-enters its own hold."""
    path = lock_path(file)
    key = os.path.realpath(path)
    with _locks_guard:
        lock = _locks.get(key)
        if lock is None:
            lock = _locks[key] = FileLock(key, thread_local=True)
        return lock


def _note_owner(file: Path) -> None:
    """Write this process's id for writers that time out waiting (only informative; not
    rewritten while it already names this process, since truncating a file is slow)."""
    mine = f"{os.getpid()}\n"
    if _read_owner(file) == mine.strip():
        return
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | _NO_WAIT
    with contextlib.suppress(OSError):          # a pipe or link planted there: no note
        fd = os.open(owner_path(file), flags, 0o666)
        try:
            os.write(fd, mine.encode("ascii"))
        finally:
            os.close(fd)


def _read_owner(file: Path) -> str:
    flags = os.O_RDONLY | _NO_WAIT
    try:
        fd = os.open(owner_path(file), flags)
        try:
            return os.read(fd, _OWNER_BYTES).decode("ascii").strip()
        finally:
            os.close(fd)
    except (OSError, UnicodeDecodeError):
        return ""


def _holder(file: Path) -> str:
    text = _read_owner(file)
    if not text.isdigit():
        return "process unknown"
    pid = int(text)
    return f"pid {pid}, this segstudio" if pid == os.getpid() else f"pid {pid}"


# -- writing under the lock --------------------------------------------------------------------
def write_merged(file: Path, ours: dict, base_raw: bytes | None, base: dict | None, *,
                 timeout: float | None = None) -> tuple[dict, bytes]:
    """Write ``ours`` to the workspace file ``file`` under its lock, merged with whatever
    another process wrote there since the base (``base_raw``, its bytes, and ``base``, its
    content; None for both when there was no file).

    Returns what was written (``ours`` itself when nothing was merged) and its bytes. A damaged
    file, a class-set conflict or a failed write is a :class:`WorkspaceError`, and the file
    stays as it was.
    """
    with workspace_lock(file, timeout):
        raw = read_workspace_bytes(file)
        theirs = None if raw is None or raw == base_raw else parse_workspace_file(file.name, raw)
        result = ours if theirs is None else merge_workspace_data(base, ours, theirs)
        text = encode_workspace_file(result)
        try:
            atomic.atomic_write_text(file, text)
        except OSError as e:
            raise WorkspaceError(f"{file.name}: cannot be saved ({e.strerror or e})") from None
        return result, text.encode("utf-8")
