"""SAM 2 model folders and tracking prompts, checked before anything heavy is imported.

Everything here is plain Python (no torch, no transformers), so the command line refuses a bad
folder or prompt at once and the window can check a folder on its own thread; the tracking
itself is :mod:`segstudio.models.sam2_video`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

MODEL_TYPES = ("sam2_video", "sam2")
CONFIG_LIMIT = 1 << 20          # a config.json larger than this is not a SAM 2 config
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")
# Bytes per weights byte while loading: the tensors read, and the network they are copied into.
LOAD_FACTOR = 2


class Sam2Error(ValueError):
    """A model folder, prompt or video that SAM 2 tracking cannot use; the message says why."""


# -- the model folder ------------------------------------------------------------------------
def weights_files(folder: Path) -> list[Path]:
    """The ``.safetensors`` files of a model folder, sorted."""
    return sorted(p for p in folder.glob("*.safetensors") if p.is_file())


def check_folder(folder: str | Path) -> dict:
    """Check that ``folder`` is a local SAM 2 model folder before anything is loaded, and return
    its config. One clear sentence for anything else: not a folder, no or a foreign config,
    pickled weights only, no weights."""
    folder = Path(folder)
    if not folder.exists():
        raise Sam2Error(f"{folder}: no such folder; give the folder holding the SAM 2 model's "
                        "config.json and .safetensors weights")
    if not folder.is_dir():
        raise Sam2Error(f"{folder}: not a folder; SAM 2 models are folders holding config.json "
                        "and .safetensors weights")
    config_path = folder / "config.json"
    if not config_path.is_file():
        raise Sam2Error(f"{folder}: no config.json; this is not a SAM 2 model folder")
    try:
        if config_path.stat().st_size > CONFIG_LIMIT:
            raise Sam2Error(f"{config_path}: too large for a SAM 2 config")
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        if isinstance(exc, Sam2Error):
            raise
        raise Sam2Error(f"{config_path}: cannot be read as JSON ({str(exc)[:120]})") from None
    kind = config.get("model_type") if isinstance(config, dict) else None
    if kind not in MODEL_TYPES:
        raise Sam2Error(f"{config_path}: not a SAM 2 config (model_type {kind!r}; expected "
                        f"{' or '.join(MODEL_TYPES)})")
    if not weights_files(folder):
        pickled = sorted(p.name for p in folder.iterdir() if p.suffix.lower() in PICKLE_SUFFIXES)
        if pickled:
            raise Sam2Error(f"{folder}: holds only pickled weights ({', '.join(pickled[:3])}); "
                            "segstudio loads SAM 2 only from .safetensors files, which cannot "
                            "run code")
        raise Sam2Error(f"{folder}: no .safetensors weights beside config.json")
    return config


def load_bytes(folder: str | Path) -> int:
    """About the peak bytes loading the folder's weights takes."""
    try:
        return LOAD_FACTOR * sum(p.stat().st_size for p in weights_files(Path(folder)))
    except OSError:
        return 0


# -- prompts ---------------------------------------------------------------------------------
@dataclass
class TrackPrompt:
    """What a person gave for one object on one frame: points (x, y in pixels; label 1 on the
    object, 0 background) and at most one box (x0, y0, x1, y1)."""

    frame: int
    obj_id: int
    points: list[tuple[float, float]] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    box: tuple[float, float, float, float] | None = None


def group_by_frame(prompts: Sequence[TrackPrompt]) -> dict[int, list[TrackPrompt]]:
    """The prompts of each frame, one entry per object (several entries for one object on one
    frame merged: points appended, the box kept). On one frame either every object has a box or
    none has: the library adds a frame's prompts in one call, and boxes cannot be padded."""
    merged: dict[tuple[int, int], TrackPrompt] = {}
    for p in prompts:
        key = (p.frame, p.obj_id)
        if key not in merged:
            merged[key] = TrackPrompt(p.frame, p.obj_id, list(p.points), list(p.labels), p.box)
            continue
        m = merged[key]
        if p.box is not None and m.box is not None:
            raise Sam2Error(f"frame {p.frame}: object {p.obj_id} is given two boxes; give one")
        m.points += list(p.points)
        m.labels += list(p.labels)
        m.box = m.box or p.box
    frames: dict[int, list[TrackPrompt]] = {}
    for (frame, _), p in sorted(merged.items()):
        if not p.points and p.box is None:
            raise Sam2Error(f"frame {frame}: object {p.obj_id} has no point and no box")
        frames.setdefault(frame, []).append(p)
    for frame, group in frames.items():
        boxes = [p.box is not None for p in group]
        if any(boxes) and not all(boxes):
            raise Sam2Error(f"frame {frame}: give every object on this frame a box, or none "
                            "(objects with and without a box go on different frames)")
    return frames


def library_inputs(group: Sequence[TrackPrompt]) -> dict:
    """The keyword arguments of ``add_inputs_to_inference_session`` for one frame's prompts."""
    kwargs: dict = {"obj_ids": [p.obj_id for p in group]}
    if any(p.points for p in group):
        kwargs["input_points"] = [[[[float(x), float(y)] for x, y in p.points] for p in group]]
        kwargs["input_labels"] = [[[int(v) for v in p.labels] for p in group]]
    if group[0].box is not None:
        kwargs["input_boxes"] = [[[float(v) for v in p.box] for p in group]]
    return kwargs


def check_prompts(prompts: Sequence[TrackPrompt], width: int, height: int,
                  frame_count: int) -> None:
    """Every prompt on a frame of the video and inside it: 0 ≤ X < W, 0 ≤ Y < H, a box a
    non-empty part of the frame."""
    for p in prompts:
        if not 0 <= p.frame < frame_count:
            raise Sam2Error(f"frame {p.frame} is past the video's {frame_count} frames "
                            f"(0..{frame_count - 1})")
        for x, y in p.points:
            if not (math.isfinite(x) and math.isfinite(y) and 0 <= x < width
                    and 0 <= y < height):
                raise Sam2Error(f"point {x:g} {y:g} on frame {p.frame}: outside the "
                                f"{width}×{height} frame (0 ≤ X < {width}, 0 ≤ Y < {height})")
        if p.box is not None:
            x0, y0, x1, y1 = p.box
            if not all(math.isfinite(v) for v in p.box) or not (x1 > x0 and y1 > y0):
                raise Sam2Error(f"box {x0:g} {y0:g} {x1:g} {y1:g} on frame {p.frame}: empty; "
                                "give X0 Y0 X1 Y1 with X1 > X0 and Y1 > Y0")
            if not (0 <= x0 < width and 0 <= y0 < height and x1 <= width and y1 <= height):
                raise Sam2Error(f"box {x0:g} {y0:g} {x1:g} {y1:g} on frame {p.frame}: not "
                                f"inside the {width}×{height} frame")


def tracking_order(prompts: Sequence[TrackPrompt], first: int, last: int,
                   reverse: bool) -> range:
    """The frames tracked, in order: from the first prompted frame in ``first..last`` forward
    to ``last``, or with ``reverse`` from the last prompted frame in it back to ``first``.
    Prompts outside the range still count: the network remembers them (a correction tracked
    from its own frame on keeps the earlier clicks)."""
    inside = sorted({p.frame for p in prompts if first <= p.frame <= last})
    if not inside:
        raise Sam2Error(f"no prompt lies in frames {first}..{last}; tracking starts at a "
                        "prompted frame")
    if reverse:
        return range(inside[-1], first - 1, -1)
    return range(inside[0], last + 1)
