"""The clicks a person gave SAM 2 on each video, kept in the workspace.

Tracking a video builds on every click given so far (the first frame's, and each correction).
Kept only in the window, they would be lost on closing it, and a correction after a restart
would track from the new click alone. So each Track writes that video's clicks, with the class
name of each object, to ``segstudio-tracking.json`` in the workspace's root:

    {"version": 1, "videos": {"clips/walk.mp4": {
        "prompts": [{"frame": 0, "obj_id": 1, "points": [[210, 350]], "labels": [1],
                     "box": null}],
        "classes": {"1": "person"}}}}

- Written atomically under the workspace's lock, read again under it and merged (the entries of
  other videos, which another segstudio may have written, are kept as they are).
- Checked as read: a file that is damaged, too large, or holds a value no click can have is not
  used and never overwritten — :class:`TrackPromptsError` names it, and it stays for the person
  to look at.
- Class names, not numbers: a class-set change does not give an object another class; a name
  the workspace no longer has leaves that object's class to be chosen again.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from segstudio.io.atomic import atomic_write_text
from segstudio.io.regular_files import read_regular_text
from segstudio.io.workspace_lock import workspace_lock

FILE_NAME = "segstudio-tracking.json"
WORKSPACE_FILE = "segstudio-workspace.json"
VERSION = 1
SIZE_LIMIT = 8 << 20            # bytes; far more than any person's clicks
MAX_ID = 254                    # object ids are stored in 8-bit object maps (255 is void)


class TrackPromptsError(ValueError):
    """The tracking file cannot be read or holds something no click can be; it is kept."""


def file_path(root: str | Path) -> Path:
    return Path(root) / FILE_NAME


def _number(value, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or \
            not math.isfinite(value):
        raise TrackPromptsError(f"{what} is {value!r}, not a finite number")
    return float(value)


def _prompt(entry, where: str) -> dict:
    """One stored click group, checked field by field."""
    if not isinstance(entry, dict):
        raise TrackPromptsError(f"{where} is not an object")
    frame, obj = entry.get("frame"), entry.get("obj_id")
    if isinstance(frame, bool) or not isinstance(frame, int) or frame < 0:
        raise TrackPromptsError(f"{where}: frame {frame!r} is not a frame number")
    if isinstance(obj, bool) or not isinstance(obj, int) or not 1 <= obj <= MAX_ID:
        raise TrackPromptsError(f"{where}: object id {obj!r} is not 1..{MAX_ID}")
    points, labels, box = entry.get("points", []), entry.get("labels", []), entry.get("box")
    if not isinstance(points, list) or not isinstance(labels, list) or \
            len(points) != len(labels):
        raise TrackPromptsError(f"{where}: points and labels do not pair up")
    checked = []
    for p in points:
        if not isinstance(p, list) or len(p) != 2:
            raise TrackPromptsError(f"{where}: a point is not [x, y]")
        checked.append((_number(p[0], f"{where}: x"), _number(p[1], f"{where}: y")))
    if any(v not in (0, 1) or isinstance(v, bool) for v in labels):
        raise TrackPromptsError(f"{where}: a point's label is not 0 or 1")
    if box is not None:
        if not isinstance(box, list) or len(box) != 4:
            raise TrackPromptsError(f"{where}: the box is not [x0, y0, x1, y1]")
        box = tuple(_number(v, f"{where}: box") for v in box)
    if not checked and box is None:
        raise TrackPromptsError(f"{where}: no point and no box")
    return {"frame": frame, "obj_id": obj, "points": checked, "labels": list(labels),
            "box": box}


def _video(entry, where: str) -> dict:
    if not isinstance(entry, dict) or not isinstance(entry.get("prompts"), list) or \
            not isinstance(entry.get("classes", {}), dict):
        raise TrackPromptsError(f"{where} is not a video's clicks")
    prompts = [_prompt(p, f"{where}, click group {i + 1}")
               for i, p in enumerate(entry["prompts"])]
    classes = {}
    for key, name in entry.get("classes", {}).items():
        if not (isinstance(key, str) and key.isdigit() and 1 <= int(key) <= MAX_ID
                and isinstance(name, str) and 0 < len(name) <= 200):
            raise TrackPromptsError(f"{where}: object {key!r}'s class {name!r} is not a name")
        classes[int(key)] = name
    return {"prompts": prompts, "classes": classes}


def _read_raw(root: str | Path) -> dict:
    """The stored videos as they are in the file (checked), {} when there is no file."""
    path = file_path(root)
    if not path.exists():
        return {}
    name = path.name
    try:
        if path.stat().st_size > SIZE_LIMIT:
            raise TrackPromptsError(f"{name}: larger than any tracking file ({SIZE_LIMIT} "
                                    "bytes); kept as it is")
        data = json.loads(read_regular_text(path))
    except TrackPromptsError:
        raise
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise TrackPromptsError(f"{name}: cannot be read ({str(exc)[:120]}); kept as it is, "
                                "and the clicks in it are not used") from None
    if not isinstance(data, dict) or data.get("version") != VERSION or \
            not isinstance(data.get("videos"), dict):
        raise TrackPromptsError(f"{name}: not a tracking file of this version; kept as it is")
    for source, entry in data["videos"].items():
        _video(entry, f"{name}: {source}")
    return data["videos"]


def load_video(root: str | Path, source: str) -> tuple[list[dict], dict[int, str]]:
    """The clicks kept for the video ``source`` (its path in the workspace) and each object's
    class name; nothing when none were kept. :class:`TrackPromptsError` for a damaged file."""
    entry = _read_raw(root).get(str(source))
    if entry is None:
        return [], {}
    video = _video(entry, f"{FILE_NAME}: {source}")
    return video["prompts"], video["classes"]


def save_video(root: str | Path, source: str, prompts: list[dict], classes: dict[int, str],
               timeout: float | None = None) -> None:
    """Keep the clicks of the video ``source`` (replacing what was kept for it), under the
    workspace's lock; the other videos' entries stay as they are in the file. A damaged file
    is never overwritten: :class:`TrackPromptsError` says so."""
    entry = {"prompts": [{"frame": int(p["frame"]), "obj_id": int(p["obj_id"]),
                          "points": [[float(x), float(y)] for x, y in p["points"]],
                          "labels": [int(v) for v in p["labels"]],
                          "box": None if p.get("box") is None else [float(v) for v in p["box"]]}
                         for p in prompts],
             "classes": {str(int(k)): str(v) for k, v in classes.items()}}
    _video(entry, f"the clicks of {source}")          # what we write is what we would read
    root = Path(root)
    with workspace_lock(root / WORKSPACE_FILE, timeout):
        videos = _read_raw(root)
        videos[str(source)] = entry
        atomic_write_text(file_path(root),
                          json.dumps({"version": VERSION, "videos": videos}, indent=1))
