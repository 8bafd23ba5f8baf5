"""Pillow pictures to numpy arrays, within a known memory budget and under the app's own limit.

:func:`open_header` identifies a picture and reads its header the way ``Image.open`` does, but
without Pillow's decompression-bomb check: the readers apply the app's pixel limit (which is
larger than Pillow's default) themselves, and Pillow's module-wide limit is never lifted, so
code elsewhere that relies on it keeps its protection even while a large picture is opened.

The conversions copy strip by strip into one preallocated array, so a decode needs Pillow's
own pixels plus the result, never the full-size ``tobytes`` and conversion copies in between;
:func:`decode_bytes` is that need, estimated from the header before anything is decoded.
"""

from __future__ import annotations

import struct
from typing import BinaryIO, Callable, Iterator

import numpy as np
from PIL import Image, UnidentifiedImageError

STRIP_PIXELS = 4_000_000  # large pictures are copied to numpy in strips of about this size
EXIF_ORIENTATION = 0x0112

# Bytes per pixel of Pillow's own storage for each mode, and of the array made from it.
_CORE_BYTES = {"1": 1, "L": 1, "P": 1, "I;16": 2, "I;16L": 2, "I;16B": 2, "I;16N": 2}
_ARRAY_BYTES = {"1": 1, "L": 1, "LA": 1, "La": 1, "I;16": 2, "I;16L": 2, "I;16B": 2, "I;16N": 2,
                "I": 8, "F": 4}   # "I" may need int32 and then float32; colour modes are RGB


def open_header(f: BinaryIO) -> Image.Image:
    """The picture in ``f``, identified and its header read; no pixel is decoded yet.

    Raises ``UnidentifiedImageError`` when no format fits. The caller must check the size
    against its own limit before loading: Pillow's bomb check is deliberately not applied.
    """
    f.seek(0)
    prefix = f.read(16)
    tried: set[str] = set()
    for register in (Image.preinit, Image.init):
        register()
        for fmt in list(Image.ID):
            if fmt in tried or fmt not in Image.OPEN:
                continue
            tried.add(fmt)
            factory, accept = Image.OPEN[fmt]
            verdict = accept(prefix) if accept else True
            if not verdict or isinstance(verdict, str):
                continue
            f.seek(0)
            try:
                return factory(f, "")
            except (SyntaxError, IndexError, TypeError, struct.error):
                continue  # as Image.open does: not this format after all
    raise UnidentifiedImageError("cannot identify image file")


def orientation_of(im: Image.Image, *, loaded: bool) -> int | None:
    """The EXIF orientation tag, or None. Before ``load()`` a PNG whose eXIf chunk follows
    the pixels says None (reading it would decode the picture); ask again after loading."""
    if not loaded and im.format == "PNG" and "exif" not in im.info:
        return None
    try:
        value = im.getexif().get(EXIF_ORIENTATION)
    except Exception:  # noqa: BLE001 - damaged EXIF is no orientation
        return None
    return value if isinstance(value, int) else None


def needs_transpose(orientation: int | None) -> bool:
    return orientation is not None and 2 <= orientation <= 8


def decode_bytes(im: Image.Image, *, transpose: bool = False,
                 array_bytes: int | None = None) -> int:
    """Peak bytes :func:`pixels_of` (plus an EXIF transpose) needs for ``im``, from its header;
    ``array_bytes`` per pixel of the result when the caller makes something else of it."""
    px = im.width * im.height
    core = px * _CORE_BYTES.get(im.mode, 4)
    array = px * (array_bytes or _ARRAY_BYTES.get(im.mode, 3))
    strip = min(px, max(STRIP_PIXELS, im.width)) * 8
    return core * (2 if transpose else 1) + array + strip


def strips(im: Image.Image) -> Iterator[tuple[int, int, Image.Image]]:
    """``(y0, y1, part)`` covering ``im`` top to bottom in parts of about STRIP_PIXELS."""
    rows = max(1, STRIP_PIXELS // max(1, im.width))
    if rows >= im.height:
        yield 0, im.height, im
        return
    for y in range(0, im.height, rows):
        y1 = min(im.height, y + rows)
        yield y, y1, im.crop((0, y, im.width, y1))


def copy_in_strips(im: Image.Image, shape: tuple[int, ...], dtype,
                   convert: Callable[[Image.Image], np.ndarray] = np.asarray) -> np.ndarray:
    """A new writable array of ``shape``, filled strip by strip with ``convert(part)``."""
    out = np.empty(shape, dtype)
    for y0, y1, part in strips(im):
        out[y0:y1] = convert(part)
    return out


def pixels_of(im: Image.Image, notes: list[str]) -> tuple[np.ndarray, int]:
    """A loaded Pillow image → (H×W or H×W×3 array, bit depth); alpha composited on black."""
    mode, h, w = im.mode, im.height, im.width
    if mode in ("P", "PA"):
        has_alpha = mode == "PA" or "transparency" in im.info or (
            im.palette is not None and im.palette.mode == "RGBA")
        if mode == "P":
            notes.append("palette image expanded to RGB")
        if has_alpha:
            return _composited(im, "RGBA", notes), 8
        return copy_in_strips(im, (h, w, 3), np.uint8, lambda p: np.asarray(p.convert("RGB"))), 8
    if mode == "1":
        return copy_in_strips(im, (h, w), np.uint8, lambda p: np.asarray(p.convert("L"))), 8
    if mode == "L":
        return copy_in_strips(im, (h, w), np.uint8), 8
    if mode in ("LA", "La", "RGBA", "RGBa"):
        return _composited(im, "LA" if mode.startswith("L") else "RGBA", notes), 8
    if mode.startswith("I;16"):
        return copy_in_strips(im, (h, w), np.uint16), 16
    if mode == "I":
        arr = copy_in_strips(im, (h, w), np.int32)
        if arr.size and (arr.min() < 0 or arr.max() > 65535):
            notes.append("32-bit integer pixels shown as floating point")
            return arr.astype(np.float32), 32
        return arr.astype(np.uint16), 16
    if mode == "F":
        arr = copy_in_strips(im, (h, w), np.float32)
        if not np.isfinite(arr).all():
            notes.append("non-finite pixel values replaced by 0")
            np.nan_to_num(arr, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
        return arr, 32
    if mode != "RGB":
        notes.append(f"{mode} colour converted to RGB")
        return copy_in_strips(im, (h, w, 3), np.uint8, lambda p: np.asarray(p.convert("RGB"))), 8
    return copy_in_strips(im, (h, w, 3), np.uint8), 8


def _composited(im: Image.Image, mode: str, notes: list[str]) -> np.ndarray:
    """Colour × alpha (on black), rounded, strip by strip; notes whether any alpha was < 255."""
    grey = mode == "LA"
    out = np.empty((im.height, im.width) if grey else (im.height, im.width, 3), np.uint8)
    translucent = False
    for y0, y1, part in strips(im):
        arr = np.asarray(part.convert(mode)).astype(np.uint16)
        colour, alpha = arr[..., :-1], arr[..., -1:]
        translucent = translucent or bool((alpha < 255).any())
        done = ((colour * alpha + 127) // 255).astype(np.uint8)
        out[y0:y1] = done[..., 0] if grey else done
    notes.append("alpha channel composited on black" if translucent
                 else "alpha channel dropped (fully opaque)")
    return out
