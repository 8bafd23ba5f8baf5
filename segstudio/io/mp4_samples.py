"""Which frames of an MP4/MOV file are really in the file, from its sample table.

A file cut short keeps its header: a "faststart" MP4 (index before the data) cut in half still
lists every frame, and the decoder, given a frame whose data stops at the end of the file,
conceals the damage by showing the previous picture. The sample table says where each frame's
bytes lie, so the frames whose data (or the data of a frame decoded before them) is past the end
of the file are known before any is decoded; :mod:`segstudio.io.video` refuses those.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import BinaryIO, Iterator

import numpy as np

from segstudio.io.regular_files import open_regular

_MAX_MOOV = 256 * 1024 * 1024    # a larger index is not examined (and nothing is refused)
_MAX_SAMPLES = 50_000_000        # more frames than this is a damaged table, not a video


def missing_frames(path: str | Path) -> np.ndarray | None:
    """Sorted presentation indices of the video frames that cannot be decoded from the file,
    or None when the file is not an MP4/MOV with a readable sample table (nothing is known)."""
    try:
        with open_regular(path) as f:
            size = f.seek(0, 2)
            moov = _top_level_box(f, size, b"moov")
        table = None if moov is None else _video_table(moov)
        return None if table is None else _missing(moov, table, size)
    except (OSError, struct.error, ValueError, IndexError, MemoryError):
        return None


def _boxes(data: bytes, start: int, end: int) -> Iterator[tuple[bytes, int, int]]:
    """``(type, payload start, box end)`` of the boxes in ``data[start:end]``."""
    pos = start
    while pos + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, pos)
        head = 8
        if size == 1:
            size, head = struct.unpack_from(">Q", data, pos + 8)[0], 16
        elif size == 0:
            size = end - pos
        if size < head or pos + size > end:
            raise ValueError("damaged box")
        yield kind, pos + head, pos + size
        pos += size


def _top_level_box(f: BinaryIO, file_size: int, wanted: bytes) -> bytes | None:
    pos = 0
    while pos + 8 <= file_size:
        f.seek(pos)
        head = f.read(16)
        size, kind = struct.unpack_from(">I4s", head)
        hlen = 8
        if size == 1:
            size, hlen = struct.unpack_from(">Q", head, 8)[0], 16
        elif size == 0:
            size = file_size - pos
        if size < hlen:
            return None
        if kind == wanted:
            if size > _MAX_MOOV or pos + size > file_size:
                return None
            f.seek(pos)
            return f.read(size)
        pos += size
    return None


def _children(data: bytes, start: int, end: int) -> dict[bytes, tuple[int, int]]:
    return {kind: (a, b) for kind, a, b in _boxes(data, start, end)}


def _video_table(moov: bytes) -> dict[bytes, tuple[int, int]] | None:
    """The sample-table boxes (stsz, stco/co64, stsc, stts, ctts) of the first video track."""
    for kind, a, b in _boxes(moov, 8, len(moov)):
        if kind != b"trak":
            continue
        mdia = _children(moov, a, b).get(b"mdia")
        if mdia is None:
            continue
        parts = _children(moov, *mdia)
        hdlr, minf = parts.get(b"hdlr"), parts.get(b"minf")
        if hdlr is None or minf is None or moov[hdlr[0] + 8:hdlr[0] + 12] != b"vide":
            continue
        stbl = _children(moov, *minf).get(b"stbl")
        if stbl is None:
            return None
        return _children(moov, *stbl)
    return None


def _missing(data: bytes, table: dict, file_size: int) -> np.ndarray | None:
    sizes = _sample_sizes(data, table.get(b"stsz"))
    offsets = _chunk_offsets(data, table.get(b"stco"), table.get(b"co64"))
    runs = _entries(data, table.get(b"stsc"), 3)
    if sizes is None or offsets is None or runs is None or not len(sizes):
        return None
    n = len(sizes)
    # Samples per chunk from the stsc runs (each run lasts until the next run's first chunk).
    firsts = np.clip(runs[:, 0], 1, len(offsets) + 1)
    lasts = np.append(firsts[1:], len(offsets) + 1)
    per_chunk = _expand(runs[:, 1], np.maximum(lasts - firsts, 0), len(offsets))
    covered = _expand(np.arange(len(per_chunk)), per_chunk, n)     # chunk of each sample
    ends = np.concatenate(([0], np.cumsum(sizes)))           # bytes before each sample
    chunk_first = np.concatenate(([0], np.cumsum(per_chunk)[:-1]))[covered]
    before_in_chunk = ends[:len(covered)] - ends[chunk_first]
    starts = np.full(n, np.iinfo(np.int64).max // 2, np.int64)    # listed, in no chunk: absent
    starts[:len(covered)] = offsets[covered] + before_in_chunk
    beyond = np.nonzero(starts + sizes > file_size)[0]
    if not len(beyond):
        return np.empty(0, np.int64)
    # Decoding runs in file order, so every frame decoded after the first lost one may lean on it.
    first_lost = int(beyond[0])
    order = np.argsort(_presentation_times(data, table, len(sizes)), kind="stable")
    rank = np.empty(len(order), np.int64)
    rank[order] = np.arange(len(order))
    return np.sort(rank[first_lost:])


def _expand(values: np.ndarray, counts: np.ndarray, n: int) -> np.ndarray:
    """The first ``n`` of ``np.repeat(values, counts)``, never allocating much more than ``n``
    (a damaged table may claim billions)."""
    counts = np.clip(counts, 0, n)
    k = int(np.searchsorted(np.cumsum(counts), n)) + 1
    return np.repeat(values[:k], counts[:k])[:n]


def _entries(data: bytes, box, width: int, start: int = 8) -> np.ndarray | None:
    """A full box's table: a count at 4, then ``count`` rows of ``width`` u32 from ``start``."""
    if box is None:
        return None
    a, b = box
    count = struct.unpack_from(">I", data, a + 4)[0]
    if a + start + count * width * 4 > b:
        raise ValueError("damaged table")
    rows = np.frombuffer(data, ">u4", count * width, a + start)
    return rows.reshape(count, width).astype(np.int64)


def _sample_sizes(data: bytes, box) -> np.ndarray | None:
    if box is None:
        return None
    a, b = box
    fixed, count = struct.unpack_from(">II", data, a + 4)
    if count > _MAX_SAMPLES:
        raise ValueError("implausible sample count")
    if fixed:
        return np.full(count, fixed, np.int64)
    if a + 12 + 4 * count > b:
        raise ValueError("damaged stsz")
    return np.frombuffer(data, ">u4", count, a + 12).astype(np.int64)


def _chunk_offsets(data: bytes, stco, co64) -> np.ndarray | None:
    if stco is not None:
        return _entries(data, stco, 1)[:, 0]
    if co64 is not None:
        a, b = co64
        count = struct.unpack_from(">I", data, a + 4)[0]
        if a + 8 + 8 * count > b:
            raise ValueError("damaged co64")
        return np.frombuffer(data, ">u8", count, a + 8).astype(np.int64)
    return None


def _presentation_times(data: bytes, table: dict, n: int) -> np.ndarray:
    """Decode times from stts plus the composition offsets of ctts (frame reordering)."""
    stts = _entries(data, table.get(b"stts"), 2)
    if stts is None or not len(stts):
        return np.arange(n, dtype=np.int64)
    deltas = _expand(stts[:, 1], stts[:, 0], n)
    deltas = np.concatenate((deltas, np.ones(max(0, n - len(deltas)), np.int64)))
    times = np.concatenate(([0], np.cumsum(deltas[:-1])))
    ctts = table.get(b"ctts")
    if ctts is not None:
        rows = _entries(data, ctts, 2)
        shifts = _expand(rows[:, 1].astype(np.uint32).view(np.int32).astype(np.int64),
                         rows[:, 0], n)
        times[:len(shifts)] += shifts
    return times
