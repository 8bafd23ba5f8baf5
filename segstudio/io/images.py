"""Read any supported image file into pixels plus the facts needed to show it honestly.

PNG, JPEG, TIFF and BMP go through Pillow (OpenCV only for 16-bit colour, which Pillow narrows
to 8 bits); DICOM goes through :mod:`segstudio.io.dicom`. Every failure, whatever library it came
from, surfaces as :class:`ImageReadError` naming the file and what to do about it.

Before any pixel is decoded the reader knows it is a regular file (a pipe would block for ever),
that the header's size is within ``max_pixels`` and that the decode fits in the memory that is
free; the decode itself peaks near twice the decoded array (see :mod:`.pillow_pixels`).

The one conversion to 8 bits for display and for the models is :func:`apply_window`: a window
``(centre, width)`` maps ``centre - width/2 … centre + width/2`` linearly onto ``0 … 255``,
clipping outside it.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from segstudio.io.decode_memory import format_bytes
from segstudio.io.image_data import (ImageData, ImageReadError, apply_window,  # noqa: F401
                                    check_memory, check_pixel_count, open_image_file,
                                    window_from_range)
from segstudio.io.pillow_pixels import (
    decode_bytes,
    needs_transpose,
    open_header,
    orientation_of,
    pixels_of,
)
from segstudio.io.regular_files import open_regular

DICOM_SUFFIXES = frozenset({".dcm", ".dicom", ".dic"})
IMAGE_SUFFIXES: frozenset[str] = frozenset(
    {".png", ".jpg", ".jpeg", ".jpe", ".tif", ".tiff", ".bmp", ".dib"} | DICOM_SUFFIXES
)
DEFAULT_MAX_PIXELS = 20_000 * 20_000

_FORMAT_NAMES = {"PNG": "PNG", "JPEG": "JPEG", "MPO": "JPEG", "TIFF": "TIFF", "BMP": "BMP",
                 "DIB": "BMP"}


def is_image_path(path: str | Path) -> bool:
    """True when the file name has a suffix segstudio reads as an image."""
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def read_image(path: str | Path, *, max_pixels: int = DEFAULT_MAX_PIXELS,
               frame: int | None = None) -> ImageData:
    """Read an image file; refuse one whose header claims more than ``max_pixels`` pixels, or
    more memory than the machine has free, and anything but a regular file (a pipe named
    ``a.png`` would block forever). ``frame`` picks one frame (from 0) of a multi-frame DICOM;
    other files hold one picture, and only frame 0 of them can be asked for."""
    path = Path(path)
    f = open_image_file(path)
    with f:
        try:
            size = os.fstat(f.fileno()).st_size
            head = f.read(132)
        except OSError as e:
            raise ImageReadError(path, f"cannot read the file ({e.strerror or e})") from None
        if size == 0:
            raise ImageReadError(path, "the file is empty (0 bytes); it was probably not saved "
                                 "completely")
        if _looks_like_dicom(path, head):
            from segstudio.io.dicom import read_dicom

            return read_dicom(path, max_pixels=max_pixels, frame=frame)
        if frame:
            raise ImageReadError(path, f"frame {frame + 1} was asked for, but only a "
                                 "multi-frame DICOM file holds frames")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            image = _read_with_pillow(path, f, head, size, max_pixels)
    # Pillow warns about tolerable defects (corrupt EXIF, odd chunks); they become notes.
    image.notes.extend(str(w.message).strip() for w in caught[:3])
    return image


def picture_size(path: str | Path) -> tuple[int, int] | None:
    """``(width, height)`` from the header of a regular image file, decoding nothing; None
    when the file cannot tell (DICOM, unreadable, not a regular file)."""
    try:
        with open_regular(path) as f:
            head = f.read(132)
            if _looks_like_dicom(Path(path), head):
                return None
            with open_header(f) as im:
                return im.width, im.height
    except Exception:  # noqa: BLE001 - any failure means "unknown"; read_image says why
        return None


def _looks_like_dicom(path: Path, head: bytes) -> bool:
    if head[128:132] == b"DICM" or path.suffix.lower() in DICOM_SUFFIXES:
        return True
    # Raw DICOM without the 128-byte preamble starts with a group 0x0002 or 0x0008 tag.
    return len(head) >= 8 and head[:2] in (b"\x02\x00", b"\x08\x00") and head[3:4] == b"\x00"


def _read_with_pillow(path: Path, f: BinaryIO, head: bytes, size: int,
                      max_pixels: int) -> ImageData:
    try:
        im = open_header(f)
    except UnidentifiedImageError:
        raise ImageReadError(path, _unidentified_reason(head)) from None
    except Exception as e:  # noqa: BLE001 - see _decode_reason
        raise ImageReadError(path, _decode_reason(e, header=True)) from None
    with im:
        fmt = _FORMAT_NAMES.get(im.format or "", im.format or "unknown")
        check_pixel_count(path, im.width, im.height, max_pixels)
        notes: list[str] = []
        needed = None
        try:
            frames = int(getattr(im, "n_frames", 1))
            if frames > 1:
                im.seek(0)
                notes.append(f"multi-page {fmt}: showing page 1 of {frames}")
            if fmt in ("PNG", "TIFF") and _is_16bit_colour(im, head):
                return _read_16bit_colour(path, f, im, size, fmt, notes)
            turn = needs_transpose(orientation_of(im, loaded=False))
            needed = decode_bytes(im, transpose=turn)
            check_memory(path, needed)
            im.load()
            im = _apply_orientation(im, notes)
            pixels, bit_depth = pixels_of(im, notes)
        except ImageReadError:
            raise
        except Exception as e:  # noqa: BLE001 - see _decode_reason
            raise ImageReadError(path, _decode_reason(e, needed=needed)) from None
    return _image_data(pixels, path, fmt, bit_depth, notes)


def _apply_orientation(im: Image.Image, notes: list[str]) -> Image.Image:
    """Turn the picture the way its EXIF orientation says; only a tag other than 1 costs a copy."""
    orientation = orientation_of(im, loaded=True)
    if orientation is None or orientation == 1:
        return im
    if not needs_transpose(orientation):
        notes.append(f"EXIF orientation {orientation} is not a valid value and was ignored")
        return im
    turned = ImageOps.exif_transpose(im)
    notes.append(f"EXIF orientation {orientation} applied")
    im.close()   # the unturned pixels are no longer needed
    return turned


def _image_data(pixels: np.ndarray, path: Path | None, fmt: str, bit_depth: int,
                notes: list[str]) -> ImageData:
    pixels = np.ascontiguousarray(pixels)
    lo, hi = (float(pixels.min()), float(pixels.max())) if pixels.size else (0.0, 0.0)
    window = None if pixels.dtype == np.uint8 else window_from_range(lo, hi)
    return ImageData(pixels, path, fmt, bit_depth, window, (lo, hi), notes)


def _is_16bit_colour(im: Image.Image, head: bytes) -> bool:
    """True for 16-bit-per-channel colour, which Pillow would silently narrow to 8 bits."""
    if im.format == "PNG":
        # IHDR: bit depth at byte 24, colour type at 25 (2 = RGB, 6 = RGBA).
        return len(head) > 25 and head[24] == 16 and head[25] in (2, 6)
    if im.format == "TIFF":
        bits = im.tag_v2.get(258) if hasattr(im, "tag_v2") else None
        spp = im.tag_v2.get(277, 1) if hasattr(im, "tag_v2") else 1
        bits_t = bits if isinstance(bits, tuple) else (bits,)
        return spp >= 3 and 16 in bits_t
    return False


_STRIP_16 = 250_000  # pixels per strip of the 16-bit compositing (float64 temporaries)


def _read_16bit_colour(path: Path, f: BinaryIO, im: Image.Image, size: int, fmt: str,
                       notes: list[str]) -> ImageData:
    """16-bit RGB(A) through OpenCV; the peak is the decoded BGR(A) array plus one strip."""
    import cv2  # only this rare case needs OpenCV

    px = im.width * im.height
    channels = 4 if "A" in im.mode or len(im.getbands()) >= 4 else 3
    # OpenCV's PNG decoder itself peaks near twice its output (it converts internally).
    check_memory(path, size + 2 * px * channels * 2 + _STRIP_16 * 64)
    f.seek(0)
    data = np.frombuffer(f.read(), dtype=np.uint8)
    arr = cv2.imdecode(data, cv2.IMREAD_UNCHANGED | cv2.IMREAD_ANYDEPTH)
    del data
    if arr is None or arr.ndim != 3 or arr.shape[2] not in (3, 4) or arr.dtype != np.uint16:
        raise ImageReadError(path, "the 16-bit colour data could not be decoded; the file may "
                             "be damaged")
    if arr.shape[:2] != (im.height, im.width):
        raise ImageReadError(path, f"the pixel data ({arr.shape[1]}×{arr.shape[0]}) does not "
                             f"match the header ({im.width}×{im.height}); the file is damaged")
    with_alpha = arr.shape[2] == 4
    rgb, translucent = _bgr16_to_rgb_in_place(arr)
    if with_alpha:
        notes.append("alpha channel composited on black" if translucent
                     else "alpha channel dropped (fully opaque)")
    del arr
    return _image_data(rgb, path, fmt, 16, notes)


def _bgr16_to_rgb_in_place(arr: np.ndarray) -> tuple[np.ndarray, bool]:
    """OpenCV's H×W×3|4 BGR(A) uint16 → H×W×3 RGB (alpha composited on black), in the same
    memory: strip by strip the packed RGB is written over pixels already converted, then the
    buffer is shrunk, so the peak is the decoded array plus one strip. Also says whether any
    alpha was below opaque."""
    h, w, channels = arr.shape
    flat = arr.reshape(-1)
    rows = max(1, _STRIP_16 // w)
    translucent = False
    for y in range(0, h, rows):
        part = arr[y:y + rows]
        if channels == 4:
            alpha = part[..., 3:] / 65535.0
            translucent = translucent or bool((alpha < 1).any())
            done = np.rint(part[..., 2::-1] * alpha).astype(np.uint16)
        else:
            done = part[..., ::-1].copy()
        # The packed strip ends where this strip's source began or earlier: nothing unread
        # is overwritten.
        flat[y * w * 3:y * w * 3 + done.size] = done.reshape(-1)
    del flat, part
    try:
        arr.resize((h * w * 3,), refcheck=False)   # frees the alpha's share of the buffer
    except ValueError:                              # not its own buffer: copy out instead
        return arr.reshape(-1)[:h * w * 3].reshape(h, w, 3).copy(), translucent
    return arr.reshape(h, w, 3), translucent


def _unidentified_reason(head: bytes) -> str:
    sample = head[:64]
    if sample and all(b in b"\t\n\r" or 32 <= b < 127 for b in sample):
        return "this is a text file, not an image; check that the right file was chosen"
    return ("not a recognised image format (PNG, JPEG, TIFF, BMP or DICOM are supported); "
            "the file may be damaged or have the wrong extension")


def _decode_reason(e: BaseException, *, header: bool = False, needed: int | None = None) -> str:
    """Explain a decoder failure. Pillow's format plugins report damaged files through many
    exception types (OSError, SyntaxError, struct.error, IndexError, ...), so every exception
    raised while decoding is treated as a property of the file."""
    msg = str(e) or type(e).__name__
    if isinstance(e, Image.DecompressionBombError):
        return f"the image is too large to decode safely ({msg})"
    if "truncated" in msg.lower() or isinstance(e, EOFError):
        return "the image data is cut short (truncated file); copy it again from the source"
    if isinstance(e, MemoryError):        # a valid file the machine could not hold: not damaged
        about = f" (needs about {format_bytes(needed)})" if needed else ""
        return f"not enough memory to decode this image{about}"
    part = "header" if header else "image data"
    return f"the {part} is damaged and cannot be decoded ({msg})"
