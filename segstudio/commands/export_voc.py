"""``segstudio export-voc``: write a workspace's labelled items as a Pascal VOC 2012 tree."""

from __future__ import annotations

import argparse
import sys

from segstudio.commands import CommandError
from segstudio.commands._args import FRACTION, SEED

HELP = "export a workspace's labelled items as a Pascal VOC 2012 tree (OUT/VOCdevkit/VOC2012)"
_STATUSES = ("predicted", "corrected", "reviewed")
# As the GUI's export: labels a person made or checked; unreviewed predictions only on request.
_DEFAULT_STATUSES = ("corrected", "reviewed")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("workspace", metavar="WORKSPACE", help="the workspace folder")
    parser.add_argument("--out", required=True, metavar="DIR",
                        help="where to write; the tree goes to DIR/VOCdevkit/VOC2012, the layout "
                             "torchvision's VOCSegmentation(DIR, year='2012') reads")
    parser.add_argument("--val-fraction", type=FRACTION, default=0.2, metavar="F",
                        help="share of items in val.txt, 0 ≤ F < 1 (default 0.2)")
    parser.add_argument("--seed", type=SEED, default=0, metavar="S",
                        help="seed of the train/val split (default 0); same seed, same split")
    parser.add_argument("--status", action="append", choices=_STATUSES, metavar="STATUS",
                        help="export only items with this status (repeatable; default: corrected "
                             "and reviewed, as File ▸ Export VOC in the window)")
    parser.add_argument("--include-predicted", action="store_true",
                        help="also export items whose labels are a model's unreviewed prediction")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an earlier export in DIR")
    parser.add_argument("--no-originals", dest="originals", action="store_false",
                        help="leave out VOC2012/Originals (the images at full depth, and DICOM "
                             "files as they were) and the manifest")
    parser.add_argument("--deidentify", action="store_true",
                        help="de-identify the DICOM files kept in Originals (DICOM's basic "
                             "confidentiality profile) and leave source file names out of the "
                             "manifest")


def run(args: argparse.Namespace) -> int:
    from segstudio.io.workspace import ItemStatus, Workspace, WorkspaceError
    from segstudio.io.images import ImageReadError
    from segstudio.io.voc import VocError, write_voc

    if not 0.0 <= args.val_fraction < 1.0:
        raise CommandError(f"--val-fraction must lie in [0, 1), got {args.val_fraction}")
    try:
        ws = Workspace.open(args.workspace)
    except WorkspaceError as exc:
        raise CommandError(str(exc)) from None
    wanted = list(args.status or _DEFAULT_STATUSES)
    if args.include_predicted and "predicted" not in wanted:
        wanted.append("predicted")
    statuses = [ItemStatus(s) for s in wanted]
    total = len(ws.labelled_items(statuses))
    left_out = len(ws.labelled_items([ItemStatus.PREDICTED])) if "predicted" not in wanted else 0
    if total == 0:
        hint = (f" ({left_out} item(s) hold unreviewed predictions: --include-predicted adds "
                "them)" if left_out else "")
        raise CommandError(f"{ws.root.name}: no item with status {', '.join(wanted)}"
                           f" has labels; nothing to export{hint}")

    _check_out(args.out, ws)

    def progress(done: int, count: int) -> None:
        end = "\n" if done == count else ""
        print(f"\rexporting {done}/{count}", end=end, file=sys.stderr, flush=True)

    try:
        result = write_voc(args.out, ws.samples(statuses), ws.classes,
                           val_fraction=args.val_fraction, seed=args.seed, total=total,
                           progress=progress, overwrite=args.overwrite,
                           originals=args.originals, deidentify=args.deidentify)
    except (WorkspaceError, VocError, ImageReadError) as exc:
        print(file=sys.stderr)
        raise CommandError(f"{exc}; nothing was exported") from None
    finally:
        ws.close()
    print(f"wrote {result.count} items ({len(result.train)} train, {len(result.val)} val) to "
          f"{result.voc_dir}" + (", with full-depth originals" if args.originals else ""))
    if left_out:
        print(f"left out {left_out} item(s) whose labels are unreviewed predictions "
              "(--include-predicted adds them)")
    return 0


def _check_out(out: str, ws) -> None:
    """The tree the export replaces (``OUT/VOCdevkit/VOC2012``, with --overwrite) may not hold
    the workspace or any of its images: replacing it would delete them. A tree with neither is
    replaced only when asked, as before."""
    from pathlib import Path

    from segstudio.io.output_guard import OutputError, check_replaced_folder

    inputs = [("the workspace", ws.root), ("the workspace file", ws.file_path())]
    sources = sorted({it.source for it in ws.items})
    inputs += [("the workspace's image", ws.root / source) for source in sources]
    try:
        check_replaced_folder(Path(out) / "VOCdevkit" / "VOC2012", inputs)
    except OutputError as exc:
        ws.close()
        raise CommandError(str(exc)) from None
