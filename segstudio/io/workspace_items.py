"""The items of a workspace (an image file, or one frame of a video or multi-frame DICOM),
their status, their record in the workspace file, and the scan of a folder that finds them.
No Qt, no torch."""

from __future__ import annotations

import os
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from segstudio.core.label_paths import (LABELS_DIR, OBJECTS_DIR, PREDICTED_OBJECTS_DIR,
                                        PREDICTIONS_DIR)
from segstudio.io.images import is_image_path
from segstudio.io.regular_files import check_regular
from segstudio.io.video import is_video_path

# Folders a scan never enters: our own labels, exports, and hidden folders (".git" ...).
SKIPPED_DIRS = {LABELS_DIR, PREDICTIONS_DIR, OBJECTS_DIR, PREDICTED_OBJECTS_DIR, "VOCdevkit",
                "__pycache__"}


class ItemStatus(str, Enum):
    """How far an item's labels have come."""

    UNLABELLED = "unlabelled"
    PREDICTED = "predicted"
    CORRECTED = "corrected"
    REVIEWED = "reviewed"


@dataclass(eq=False)
class Item:
    """One thing to label: an image file, or one frame of a video or multi-frame DICOM file."""

    source: Path
    frame: int | None = None
    status: ItemStatus = ItemStatus.UNLABELLED
    updated: str | None = None
    updated_by: str | None = None
    label: str | None = None  # label file relative to the root (always under labels/)

    @property
    def id(self) -> str:
        stem = Path(self.source).stem
        return stem if self.frame is None else f"{stem}_{self.frame:06d}"

    @property
    def key(self) -> tuple[str, int | None]:
        return (Path(self.source).as_posix(), self.frame)


def frame_phrase(frame: int, count: int) -> str:
    """How the window names frame index ``frame`` (from 0) of ``count`` to people: counted from
    1, as players and DICOM count them ("frame 4 of 250"). Item ids and label files keep the
    index (``clip_000003`` is frame 4)."""
    return f"frame {frame + 1} of {count}"


def record(item: Item) -> dict:
    return {"source": Path(item.source).as_posix(), "frame": item.frame,
            "status": item.status.value, "updated": item.updated,
            "updated_by": item.updated_by, "label": item.label}


def apply_record(item: Item, rec: dict) -> None:
    try:
        item.status = ItemStatus(rec.get("status", "unlabelled"))
    except ValueError:
        item.status = ItemStatus.UNLABELLED
    item.updated = rec.get("updated")
    item.updated_by = rec.get("updated_by")
    label = rec.get("label")
    item.label = label if isinstance(label, str) else None   # checked when paths are assigned


def record_of(item: Item) -> dict | None:
    """The item's record in the workspace file; None for an item never labelled."""
    if item.status is ItemStatus.UNLABELLED and not item.updated:
        return None
    return record(item)


def set_record(item: Item, record: dict | None) -> None:
    if record is None:
        item.status, item.updated, item.updated_by = ItemStatus.UNLABELLED, None, None
    else:
        apply_record(item, record)


def scan_sources(root: Path, skipped: list[str]) -> list[str]:
    """Relative posix paths of the images and videos under ``root``, sorted. Pipes, devices
    and sockets with an image name are never opened: each adds a message to ``skipped``."""
    found: list[str] = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in SKIPPED_DIRS)
        base = Path(folder)
        for name in files:
            if name.startswith("."):
                continue
            if is_image_path(name) or is_video_path(name):
                try:
                    check_regular(base / name)
                except OSError as e:
                    skipped.append(f"{name}: {getattr(e, 'reason', None) or e.strerror or e}")
                    continue
                found.append((base / name).relative_to(root).as_posix())
    return sorted(found)

