"""Display windows as radiology viewers offer them, and what a pixel's value means.

A grey image can be looked at through several windows (centre, width): the ones its DICOM file
names, with their explanations (PS3.3 C.11.2: WindowCenter, WindowWidth and
WindowCenterWidthExplanation may each hold several values), the full value range, and an
automatic window between two percentiles of the image's own values. :class:`ValueMapping`
undoes the reader's conversions for the pixel readout: the value stored in the file, the
modality value after RescaleSlope/RescaleIntercept, and the value shown on screen.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from segstudio.io.image_data import ImageData

AUTO_PERCENTILES = (0.5, 99.5)
_SAMPLE_PIXELS = 1_000_000        # the automatic window looks at about this many pixels


@dataclass(frozen=True)
class WindowPreset:
    """A named window; ``kind`` is "file", "full" or "auto"."""

    label: str
    centre: float
    width: float
    kind: str

    @property
    def window(self) -> tuple[float, float]:
        return (self.centre, self.width)


@dataclass(frozen=True)
class ValueMapping:
    """How a DICOM reader turned stored values into the pixels it keeps.

    ``modality = stored × slope + intercept`` and, for MONOCHROME1, ``pixel = mirror −
    modality`` (the reader inverts so that larger means brighter, about the middle of the
    range). ``unit`` is the modality's unit where the file names one (HU for CT)."""

    slope: float = 1.0
    intercept: float = 0.0
    inverted: bool = False
    mirror: float = 0.0
    unit: str = ""

    def modality(self, pixel: float) -> float:
        return self.mirror - pixel if self.inverted else pixel

    def stored(self, pixel: float) -> float:
        value = (self.modality(pixel) - self.intercept) / (self.slope or 1.0)
        return float(np.rint(value)) if abs(value - np.rint(value)) < 1e-3 else value

    def to_pixel(self, modality: float) -> float:
        """A modality value (e.g. a window centre from the file) in the reader's pixel space."""
        return self.mirror - modality if self.inverted else modality


def auto_window(pixels: np.ndarray, low: float = AUTO_PERCENTILES[0],
                high: float = AUTO_PERCENTILES[1]) -> tuple[float, float]:
    """The window from the ``low`` to the ``high`` percentile of the values (width ≥ 1 for
    integer data, ≥ a millionth of the range otherwise); colour is reduced to luma first."""
    px = np.asarray(pixels)
    if px.ndim == 3:
        px = px[..., :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    step = max(1, int(np.ceil(np.sqrt(px.size / _SAMPLE_PIXELS))))
    sample = px[::step, ::step].astype(np.float64).ravel()
    if sample.size == 0:
        return (0.0, 1.0)
    lo, hi = np.percentile(sample, [low, high])
    floor = 1.0 if np.issubdtype(px.dtype, np.integer) else max(float(np.ptp(sample)) * 1e-6,
                                                                  1e-6)
    return (float(lo + hi) / 2.0, max(float(hi - lo), floor))


def presets(image: "ImageData") -> list[WindowPreset]:
    """The windows a viewer offers for ``image``: the file's own (in file order), the full
    value range, and the automatic 0.5–99.5 % window."""
    out = list(image.windows)
    lo, hi = image.value_range
    if image.pixels.dtype == np.uint8:
        lo, hi = 0.0, 255.0
    out.append(WindowPreset(f"Full range ({_num(lo)} to {_num(hi)})", (lo + hi) / 2.0,
                            max(hi - lo, 1.0), "full"))
    c, w = auto_window(image.pixels)
    a, b = AUTO_PERCENTILES
    out.append(WindowPreset(f"Automatic ({a:g}–{b:g} % of the values)", c, w, "auto"))
    return out


def readout(image: "ImageData", x: int, y: int, window: tuple[float, float] | None) -> str:
    """The pixel readout: stored value, modality value and shown value (0–255) of a grey
    DICOM pixel; the value (per channel for colour) and the shown value otherwise."""
    v = image.pixels[y, x]
    if np.ndim(v):
        return "value " + ", ".join(_num(c) for c in v)
    value = float(v)
    shown = ""
    if window is not None:
        c, w = window
        shown = f"   shown {int(np.clip(np.rint((value - (c - w / 2)) * 255.0 / w), 0, 255))}"
    m = image.mapping
    if m is None:
        return f"value {_num(value)}{shown}"
    unit = f" {m.unit}" if m.unit else ""
    return f"stored {_num(m.stored(value))}   modality {_num(m.modality(value))}{unit}{shown}"


def _num(v: float) -> str:
    return f"{float(v):.6g}"
