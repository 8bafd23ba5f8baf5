"""Label volumes for 3D Slicer and ITK-SNAP: each labelled item as a one-slice NIfTI or NRRD.

For every item ``<id>`` the export folder gets

- ``<id>_label.nii.gz`` (or ``.nrrd``): the class indices as uint8 (255 is void);
- ``<id>_image.nii.gz`` (or ``.nrrd``): the image at full depth in the same geometry. For a
  DICOM file these are the values stored in the file (before RescaleSlope/Intercept and
  MONOCHROME1 inversion, as the VOC export's originals); a NIfTI carries the rescale in its
  ``scl_slope``/``scl_inter`` so that viewers show modality units;

and once for all ``segstudio-labels.ctbl`` (3D Slicer's colour table),
``itksnap-labels.txt`` (ITK-SNAP's label description) and ``manifest.json``, which lists each
item's files, the geometry and where each part of it came from, or what was assumed
(see :mod:`segstudio.io.image_geometry` for the conventions: NIfTI RAS+, NRRD and DICOM LPS+).

Volume axes are (column, row, slice): voxel ``[i, j, 0]`` is the pixel at row ``j``, column
``i``. Colour images get a channel axis (NIfTI: last, NRRD: first, as an ``RGB-color`` kind).

The folder is built hidden beside ``out_dir`` and renamed into place when complete, so a failed
or cancelled export leaves nothing that looks finished. An existing ``out_dir`` is replaced
only when it is empty or one of these exports, and then only with ``overwrite``.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from segstudio.core.classes import ClassSet
from segstudio.io.atomic import follow_umask
from segstudio.io.colour_tables import itksnap_label_description, slicer_color_table
from segstudio.io.image_geometry import Geometry, geometry_of
from segstudio.io.originals import stored_values
from segstudio.io.voc import VocSample, sanitize_id

FORMATS = {"nifti": ".nii.gz", "nrrd": ".nrrd"}
MANIFEST = "manifest.json"
FORMAT_NAME = "segstudio-label-volumes"
SLICER_TABLE = "segstudio-labels.ctbl"
ITKSNAP_TABLE = "itksnap-labels.txt"
_NEEDS = {"nifti": "nibabel", "nrrd": "pynrrd"}


class VolumeExportError(Exception):
    """The export could not be written; nothing that looks finished was left."""


class VolumeExportCancelled(Exception):
    """The export was cancelled; nothing was left behind."""


@dataclass
class VolumeExportResult:
    out_dir: Path
    count: int
    assumed: list[str] = field(default_factory=list)   # ids whose geometry was (partly) assumed


def check_out_dir(out_dir: str | Path, *, inputs: Iterable[str | Path] = (),
                  overwrite: bool = False) -> Path:
    """Refuse an output folder before any work: a file, a folder that holds an input (the
    workspace), a non-empty folder that is not one of these exports, or an earlier export
    without ``overwrite``."""
    from segstudio.io.output_guard import OutputError, check_replaced_folder

    out = Path(out_dir)
    try:
        check_replaced_folder(out, [("the workspace", p) for p in inputs])
    except OutputError as e:
        raise VolumeExportError(str(e)) from None
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise VolumeExportError(f"{out}: is not a folder; give a folder to write into")
    if out.is_dir():
        try:
            entries = os.listdir(out)
        except OSError as e:
            raise VolumeExportError(f"{out}: cannot be read ({e.strerror or e})") from None
        if entries and not _is_export(out):
            raise VolumeExportError(f"{out}: holds other files; choose an empty or new folder")
        if entries and not overwrite:
            raise VolumeExportError(f"{out}: already holds a label-volume export; allow "
                                    "overwriting (--overwrite) to replace it")
    return out


def write_label_volumes(out_dir: str | Path, samples: Iterable[VocSample], classes: ClassSet,
                        *, fmt: str = "nifti", total: int = 0, overwrite: bool = False,
                        inputs: Iterable[str | Path] = (),
                        progress: Callable[[int, int], None] | None = None,
                        cancel: Callable[[], bool] | None = None) -> VolumeExportResult:
    """Write ``samples`` (with their ``original`` ImageData) as label volumes into ``out_dir``."""
    if fmt not in FORMATS:
        raise VolumeExportError(f"unknown volume format {fmt!r}; choose nifti or nrrd")
    _require(fmt)
    out = check_out_dir(out_dir, inputs=inputs, overwrite=overwrite)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
        follow_umask(tmp, folder=True)
    except OSError as e:
        raise VolumeExportError(f"{out}: cannot create the export folder "
                                f"({e.strerror or e})") from None
    try:
        result = _write_all(tmp, samples, classes, fmt, total, progress, cancel)
        _swap_into_place(tmp, out)
    except BaseException as e:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(e, OSError):
            raise VolumeExportError(f"{out}: the export could not be written "
                                    f"({e.strerror or e}); nothing was left behind") from None
        raise
    result.out_dir = out
    return result


def _write_all(tmp: Path, samples: Iterable[VocSample], classes: ClassSet, fmt: str,
               total: int, progress, cancel) -> VolumeExportResult:
    suffix = FORMATS[fmt]
    items: dict[str, dict] = {}
    taken: set[str] = set()
    assumed: list[str] = []
    for sample in samples:
        if cancel is not None and cancel():
            raise VolumeExportCancelled()
        ident = _unique(sanitize_id(sample.id), taken)
        image = sample.original
        geo = geometry_of(image.path, image.format, image.frame)
        values, facts = stored_values(image)
        label_name, image_name = f"{ident}_label{suffix}", f"{ident}_image{suffix}"
        write = _write_nifti if fmt == "nifti" else _write_nrrd
        write(tmp / label_name, np.asarray(sample.labels, np.uint8), geo, None)
        write(tmp / image_name, np.asarray(values), geo, facts)
        if geo.assumed:
            assumed.append(ident)
        items[ident] = {"labels": label_name, "image": image_name,
                        "source": None if image.path is None else Path(image.path).name,
                        "size": [int(sample.labels.shape[1]), int(sample.labels.shape[0])],
                        "values": facts, "geometry": geo.describe(),
                        "affine_ras": geo.ras_affine().round(6).tolist()}
        if progress is not None:
            progress(len(items), total)
    if not items:
        raise VolumeExportError("no labelled item to export")
    (tmp / SLICER_TABLE).write_text(slicer_color_table(classes), encoding="utf-8")
    (tmp / ITKSNAP_TABLE).write_text(itksnap_label_description(classes), encoding="utf-8")
    manifest = {"format": FORMAT_NAME, "version": 1, "volume_format": fmt,
                "axes": "column, row, slice; voxel [i, j, 0] is the pixel at row j, column i",
                "conventions": {"nifti": "affine in RAS+ = diag(-1, -1, 1) x DICOM's LPS+",
                                "nrrd": "space left-posterior-superior (DICOM's LPS+)"},
                "color_tables": {"slicer": SLICER_TABLE, "itksnap": ITKSNAP_TABLE},
                "classes": classes.to_dict(), "items": items}
    (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return VolumeExportResult(tmp, len(items), assumed)


def _volume(arr: np.ndarray) -> np.ndarray:
    """H×W (or H×W×C) pixels as a (column, row, slice[, channel]) volume."""
    arr = np.ascontiguousarray(arr)
    if arr.dtype == np.bool_:
        arr = arr.astype(np.uint8)
    if arr.ndim == 2:
        return arr.T[:, :, None]
    return arr.transpose(1, 0, 2)[:, :, None, :]


def _write_nifti(path: Path, arr: np.ndarray, geo: Geometry, facts: dict | None) -> None:
    import nibabel as nib

    affine = geo.ras_affine()
    img = nib.Nifti1Image(_volume(arr), affine)
    img.header.set_qform(affine, code=1)        # scanner coordinates
    img.header.set_sform(affine, code=1)
    img.header.set_xyzt_units("mm")
    if facts and "rescale_slope" in facts:
        slope, inter = facts["rescale_slope"], facts["rescale_intercept"]
        if (slope, inter) != (1.0, 0.0):
            img.header.set_slope_inter(slope, inter)
    nib.save(img, str(path))


def _write_nrrd(path: Path, arr: np.ndarray, geo: Geometry, facts: dict | None) -> None:
    import nrrd

    data = _volume(arr)
    directions = geo.lps_affine()[:3, :3].T            # one row per axis
    header = {"space": "left-posterior-superior", "space origin": geo.origin.astype(float),
              "encoding": "gzip"}
    if data.ndim == 4:                                  # colour: channels first, as Slicer reads
        data = np.moveaxis(data, 3, 0)
        header["kinds"] = ["RGB-color", "domain", "domain", "domain"]
        header["space directions"] = np.vstack([np.full(3, np.nan), directions])
    else:
        header["kinds"] = ["domain", "domain", "domain"]
        header["space directions"] = directions
    nrrd.write(str(path), np.asfortranarray(data), header, index_order="F")


def _swap_into_place(tmp: Path, out: Path) -> None:
    if out.exists():
        old = out.with_name(f".{out.name}.old-{tmp.name.rsplit('-', 1)[-1]}")
        out.rename(old)
        tmp.rename(out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        tmp.rename(out)


def _require(fmt: str) -> None:
    module = "nibabel" if fmt == "nifti" else "nrrd"
    try:
        __import__(module)
    except ImportError:
        raise VolumeExportError(f"writing {fmt.upper()} needs the {_NEEDS[fmt]} package: "
                                "pip install 'segstudio[nifti]'") from None


def _is_export(folder: Path) -> bool:
    try:
        data = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and data.get("format") == FORMAT_NAME


def _unique(ident: str, taken: set[str]) -> str:
    candidate, n = ident, 2
    while candidate.casefold() in taken:
        candidate = f"{ident}_{n}"
        n += 1
    taken.add(candidate.casefold())
    return candidate
