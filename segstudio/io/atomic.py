"""Atomic writes: the old file stays whole until the new one is complete.

Data goes to a temporary file in the same folder, is flushed and fsync'd, then renamed over the
target. A crash at any point leaves either the old file or the new one, never half of either.
A kill at the wrong moment leaves the hidden temporary file
``.<name>.segstudio-tmp.<host>.<pid>.<random>.part``: the marker, the machine and the process
prove who wrote it, so :func:`remove_stale_parts` clears only those of this machine's writers
that are gone. A workspace on a network share used from two machines never loses another
machine's live temporary file, and a user's own file that merely looks like one is never
touched. Names of older versions (``.<name>.<pid>-<random>.part``) prove nothing and are only
listed (:func:`old_style_parts`), never removed.

New files get the mode a plain ``open()`` would give them (``0o666`` less the umask), as any
other program's files do.
"""

from __future__ import annotations

import contextlib
import os
import hashlib
import re
import socket
import stat
import tempfile
import time
from pathlib import Path
from typing import BinaryIO, Callable, Iterator

TEMP_MARKER = "segstudio-tmp"     # in every temporary name segstudio makes, and nowhere else
# Temporary names: ".<target name>.segstudio-tmp.<host>.<writer pid>.<8 random>.part" (folders
# and videos end otherwise); mkstemp's random part uses these characters.
_PART_NAME = re.compile(r"^\..+\.segstudio-tmp\.([a-z0-9_-]{0,24}-[0-9a-f]{8})\.(\d{1,10})"
                        r"\.[a-z0-9_]{8}\.part$", re.DOTALL)
# What older versions wrote: ".<target name>.<writer pid>-<8 random>.part", and before that
# ".<target name>.<8 random>.part". A user's file can look the same.
_OLD_PART_NAME = re.compile(r"^\..+\.(?:\d{1,10}-)?[a-z0-9_]{8}\.part$", re.DOTALL)
_STARTED = time.time()            # no temporary file of this process is older than this
_PREFIX_MAX_BYTES = 80            # of the target's name in the temporary name


def host_tag(hostname: str | None = None) -> str:
    """This machine (or ``hostname``) as it appears in temporary names: up to 24 characters of
    the name, for people, and a hash of all of it, so that two machines never share a tag."""
    name = (socket.gethostname() if hostname is None else hostname).strip().lower()
    readable = re.sub(r"[^a-z0-9-]", "_", name)[:24]
    return f"{readable}-{hashlib.sha1(name.encode('utf-8', 'replace')).hexdigest()[:8]}"


_HOST = host_tag()


def temp_prefix(name: str) -> str:
    """The start of a temporary name for the target ``name``, up to the random part that
    ``tempfile.mkstemp``/``mkdtemp`` add: hidden, marked as segstudio's, with this machine and
    this process, so that a later start can prove whose it is."""
    return f".{_short(name)}.{TEMP_MARKER}.{_HOST}.{os.getpid()}."


@contextlib.contextmanager
def atomic_open(path: str | Path) -> Iterator[BinaryIO]:
    """Open a binary stream whose content replaces ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=temp_prefix(path.name), suffix=".part", dir=path.parent)
    try:
        # mkstemp makes the file owner-only; give it the mode a plain open() would (or keep the
        # mode of the file it replaces), so saved labels stay readable by the user's group tools.
        try:
            mode = os.stat(path).st_mode & 0o7777
        except OSError:
            mode = 0o666 & ~current_umask()
        os.chmod(tmp, mode)
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_open(path) as f:
        f.write(data)


def atomic_write_text(path: str | Path, text: str, encoding: str = "utf-8") -> None:
    atomic_write_bytes(path, text.encode(encoding))


def atomic_write_with(path: str | Path, writer: Callable[[BinaryIO], None]) -> None:
    """Let ``writer`` fill the stream (e.g. ``PIL.Image.save``); replace ``path`` on success."""
    with atomic_open(path) as f:
        writer(f)


def current_umask() -> int:
    """The process's umask, read without changing it where the system allows (changing it, even
    for a moment, would give files that other threads create meanwhile the wrong mode)."""
    with contextlib.suppress(OSError, ValueError):
        with open("/proc/self/status", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    umask = os.umask(0o022)
    os.umask(umask)
    return umask


def follow_umask(path: str | Path, *, folder: bool = False) -> None:
    """Give ``path`` the mode ``open()`` or ``mkdir()`` would have (``mkstemp`` and ``mkdtemp``
    make owner-only files and folders)."""
    os.chmod(path, (0o777 if folder else 0o666) & ~current_umask())


def remove_stale_parts(folder: str | Path, *, recursive: bool = True) -> list[Path]:
    """Delete the temporary files that writes into ``folder`` left when their process was killed.

    Only names this module makes (the marker, a host and a pid), only those made on this
    machine (a process of another machine sharing the folder may still be writing its own),
    only plain files (never links, never inside linked folders), only files last changed before
    this process started (so it cannot have made them), and only when the process in the name
    is no longer running. Returns what was deleted; what cannot be deleted stays.
    """
    removed: list[Path] = []
    for path, name in _files(folder, recursive):
        match = _PART_NAME.match(name)
        if match is None:
            continue
        try:
            if not _is_stale(os.lstat(path), match.group(1), int(match.group(2))):
                continue
            os.unlink(path)
        except OSError:
            continue
        removed.append(path)
    return removed


def old_style_parts(folder: str | Path, *, recursive: bool = True) -> list[Path]:
    """Plain files in ``folder`` named like the temporary files of older versions
    (``.<name>.<pid>-<random>.part``). They are kept, as nothing proves they are not a user's
    own files, but they are worth naming to the user."""
    found: list[Path] = []
    for path, name in _files(folder, recursive):
        if _OLD_PART_NAME.match(name) and not _PART_NAME.match(name):
            with contextlib.suppress(OSError):
                if stat.S_ISREG(os.lstat(path).st_mode):
                    found.append(path)
    return found


def _files(folder: str | Path, recursive: bool) -> Iterator[tuple[Path, str]]:
    """(path, name) of the files in ``folder`` (and below it), never through a linked folder."""
    folder = Path(folder)
    try:
        if folder.is_symlink() or not folder.is_dir():
            return
        walker = os.walk(folder) if recursive else [(str(folder), [], sorted(os.listdir(folder)))]
    except OSError:
        return
    for here, dirs, files in walker:       # os.walk does not enter linked folders
        dirs.sort()
        for name in sorted(files):
            yield Path(here) / name, name


def _is_stale(info: os.stat_result, host: str, pid: int) -> bool:
    if not stat.S_ISREG(info.st_mode) or info.st_mtime >= _STARTED or host != _HOST:
        return False
    return pid != os.getpid() and not _running(pid)


def _running(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):
        return False
    except OSError:
        return True             # it exists (or cannot be asked about): assume it is writing
    return True


def _short(name: str) -> str:
    """``name`` cut so that the temporary name stays within file-system limits."""
    try:
        while len(os.fsencode(name)) > _PREFIX_MAX_BYTES:
            name = name[:-1]
    except UnicodeEncodeError:      # not a name the file system can hold: the write will say so
        return "x"
    return name


def _fsync_dir(folder: Path) -> None:
    # Make the rename itself durable; not every platform lets a folder be opened.
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
