"""``segstudio export-nifti``: each labelled item as a one-slice NIfTI or NRRD label volume,
with the image at full depth and colour tables for 3D Slicer and ITK-SNAP."""

from __future__ import annotations

import argparse
import sys

from segstudio.commands import CommandError

HELP = ("export a workspace's labelled items as label volumes (NIfTI or NRRD) with their images "
        "and colour tables, for 3D Slicer and ITK-SNAP")
_STATUSES = ("predicted", "corrected", "reviewed")
_DEFAULT_STATUSES = ("corrected", "reviewed")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("workspace", metavar="WORKSPACE", help="the workspace folder")
    parser.add_argument("--out", required=True, metavar="DIR",
                        help="the folder to write (new or empty; an earlier label-volume export "
                             "only with --overwrite)")
    parser.add_argument("--format", choices=("nifti", "nrrd"), default="nifti",
                        help="nifti: <id>_label.nii.gz (RAS+ affine); nrrd: <id>_label.nrrd "
                             "(LPS space). Default nifti")
    parser.add_argument("--status", action="append", choices=_STATUSES, metavar="STATUS",
                        help="export only items with this status (repeatable; default: corrected "
                             "and reviewed)")
    parser.add_argument("--include-predicted", action="store_true",
                        help="also export items whose labels are a model's unreviewed prediction")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an earlier label-volume export in DIR")


def run(args: argparse.Namespace) -> int:
    from segstudio.io.images import ImageReadError
    from segstudio.io.label_volumes import (VolumeExportError, check_out_dir,
                                            write_label_volumes)
    from segstudio.io.workspace import ItemStatus, Workspace, WorkspaceError

    try:
        ws = Workspace.open(args.workspace)
    except WorkspaceError as exc:
        raise CommandError(str(exc)) from None
    try:
        check_out_dir(args.out, inputs=[ws.root], overwrite=args.overwrite)
        wanted = list(args.status or _DEFAULT_STATUSES)
        if args.include_predicted and "predicted" not in wanted:
            wanted.append("predicted")
        statuses = [ItemStatus(s) for s in wanted]
        total = len(ws.labelled_items(statuses))
        if total == 0:
            left = len(ws.labelled_items([ItemStatus.PREDICTED]))
            hint = (f" ({left} item(s) hold unreviewed predictions: --include-predicted adds "
                    "them)" if left and "predicted" not in wanted else "")
            raise CommandError(f"{ws.root.name}: no item with status {', '.join(wanted)} has "
                               f"labels; nothing to export{hint}")

        def progress(done: int, count: int) -> None:
            print(f"\rexporting {done}/{count}", end="\n" if done == count else "",
                  file=sys.stderr, flush=True)

        result = write_label_volumes(args.out, ws.samples(statuses), ws.classes,
                                     fmt=args.format, total=total, overwrite=args.overwrite,
                                     inputs=[ws.root], progress=progress)
    except (VolumeExportError, WorkspaceError, ImageReadError) as exc:
        raise CommandError(f"{exc}; nothing was exported") from None
    finally:
        ws.close()
    print(f"wrote {result.count} label volume(s) with their images ({args.format}) and colour "
          f"tables to {result.out_dir}")
    if result.assumed:
        print(f"{len(result.assumed)} item(s) have no DICOM geometry (1 mm pixels, identity "
              "orientation assumed; see manifest.json)")
    return 0
