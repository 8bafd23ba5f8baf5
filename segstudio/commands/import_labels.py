"""``segstudio import-labels``: bring existing labels into a workspace, as File ▸ Import labels.

SOURCE is a Pascal VOC tree (``SegmentationClass/``, and ``SegmentationObject/`` for objects),
a folder of labelme ``.json`` files (``group_id`` s become objects), a folder of label PNGs, or
a DICOM SEG file or a folder of them; files are matched to the workspace's items by file stem,
never guessed when several share a name, and DICOM SEGs by the SOP Instance UID of the image they
reference. Items a person corrected or reviewed are kept unless ``--replace`` is given. The command
prints what it imported, what it kept, which files matched no item and which could not be used.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from segstudio.commands import CommandError

HELP = ("import labels into a workspace from a Pascal VOC tree (with SegmentationObject), "
        "labelme JSON files, a folder of label PNGs or DICOM SEG files")
KINDS = ("auto", "voc", "labelme", "png", "dicom-seg")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("workspace", metavar="WORKSPACE", help="the workspace folder")
    parser.add_argument("source", metavar="SOURCE",
                        help="a VOC tree, a folder of labelme .json files or of <id>.png labels, "
                             "or a DICOM SEG file or a folder of them")
    parser.add_argument("--kind", choices=KINDS, default="auto",
                        help="what SOURCE holds (default: auto — a DICOM SEG for a file, a VOC "
                             "tree when it has SegmentationClass/, labelme when it has .json "
                             "files, DICOM SEGs when it holds files of that SOP Class, else PNGs)")
    parser.add_argument("--replace", action="store_true",
                        help="also replace the labels (and objects) of items a person corrected "
                             "or reviewed; they become corrected, by the import (default: keep "
                             "them and list them)")


def detect_kind(source: Path) -> str:
    """``voc``, ``labelme``, ``dicom-seg`` or ``png`` for the folder ``source``."""
    from segstudio.io.dicom_seg import is_segmentation_file
    from segstudio.io.voc import VocError, find_voc_dir

    try:
        find_voc_dir(source)
        return "voc"
    except VocError:
        pass
    if any(p.suffix.lower() == ".json" and not p.name.startswith(".")
           for p in source.rglob("*.json")):
        return "labelme"
    if any(p.suffix.lower() not in (".png", ".json") and not p.name.startswith(".")
           and p.is_file() and is_segmentation_file(p) for p in source.rglob("*")):
        return "dicom-seg"
    return "png"


def run(args: argparse.Namespace) -> int:
    from segstudio.io.workspace import Workspace, WorkspaceError
    from segstudio.io import labels as importers
    from segstudio.io.seg_import import import_dicom_segs

    source = Path(args.source)
    try:
        is_folder = source.is_dir()
        is_file = not is_folder and source.is_file()
    except (OSError, ValueError):        # a name too long for the system, a NUL
        is_folder = is_file = False
    if is_file and args.kind not in ("auto", "dicom-seg"):
        raise CommandError(f"{source.name[:80]}: a file; --kind {args.kind} reads a folder")
    if not is_folder and not is_file:
        raise CommandError(f"{source.name[:80] or args.source[:80]}: not a folder or a file (give "
                           "a VOC tree, a folder of labelme files or of label PNGs, or a DICOM "
                           "SEG file or folder)")
    function = {"voc": importers.import_voc_tree, "labelme": importers.import_labelme_folder,
                "png": importers.import_label_folder, "dicom-seg": import_dicom_segs}
    try:
        # Locked from reading the workspace to its last save: another segstudio waits, then
        # sees this import's classes and statuses (and numbers its new classes after these).
        with Workspace.locked(args.workspace) as ws:
            try:
                kind = ("dicom-seg" if is_file else detect_kind(source)) \
                    if args.kind == "auto" else args.kind
                report = function[kind](source, ws, replace=args.replace)
            finally:
                ws.close()
    except (importers.LabelImportError, WorkspaceError) as exc:
        raise CommandError(str(exc)) from None
    except OSError as exc:
        raise CommandError(f"{source.name}: cannot be read ({exc.strerror or exc})") from None
    if is_file and not report.imported and not report.kept and len(report.problems) == 1:
        # One file named, and it could not be used: one line saying why.
        raise CommandError(f"{report.problems[0]}; nothing was imported")
    what = {"voc": "Pascal VOC tree", "labelme": "labelme files", "png": "label PNGs",
            "dicom-seg": "DICOM SEG"}[kind]
    print(f"imported the labels of {len(report.imported)} item(s) from {source.name} ({what})"
          + (f": {', '.join(report.imported)}" if report.imported else ""))
    if report.new_classes:
        print(f"new classes: {', '.join(report.new_classes)}")
    if report.kept:
        print(f"kept {len(report.kept)} item(s) a person corrected or reviewed: "
              f"{', '.join(report.kept)}; use --replace to overwrite them")
    if report.unmatched:
        print(f"{len(report.unmatched)} file(s) match no item: {', '.join(report.unmatched)}")
    for problem in report.problems:
        print(f"problem: {problem}", file=sys.stderr)
    if not report.imported and (report.problems or (report.unmatched and not report.kept)):
        raise CommandError("nothing was imported" + (
            f"; {len(report.problems)} file(s) could not be used" if report.problems else
            "; no file matches an item of the workspace (files are matched by name)"))
    return 0
