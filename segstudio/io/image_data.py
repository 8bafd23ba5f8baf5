"""What a decoded image is: :class:`ImageData`, the window that turns it into 8 bits, and
:class:`ImageReadError`.

Shared by the readers (:mod:`segstudio.io.images` for Pillow's formats, :mod:`segstudio.io.dicom`
for DICOM), so that neither reader imports the other's module for them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from segstudio.io.decode_memory import memory_problem
from segstudio.io.regular_files import NotRegularFileError, open_regular


class ImageReadError(Exception):
    """An image that cannot be read; ``str(e)`` is ``"<file name>: <reason>"``."""

    def __init__(self, path: str | Path | None, reason: str) -> None:
        self.path = Path(path) if path is not None else None
        self.reason = reason
        name = self.path.name if self.path is not None else "image"
        super().__init__(f"{name}: {reason}")


@dataclass
class ImageData:
    """Decoded pixels and what the viewer needs to know about them."""

    pixels: np.ndarray
    path: Path | None
    format: str
    bit_depth: int
    window: tuple[float, float] | None
    value_range: tuple[float, float]
    notes: list[str] = field(default_factory=list)
    # DICOM only: the file's windows (windowing.WindowPreset, in pixel space) and how stored
    # values became pixels (windowing.ValueMapping), for presets and the pixel readout.
    windows: list = field(default_factory=list)
    mapping: object | None = None
    # Which frame of a multi-frame file (a DICOM cine) these pixels are; None for a file of one.
    frame: int | None = None

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])

    @property
    def is_grey(self) -> bool:
        return self.pixels.ndim == 2

    def _effective_window(self, window: tuple[float, float] | None) -> tuple[float, float] | None:
        if window is not None:
            return window
        if self.window is not None:
            return self.window
        if self.pixels.dtype == np.uint8:
            return None
        return window_from_range(*self.value_range)

    def to_grey8(self, window: tuple[float, float] | None = None) -> np.ndarray:
        """H×W uint8: the pixels windowed to 8 bits, colour reduced by ITU-R 601 luma."""
        win = self._effective_window(window)
        px = self.pixels
        if not self.is_grey:
            px = px.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
            if win is None:
                return np.clip(np.rint(px), 0, 255).astype(np.uint8)
        if win is None:
            return px
        return apply_window(px, *win)

    def to_rgb8(self, window: tuple[float, float] | None = None) -> np.ndarray:
        """H×W×3 uint8 for display and for the model (the same conversion for both)."""
        win = self._effective_window(window)
        px = self.pixels if win is None else apply_window(self.pixels, *win)
        if px.ndim == 2:
            px = np.repeat(px[:, :, None], 3, axis=2)
        return np.ascontiguousarray(px)


def window_from_range(lo: float, hi: float) -> tuple[float, float]:
    """The window that spans ``lo … hi`` exactly (width at least 1)."""
    return ((float(lo) + float(hi)) / 2.0, max(float(hi) - float(lo), 1.0))


def apply_window(pixels: np.ndarray, centre: float, width: float) -> np.ndarray:
    """Map ``centre ± width/2`` linearly onto 0…255 (clipped) and return uint8."""
    width = float(width)
    if not np.isfinite(width) or width <= 0:
        raise ValueError(f"window width must be positive, got {width}")
    lo = np.float32(float(centre) - width / 2.0)
    scale = np.float32(255.0 / width)
    pixels = np.asarray(pixels)
    if pixels.ndim == 0:
        pixels = pixels.reshape(1)
        return _window_part(pixels, lo, scale).reshape(())
    # In bands of rows: the float32 working copy of a big 16-bit picture would be 4× its size.
    out = np.empty(pixels.shape, np.uint8)
    rows = max(1, _WINDOW_BAND // max(1, pixels[0].size))
    for y in range(0, pixels.shape[0], rows):
        out[y:y + rows] = _window_part(pixels[y:y + rows], lo, scale)
    return out


_WINDOW_BAND = 4_000_000   # values windowed at a time


def _window_part(pixels: np.ndarray, lo: np.float32, scale: np.float32) -> np.ndarray:
    part = pixels.astype(np.float32)
    part -= lo
    part *= scale
    np.clip(part, 0.0, 255.0, out=part)
    return np.rint(part).astype(np.uint8)


def check_pixel_count(path: Path, width: int, height: int, max_pixels: int) -> None:
    """Refuse a picture too large to decode safely, before any pixel is decoded."""
    if width <= 0 or height <= 0:
        raise ImageReadError(path, f"the header claims an empty image ({width}×{height})")
    if width * height > max_pixels:
        raise ImageReadError(
            path,
            f"the header claims {width}×{height} pixels, more than the limit of {max_pixels:,}; "
            "crop or downscale it first (or raise the limit if the size is genuine)",
        )


def check_memory(path: Path, needed: int) -> None:
    """Refuse a decode that needs more memory than the machine has free (see decode_memory)."""
    problem = memory_problem(needed)
    if problem is not None:
        raise ImageReadError(path, problem)


def open_image_file(path: Path):
    """``path`` opened for reading as a binary file, refused by name unless it is a regular
    file (a pipe would block for ever): the first step of every image reader."""
    try:
        return open_regular(path)
    except FileNotFoundError:
        raise ImageReadError(path, "the file does not exist") from None
    except NotRegularFileError as e:
        raise ImageReadError(path, e.reason) from None
    except OSError as e:
        raise ImageReadError(path, f"cannot open the file ({e.strerror or e})") from None
