"""Read a DICOM image through pydicom into :class:`~segstudio.io.image_data.ImageData`.

Grey images follow the DICOM display pipeline up to the window: the Modality LUT's linear form
(RescaleSlope, RescaleIntercept) gives float32 values in the modality's units, MONOCHROME1 is
inverted so that larger values are brighter like every other image, and the file's first
WindowCenter/WindowWidth becomes the default window (PS3.3 C.11.2).

A multi-frame file (a cine loop, an MR or ultrasound series in one file) is read one frame at a
time: pydicom decodes only the frame asked for. A workspace makes each frame an item of its own,
as it does for videos (:func:`frame_count`).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from segstudio.io.image_data import (
    ImageData,
    ImageReadError,
    check_memory,
    check_pixel_count,
    open_image_file,
    window_from_range,
)
from segstudio.io.windowing import ValueMapping, WindowPreset

_PLUGIN_HINT = ("convert it to an uncompressed transfer syntax first, or install the decoder "
                "pydicom names for it (pylibjpeg or gdcm)")


def read_dicom(path: str | Path, *, max_pixels: int, frame: int | None = None) -> ImageData:
    """Read one frame of a DICOM file (with or without the 128-byte preamble): ``frame``
    (from 0), or the first one with a note saying so when the file holds several."""
    path = Path(path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        image = _read(path, max_pixels, frame)
    # pydicom warns about tolerable defects (unknown character sets, odd lengths); the viewer
    # shows them as notes instead of printing them.
    image.notes.extend(f"DICOM: {w.message}" for w in caught[:3])
    return image


def frame_count(path: str | Path) -> int:
    """How many frames the DICOM file ``path`` holds, from its header alone (no pixel data is
    read); 1 when the header does not say or cannot be read (reading the image will say why)."""
    try:
        with open_image_file(Path(path)) as f:
            head = b""
            while len(head) < _HEADER_PROBE_BYTES:
                chunk = f.read(max(4096, len(head)))
                head += chunk
                if any(tag in head for tag in _FRAMES_TAGS) or not chunk:
                    break
                if any(tag in head for tag in _PIXEL_DATA_TAGS):
                    return 1    # the whole header went by without a NumberOfFrames
            import pydicom

            f.seek(0)
            ds = pydicom.dcmread(f, force=True, stop_before_pixels=True,
                                 specific_tags=["NumberOfFrames"])
        return max(1, int(ds.get("NumberOfFrames", 1) or 1))
    except Exception:  # noqa: BLE001 - a damaged header is reported when the image is read
        return 1


# Opening a folder asks every DICOM file for its frame count: most headers are read as bytes,
# and only those that mention NumberOfFrames (0028,0008), or whose pixel data (7FE0,0010) does
# not begin within the first bytes (long or deflated headers), are parsed by pydicom.
_HEADER_PROBE_BYTES = 64 * 1024
_FRAMES_TAGS = (b"\x28\x00\x08\x00", b"\x00\x28\x00\x08")     # little- and big-endian
_PIXEL_DATA_TAGS = (b"\xe0\x7f\x10\x00", b"\x7f\xe0\x00\x10")


def _read(path: Path, max_pixels: int, frame: int | None) -> ImageData:
    import pydicom
    from pydicom.errors import InvalidDicomError

    # pydicom signals a malformed file through many exception types (its own, struct, value,
    # key, index errors); any failure while parsing is a property of the file.
    f = open_image_file(path)
    try:
        with f:
            ds = pydicom.dcmread(f, force=True)
    except InvalidDicomError as e:
        raise ImageReadError(path, f"not a valid DICOM file ({e})") from None
    except Exception as e:  # noqa: BLE001 - see comment above
        raise ImageReadError(path, f"the DICOM file is damaged and cannot be parsed ({e})") \
            from None
    try:
        return _decode(path, ds, max_pixels, frame)
    except ImageReadError:
        raise
    except MemoryError:
        raise ImageReadError(path, "not enough memory to decode this DICOM image") from None
    except Exception as e:  # noqa: BLE001 - a decoder failure is a damaged or unsupported file
        raise ImageReadError(path, f"the DICOM pixel data cannot be decoded ({e})") from None


def _decode(path: Path, ds, max_pixels: int, frame: int | None) -> ImageData:
    import pydicom.pixels as pixels_api
    from pydicom.uid import UID, ExplicitVRLittleEndian, ImplicitVRLittleEndian

    if "PixelData" not in ds and "FloatPixelData" not in ds and "DoubleFloatPixelData" not in ds:
        raise ImageReadError(path, "this DICOM file holds no image (it may be a report or "
                             "a structured document)")
    rows, cols = ds.get("Rows"), ds.get("Columns")
    if rows is None or cols is None:
        raise ImageReadError(path, "the DICOM header lacks Rows/Columns, so the image size is "
                             "unknown")
    check_pixel_count(path, int(cols), int(rows), max_pixels)
    check_memory(path, _decode_bytes(ds, int(rows) * int(cols)))

    meta = ds.file_meta if hasattr(ds, "file_meta") else None
    syntax = meta.get("TransferSyntaxUID") if meta is not None else None
    if syntax is None:
        # Files without a meta header (no preamble) say nothing of their encoding; pydicom
        # found out while parsing.
        implicit, little = ds.original_encoding
        syntax = ImplicitVRLittleEndian if implicit or implicit is None else ExplicitVRLittleEndian
        if not little and little is not None:
            syntax = UID("1.2.840.10008.1.2.2")
        ds.file_meta = meta or _new_file_meta()
        ds.file_meta.TransferSyntaxUID = syntax
    syntax = UID(str(syntax))
    if syntax.is_compressed:
        try:
            decoder = pixels_api.get_decoder(syntax)
        except NotImplementedError:
            decoder = None
        if decoder is None or not decoder.is_available:
            raise ImageReadError(
                path, f"the pixel data is compressed as '{syntax.name}', which cannot be "
                f"decoded without an extra plugin; {_PLUGIN_HINT}")

    notes: list[str] = []
    frames = max(1, int(ds.get("NumberOfFrames", 1) or 1))
    if frame is not None and not 0 <= frame < frames:
        raise ImageReadError(path, f"frame {frame + 1} was asked for, but the file holds "
                             f"{frames} frame{'s' if frames > 1 else ''}")
    if frames > 1:
        arr = pixels_api.pixel_array(ds, index=frame or 0)    # decodes that frame only
        notes.append(f"frame {frame + 1} of {frames}" if frame is not None
                     else f"multi-frame DICOM: showing frame 1 of {frames}")
    else:
        arr = ds.pixel_array
    bits = int(ds.get("BitsStored", ds.get("BitsAllocated", 8)) or 8)
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).strip().upper()

    if photometric == "PALETTE COLOR":
        arr = pixels_api.apply_color_lut(arr, ds)
        photometric = "RGB"
    if arr.ndim == 3 and arr.shape[-1] in (3, 4):
        image = _colour(path, arr[..., :3], bits, notes)
    elif arr.ndim != 2:
        raise ImageReadError(path, f"unexpected DICOM pixel array of shape {arr.shape}")
    else:
        image = _grey(path, ds, arr, bits, photometric, notes)
    image.frame = (frame or 0) if frames > 1 else None
    return image


def _decode_bytes(ds, pixels: int) -> int:
    """The peak of a decode: the stored frame, its float32 values, and a colour copy."""
    samples = int(ds.get("SamplesPerPixel", 1) or 1)
    stored = pixels * samples * max(1, (int(ds.get("BitsAllocated", 16) or 16) + 7) // 8)
    return stored + pixels * max(4, samples * 4)


def _new_file_meta():
    from pydicom.dataset import FileMetaDataset

    return FileMetaDataset()


def _colour(path: Path, arr: np.ndarray, bits: int, notes: list[str]) -> ImageData:
    lo, hi = (float(arr.min()), float(arr.max())) if arr.size else (0.0, 0.0)
    if arr.dtype == np.uint8:
        rgb = np.ascontiguousarray(arr)
        window = None
    else:
        # uint16 where the values fit it; wider or signed values as float32 for the window
        # (a cast to uint16 would wrap 32-bit values; the export keeps them from the file).
        fits = lo >= 0 and hi <= 65535 and arr.dtype.kind in "iu"
        rgb = np.ascontiguousarray(arr.astype(np.uint16 if fits else np.float32))
        window = window_from_range(lo, hi)
    return ImageData(rgb, path, "DICOM", bits, window, (lo, hi), notes)


def _grey(path: Path, ds, arr: np.ndarray, bits: int, photometric: str,
          notes: list[str]) -> ImageData:
    slope = _first_float(ds.get("RescaleSlope"), 1.0)
    intercept = _first_float(ds.get("RescaleIntercept"), 0.0)
    values = arr.astype(np.float32)
    if slope != 1.0 or intercept != 0.0:
        values *= np.float32(slope)       # in place: no second full-size array
        values += np.float32(intercept)
        notes.append(f"rescale applied: value × {slope:g} + {intercept:g}")
    if not np.isfinite(values).all():
        np.nan_to_num(values, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
        notes.append("non-finite pixel values replaced by 0")
    lo, hi = (float(values.min()), float(values.max())) if values.size else (0.0, 0.0)

    inverted = photometric == "MONOCHROME1"
    unit = "HU" if str(ds.get("Modality", "")).upper() == "CT" and (slope, intercept) != (1, 0) \
        else str(ds.get("RescaleType", "") or "").strip()
    mapping = ValueMapping(slope, intercept, inverted, lo + hi, unit if unit != "US" else "")
    windows = file_windows(ds, mapping)
    if windows:
        window = windows[0].window
        notes.append(f"window from the file: centre {_modality_centre(windows[0], mapping):g}, "
                     f"width {windows[0].width:g}"
                     + (f" ({len(windows)} windows in the file)" if len(windows) > 1 else ""))
    else:
        window = window_from_range(lo, hi)

    if inverted:
        # Reflect about the middle of the value range: the range stays the same and the window
        # moves with the values it covered.
        np.subtract(np.float32(lo + hi), values, out=values)   # in place: no copy
        notes.append("MONOCHROME1 inverted so that brighter means larger")
    return ImageData(np.ascontiguousarray(values, dtype=np.float32), path, "DICOM", bits,
                     window, (lo, hi), notes, windows=windows, mapping=mapping)


def file_windows(ds, mapping: ValueMapping) -> list[WindowPreset]:
    """Every WindowCenter/WindowWidth pair of the file, labelled with its explanation, in the
    reader's pixel space (mirrored for MONOCHROME1); pairs with no positive width are left out."""
    centres = _all_floats(ds.get("WindowCenter"))
    widths = _all_floats(ds.get("WindowWidth"))
    raw = ds.get("WindowCenterWidthExplanation")
    explanations = [str(e) for e in raw] if _is_multi(raw) else ([str(raw)] if raw else [])
    out = []
    for i, (c, w) in enumerate(zip(centres, widths)):
        if c is None or w is None or not w > 0:
            continue
        what = explanations[i].strip() if i < len(explanations) else ""
        label = f"File{': ' + what if what else f' window {i + 1}'} (centre {c:g}, width {w:g})"
        out.append(WindowPreset(label, mapping.to_pixel(c), w, "file"))
    return out


def _modality_centre(preset: WindowPreset, mapping: ValueMapping) -> float:
    return mapping.modality(preset.centre)


def _is_multi(value) -> bool:
    return isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue"


def _all_floats(value) -> list[float | None]:
    """Every value of a (possibly multi-valued) decimal string; unreadable ones are None."""
    if value is None:
        return []
    values = list(value) if _is_multi(value) else [value]
    out = []
    for v in values:
        try:
            f = float(v)
        except (TypeError, ValueError):
            out.append(None)
            continue
        out.append(f if np.isfinite(f) else None)
    return out


def _first_float(value, default):
    """A DICOM decimal string value (possibly multi-valued) as a float; ``default`` if absent."""
    if value is None:
        return default
    try:
        if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
            if len(value) == 0:
                return default
            value = value[0]
        result = float(value)
    except (TypeError, ValueError):
        return default
    return result if np.isfinite(result) else default
