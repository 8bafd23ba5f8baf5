"""Full-depth originals beside a VOC export's 8-bit JPEGs, and the export's manifest.

VOC readers need ``JPEGImages/<id>.jpg``: 8 bits per channel, through the display window. What
the window threw away is kept in ``Originals/``:

- ``<id>.png``: a grey image as a 16-bit grey PNG (8-bit when the source had 8 bits), colour
  as RGB (16 bits per channel where the source had them). For a DICOM file these are the
  values stored in the file, before RescaleSlope/Intercept and before MONOCHROME1 inversion
  (one frame's, for a frame of a multi-frame file); signed 16-bit values are shifted by 32768
  when some are negative (the manifest says so).
- ``<id>.tiff`` instead, for depths a PNG cannot hold (32-bit integers, grey or RGB, and
  floating point): uncompressed, of the same sample type, every value as stored.
- ``<id>.dcm``: the DICOM file itself, byte for byte, when the source was DICOM; or, for an
  export asked to de-identify, a copy de-identified by DICOM's basic confidentiality profile
  (:mod:`segstudio.io.deidentify`), and the manifest leaves out the source's file name.

``manifest.json`` in ``VOC2012/`` lists every id with its JPEG, label PNG, original, DICOM
copy, source file name and what the original's values are. The files are written inside the
export's partial folder (see :func:`segstudio.io.voc.write_voc`), so they appear with the tree
or not at all.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np
from PIL import Image

from segstudio.io.images import ImageData, ImageReadError

ORIGINALS_DIR = "Originals"
MANIFEST = "manifest.json"
SIGNED_OFFSET = 32768
_PENDING = ".pending-"


def stored_values(image: ImageData) -> tuple[np.ndarray, dict]:
    """The array to keep for ``image`` and what its values mean.

    DICOM images are read again through pydicom for the values stored in the file, frame by
    frame (the reader's grey pixels are rescaled and maybe inverted, its colour pixels narrowed
    for the screen); palette colour keeps the colours the palette gives, and everything else
    its decoded pixels.
    """
    if image.format == "DICOM" and image.path is not None:
        import pydicom
        import pydicom.pixels as pixels_api

        ds = pydicom.dcmread(image.path, force=True)
        photometric = str(ds.get("PhotometricInterpretation", "")).strip()
        if photometric.upper() != "PALETTE COLOR":
            frames = max(1, int(ds.get("NumberOfFrames", 1) or 1))
            arr = pixels_api.pixel_array(ds, index=image.frame or 0) if frames > 1 \
                else ds.pixel_array
            if arr.ndim == 2:
                facts = {"values": "stored (before rescale and MONOCHROME1 inversion)",
                         "photometric": photometric,
                         "rescale_slope": float(ds.get("RescaleSlope", 1) or 1),
                         "rescale_intercept": float(ds.get("RescaleIntercept", 0) or 0)}
            else:
                facts = {"values": "stored" if photometric.upper() == "RGB"
                         else f"decoded from {photometric} to RGB", "photometric": photometric}
            facts["bits_stored"] = int(ds.get("BitsStored", arr.dtype.itemsize * 8) or 0)
            if frames > 1:
                facts.update(frame=image.frame or 0, frames=frames)
            return np.asarray(arr), facts
    return np.asarray(image.pixels), {"values": "decoded pixels", "bits": image.bit_depth}


def write_original(folder: Path, name: str, image: ImageData, *,
                   dicom_copy: str | None = None, deidentifier=None) -> dict:
    """Write ``image`` at full depth as ``folder/<name>.png`` (or ``.tiff``), and its DICOM
    file as ``<name>.dcm`` unless ``dicom_copy`` names the copy already made (for the other
    frames of one file); return the manifest entry (file names relative to ``folder``). With a
    ``deidentifier`` the DICOM copy is de-identified by it."""
    folder.mkdir(parents=True, exist_ok=True)
    try:
        arr, facts = stored_values(image)
    except OSError:
        raise
    except Exception as e:  # noqa: BLE001 - pydicom reports a bad file in many ways
        raise ImageReadError(image.path, f"its stored values could not be read again for the "
                             f"full-depth original ({e})") from None
    entry = dict(facts)
    if arr.dtype.kind == "i" and arr.dtype.itemsize <= 2:
        if arr.size and arr.min() < 0:
            arr = (arr.astype(np.int32) + SIGNED_OFFSET).astype(np.uint16)
            entry["value_offset"] = -SIGNED_OFFSET      # stored value = PNG value - 32768
        else:
            arr = arr.astype(np.uint8 if arr.dtype.itemsize == 1 else np.uint16)
    suffix = _save(folder / name, arr)
    entry["original"] = f"{name}{suffix}"
    entry["file_type"] = "PNG" if suffix == ".png" else "TIFF"
    entry["dtype"] = str(arr.dtype)
    entry["channels"] = 1 if arr.ndim == 2 else int(arr.shape[2])
    if dicom_copy is not None:
        entry["dicom"] = dicom_copy
    elif image.format == "DICOM" and image.path is not None and Path(image.path).is_file():
        if deidentifier is None:
            shutil.copyfile(image.path, folder / f"{name}.dcm")
        else:
            _write_deidentified(Path(image.path), folder / f"{name}.dcm", deidentifier)
        entry["dicom"] = f"{name}.dcm"
    if deidentifier is None:
        entry["source"] = Path(image.path).name if image.path is not None else None
    else:
        entry["deidentified"] = True         # a file name may name the patient: left out
    return entry


def _write_deidentified(source: Path, target: Path, deidentifier) -> None:
    import pydicom

    from segstudio.io.regular_files import open_regular

    try:
        with open_regular(source) as f:
            ds = pydicom.dcmread(f, force=True)
        deidentifier.cleaned_copy(ds).save_as(target, enforce_file_format=True)
    except OSError:
        raise
    except Exception as e:  # noqa: BLE001 - pydicom reports a bad file in many ways
        raise ImageReadError(source, f"its de-identified copy could not be made ({e})") from None


def _save(base: Path, arr: np.ndarray) -> str:
    """Write ``arr`` losslessly; return the suffix used. 8- and 16-bit unsigned samples (grey,
    or RGB) go to a PNG; deeper ones (32-bit integers, floating point) to an uncompressed TIFF
    of the same sample type, which holds every value as it is. The choice follows the depth,
    not the values, so every frame of one file gets the same kind of file."""
    arr = np.ascontiguousarray(arr)
    if arr.dtype == np.bool_:
        arr = arr.astype(np.uint8)
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (3, 4)):
        raise OSError(f"{base.name}: pixels of shape {arr.shape} cannot be kept as an image")
    if arr.dtype in (np.uint8, np.uint16):
        _save_png(base.with_suffix(".png"), arr)
        return ".png"
    _save_tiff(base.with_suffix(".tiff"), _tiff_sample_type(arr))
    return ".tiff"


def _save_png(path: Path, arr: np.ndarray) -> None:
    if arr.ndim == 2 or arr.dtype == np.uint8:
        mode = None if arr.ndim == 2 else ("RGB", "RGBA")[arr.shape[2] - 3]
        Image.fromarray(arr, mode).save(path, format="PNG")
        return
    import cv2  # Pillow cannot write 16-bit colour PNGs

    ok, data = cv2.imencode(".png", _bgr(arr))
    if not ok:
        raise OSError(f"{path.name}: the 16-bit colour PNG could not be encoded")
    path.write_bytes(data.tobytes())


def _tiff_sample_type(arr: np.ndarray) -> np.ndarray:
    """``arr`` in a sample type a TIFF writer takes, with every value unchanged: 64-bit
    integers narrowed to 32 bits where they fit (float64 otherwise), float16 widened."""
    if arr.dtype.kind in "iu" and arr.dtype.itemsize == 8:
        for narrow in (np.uint32, np.int32):
            info = np.iinfo(narrow)
            if not arr.size or (arr.min() >= info.min and arr.max() <= info.max):
                return arr.astype(narrow)
        return arr.astype(np.float64)
    if arr.dtype.kind == "i" and arr.dtype.itemsize < 4:      # signed 8/16 bits: keep the sign
        return arr.astype(np.int32)
    if arr.dtype == np.float16:
        return arr.astype(np.float32)
    return arr


def _save_tiff(path: Path, arr: np.ndarray) -> None:
    import cv2  # OpenCV's TIFF writer keeps 32-bit integer and float samples, grey or RGB

    planes = _bgr(arr) if arr.ndim == 3 else arr
    if not cv2.imwrite(str(path), np.ascontiguousarray(planes),
                       [cv2.IMWRITE_TIFF_COMPRESSION, 1]):
        raise OSError(f"{path.name}: the {arr.dtype} TIFF could not be written")


def _bgr(arr: np.ndarray) -> np.ndarray:
    """RGB(A) samples in OpenCV's order, BGR(A); its writers store them as RGB(A) again."""
    return arr[..., [2, 1, 0, 3][:arr.shape[2]]]


def tap(samples: Iterable, tree: Path, entries: list,
        cancel: Callable[[], bool] | None = None, deidentifier=None) -> Iterator:
    """Pass ``samples`` through, writing each one's ``original`` (an ImageData, or None) under
    a provisional name while its pixels are in hand; :func:`finish` names them by id. With a
    ``deidentifier`` (one for the whole export) DICOM copies are de-identified."""
    folder = tree / ORIGINALS_DIR
    copies: dict[Path, str] = {}      # one copy of a multi-frame DICOM serves all its frames
    for n, sample in enumerate(samples):
        original = getattr(sample, "original", None)
        if original is not None and not (cancel is not None and cancel()):
            source = Path(original.path) if original.path is not None else None
            shared = copies.get(source) if original.frame is not None else None
            entry = write_original(folder, f"{_PENDING}{n}", original, dicom_copy=shared,
                                   deidentifier=deidentifier)
            if original.frame is not None and "dicom" in entry:
                copies.setdefault(source, entry["dicom"])
            entries.append(entry)
        else:
            entries.append(None)
        yield sample


def finish(tree: Path, ids: list[str], entries: list) -> None:
    """Give the originals their ids' names and write ``manifest.json`` beside the splits."""
    folder = tree / ORIGINALS_DIR
    items = {}
    named: dict[str, str] = {}        # provisional name → final one (shared DICOM copies)
    for n, (ident, entry) in enumerate(zip(ids, entries)):
        record = {"image": f"JPEGImages/{ident}.jpg",
                  "labels": f"SegmentationClass/{ident}.png"}
        if entry is not None:
            for key in ("original", "dicom"):
                if key in entry:
                    old = entry[key]
                    if old not in named:
                        named[old] = old.replace(f"{_PENDING}{n}", ident, 1)
                        (folder / old).rename(folder / named[old])
                    entry[key] = f"{ORIGINALS_DIR}/{named[old]}"
            record.update(entry)
        items[ident] = record
    manifest = {"format": "segstudio-voc-export", "version": 1,
                "originals": ORIGINALS_DIR, "items": items}
    (tree / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
