"""DICOM Segmentation objects: a workspace item's labels as a SEG that references its image.

One Segmentation instance per labelled DICOM item (written with highdicom): a segment per class
present (background left out), named by the class, drawn in its colour, coded with the class's
code (SNOMED CT for the chest X-ray classes, the class set file's ``code`` where given, else
"Tissue" and a private code named after the class), and typed by where the labels came from:
MANUAL for labels a person made or checked, AUTOMATIC, with the model's name, for a model's
unreviewed prediction. The workspace records who saved an item last but not which tool drew it,
so labels drawn with the brush, region growing, GrabCut or a prompt and then saved by a person
are all MANUAL (a person accepted every pixel); SEMIAUTOMATIC is never claimed.

BINARY segmentations by default; LABELMAP (Label Map Segmentation Storage) on request. Void
pixels (255) belong to no segment. Reading (:func:`read_segmentation`) gives, for each image a
SEG references, its pixels as segment numbers and the segments' labels and colours.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from segstudio.core.classes import ClassCode, ClassSet
from segstudio.core.palette import VOID_INDEX

SEG_STORAGE = "1.2.840.10008.5.1.4.1.1.66.4"
LABELMAP_STORAGE = "1.2.840.10008.5.1.4.1.1.66.7"
SEG_CLASSES = frozenset({SEG_STORAGE, LABELMAP_STORAGE})
MANUFACTURER = "segstudio"

_SCT_ANATOMY = ClassCode("SCT", "91723000", "Anatomical Structure")
_SCT_TISSUE = ClassCode("SCT", "85756007", "Tissue")
_PRIVATE_SCHEME = "99SEGSTUDIO"
# The chest X-ray class set (core.classes.chest_xray) in SNOMED CT; codes as pydicom's
# dictionary has them (codes.SCT.Lung, .Heart, .Clavicle).
CHEST_CODES = {
    "lungs": ClassCode("SCT", "39607008", "Lung", _SCT_ANATOMY),
    "heart": ClassCode("SCT", "80891009", "Heart", _SCT_ANATOMY),
    "clavicles": ClassCode("SCT", "51299004", "Clavicle", _SCT_ANATOMY),
}
_CHEST_NAMES = ("background", "lungs", "heart", "clavicles")


class DicomSegError(Exception):
    """A segmentation that cannot be written or read; the message names the file."""


def highdicom_module():
    """highdicom, or a :class:`DicomSegError` saying how to install it."""
    try:
        import highdicom
    except ImportError:
        raise DicomSegError("DICOM SEG needs highdicom, which is not installed; install it with "
                            "pip install 'segstudio[dicom]'") from None
    return highdicom


# -- what each segment is ------------------------------------------------------------------------
def class_code(classes: ClassSet, index: int) -> ClassCode:
    """What class ``index`` is, as a coded concept with its category: the class set file's code;
    the chest X-ray classes in SNOMED CT; otherwise "Tissue" and a private code named after
    the class."""
    cls = classes[index]
    if cls.code is not None:
        return cls.code if cls.code.category is not None else ClassCode(
            cls.code.scheme, cls.code.value, cls.code.meaning, _SCT_TISSUE)
    if classes.names[:len(_CHEST_NAMES)] == _CHEST_NAMES and cls.name in CHEST_CODES:
        return CHEST_CODES[cls.name]
    # A private code of the name itself, so one name has one code in every workspace.
    digest = hashlib.sha1(cls.name.encode("utf-8")).hexdigest()[:16].upper()
    return ClassCode(_PRIVATE_SCHEME, digest, long_string(cls.name, f"class {index}"),
                     _SCT_TISSUE)


def long_string(text: str, fallback: str) -> str:
    """``text`` as a DICOM LO value: no backslash (the value separator) nor control character,
    at most 64 characters; ``fallback`` when nothing is left."""
    cleaned = "".join(" " if ord(c) < 32 or 127 <= ord(c) < 160 else c for c in text)
    cleaned = " ".join(cleaned.replace("\\", "/").split())[:64].strip()
    return cleaned or fallback


@dataclass(frozen=True)
class Algorithm:
    """Where an item's labels came from: MANUAL (a person) or AUTOMATIC (a model: its name and
    version as the workspace recorded them)."""

    kind: str
    name: str | None = None
    version: str | None = None


def algorithm_of(status: str, updated_by: str | None) -> Algorithm:
    """The algorithm type of labels with ``status``, last saved by ``updated_by``."""
    if status == "predicted":
        return Algorithm("AUTOMATIC", long_string(updated_by or "", "unrecorded model"),
                         "not recorded by the workspace")
    return Algorithm("MANUAL")


def _coded(code: ClassCode):
    return highdicom_module().sr.CodedConcept(code.value, code.scheme, code.meaning)


def segment_descriptions(classes: ClassSet, present: list[int], algorithm: Algorithm) -> list:
    """One SegmentDescription per class in ``present``, numbered 1, 2, … in that order."""
    highdicom = highdicom_module()
    ident = None
    if algorithm.kind != "MANUAL":
        family = highdicom.sr.CodedConcept("113112", "DCM", "Artificial Intelligence")
        ident = highdicom.AlgorithmIdentificationSequence(
            name=algorithm.name or "unrecorded model", family=family,
            version=algorithm.version or "not recorded")
    out = []
    for number, index in enumerate(present, start=1):
        cls, code = classes[index], class_code(classes, index)
        out.append(highdicom.seg.SegmentDescription(
            segment_number=number, segment_label=long_string(cls.name, f"class {index}"),
            segmented_property_category=_coded(code.category or _SCT_TISSUE),
            segmented_property_type=_coded(code),
            algorithm_type=algorithm.kind, algorithm_identification=ident,
            display_color=highdicom.color.CIELabColor.from_rgb(*cls.color)))
    return out


# -- writing -------------------------------------------------------------------------------------
def build_segmentation(source, labels: np.ndarray, classes: ClassSet, algorithm: Algorithm, *,
                       labelmap: bool = False, series_uid: str | None = None,
                       instance_number: int = 1, software_version: str = "0"):
    """A highdicom Segmentation of ``labels`` (H×W class indices) on the single-frame image
    ``source`` (a pydicom dataset); None when no class but background is present."""
    highdicom = highdicom_module()
    labels = np.asarray(labels)
    if labels.shape != (int(source.Rows), int(source.Columns)):
        raise DicomSegError(f"the labels are {labels.shape[1]}×{labels.shape[0]} but the image "
                            f"is {source.Columns}×{source.Rows}")
    present = [int(v) for v in np.unique(labels) if 0 < v < len(classes) and v != VOID_INDEX]
    if not present:
        return None
    from segstudio.io.decode_memory import NotEnoughMemory, require_memory

    try:            # segment numbers, highdicom's frames (a byte per pixel and segment), masks
        require_memory(labels.size * (len(present) + 4), "building the segmentation")
    except NotEnoughMemory as e:
        raise DicomSegError(str(e)) from None
    numbers = np.zeros(labels.shape, np.uint8)          # class index → segment number
    for number, index in enumerate(present, start=1):
        numbers[labels == index] = number
    kind = "LABELMAP" if labelmap else "BINARY"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")                   # highdicom's notes on the source
        seg = highdicom.seg.Segmentation(
            source_images=[source], pixel_array=numbers[None], segmentation_type=kind,
            segment_descriptions=segment_descriptions(classes, present, algorithm),
            series_instance_uid=series_uid or highdicom.UID(), series_number=1,
            sop_instance_uid=highdicom.UID(), instance_number=instance_number,
            manufacturer=MANUFACTURER, manufacturer_model_name="segstudio",
            software_versions=software_version, device_serial_number="0",
            content_description=long_string(f"{classes.title} labels", "labels"),
            content_label="SEGSTUDIO", omit_empty_frames=False,
            pixel_measures=_projection_measures(highdicom, source))
    if not all(desc.SegmentLabel.isascii() for desc in seg.SegmentSequence):
        seg.SpecificCharacterSet = "ISO_IR 192"       # class names beyond ASCII: UTF-8
    if "PatientOrientation" not in seg and "ImageOrientationPatient" not in source:
        # General Image wants Patient Orientation (type 2C) where no plane orientation is given.
        seg.PatientOrientation = source.get("PatientOrientation", "")
    return seg


def _projection_measures(highdicom, source):
    """For an image without a plane orientation (a radiograph, a secondary capture), its pixel
    spacing as the segmentation's Pixel Measures: Pixel Spacing, or else the detector's Imager
    Pixel Spacing, as a radiograph records it. None where highdicom takes the geometry from the
    source's plane (CT, MR), or where the source gives no usable spacing."""
    if "ImageOrientationPatient" in source:
        return None
    for keyword in ("PixelSpacing", "ImagerPixelSpacing"):
        try:
            spacing = [float(v) for v in source.get(keyword) or ()]
        except (TypeError, ValueError):
            continue
        if len(spacing) == 2 and all(np.isfinite(v) and v > 0 for v in spacing):
            return highdicom.PixelMeasuresSequence(pixel_spacing=spacing, slice_thickness=None)
    return None


def save_dataset(ds, path: Path) -> None:
    """Write ``ds`` as a DICOM file, atomically."""
    from segstudio.io.atomic import atomic_write_with

    atomic_write_with(path, lambda f: ds.save_as(f, enforce_file_format=True))


# -- reading -------------------------------------------------------------------------------------
@dataclass
class SegContents:
    """What a SEG file holds: per referenced image (SOP Instance UID), its pixels as segment
    numbers (0 where no segment); and each segment's label and colour."""

    path: Path
    images: dict[str, np.ndarray] = field(default_factory=dict)
    labels: dict[int, str] = field(default_factory=dict)
    colors: dict[int, tuple[int, int, int] | None] = field(default_factory=dict)


def is_segmentation_file(path: Path) -> bool:
    """Whether ``path`` is a DICOM file whose SOP Class is a Segmentation (header only; never
    opens a pipe or a device)."""
    header = _header(path)
    return header is not None and str(header.get("SOPClassUID", "")) in SEG_CLASSES


def _header(path: Path):
    import pydicom

    from segstudio.io.regular_files import open_regular

    try:
        f = open_regular(path)
    except OSError:
        return None
    with f:
        try:
            head = f.read(132)
            if head[128:132] != b"DICM" and path.suffix.lower() not in (".dcm", ".dicom"):
                return None
            f.seek(0)
            return pydicom.dcmread(f, stop_before_pixels=True, force=True,
                                   specific_tags=["SOPClassUID", "SOPInstanceUID",
                                                  "Manufacturer", "DeidentificationMethod"])
        except Exception:  # noqa: BLE001 - a file pydicom cannot parse is no segmentation
            return None


def read_segmentation(path: str | Path, *, max_pixels: int = 100_000_000) -> SegContents:
    """Read a BINARY or LABELMAP SEG; anything else, or a damaged file, is a
    :class:`DicomSegError` naming it."""
    highdicom = highdicom_module()
    path = Path(path)
    from segstudio.io.regular_files import open_regular

    try:
        f = open_regular(path)
    except OSError as e:
        raise DicomSegError(f"{path.name}: cannot be read "
                            f"({getattr(e, 'reason', None) or e.strerror or e})") from None
    try:
        with f, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _check_size(path, f, max_pixels)
            f.seek(0)
            seg = highdicom.seg.segread(f)
            kind = seg.segmentation_type.value
            if kind not in ("BINARY", "LABELMAP"):
                raise DicomSegError(f"{path.name}: a {kind} segmentation; only BINARY and "
                                    "LABELMAP ones can be imported as labels")
            out = SegContents(path)
            for number in seg.segment_numbers:
                desc = seg.get_segment_description(number)
                out.labels[number] = str(desc.segment_label).strip() or f"segment {number}"
                out.colors[number] = _display_rgb(highdicom, desc)
            for _study, _series, uid in seg.get_source_image_uids():
                pixels = seg.get_pixels_by_source_instance(
                    [uid], combine_segments=True, relabel=False, dtype=np.uint16)
                if pixels.shape[0] != 1:
                    raise DicomSegError(f"{path.name}: {pixels.shape[0]} frames for image {uid}; "
                                        "only single-frame images can be imported")
                out.images[str(uid)] = pixels[0]
    except DicomSegError:
        raise
    except MemoryError:
        raise DicomSegError(f"{path.name}: not enough memory to decode the segmentation") \
            from None
    except Exception as e:  # noqa: BLE001 - any parsing or decoding failure is a damaged file
        raise DicomSegError(f"{path.name}: not a readable DICOM segmentation "
                            f"({str(e)[:200] or type(e).__name__})") from None
    if not out.images:
        raise DicomSegError(f"{path.name}: the segmentation references no image")
    return out


def _display_rgb(highdicom, desc) -> tuple[int, int, int] | None:
    """A segment's recommended display colour as RGB, None when it has none (or a bad one)."""
    value = desc.get("RecommendedDisplayCIELabValue")
    if value is None:
        return None
    try:
        rgb = highdicom.color.CIELabColor.from_dicom_value(list(value)).to_rgb()
        return tuple(int(c) for c in rgb)  # type: ignore[return-value]
    except Exception:  # noqa: BLE001 - a bad colour loses only the colour
        return None


def _check_size(path: Path, f, max_pixels: int) -> None:
    """From the header alone: refuse a frame larger than ``max_pixels``, and a decode that would
    not fit in memory (every frame unpacked to a byte per pixel, then one image's segments and
    its labels), before the pixel data are read."""
    import pydicom

    from segstudio.io.decode_memory import NotEnoughMemory, require_memory

    head = pydicom.dcmread(f, stop_before_pixels=True, force=True,
                           specific_tags=["Rows", "Columns", "NumberOfFrames", "SegmentSequence"])
    rows, cols = int(head.get("Rows") or 0), int(head.get("Columns") or 0)
    frames = max(1, int(head.get("NumberOfFrames") or 1))
    if rows * cols > max_pixels:
        raise DicomSegError(f"{path.name}: {cols}×{rows} pixels is more than the limit of "
                            f"{max_pixels:,}")
    segments = len(head.get("SegmentSequence") or ())
    try:
        require_memory(rows * cols * (frames + segments + 4), "decoding the segmentation")
    except NotEnoughMemory as e:
        raise DicomSegError(f"{path.name}: {e}") from None


def output_is_ours(path: Path) -> bool:
    """Whether ``path`` is a file this export wrote before: a segmentation made by segstudio, or
    an image segstudio de-identified. Anything else is replaced only on request."""
    from segstudio.io.deidentify import METHOD

    header = _header(path)
    if header is None:
        return False
    if str(header.get("SOPClassUID", "")) in SEG_CLASSES:
        return header.get("Manufacturer") == MANUFACTURER
    return header.get("DeidentificationMethod") == METHOD


def is_inside(path: Path, folder: Path) -> bool:
    """Whether ``path`` is ``folder`` or lies under it, once links are resolved."""
    try:
        p, f = Path(os.path.realpath(path)), Path(os.path.realpath(folder))
    except (OSError, ValueError):
        return False
    return p == f or f in p.parents

