"""Will a decode fit in memory? Asked from the header, before any pixel is decoded.

A few hundred kilobytes of PNG can claim gigabytes of pixels. The readers estimate what a
decode needs (the decoded array plus the copies the reader makes on the way) and compare it
with the memory the machine has free, so that a picture which cannot fit is refused with a
message instead of pushing the machine into swap or the out-of-memory killer.
"""

from __future__ import annotations

import os

# Used when the free memory cannot be found out (no /proc/meminfo, no sysconf): assume this
# share of the physical memory is free, or refuse nothing when even that is unknown.
_UNKNOWN_SHARE = 0.5


def available_memory() -> int | None:
    """Bytes of memory that can be allocated without swapping, or None when unknown."""
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
