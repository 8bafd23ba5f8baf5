"""Read any supported image file into pixels plus the facts needed to show it honestly.

PNG, JPEG, TIFF and BMP go through Pillow (OpenCV only for 16-bit colour, which Pillow narrows
to 8 bits); DICOM goes through :mod:`segstudio.io.dicom`. Every failure, whatever library it came
from, surfaces as :class:`ImageReadError` naming the file and what to do about it.

The one conversion to 8 bits for display and for the models is :func:`apply_window`: a window
``(centre, width)`` maps ``centre - width/2 … centre + width/2`` linearly onto ``0 … 255``,
clipping outside it.
"""

from __future__ import annotations

import threading
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from segstudio.io.image_data import (ImageData, ImageReadError, apply_window,  # noqa: F401
                                    check_pixel_count, window_from_range)

DICOM_SUFFIXES = frozenset({".dcm", ".dicom", ".dic"})
IMAGE_SUFFIXES: frozenset[str] = frozenset(
    {".png", ".jpg", ".jpeg", ".jpe", ".tif", ".tiff", ".bmp", ".dib"} | DICOM_SUFFIXES
)
DEFAULT_MAX_PIXELS = 20_000 * 20_000

_FORMAT_NAMES = {"PNG": "PNG", "JPEG": "JPEG", "MPO": "JPEG", "TIFF": "TIFF", "BMP": "BMP",
                 "DIB": "BMP"}
# Pillow's bomb limit is a module global; it is lifted only while a header is read.
_PILLOW_LIMIT_LOCK = threading.Lock()


def is_image_path(path: str | Path) -> bool:
    """True when the file name has a suffix segstudio reads as an image."""
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def read_image(path: str | Path, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> ImageData:
    """Read an image file; refuse one whose header claims more than ``max_pixels`` pixels."""
    path = Path(path)
    try:
        if not path.exists():
            raise ImageReadError(path, "the file does not exist")
        if path.is_dir():
            raise ImageReadError(path, "this is a folder, not an image file")
        size = path.stat().st_size
        with path.open("rb") as f:
            head = f.read(132)
    except ImageReadError:
        raise
    except OSError as e:
        raise ImageReadError(path, f"cannot open the file ({e.strerror or e})") from None
    if size == 0:
        raise ImageReadError(path, "the file is empty (0 bytes); it was probably not saved "
                             "completely")
    if _looks_like_dicom(path, head):
        from segstudio.io.dicom import read_dicom

        return read_dicom(path, max_pixels=max_pixels)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        image = _read_with_pillow(path, head, max_pixels)
    # Pillow warns about tolerable defects (corrupt EXIF, odd chunks); they become notes.
    image.notes.extend(str(w.message).strip() for w in caught[:3])
    return image


def _looks_like_dicom(path: Path, head: bytes) -> bool:
    if head[128:132] == b"DICM" or path.suffix.lower() in DICOM_SUFFIXES:
        return True
    # Raw DICOM without the 128-byte preamble starts with a group 0x0002 or 0x0008 tag.
    return len(head) >= 8 and head[:2] in (b"\x02\x00", b"\x08\x00") and head[3:4] == b"\x00"


def _read_with_pillow(path: Path, head: bytes, max_pixels: int) -> ImageData:
    try:
        # Pillow's own limit is lifted only while the header is parsed (nothing is decoded
        # yet); check_pixel_count below applies ours, with a message that names the size.
        with _PILLOW_LIMIT_LOCK:
            old_limit = Image.MAX_IMAGE_PIXELS
            Image.MAX_IMAGE_PIXELS = None
            try:
                im = Image.open(path)
            finally:
                Image.MAX_IMAGE_PIXELS = old_limit
    except Image.DecompressionBombError:
        raise ImageReadError(
            path, f"the header claims more than {max_pixels:,} pixels; crop or downscale it first"
        ) from None
    except UnidentifiedImageError:
        raise ImageReadError(path, _unidentified_reason(head)) from None
    except Exception as e:  # noqa: BLE001 - see _decode_reason
        raise ImageReadError(path, _decode_reason(e, header=True)) from None
    with im:
        fmt = _FORMAT_NAMES.get(im.format or "", im.format or "unknown")
        check_pixel_count(path, im.width, im.height, max_pixels)
        notes: list[str] = []
        try:
            frames = int(getattr(im, "n_frames", 1))
            if frames > 1:
                im.seek(0)
                notes.append(f"multi-page {fmt}: showing page 1 of {frames}")
            if fmt in ("PNG", "TIFF") and _is_16bit_colour(im, head):
                return _read_16bit_colour(path, fmt, notes, max_pixels)
            im.load()
            oriented = ImageOps.exif_transpose(im)
            if oriented is not None and oriented is not im:
                orientation = im.getexif().get(0x0112)
                notes.append(f"EXIF orientation {orientation} applied")
                im = oriented
            pixels, bit_depth = _to_array(im, notes)
        except ImageReadError:
            raise
        except Exception as e:  # noqa: BLE001 - see _decode_reason
            raise ImageReadError(path, _decode_reason(e)) from None
    return _image_data(pixels, path, fmt, bit_depth, notes)


def _image_data(pixels: np.ndarray, path: Path | None, fmt: str, bit_depth: int,
                notes: list[str]) -> ImageData:
    pixels = np.ascontiguousarray(pixels)
    lo, hi = (float(pixels.min()), float(pixels.max())) if pixels.size else (0.0, 0.0)
    window = None if pixels.dtype == np.uint8 else window_from_range(lo, hi)
    return ImageData(pixels, path, fmt, bit_depth, window, (lo, hi), notes)


def _to_array(im: Image.Image, notes: list[str]) -> tuple[np.ndarray, int]:
    """Pillow image → (H×W or H×W×3 array, bit depth); alpha is composited on black."""
    mode = im.mode
    if mode == "P":
        has_alpha = "transparency" in im.info or (
            im.palette is not None and im.palette.mode == "RGBA")
        im = im.convert("RGBA" if has_alpha else "RGB")
        mode = im.mode
        notes.append("palette image expanded to RGB")
    if mode == "PA":
        im = im.convert("RGBA")
        mode = "RGBA"
    if mode == "1":
        return np.asarray(im.convert("L")), 8
    if mode == "L":
        return np.asarray(im), 8
    if mode in ("LA", "La", "RGBA", "RGBa"):
        arr = np.asarray(im.convert("LA" if mode.startswith("L") else "RGBA")).astype(np.uint16)
        colour, alpha = arr[..., :-1], arr[..., -1:]
        out = ((colour * alpha + 127) // 255).astype(np.uint8)
        if (alpha < 255).any():
            notes.append("alpha channel composited on black")
        else:
            notes.append("alpha channel dropped (fully opaque)")
        return (out[..., 0] if out.shape[-1] == 1 else out), 8
    if mode.startswith("I;16"):
        return np.asarray(im).astype(np.uint16), 16
    if mode == "I":
        arr = np.asarray(im)
        if arr.size and (arr.min() < 0 or arr.max() > 65535):
            notes.append("32-bit integer pixels shown as floating point")
            return arr.astype(np.float32), 32
        return arr.astype(np.uint16), 16
    if mode == "F":
        arr = np.asarray(im).astype(np.float32)
        if not np.isfinite(arr).all():
            notes.append("non-finite pixel values replaced by 0")
            arr = np.nan_to_num(arr, nan=0.0, posinf=0.0, neginf=0.0)
        return arr, 32
    if mode != "RGB":
        im = im.convert("RGB")
        notes.append(f"{mode} colour converted to RGB")
    return _rgb_array(im), 8


_STRIP_PIXELS = 4_000_000  # larger pictures are copied to numpy in strips of about this size


def _rgb_array(im: Image.Image) -> np.ndarray:
    """H×W×3 uint8 from an RGB image; large ones strip by strip, because ``np.asarray`` goes
    through a full ``tobytes`` copy that doubles the peak memory of a big picture."""
    if im.width * im.height <= _STRIP_PIXELS:
        return np.asarray(im)
    out = np.empty((im.height, im.width, 3), np.uint8)
    rows = max(1, _STRIP_PIXELS // im.width)
    for y in range(0, im.height, rows):
        out[y:y + rows] = np.asarray(im.crop((0, y, im.width, min(im.height, y + rows))))
    return out


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


def _read_16bit_colour(path: Path, fmt: str, notes: list[str], max_pixels: int) -> ImageData:
    import cv2  # only this rare case needs OpenCV

    data = np.fromfile(path, dtype=np.uint8)
    arr = cv2.imdecode(data, cv2.IMREAD_UNCHANGED | cv2.IMREAD_ANYDEPTH)
    if arr is None or arr.ndim != 3 or arr.shape[2] not in (3, 4):
        raise ImageReadError(path, "the 16-bit colour data could not be decoded; the file may "
                             "be damaged")
    check_pixel_count(path, arr.shape[1], arr.shape[0], max_pixels)
    if arr.shape[2] == 4:
        colour = arr[..., 2::-1].astype(np.float64)
        alpha = arr[..., 3:].astype(np.float64) / 65535.0
        if (alpha < 1).any():
            notes.append("alpha channel composited on black")
        else:
            notes.append("alpha channel dropped (fully opaque)")
        rgb = np.rint(colour * alpha).astype(np.uint16)
    else:
        rgb = arr[..., ::-1]
    return _image_data(rgb.astype(np.uint16), path, fmt, 16, notes)


def _unidentified_reason(head: bytes) -> str:
    sample = head[:64]
    if sample and all(b in b"\t\n\r" or 32 <= b < 127 for b in sample):
        return "this is a text file, not an image; check that the right file was chosen"
    return ("not a recognised image format (PNG, JPEG, TIFF, BMP or DICOM are supported); "
            "the file may be damaged or have the wrong extension")


def _decode_reason(e: BaseException, *, header: bool = False) -> str:
    """Explain a decoder failure. Pillow's format plugins report damaged files through many
    exception types (OSError, SyntaxError, struct.error, IndexError, ...), so every exception
    raised while decoding is treated as a property of the file."""
    msg = str(e) or type(e).__name__
    if isinstance(e, Image.DecompressionBombError):
        return f"the image is too large to decode safely ({msg})"
    if "truncated" in msg.lower() or isinstance(e, EOFError):
        return "the image data is cut short (truncated file); copy it again from the source"
    if isinstance(e, MemoryError):
        return "not enough memory to decode this image"
    part = "header" if header else "image data"
    return f"the {part} is damaged and cannot be decoded ({msg})"
