"""``segstudio export-dicom-seg``: each labelled DICOM item's labels as a DICOM SEG file."""

from __future__ import annotations

import argparse
import sys

from segstudio.commands import CommandError

HELP = ("export the labels of a workspace's DICOM images as DICOM Segmentation objects "
        "(DIR/<id>_seg.dcm), for PACS and radiology viewers")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("workspace", metavar="WORKSPACE", help="the workspace folder")
    parser.add_argument("--out", required=True, metavar="DIR",
                        help="the folder to write to (outside the workspace); one <id>_seg.dcm "
                             "per labelled DICOM image")
    parser.add_argument("--labelmap", action="store_true",
                        help="write LABELMAP segmentations (Label Map Segmentation Storage) "
                             "instead of BINARY ones")
    parser.add_argument("--include-predicted", action="store_true",
                        help="also export items whose labels are a model's unreviewed "
                             "prediction (their segments say AUTOMATIC and name the model)")
    parser.add_argument("--deidentify", action="store_true",
                        help="apply DICOM's basic confidentiality profile: identifying attributes "
                             "are removed or replaced, and each image is written de-identified "
                             "beside its segmentation (DIR/<id>_image.dcm), which the "
                             "segmentation references")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace files in DIR that this export did not write")


def run(args: argparse.Namespace) -> int:
    from segstudio.io.dicom_seg import DicomSegError
    from segstudio.io.dicom_seg_export import export_dicom_seg
    from segstudio.io.workspace import ItemStatus, Workspace, WorkspaceError

    try:
        ws = Workspace.open(args.workspace)
    except WorkspaceError as exc:
        raise CommandError(str(exc)) from None
    statuses = [ItemStatus.CORRECTED, ItemStatus.REVIEWED]
    if args.include_predicted:
        statuses.append(ItemStatus.PREDICTED)

    def progress(done: int, count: int) -> None:
        end = "\n" if done == count else ""
        print(f"\rexporting {done}/{count}", end=end, file=sys.stderr, flush=True)

    try:
        result = export_dicom_seg(ws, args.out, statuses, labelmap=args.labelmap,
                                  deidentify=args.deidentify, overwrite=args.overwrite,
                                  progress=progress)
    except (DicomSegError, WorkspaceError) as exc:
        raise CommandError(str(exc)) from None
    except OSError as exc:
        raise CommandError(f"{args.out}: cannot be written ({exc.strerror or exc})") from None
    finally:
        ws.close()
    segs = [p for p in result.written if p.name.endswith("_seg.dcm")]
    print(f"wrote {len(segs)} segmentation(s) to {args.out}"
          + (" with their de-identified images" if args.deidentify else ""))
    for line in result.left_out:
        print(f"left out: {line}", file=sys.stderr)
    if result.predictions_left_out:
        print(f"left out {result.predictions_left_out} DICOM item(s) whose labels are unreviewed "
              "predictions (--include-predicted adds them)")
    if not segs:
        raise CommandError("nothing was exported")
    return 0
