"""``segstudio track``: follow objects through a video with SAM 2 from clicks or boxes.

Prompts come in groups, each opened by ``--frame N``: the ``--point``, ``--negative``,
``--box`` and ``--obj-id`` after it belong to that frame, until the next ``--frame``. One group
is the click that starts an object; more groups add objects (another ``--obj-id``) or correct
one on a later frame (the same ``--obj-id``)::

    segstudio track --weights sam2.1-hiera-tiny --video walk.mp4 --out masks \\
        --frame 0 --point 210 350 \\
        --frame 0 --obj-id 2 --box 300 0 500 200 \\
        --frame 40 --point 250 330 --negative 200 300

Frames stream from the decoder one at a time, so memory stays bounded by SAM 2's memory bank,
not by the video's length. Each tracked frame becomes one palette PNG of object ids.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np

from segstudio.commands import CommandError
from segstudio.commands._args import whole

HELP = ("track objects through a video with a SAM 2 model folder (Hugging Face format): "
        "click once, correct on any frame; writes one object-id PNG per frame")
COMMAND = "track"                   # the mark its PNGs carry (segstudio.io.output_guard)
FRAME = whole(0)
OBJ_ID = whole(1, 254, "ids are stored in 8-bit object PNGs, 255 is void")


class _OpenGroup(argparse.Action):
    """``--frame N``: start a new prompt group on frame N."""

    def __call__(self, parser, namespace, value, option_string=None):
        groups = list(getattr(namespace, self.dest, None) or [])
        groups.append({"frame": value, "obj_id": None, "points": [], "negatives": [],
                       "box": None})
        setattr(namespace, self.dest, groups)


class _AddToGroup(argparse.Action):
    """``--point``, ``--negative``, ``--box``, ``--obj-id``: add to the group opened last."""

    def __call__(self, parser, namespace, value, option_string=None):
        groups = getattr(namespace, self.dest, None)
        if not groups:
            raise argparse.ArgumentError(self, "give --frame N before it: each prompt belongs "
                                               "to the frame named before it")
        group = groups[-1]
        if self.const in ("box", "obj_id") and group[self.const] is not None:
            raise argparse.ArgumentError(self, f"given twice for --frame {group['frame']}; "
                                               "open another --frame group")
        if self.const in ("points", "negatives"):
            group[self.const].append(tuple(value))
        else:
            group[self.const] = tuple(value) if isinstance(value, list) else value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--weights", required=True, metavar="DIR",
                        help="a SAM 2 / SAM 2.1 model folder in Hugging Face format "
                             "(config.json and .safetensors weights); nothing is downloaded")
    parser.add_argument("--video", required=True, metavar="FILE", help="the video")
    parser.add_argument("--frame", type=FRAME, action=_OpenGroup, dest="prompts",
                        required=True, metavar="N",
                        help="start a prompt group on frame N (0-based); repeat for more "
                             "objects or for corrections on other frames")
    parser.add_argument("--point", nargs=2, type=float, action=_AddToGroup, dest="prompts",
                        const="points", metavar=("X", "Y"),
                        help="a point on the object, in frame pixels (repeat for more)")
    parser.add_argument("--negative", nargs=2, type=float, action=_AddToGroup, dest="prompts",
                        const="negatives", metavar=("X", "Y"),
                        help="a background point (repeat for more)")
    parser.add_argument("--box", nargs=4, type=float, action=_AddToGroup, dest="prompts",
                        const="box", metavar=("X0", "Y0", "X1", "Y1"),
                        help="a box around the object, in frame pixels")
    parser.add_argument("--obj-id", type=OBJ_ID, action=_AddToGroup, dest="prompts",
                        const="obj_id", metavar="K",
                        help="the object this group prompts (default 1); the id written in "
                             "the PNGs")
    parser.add_argument("--frames", nargs=2, type=FRAME, metavar=("A", "B"),
                        help="track and write only frames A..B (default: the whole video); "
                             "prompts outside still count as memory")
    parser.add_argument("--reverse", action="store_true",
                        help="track backwards, from the last prompted frame to A")
    parser.add_argument("--out", required=True, metavar="DIR",
                        help="folder for the per-frame PNGs (frame_NNNNNN.png)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace PNGs in DIR that an earlier 'segstudio track' did not "
                             "write (its own are replaced without asking)")


def frame_name(index: int) -> str:
    return f"frame_{index:06d}.png"


def _prompts(groups) -> list:
    from segstudio.models.sam2_prompts import TrackPrompt

    prompts = []
    for g in groups or []:
        if not g["points"] and not g["negatives"] and g["box"] is None:
            raise CommandError(f"--frame {g['frame']}: give --point, --negative or --box after "
                               "it")
        for x, y in g["points"] + g["negatives"]:
            if not (math.isfinite(x) and math.isfinite(y)):
                raise CommandError(f"--frame {g['frame']}: coordinates must be finite numbers")
        prompts.append(TrackPrompt(
            frame=g["frame"], obj_id=g["obj_id"] or 1,
            points=list(g["points"]) + list(g["negatives"]),
            labels=[1] * len(g["points"]) + [0] * len(g["negatives"]), box=g["box"]))
    return prompts


def run(args: argparse.Namespace) -> int:
    from segstudio.io.decode_memory import NotEnoughMemory, require_memory
    from segstudio.io.output_guard import (OutputError, check_outputs, check_outside_model,
                                           written_by)
    from segstudio.io.video import VideoError, VideoSource
    from segstudio.models.sam2_prompts import (Sam2Error, check_folder, check_prompts,
                                               group_by_frame, tracking_order)

    prompts = _prompts(args.prompts)
    out = Path(args.out)
    weights = Path(args.weights)
    if out.exists() and not out.is_dir():
        raise CommandError(f"--out {out} is a file; give a folder for the per-frame PNGs")
    try:
        check_outside_model(out, weights)
    except OutputError as exc:
        raise CommandError(str(exc)) from None
    try:
        check_folder(weights)
        video = VideoSource(args.video)
    except (Sam2Error, VideoError) as exc:
        raise CommandError(str(exc)) from None
    try:
        with video:
            count = video.frame_count
            first, last = args.frames if args.frames else (0, count - 1)
            if first > last or last >= count:
                raise Sam2Error(f"--frames {first} {last}: not a range of the video's {count} "
                                f"frames (0..{count - 1})")
            for p in prompts:
                if p.frame >= count:
                    raise Sam2Error(f"--frame {p.frame}: past the end of the video "
                                    f"({count} frames, 0..{count - 1})")
            group_by_frame(prompts)
            order = tracking_order(prompts, first, last, args.reverse)
            probe = video.read(order[0])
            height, width = probe.shape[:2]
            check_prompts(prompts, width, height, count)
            try:
                check_outputs([out / frame_name(i) for i in order],
                              [args.video, *weights.glob("*")], overwrite=args.overwrite,
                              ours=lambda p: written_by(p, COMMAND))
            except OutputError as exc:
                raise CommandError(str(exc)) from None
            tracker = _load(weights, args.device, require_memory)
            require_memory(tracker.session_bytes(len({p.obj_id for p in prompts}),
                                                 len({p.frame for p in prompts}), height, width),
                           f"tracking {width}×{height} frames")
            out.mkdir(parents=True, exist_ok=True)
            written = _track(tracker, video, prompts, first, last, args.reverse, out)
    except (Sam2Error, NotEnoughMemory) as exc:
        raise CommandError(str(exc)) from None
    except VideoError as exc:
        raise CommandError(f"{exc} (the frames tracked before it are written)") from None
    except OSError as exc:
        raise CommandError(f"{out}: cannot be written ({exc.strerror or exc})") from None
    print(f"wrote {written} frame(s) to {out} ({width}×{height}; {tracker.name} on "
          f"{tracker.device.type})")
    return 0


def _load(weights: Path, device_name: str, require_memory):
    from segstudio.models.device import DeviceError, choose_device
    from segstudio.models.sam2_prompts import Sam2Error, load_bytes
    from segstudio.models.sam2_video import Sam2VideoTracker

    try:
        device = choose_device(device_name)
    except DeviceError as exc:
        raise Sam2Error(str(exc)) from None
    require_memory(load_bytes(weights), f"loading {weights.name}")
    return Sam2VideoTracker.from_folder(weights, device)


def _track(tracker, video, prompts, first, last, reverse, out: Path) -> int:
    """Track and write each frame as it comes; returns how many were written."""
    written = 0
    for result in tracker.track(video.read, video.frame_count, prompts, first, last, reverse):
        _write_objects(out / frame_name(result.index), result.object_map())
        parts = [f"object {k} {int(m.sum())} px (score {s:.3f})"
                 for k, m, s in zip(result.object_ids, result.masks, result.scores)]
        print(f"frame {result.index}: " + "; ".join(parts), flush=True)
        written += 1
    return written


def _write_objects(path: Path, ids: np.ndarray) -> None:
    """An object-id map as a palette PNG in VOC colours (as ``SegmentationObject``), marked as
    this command's, atomically."""
    from PIL import Image

    from segstudio.core.palette import VOC_COLORMAP
    from segstudio.io.atomic import atomic_write_with
    from segstudio.io.output_guard import png_mark

    im = Image.fromarray(np.ascontiguousarray(ids, dtype=np.uint8))
    im.putpalette(VOC_COLORMAP.reshape(-1).tolist())
    atomic_write_with(path, lambda f: im.save(f, format="PNG", pnginfo=png_mark(COMMAND)))
