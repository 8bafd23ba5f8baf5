"""``segstudio dicomweb``: a PACS over DICOMweb.

- ``studies URL [--patient-id X] [--accession A] [--date YYYYMMDD] [--modality M]``: list the
  matching studies (QIDO-RS);
- ``pull URL --study UID --into WORKSPACE``: fetch a study's images into the workspace folder
  as ``<SOPInstanceUID>.dcm`` (WADO-RS), all or nothing;
- ``push WORKSPACE URL [--seg FILE ...]``: store DICOM SEG files (STOW-RS): the files given,
  or what ``segstudio export-dicom-seg WORKSPACE`` produces for the workspace.

Credentials come from the environment or a private ``dicomweb.json``, never from the command
line (see :mod:`segstudio.io.dicomweb_credentials`).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

from segstudio.commands import CommandError

HELP = "talk to a PACS over DICOMweb: list studies, pull a study into a workspace, push SEGs"
_SEG_EXPORT = "export-dicom-seg"


def _timeout(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0 < value <= 3600:
        raise argparse.ArgumentTypeError(f"must lie in (0, 3600] seconds, got {text}")
    return value


class _ActionParser(argparse.ArgumentParser):
    """An action's parser whose refusals read ``segstudio dicomweb: error: ACTION: …``, the
    one-line form of every other command."""

    def error(self, message: str):
        command, _, action = self.prog.rpartition(" ")
        self.print_usage(sys.stderr)
        self.exit(2, f"{command}: error: {action}: {message}\n")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True,
                                    parser_class=_ActionParser)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--timeout", type=_timeout, default=30.0, metavar="S",
                        help="seconds to wait for each answer of the server (default 30)")

    studies = actions.add_parser("studies", parents=[common], help="list studies (QIDO-RS)",
                                 description="List the studies on the server that match every "
                                             "given field.")
    studies.add_argument("url", metavar="URL", help="the DICOMweb root, e.g. "
                         "http://127.0.0.1:8042/dicom-web")
    studies.add_argument("--patient-id", metavar="X")
    studies.add_argument("--accession", metavar="A")
    studies.add_argument("--date", metavar="YYYYMMDD",
                         help="study date, or a range YYYYMMDD-YYYYMMDD")
    studies.add_argument("--modality", metavar="M", help="a modality in the study (CT, MR, CR…)")
    studies.add_argument("--limit", type=int, default=200, metavar="N",
                         help="at most N studies (default 200)")

    pull = actions.add_parser("pull", parents=[common],
                              help="fetch a study's images into a workspace (WADO-RS)",
                              description="Fetch every image of a study into the workspace "
                                          "folder as <SOPInstanceUID>.dcm; nothing is written "
                                          "unless the whole study arrived.")
    pull.add_argument("url", metavar="URL", help="the DICOMweb root")
    pull.add_argument("--study", required=True, metavar="UID", help="the Study Instance UID")
    pull.add_argument("--into", required=True, metavar="WORKSPACE",
                      help="the workspace folder (made if absent)")

    push = actions.add_parser("push", parents=[common],
                              help="store the workspace's DICOM SEG files (STOW-RS)",
                              description="Store DICOM SEG objects on the server: the files "
                                          "given with --seg, or those that export-dicom-seg "
                                          "writes for the workspace.")
    push.add_argument("workspace", metavar="WORKSPACE", help="the workspace folder")
    push.add_argument("url", metavar="URL", help="the DICOMweb root")
    push.add_argument("--seg", action="append", metavar="FILE",
                      help="a DICOM SEG file to store (repeatable)")


def run(args: argparse.Namespace) -> int:
    from segstudio.io.dicomweb import DicomWebError

    try:
        return {"studies": _studies, "pull": _pull, "push": _push}[args.action](args)
    except DicomWebError as exc:
        raise CommandError(str(exc)) from None


def _studies(args: argparse.Namespace) -> int:
    from segstudio.io.dicomweb import search_studies

    if args.limit < 1:
        raise CommandError(f"--limit must be at least 1, got {args.limit}")
    found = search_studies(args.url, patient_id=args.patient_id, accession=args.accession,
                           date=args.date, modality=args.modality, limit=args.limit,
                           timeout=args.timeout)
    if not found:
        print("no study matches", file=sys.stderr)
        return 0
    print("STUDY UID\tDATE\tPATIENT ID\tPATIENT NAME\tACCESSION\tMODALITIES\tINSTANCES\t"
          "DESCRIPTION")
    for s in found:
        print("\t".join([s.uid, s.date, s.patient_id, s.patient_name, s.accession,
                         s.modalities, "" if s.instances is None else str(s.instances),
                         s.description]))
    return 0


def _pull(args: argparse.Namespace) -> int:
    from segstudio.io.dicomweb import pull_study, workspace_folder_lock

    shown = []

    def progress(done: int) -> None:
        shown.append(done)
        print(f"\rfetched {done} instance(s)", end="", file=sys.stderr, flush=True)

    try:
        result = pull_study(args.url, args.study, args.into, timeout=args.timeout,
                            progress=progress, lock=workspace_folder_lock)
    finally:
        if shown:                          # end the progress line before any other output
            print(file=sys.stderr)
    print(f"wrote {len(result.written)} new instance(s) to {result.folder}"
          + (f"; {result.already_there} were already there" if result.already_there else ""))
    if result.left_out:
        parts = ", ".join(f"{n} {m}" for m, n in sorted(result.left_out.items()))
        print(f"left out objects that are not images: {parts}")
    return 0


def _push(args: argparse.Namespace) -> int:
    from segstudio.io.dicomweb import push_files

    root = Path(args.workspace)
    if not root.is_dir():
        raise CommandError(f"{root}: not a workspace folder")
    if args.seg:
        result = push_files(args.url, args.seg, timeout=args.timeout)
    else:
        out = Path(tempfile.mkdtemp(prefix="segstudio-seg-"))
        try:
            files = _export_segs(root, out / "seg")
            result = push_files(args.url, files, timeout=args.timeout)
        finally:
            shutil.rmtree(out, ignore_errors=True)
    print(f"stored {len(result.stored)} segmentation(s) on the server")
    return 0


def _export_segs(root: Path, out: Path) -> list[Path]:
    """Run ``export-dicom-seg WORKSPACE --out DIR`` (the command module, in this process) and
    return the DICOM files it wrote."""
    import importlib
    import importlib.util

    name = "segstudio.commands.export_dicom_seg"
    if importlib.util.find_spec(name) is None:
        raise CommandError("this segstudio cannot write DICOM SEG yet (no export-dicom-seg "
                           "command); give the SEG files with --seg")
    module = importlib.import_module(name)
    parser = argparse.ArgumentParser(prog=f"segstudio {_SEG_EXPORT}")
    module.add_arguments(parser)
    try:
        args = parser.parse_args([str(root), "--out", str(out)])
    except SystemExit:
        raise CommandError(f"{_SEG_EXPORT} does not take WORKSPACE --out DIR here; export "
                           "the SEG files yourself and give them with --seg") from None
    status = module.run(args)
    if status:
        raise CommandError(f"{_SEG_EXPORT} failed (status {status}); nothing was sent")
    files = sorted(p for p in out.rglob("*.dcm") if p.is_file())
    if not files:
        raise CommandError(f"{_SEG_EXPORT} wrote no DICOM SEG file; nothing was sent")
    return files
