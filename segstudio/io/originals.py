"""Full-depth originals beside a VOC export's 8-bit JPEGs, and the export's manifest.

VOC readers need ``JPEGImages/<id>.jpg``: 8 bits per channel, through the display window. What
the window threw away is kept in ``Originals/``:

- ``<id>.png``: a grey image as a 16-bit grey PNG (8-bit when the source had 8 bits), colour
  as RGB (16 bits per channel where the source had them). For a DICOM file these are the
  values stored in the file, before RescaleSlope/Intercept and before MONOCHROME1 inversion;
  signed values are shifted by 32768 when some are negative (the manifest says so).
  Values a PNG cannot hold (floating point, or integers beyond 16 bits) go to ``<id>.tiff``.
- ``<id>.dcm``: the DICOM file itself, byte for byte, when the source was DICOM.

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

    DICOM grey images are read again through pydicom for the values stored in the file (the
    reader's pixels are rescaled and maybe inverted); everything else keeps its decoded pixels.
    """
    if image.format == "DICOM" and image.is_grey and image.path is not None:
        import pydicom
        import pydicom.pixels as pixels_api

        ds = pydicom.dcmread(image.path, force=True)
        frames = int(ds.get("NumberOfFrames", 1) or 1)
        arr = pixels_api.pixel_array(ds, index=0) if frames > 1 else ds.pixel_array
        facts = {"values": "stored (before rescale and MONOCHROME1 inversion)",
                 "photometric": str(ds.get("PhotometricInterpretation", "")).strip(),
                 "rescale_slope": float(ds.get("RescaleSlope", 1) or 1),
                 "rescale_intercept": float(ds.get("RescaleIntercept", 0) or 0),
                 "bits_stored": int(ds.get("BitsStored", arr.dtype.itemsize * 8) or 0)}
        return np.asarray(arr), facts
    return np.asarray(image.pixels), {"values": "decoded pixels", "bits": image.bit_depth}


def write_original(folder: Path, name: str, image: ImageData) -> dict:
    """Write ``image`` at full depth as ``folder/<name>.png`` (or ``.tiff``), and its DICOM
    file as ``<name>.dcm``; return the manifest entry (file names relative to ``folder``)."""
    folder.mkdir(parents=True, exist_ok=True)
    try:
        arr, facts = stored_values(image)
    except OSError:
        raise
    except Exception as e:  # noqa: BLE001 - pydicom reports a bad file in many ways
        raise ImageReadError(image.path, f"its stored values could not be read again for the "
                             f"full-depth original ({e})") from None
    entry = dict(facts)
    if arr.dtype.kind in "iu" and arr.size and arr.min() < 0 and arr.min() >= -SIGNED_OFFSET \
            and arr.max() < SIGNED_OFFSET:
        arr = (arr.astype(np.int32) + SIGNED_OFFSET).astype(np.uint16)
        entry["value_offset"] = -SIGNED_OFFSET      # stored value = PNG value - 32768
    suffix = _save(folder / name, arr)
    entry["original"] = f"{name}{suffix}"
    entry["dtype"] = str(arr.dtype)
    entry["channels"] = 1 if arr.ndim == 2 else int(arr.shape[2])
    if image.format == "DICOM" and image.path is not None and Path(image.path).is_file():
        shutil.copyfile(image.path, folder / f"{name}.dcm")
        entry["dicom"] = f"{name}.dcm"
    entry["source"] = Path(image.path).name if image.path is not None else None
    return entry


def _save(base: Path, arr: np.ndarray) -> str:
    """Write ``arr`` losslessly; return the suffix used."""
    arr = np.ascontiguousarray(arr)
    if arr.dtype == np.bool_:
        arr = arr.astype(np.uint8)
    fits16 = arr.dtype.kind in "iu" and (not arr.size or (arr.min() >= 0 and arr.max() <= 65535))
    if fits16 and arr.ndim == 2:
        dtype = np.uint8 if arr.dtype.itemsize == 1 else np.uint16
        Image.fromarray(arr.astype(dtype)).save(base.with_suffix(".png"), format="PNG")
        return ".png"
    if fits16 and arr.ndim == 3 and arr.shape[2] == 3:
        if arr.dtype.itemsize == 1:
            Image.fromarray(arr.astype(np.uint8), "RGB").save(base.with_suffix(".png"),
                                                                format="PNG")
            return ".png"
        import cv2  # Pillow cannot write 16-bit colour PNGs

        ok, data = cv2.imencode(".png", arr.astype(np.uint16)[..., ::-1])
        if not ok:
            raise OSError(f"{base.name}: the 16-bit colour PNG could not be encoded")
        base.with_suffix(".png").write_bytes(data.tobytes())
        return ".png"
    # Floating point, or integers a 16-bit PNG cannot hold: a TIFF keeps them as they are.
    if arr.ndim == 2:
        mode = "F" if arr.dtype.kind == "f" else "I"
        Image.fromarray(arr.astype(np.float32 if mode == "F" else np.int32), mode).save(
            base.with_suffix(".tiff"), format="TIFF")
        return ".tiff"
    planes = arr.astype(np.float32)
    import cv2

    if not cv2.imwrite(str(base.with_suffix(".tiff")), planes[..., ::-1]):
        raise OSError(f"{base.name}: the floating-point colour TIFF could not be written")
    return ".tiff"


def tap(samples: Iterable, tree: Path, entries: list,
        cancel: Callable[[], bool] | None = None) -> Iterator:
    """Pass ``samples`` through, writing each one's ``original`` (an ImageData, or None) under
    a provisional name while its pixels are in hand; :func:`finish` names them by id."""
    folder = tree / ORIGINALS_DIR
    for n, sample in enumerate(samples):
        original = getattr(sample, "original", None)
        if original is not None and not (cancel is not None and cancel()):
            entries.append(write_original(folder, f"{_PENDING}{n}", original))
        else:
            entries.append(None)
        yield sample


def finish(tree: Path, ids: list[str], entries: list) -> None:
    """Give the originals their ids' names and write ``manifest.json`` beside the splits."""
    folder = tree / ORIGINALS_DIR
    items = {}
    for n, (ident, entry) in enumerate(zip(ids, entries)):
        record = {"image": f"JPEGImages/{ident}.jpg",
                  "labels": f"SegmentationClass/{ident}.png"}
        if entry is not None:
            for key in ("original", "dicom"):
                if key in entry:
                    old = folder / entry[key]
                    new = entry[key].replace(f"{_PENDING}{n}", ident, 1)
                    old.rename(folder / new)
                    entry[key] = f"{ORIGINALS_DIR}/{new}"
            record.update(entry)
        items[ident] = record
    manifest = {"format": "segstudio-voc-export", "version": 1,
                "originals": ORIGINALS_DIR, "items": items}
    (tree / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
