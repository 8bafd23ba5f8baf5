"""A 'faststart' MP4 (index before the data) written by OpenCV, and the same file cut short."""

from __future__ import annotations

import struct
from pathlib import Path

import cv2
import numpy as np

SIZE = (64, 48)


def frame_picture(i: int) -> np.ndarray:
    """BGR frame ``i``: a grey level that changes every frame, with its number written on it."""
    frame = np.full((SIZE[1], SIZE[0], 3), (i * 7) % 256, np.uint8)
    cv2.putText(frame, str(i), (2, 30), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (255, 255, 255), 2)
    return frame


def write_mp4(path: Path, frames: int = 250) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25.0, SIZE)
    assert writer.isOpened(), "OpenCV cannot write mp4v here"
    for i in range(frames):
        writer.write(frame_picture(i))
    writer.release()
    _faststart(path)
    return path


def cut(path: Path, out: Path, keep: float = 0.5) -> Path:
    data = path.read_bytes()
    out.write_bytes(data[:int(len(data) * keep)])
    return out


def _boxes(data, start, end):
    pos = start
    while pos + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, pos)
        head = 8
        if size == 1:
            size, head = struct.unpack_from(">Q", data, pos + 8)[0], 16
        elif size == 0:
            size = end - pos
        yield kind, pos, size, head
        pos += size


def _faststart(path: Path) -> None:
    """Move the 'moov' index in front of the 'mdat' data, shifting the chunk offsets."""
    data = bytearray(path.read_bytes())
    top = [(k, p, s) for k, p, s, _ in _boxes(data, 0, len(data))]
    kinds = [k for k, _, _ in top]
    if kinds.index(b"moov") < kinds.index(b"mdat"):
        return
    _, mp, ms = next(t for t in top if t[0] == b"moov")
    moov = bytearray(data[mp:mp + ms])
    _shift_offsets(moov, 8, len(moov), ms)
    out = bytearray()
    for kind, p, s in top:
        if kind == b"mdat":
            out += moov
        if kind != b"moov":
            out += data[p:p + s]
    path.write_bytes(bytes(out))


def _shift_offsets(buf: bytearray, start: int, end: int, by: int) -> None:
    for kind, p, s, h in _boxes(buf, start, end):
        if kind in (b"trak", b"mdia", b"minf", b"stbl"):
            _shift_offsets(buf, p + h, p + s, by)
        elif kind in (b"stco", b"co64"):
            fmt, width = (">I", 4) if kind == b"stco" else (">Q", 8)
            count = struct.unpack_from(">I", buf, p + 12)[0]
            for i in range(count):
                at = p + 16 + width * i
                struct.pack_into(fmt, buf, at, struct.unpack_from(fmt, buf, at)[0] + by)
