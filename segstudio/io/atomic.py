"""Atomic writes: the old file stays whole until the new one is complete.

Data goes to a temporary file in the same folder, is flushed and fsync'd, then renamed over the
target. A crash at any point leaves either the old file or the new one, never half of either.
A kill at the wrong moment leaves the hidden temporary file (``.<name>.<pid>-<random>.part``);
:func:`remove_stale_parts` clears those of writers that are gone.

New files get the mode a plain ``open()`` would give them (``0o666`` less the umask), as any
other program's files do.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
import tempfile
import time
from pathlib import Path
from typing import BinaryIO, Callable, Iterator

# Temporary names: ".<target name>.<writer pid>-<8 random>.part"; before the pid was added,
# ".<target name>.<8 random>.part". mkstemp's random part uses these characters.
_PART_NAME = re.compile(r"^\..+\.(?:(\d{1,10})-)?[a-z0-9_]{8}\.part$", re.DOTALL)
_STARTED = time.time()            # no temporary file of this process is older than this
_LEGACY_AGE_S = 3600.0            # a pid-less temporary file this old has no writer left
_PREFIX_MAX_BYTES = 80            # of the target's name in the temporary name


@contextlib.contextmanager
def atomic_open(path: str | Path) -> Iterator[BinaryIO]:
    """Open a binary stream whose content replaces ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{_short(path.name)}.{os.getpid()}-", suffix=".part",
                               dir=path.parent)
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

    Only names this module makes, only plain files (never links, never inside linked folders),
    only files last changed before this process started (so it cannot have made them), and only
    when no running process can still be writing them: the pid in the name is not running, or,
    for names without a pid, the file is an hour older than this process. Returns what was
    deleted; what cannot be deleted stays.
    """
    removed: list[Path] = []
    folder = Path(folder)
    if folder.is_symlink() or not folder.is_dir():
        return removed
    walker = os.walk(folder) if recursive else [(str(folder), [], os.listdir(folder))]
    for here, _dirs, files in walker:       # os.walk does not enter linked folders
        for name in files:
            match = _PART_NAME.match(name)
            if match is None:
                continue
            path = Path(here) / name
            try:
                info = os.lstat(path)
                if not _is_stale(info, match.group(1)):
                    continue
                os.unlink(path)
            except OSError:
                continue
            removed.append(path)
    return removed


def _is_stale(info: os.stat_result, pid: str | None) -> bool:
    if not stat.S_ISREG(info.st_mode) or info.st_mtime >= _STARTED:
        return False
    if pid is None:
        return info.st_mtime < _STARTED - _LEGACY_AGE_S
    return int(pid) != os.getpid() and not _running(int(pid))


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
