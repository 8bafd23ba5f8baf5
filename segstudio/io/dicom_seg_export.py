"""Export a workspace's labelled DICOM items as DICOM SEG files (``<id>_seg.dcm``).

The command ``export-dicom-seg`` and File ▸ Export ▸ DICOM SEG… both call
:func:`export_dicom_seg`. Every output is checked before anything is written: none may be one
of the workspace's files, the folder may not lie inside the workspace (the files would become
its items), and an existing file is replaced only when this export wrote it before or when
asked to. Each file is written atomically.

With ``deidentify`` one :class:`~segstudio.io.deidentify.Deidentifier` serves the whole export:
each source image is written de-identified beside its SEG (``<id>_image.dcm``), and the SEG is
made from that copy, so it references the de-identified image, carries no identifying attribute
of the original, and the images of one study or series keep sharing their new UIDs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from segstudio.io.dicom_seg import (Algorithm, DicomSegError, algorithm_of, build_segmentation,
                                    highdicom_module, is_inside, output_is_ours, save_dataset)

SEG_SUFFIX = "_seg.dcm"
IMAGE_SUFFIX = "_image.dcm"


@dataclass
class SegExportResult:
    """What an export wrote, and which labelled items it left out and why."""

    written: list[Path] = field(default_factory=list)
    left_out: list[str] = field(default_factory=list)
    predictions_left_out: int = 0      # DICOM items holding an unreviewed prediction, not asked for


@dataclass
class _Planned:
    item: object
    source: Path
    seg: Path
    image: Path | None


def export_dicom_seg(workspace, out_dir: str | Path, statuses: Iterable, *,
                     labelmap: bool = False, deidentify: bool = False, overwrite: bool = False,
                     progress: Callable[[int, int], None] | None = None,
                     cancel: Callable[[], bool] | None = None) -> SegExportResult:
    """Write one SEG per labelled DICOM item of ``workspace`` with a status in ``statuses``."""
    from segstudio import __version__
    from segstudio.io.deidentify import Deidentifier
    from segstudio.io.voc import sanitize_id, _unique
    from segstudio.io.workspace import ItemStatus

    highdicom_module()                          # a clear error before anything else
    out = Path(out_dir)
    result = SegExportResult()
    plan: list[_Planned] = []
    taken: set[str] = set()
    statuses = list(statuses)
    if ItemStatus.PREDICTED not in statuses:
        result.predictions_left_out = sum(
            1 for item in workspace.labelled_items([ItemStatus.PREDICTED])
            if item.frame is None and _is_dicom(workspace.source_path(item)))
    for item in workspace.labelled_items(statuses):
        source = workspace.source_path(item)
        if item.frame is not None:
            result.left_out.append(f"{item.id}: a frame of a multi-frame or video file (DICOM "
                                   "SEG export takes single-frame DICOM images)")
            continue
        if not _is_dicom(source):
            continue
        stem = _unique(sanitize_id(item.id), taken)
        plan.append(_Planned(item, source, out / f"{stem}{SEG_SUFFIX}",
                             out / f"{stem}{IMAGE_SUFFIX}" if deidentify else None))
    if not plan:
        raise DicomSegError(f"{workspace.root.name}: no labelled single-frame DICOM item to "
                            "export" + (f" ({len(result.left_out)} frame(s) left out)"
                                        if result.left_out else ""))
    check_outputs(out, plan, workspace, overwrite=overwrite)
    out.mkdir(parents=True, exist_ok=True)
    deid = Deidentifier() if deidentify else None
    series: dict[str, str] = {}
    for done, job in enumerate(plan):
        if cancel is not None and cancel():
            break
        if progress is not None:
            progress(done, len(plan))
        try:
            written = _export_one(workspace, job, deid, series, labelmap, __version__, done + 1)
        except DicomSegError as e:
            result.left_out.append(str(e))
            continue
        result.written.extend(written)
    else:
        if progress is not None:
            progress(len(plan), len(plan))
    return result


def _export_one(workspace, job: _Planned, deid, series: dict[str, str], labelmap: bool,
                version: str, number: int) -> list[Path]:
    from segstudio.io.workspace import WorkspaceError

    item = job.item
    try:
        labels = workspace.load_labels(item)
    except WorkspaceError as e:                 # damaged labels: named, kept, the rest go on
        raise DicomSegError(str(e)) from None
    if labels is None:
        raise DicomSegError(f"{item.id}: its labels are gone")
    source = _read_source(job.source, item.id)
    if int(source.get("NumberOfFrames", 1) or 1) > 1:
        raise DicomSegError(f"{item.id}: a multi-frame image (DICOM SEG export takes "
                            "single-frame DICOM images)")
    if deid is not None:
        source = deid.cleaned_copy(source)
    key = str(source.get("SeriesInstanceUID", ""))
    if key not in series:
        series[key] = highdicom_module().UID()
    algorithm: Algorithm = algorithm_of(item.status.value, item.updated_by)
    try:
        seg = build_segmentation(source, labels, workspace.classes, algorithm,
                                 labelmap=labelmap, series_uid=series[key],
                                 instance_number=number, software_version=version)
    except DicomSegError as e:
        raise DicomSegError(f"{item.id}: {e}") from None
    except Exception as e:  # noqa: BLE001 - highdicom refuses sources it cannot reference
        raise DicomSegError(f"{item.id}: no segmentation could be made for "
                            f"{job.source.name} ({str(e)[:200]})") from None
    if seg is None:
        raise DicomSegError(f"{item.id}: its labels hold only background")
    written = []
    if deid is not None:
        deid.apply(seg, uids=False)            # its dates and creator; its UIDs are new already
        _save(source, job.image)
        written.append(job.image)
    _save(seg, job.seg)
    written.append(job.seg)
    return written


def _save(ds, path: Path) -> None:
    try:
        save_dataset(ds, path)
    except OSError as e:
        raise DicomSegError(f"{path.name}: cannot be written ({e.strerror or e})") from None


def _read_source(path: Path, ident: str):
    import pydicom

    from segstudio.io.regular_files import open_regular

    try:
        with open_regular(path) as f:
            return pydicom.dcmread(f, force=True)
    except OSError as e:
        raise DicomSegError(f"{ident}: {path.name} cannot be read "
                            f"({getattr(e, 'reason', None) or e.strerror or e})") from None
    except Exception as e:  # noqa: BLE001 - pydicom signals damage through many types
        raise DicomSegError(f"{ident}: {path.name} is a damaged DICOM file ({str(e)[:200]})") \
            from None


def _is_dicom(path: Path) -> bool:
    from segstudio.io.images import DICOM_SUFFIXES
    from segstudio.io.regular_files import open_regular

    if path.suffix.lower() in DICOM_SUFFIXES:
        return True
    try:
        with open_regular(path) as f:
            return f.read(132)[128:132] == b"DICM"
    except OSError:
        return False


def check_outputs(out: Path, plan: list[_Planned], workspace, *, overwrite: bool) -> None:
    """Refuse, before anything is written, an export that would replace one of its inputs (the
    workspace file, an image, a label file, through any link), put its files inside the
    workspace, or replace a file it did not write (without ``overwrite``); see
    :mod:`segstudio.io.output_guard`."""
    from segstudio.io.output_guard import Inputs, OutputError, check_output

    if out.exists() and not out.is_dir():
        raise DicomSegError(f"--out {out} is a file; give a folder to write the segmentations to")
    if is_inside(out, workspace.root):
        raise DicomSegError(f"--out {out} lies inside the workspace {workspace.root.name}; its "
                            "files would become items of the workspace, so choose a folder "
                            "outside it")
    inputs = Inputs([("the workspace file", workspace.file_path())]
                    + [("the image", job.source) for job in plan]
                    + [("the labels", workspace.label_path(job.item)) for job in plan])
    try:
        for job in plan:
            for target in (job.seg, job.image):
                if target is not None:
                    check_output(target, inputs, flag="--out", overwrite=overwrite,
                                 ours=output_is_ours)
    except OutputError as e:
        raise DicomSegError(str(e)) from None
