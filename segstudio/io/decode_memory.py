"""Will it fit in memory? Asked before the memory is taken: a decode from the header, a
command's work from the sizes it will handle.

A few hundred kilobytes of PNG can claim gigabytes of pixels, and a command can be asked to
grow a 20,000² picture. Each estimates what it needs and compares it with what this process can
really allocate now, so that work which cannot fit is refused with one clear message instead of
pushing the machine into swap, the out-of-memory killer or a ``MemoryError`` half way through.

What can be allocated is the least of three limits, any of which may be the tightest:

- the memory the system has available (``MemAvailable`` in ``/proc/meminfo``),
- the room left under this process's address-space limit (``RLIMIT_AS``, as ``ulimit -v`` sets
  it) above what it already maps (``VmSize``),
- the room left in its control group (cgroup v2 ``memory.max`` less ``memory.current``, v1
  ``memory.limit_in_bytes`` less ``memory.usage_in_bytes``; reclaimable file cache counted as
  free, as ``MemAvailable`` does), in a container or a systemd slice.
"""

from __future__ import annotations

import os
from pathlib import Path

# Used when the free memory cannot be found out (no /proc/meminfo, no sysconf): assume this
# share of the physical memory is free, or refuse nothing when even that is unknown.
_UNKNOWN_SHARE = 0.5
# A cgroup limit at or above this is "no limit" (v1 writes 2**63 rounded down to a page).
_NO_LIMIT = 1 << 60
_CGROUP_ROOTS_V2 = ("/sys/fs/cgroup", "/sys/fs/cgroup/unified")
_CGROUP_ROOT_V1 = "/sys/fs/cgroup/memory"


class NotEnoughMemory(MemoryError):
    """Work refused before it started because it would not fit in memory; the message says what
    it needs and what is available."""


def system_available() -> int | None:
    """Bytes the system can hand out without swapping (``MemAvailable``), or None."""
    try:
        with open("/proc/meminfo", "rb") as f:
            for line in f:
                if line.startswith(b"MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        pass
    try:
        return int(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") * _UNKNOWN_SHARE)
    except (AttributeError, ValueError, OSError):
        return None


def address_space_headroom() -> int | None:
    """Bytes left under ``RLIMIT_AS`` above what the process maps now, or None without a
    limit (or where it cannot be read)."""
    try:
        import resource
    except ImportError:                    # not POSIX
        return None
    try:
        soft, _hard = resource.getrlimit(resource.RLIMIT_AS)
    except (OSError, ValueError):
        return None
    if soft == resource.RLIM_INFINITY or soft < 0:
        return None
    used = _vm_size()
    return None if used is None else max(0, soft - used)


def _vm_size() -> int | None:
    """Bytes of address space the process maps now (``VmSize``)."""
    try:
        with open("/proc/self/status", "rb") as f:
            for line in f:
                if line.startswith(b"VmSize:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def cgroup_headroom(proc_cgroup: str | Path = "/proc/self/cgroup",
                    roots_v2: tuple[str, ...] = _CGROUP_ROOTS_V2,
                    root_v1: str = _CGROUP_ROOT_V1) -> int | None:
    """Bytes this process's control group (and every group above it) still allows, or None
    when no group sets a limit. A limit applies to the whole subtree, so the tightest of the
    group and its ancestors counts."""
    try:
        lines = Path(proc_cgroup).read_text().splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    found: list[int] = []
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _num, controllers, rel = parts
        rel = rel.strip().lstrip("/")
        if controllers == "":
            for root in roots_v2:
                found += _headrooms(Path(root), rel, "memory.max", "memory.current",
                                    "inactive_file")
        elif "memory" in controllers.split(","):
            found += _headrooms(Path(root_v1), rel, "memory.limit_in_bytes",
                                "memory.usage_in_bytes", "total_inactive_file")
    return min(found) if found else None


def _headrooms(root: Path, rel: str, limit_file: str, usage_file: str,
               reclaimable_key: str) -> list[int]:
    """Limit less usage of the group ``root/rel`` and of each group above it up to ``root``.
    A group whose folder is not visible (another namespace) is skipped."""
    out = []
    group = root / rel if rel else root
    while True:
        limit = _read_number(group / limit_file)
        if limit is not None and limit < _NO_LIMIT:
            usage = _read_number(group / usage_file) or 0
            usage -= _stat_value(group / "memory.stat", reclaimable_key)
            out.append(max(0, limit - max(0, usage)))
        if group == root or root not in group.parents:
            return out
        group = group.parent


def _read_number(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except (OSError, UnicodeDecodeError):
        return None
    if text == "max":
        return None
    try:
        return int(text)
    except ValueError:
        return None


def _stat_value(path: Path, key: str) -> int:
    try:
        for line in path.read_text().splitlines():
            name, _, value = line.partition(" ")
            if name == key:
                return int(value)
    except (OSError, UnicodeDecodeError, ValueError):
        pass
    return 0


def available_memory() -> int | None:
    """Bytes this process can allocate now without swapping: the least of the system's
    available memory, the address-space limit's headroom and the control group's headroom;
    None when none of them is known."""
    known = [v for v in (system_available(), address_space_headroom(), cgroup_headroom())
             if v is not None]
    return min(known) if known else None


def format_bytes(n: float) -> str:
    """``1.5 GB``, ``340 MB``: sizes in decimal units, as file managers show them."""
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{int(n)} bytes"


def memory_problem(needed: int) -> str | None:
    """Why a decode needing ``needed`` bytes cannot go ahead now, or None when it fits."""
    free = available_memory()
    if free is None or needed <= free:
        return None
    return (f"decoding it needs about {format_bytes(needed)} of memory but only "
            f"{format_bytes(free)} is free; close other programs, or crop or downscale the "
            "image first")


def require_memory(needed: int, what: str) -> None:
    """Raise :class:`NotEnoughMemory` when ``what`` (``"growing 20000×20000 pixels"``), needing
    about ``needed`` bytes, cannot be allocated now. Called before the work allocates."""
    free = available_memory()
    if free is not None and needed > free:
        raise NotEnoughMemory(f"not enough memory for {what}: needs about "
                              f"{format_bytes(needed)}, {format_bytes(free)} available")


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` says an allocation failed: a ``MemoryError``, torch's out-of-memory
    error, its CPU allocator's ``RuntimeError`` or OpenCV's ``Insufficient memory``."""
    if isinstance(exc, MemoryError):
        return True
    if any(t.__name__ == "OutOfMemoryError" for t in type(exc).__mro__):
        return True
    if not (isinstance(exc, RuntimeError) or type(exc).__module__.startswith("cv2")):
        return False
    text = str(exc).lower()
    return any(
        s in text for s in ("can't allocate memory", "cannot allocate memory", "out of memory",
                            "insufficient memory", "failed to allocate"))
