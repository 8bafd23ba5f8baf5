"""Import DICOM SEG files (BINARY or LABELMAP) as the labels of the images they reference.

A SEG names its images by SOP Instance UID; each is matched with the workspace's single-frame
DICOM item of that UID (read from the items' headers). A SEG referencing an image the workspace
does not hold is refused, naming the image. Segments become classes by their Segment Label: an
existing class of that name, or a new class (in the segment's recommended colour), as for
labelme files. Items a person corrected or reviewed are kept unless ``replace``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from segstudio.io.dicom_seg import DicomSegError, SegContents, is_segmentation_file, \
    read_segmentation
from segstudio.io.label_matching import PERSON_MADE
from segstudio.io.labels import ImportReport, LabelImportError, _picture_size, _save
from segstudio.io.workspace import Item, ItemStatus, Workspace


def segmentation_files(source: Path) -> list[Path]:
    """The SEG files of ``source`` (a file, or every file under a folder), found by SOP Class."""
    if source.is_file():
        if not is_segmentation_file(source):
            raise LabelImportError(f"{source.name}: not a DICOM segmentation (its SOP Class is "
                                   "not Segmentation Storage or Label Map Segmentation Storage)")
        return [source]
    return [p for p in sorted(source.rglob("*")) if not p.name.startswith(".")
            and p.is_file() and is_segmentation_file(p)]


def import_dicom_segs(source: str | Path, workspace: Workspace, *, by: str = "import",
                      status: ItemStatus = ItemStatus.CORRECTED,
                      replace: bool = False) -> ImportReport:
    """Import the SEG file ``source``, or every SEG file under the folder ``source``."""
    files = segmentation_files(Path(source))
    if not files:
        raise LabelImportError(f"{Path(source).name}: holds no DICOM segmentation")
    by_uid = _items_by_uid(workspace)
    report = ImportReport()
    for path in files:
        try:
            contents = read_segmentation(path)
        except DicomSegError as e:
            report.problems.append(str(e))
            continue
        missing = [uid for uid in contents.images if uid not in by_uid]
        if missing:
            report.problems.append(
                f"{path.name}: references image {missing[0]}, which is not in the workspace"
                + (f" (nor {len(missing) - 1} other image(s))" if len(missing) > 1 else "")
                + "; nothing of it was imported")
            continue
        for uid, pixels in contents.images.items():
            item = by_uid[uid]
            if item.status in PERSON_MADE and not replace:
                report.kept.append(item.id)
                continue
            try:
                _picture_size(path, (pixels.shape[1], pixels.shape[0]), workspace, item)
                labels, new = _to_classes(contents, pixels, workspace)
            except LabelImportError as e:
                report.problems.append(str(e))
                continue
            _add_classes(workspace, contents, new, report)
            _save(workspace, item, labels, by, status, report)
    return report


def kept_by_seg_import(source: str | Path, workspace: Workspace) -> list[str]:
    """Ids of the items a person corrected or reviewed that importing the SEG files of
    ``source`` would replace if asked to; only the files' headers are read."""
    by_uid = _items_by_uid(workspace)
    kept: list[str] = []
    for path in segmentation_files(Path(source)):
        for uid in _referenced_uids(path):
            item = by_uid.get(uid)
            if item is not None and item.status in PERSON_MADE and item.id not in kept:
                kept.append(item.id)
    return kept


def _referenced_uids(path: Path) -> list[str]:
    """The SOP Instance UIDs a SEG's header references (Referenced Series Sequence)."""
    import pydicom

    from segstudio.io.regular_files import open_regular

    try:
        with open_regular(path) as f:
            ds = pydicom.dcmread(f, stop_before_pixels=True, force=True)
        return [str(ref.ReferencedSOPInstanceUID)
                for series in ds.get("ReferencedSeriesSequence") or ()
                for ref in series.get("ReferencedInstanceSequence") or ()
                if "ReferencedSOPInstanceUID" in ref]
    except Exception:  # noqa: BLE001 - the import itself reports a damaged file
        return []


def _items_by_uid(workspace: Workspace) -> dict[str, Item]:
    """SOP Instance UID → single-frame DICOM item, from the items' headers."""
    import pydicom

    from segstudio.io.images import DICOM_SUFFIXES
    from segstudio.io.regular_files import open_regular

    found: dict[str, Item] = {}
    for item in workspace.items:
        path = workspace.source_path(item)
        if item.frame is not None or path.suffix.lower() not in DICOM_SUFFIXES and \
                not _has_dicom_magic(path):
            continue
        try:
            with open_regular(path) as f:
                uid = pydicom.dcmread(f, stop_before_pixels=True, force=True,
                                      specific_tags=["SOPInstanceUID"]).get("SOPInstanceUID")
        except Exception:  # noqa: BLE001 - an unreadable image simply matches nothing
            continue
        if uid:
            found.setdefault(str(uid), item)
    return found


def _has_dicom_magic(path: Path) -> bool:
    from segstudio.io.regular_files import open_regular

    try:
        with open_regular(path) as f:
            return f.read(132)[128:132] == b"DICM"
    except OSError:
        return False


def _to_classes(contents: SegContents, pixels: np.ndarray, workspace: Workspace
                ) -> tuple[np.ndarray, list[str]]:
    """Segment numbers → class indices by Segment Label; unknown labels become new classes."""
    names = list(workspace.classes.names)
    new: list[str] = []
    lut = np.zeros(int(max(contents.labels, default=0)) + 1, np.uint8)
    for number, label in sorted(contents.labels.items()):
        if label not in names:
            if len(names) >= 255:
                raise LabelImportError(f"{contents.path.name}: segment '{label}' would be class "
                                       "256; at most 255 classes fit")
            names.append(label)
            new.append(label)
        lut[number] = names.index(label)
    if pixels.size and int(pixels.max()) >= len(lut):
        raise LabelImportError(f"{contents.path.name}: pixel value {int(pixels.max())} is no "
                               "segment of the file")
    return lut[pixels], new


def _add_classes(workspace: Workspace, contents: SegContents, new: list[str],
                 report: ImportReport) -> None:
    """Add the new classes, each in its segment's recommended colour where the file has one."""
    colours = {contents.labels[n]: c for n, c in contents.colors.items() if c is not None}
    for name in new:
        workspace.classes = workspace.classes.with_class(name, colours.get(name))
        report.new_classes.append(name)
