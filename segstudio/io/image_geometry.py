"""Where an image's pixels lie in the patient: spacing, orientation and origin, from DICOM.

DICOM describes a slice in the patient coordinate system LPS+ (x towards the patient's Left,
y Posterior, z Superior), in millimetres (PS3.3 C.7.6.2.1.1):

- ``ImageOrientationPatient`` = (X, Y): X is the direction of increasing column index (along a
  row), Y the direction of increasing row index (down a column);
- ``PixelSpacing`` = (between rows, between columns): Y's step first, then X's;
- ``ImagePositionPatient`` = the centre of the first transmitted pixel (row 0, column 0).

So the pixel at column ``i`` and row ``j`` lies at ``IPP + i·Δc·X + j·Δr·Y``. A volume's axes are
(column, row, slice), and its LPS affine has the columns ``Δc·X``, ``Δr·Y``, ``Δs·(X×Y)`` and
``IPP``. NIfTI speaks RAS+ (Right, Anterior, Superior): its affine is ``diag(-1, -1, 1, 1)``
times the LPS one. NRRD keeps LPS and says so (``space: left-posterior-superior``).

A frame of a multi-frame file takes its attributes from the frame's own functional groups
(``PerFrameFunctionalGroupsSequence``: PixelMeasures, PlaneOrientation, PlanePosition), then the
shared ones, then the top level; a classic multi-frame file (an RT dose grid) places frame ``k``
``GridFrameOffsetVector[k] - GridFrameOffsetVector[0]`` mm along the normal from the position.

Where the file says nothing (not DICOM, or the attributes are absent or unusable), 1 mm pixels,
the identity orientation in LPS (columns towards the patient's left, rows towards posterior:
an axial slice seen from the feet, as radiologists view it) and the origin 0 are assumed, and
:attr:`Geometry.assumed` names what was assumed so that the export's manifest can say so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


@dataclass
class Geometry:
    """A one-slice image's place in LPS: ``spacing`` (column, row, slice) in mm, ``axes`` the
    unit vectors of the column, row and slice directions (as columns of a 3×3 array), and
    ``origin`` the centre of pixel (0, 0). ``assumed`` lists what the file did not say."""

    spacing: tuple[float, float, float] = (1.0, 1.0, 1.0)
    axes: np.ndarray = field(default_factory=lambda: np.eye(3))
    origin: np.ndarray = field(default_factory=lambda: np.zeros(3))
    sources: list[str] = field(default_factory=list)
    assumed: list[str] = field(default_factory=list)

    def lps_affine(self) -> np.ndarray:
        """4×4 affine from (column, row, slice) indices to LPS millimetres."""
        affine = np.eye(4)
        affine[:3, :3] = self.axes * np.asarray(self.spacing, float)[None, :]
        affine[:3, 3] = self.origin
        return affine

    def ras_affine(self) -> np.ndarray:
        """The same placement in RAS millimetres, as NIfTI stores it."""
        return LPS_TO_RAS @ self.lps_affine()

    def describe(self) -> dict:
        """The facts for a manifest."""
        return {"space": "LPS (DICOM patient coordinates)",
                "spacing_mm": [float(s) for s in self.spacing],
                "axes_lps": [[float(v) for v in self.axes[:, k]] for k in range(3)],
                "origin_lps_mm": [float(v) for v in self.origin],
                "from_file": list(self.sources), "assumed": list(self.assumed)}


def geometry_of(path: str | Path | None, file_format: str, frame: int | None = None) -> Geometry:
    """The geometry of the image (or of frame ``frame`` of the file) at ``path``: read from its
    DICOM header, assumed otherwise."""
    geo = Geometry()
    header = _dicom_header(path) if file_format == "DICOM" and path is not None else None
    if header is None:
        geo.assumed = ["pixel spacing 1 mm", "orientation identity (LPS)", "origin 0"]
        return geo
    get = _attributes(header, frame)
    spacing, tag = _pixel_spacing(get)
    if spacing is not None:
        geo.spacing = (spacing[1], spacing[0], 1.0)
        geo.sources.append(tag)
    else:
        geo.assumed.append("pixel spacing 1 mm")
    axes = _orientation(get("ImageOrientationPatient"))
    if axes is not None:
        geo.axes = axes
        geo.sources.append("ImageOrientationPatient")
    else:
        geo.assumed.append("orientation identity (LPS)")
    origin = _numbers(get("ImagePositionPatient"), 3)
    if origin is not None:
        geo.origin = np.asarray(origin, float)
        geo.sources.append("ImagePositionPatient")
        offset = _frame_offset(header, frame)
        if offset is not None:
            geo.origin = geo.origin + offset * geo.axes[:, 2]
            geo.sources.append("GridFrameOffsetVector")
    else:
        geo.assumed.append("origin 0")
    for tag in ("SpacingBetweenSlices", "SliceThickness"):
        thickness = _numbers(get(tag), 1)
        if thickness is not None and thickness[0] > 0:
            geo.spacing = (geo.spacing[0], geo.spacing[1], thickness[0])
            geo.sources.append(tag)
            break
    else:
        geo.assumed.append("slice thickness 1 mm")
    return geo


# Where an enhanced multi-frame file keeps each attribute in its functional groups.
_GROUPS = {"PixelSpacing": "PixelMeasuresSequence", "SliceThickness": "PixelMeasuresSequence",
           "SpacingBetweenSlices": "PixelMeasuresSequence",
           "ImageOrientationPatient": "PlaneOrientationSequence",
           "ImagePositionPatient": "PlanePositionSequence"}


def _attributes(header, frame: int | None):
    """A lookup of an attribute for ``frame``: its own functional group, the shared one, then
    the top level of the header."""
    groups = []
    per_frame = header.get("PerFrameFunctionalGroupsSequence")
    if per_frame is not None and frame is not None and 0 <= frame < len(per_frame):
        groups.append(per_frame[frame])
    elif per_frame is not None and frame is None and len(per_frame) == 1:
        groups.append(per_frame[0])
    shared = header.get("SharedFunctionalGroupsSequence")
    if shared:
        groups.append(shared[0])

    def get(name: str):
        sequence = _GROUPS.get(name)
        for group in groups:
            items = group.get(sequence) if sequence else None
            if items and name in items[0]:
                return items[0].get(name)
        return header.get(name)
    return get


def _frame_offset(header, frame: int | None) -> float | None:
    """How far frame ``frame`` of a classic multi-frame grid lies from the first, along the
    normal (GridFrameOffsetVector, PS3.3 C.8.8.3.2)."""
    if not frame or "PerFrameFunctionalGroupsSequence" in header:
        return None
    offsets = header.get("GridFrameOffsetVector")
    try:
        values = [float(v) for v in offsets] if offsets is not None else []
    except (TypeError, ValueError):
        return None
    if frame >= len(values) or not all(math.isfinite(v) for v in values):
        return None
    return values[frame] - values[0]


def _dicom_header(path: str | Path):
    import pydicom

    try:
        return pydicom.dcmread(str(path), stop_before_pixels=True, force=True)
    except Exception:  # noqa: BLE001 - an unreadable header means nothing can be read from it
        return None


def _pixel_spacing(get) -> tuple[tuple[float, float] | None, str]:
    """(row step, column step) in mm: PixelSpacing, else ImagerPixelSpacing (a projection
    radiograph's spacing at the detector)."""
    for tag in ("PixelSpacing", "ImagerPixelSpacing"):
        values = _numbers(get(tag), 2)
        if values is not None and min(values) > 0:
            return (values[0], values[1]), tag
    return None, ""


def _orientation(value) -> np.ndarray | None:
    """The column, row and normal directions from ImageOrientationPatient, when they are two
    unit vectors at right angles (within the rounding DICOM's decimal strings allow)."""
    values = _numbers(value, 6)
    if values is None:
        return None
    x, y = np.asarray(values[:3]), np.asarray(values[3:])
    if abs(np.linalg.norm(x) - 1) > 1e-3 or abs(np.linalg.norm(y) - 1) > 1e-3 \
            or abs(float(x @ y)) > 1e-3:
        return None
    x, y = x / np.linalg.norm(x), y / np.linalg.norm(y)
    return np.stack([x, y, np.cross(x, y)], axis=1)


def _numbers(value, count: int) -> list[float] | None:
    """``count`` finite numbers from a DICOM value (one number or a multi-value), or None."""
    if value is None:
        return None
    try:
        seq = list(value) if not isinstance(value, (str, bytes, int, float)) else [value]
        out = [float(v) for v in seq]
    except (TypeError, ValueError):
        return None
    if len(out) != count or not all(math.isfinite(v) for v in out):
        return None
    return out
