"""``segstudio overlay-video``: write a workspace video with its saved labels blended over it."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from segstudio.commands import CommandError
from segstudio.commands._args import number

HELP = "write a workspace's video as an mp4 with its saved labels blended over each frame"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("workspace", metavar="WORKSPACE", help="the workspace folder")
    parser.add_argument("--out", required=True, metavar="FILE.mp4", help="the video to write")
    parser.add_argument("--video", metavar="NAME",
                        help="which video of the workspace (its file name or path inside the "
                             "workspace); needed only when it holds more than one")
    parser.add_argument("--opacity", type=number(0.0, 1.0), default=0.5, metavar="A",
                        help="weight of the class colours, 0..1 (default 0.5)")
    parser.add_argument("--frames", metavar="A-B",
                        help="only frames A to B, inclusive (0-based; default: all)")
    parser.add_argument("--show-background", action="store_true",
                        help="paint class 0 too (by default it is left clear, as on screen)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an existing FILE.mp4 (never one of the workspace's files)")


def choose_video(sources: list[str], wanted: str | None, root_name: str) -> str:
    """The one video of ``sources`` meant by ``wanted`` (a name or relative path)."""
    if not sources:
        raise CommandError(f"{root_name}: the workspace holds no video")
    if wanted is None:
        if len(sources) > 1:
            raise CommandError(f"{root_name} holds {len(sources)} videos ({', '.join(sources)}); "
                               "choose one with --video")
        return sources[0]
    matches = [s for s in sources if s == wanted or Path(s).name == wanted]
    if len(matches) != 1:
        what = "no" if not matches else "more than one"
        raise CommandError(f"--video {wanted}: {what} video of {root_name} has that name; it "
                           f"holds {', '.join(sources)}")
    return matches[0]


def parse_frames(text: str | None, count: int) -> list[int]:
    if text is None:
        return list(range(count))
    first, sep, last = text.partition("-")
    try:
        a, b = int(first), int(last if sep else first)
    except ValueError:
        raise CommandError(f"--frames {text}: expected A-B, two frame numbers") from None
    from segstudio.models.video_pipeline import VideoPipelineError, frame_range

    try:
        return frame_range(a, b, count)
    except VideoPipelineError as exc:
        raise CommandError(f"--frames {text}: {exc}") from None


def run(args: argparse.Namespace) -> int:
    from segstudio.io.video import is_video_path
    from segstudio.io.workspace import Workspace, WorkspaceError
    from segstudio.models.video_pipeline import VideoPipelineError, workspace_overlay_video

    if not 0.0 <= args.opacity <= 1.0:
        raise CommandError(f"--opacity {args.opacity}: must lie between 0 and 1")
    try:
        ws = Workspace.open(args.workspace)
    except WorkspaceError as exc:
        raise CommandError(str(exc)) from None
    try:
        sources = sorted({Path(it.source).as_posix() for it in ws.items
                          if it.frame is not None and is_video_path(it.source)})
        source = choose_video(sources, args.video, ws.root.name)
        count = 1 + max(it.frame for it in ws.items
                        if it.frame is not None and Path(it.source).as_posix() == source)
        frames = parse_frames(args.frames, count)
        _check_out(args, ws, source)
        shown: list[bool] = []

        def progress(done: int, total: int) -> None:
            end = "\n" if done == total else ""
            print(f"\rwriting {done}/{total}", end=end, file=sys.stderr, flush=True)
            shown[:] = [done < total]          # a line left open for the next count

        result = workspace_overlay_video(ws, source, args.out, args.opacity, frames=frames,
                                         hidden=() if args.show_background else (0,),
                                         progress=progress)
    except (WorkspaceError, VideoPipelineError) as exc:
        if shown and shown[0]:
            print(file=sys.stderr)             # the error on its own line, not after a count
        raise CommandError(f"{exc}; no new video was written") from None
    finally:
        ws.close()
    from segstudio.io.video_out import describe

    print(f"wrote {result.frames} frames ({result.labelled} with labels) of {source} to "
          f"{result.path} at {result.stats.fps:.0f} frames/s; codec {describe(result.codec)}")
    return 0


def _check_out(args: argparse.Namespace, ws, source: str) -> None:
    """--out is never a file of the workspace (a video, the workspace file, a label file of the
    video's frames), and an existing file is replaced only with --overwrite: a video carries no
    mark saying this command wrote it."""
    from segstudio.io.output_guard import OutputError, check_output

    inputs = [("the workspace file", ws.file_path())]
    inputs += [("the workspace's video", ws.root / s)
               for s in sorted({it.source for it in ws.items if it.frame is not None})]
    inputs += [(f"the labels of frame {it.frame}", ws.label_path(it)) for it in ws.items
               if it.frame is not None and it.label and Path(it.source).as_posix() == source]
    try:
        check_output(args.out, inputs, overwrite=args.overwrite)
    except OutputError as exc:
        raise CommandError(str(exc)) from None
