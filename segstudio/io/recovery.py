"""Crash recovery: autosaved label maps kept apart from the user's own files.

Each running segstudio has a session folder under ``<user data>/recovery/<session>/`` holding a
``manifest.json`` and one PNG per changed item (and one more, ``<n>.objects.png``, holding the
object map of an item that has one). A clean exit deletes the folder; a crash (even
``kill -9``) leaves it, and the next start offers to restore it. Every file is written atomically,
so a crash during an autosave leaves the previous autosave intact.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from segstudio.io.atomic import atomic_write_bytes, atomic_write_text

MANIFEST = "manifest.json"


@dataclass(frozen=True)
class RecoveredItem:
    item_id: str
    source: str
    frame: int | None
    labels_file: Path
    saved_at: float
    objects_recorded: bool = False      # autosaved by a segstudio that keeps objects
    objects_file: Path | None = None    # None with objects_recorded: the item had no objects

    def load(self) -> np.ndarray:
        with Image.open(self.labels_file) as im:
            return np.array(im)

    def load_objects(self) -> np.ndarray | None:
        if self.objects_file is None:
            return None
        with Image.open(self.objects_file) as im:
            return np.array(im)


@dataclass(frozen=True)
class RecoverableSession:
    folder: Path
    workspace: str
    started: float
    items: tuple[RecoveredItem, ...]

    def discard(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


class RecoveryStore:
    """The autosave area of this process; :func:`orphans` finds those of crashed ones."""

    def __init__(self, root: Path, workspace: str = "") -> None:
        self.root = Path(root)
        self.folder = self.root / f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.workspace = workspace
        self.started = time.time()
        self._items: dict[str, dict] = {}

    def set_workspace(self, workspace: str) -> None:
        """A new workspace starts a clean slate (the old one's edits were saved or discarded)."""
        self.clear()
        self.workspace = workspace

    @staticmethod
    def key(source: str, frame: int | None) -> str:
        """Items are told apart by source file and frame (two folders may hold ``x.png``)."""
        return f"{source}#{'' if frame is None else frame}"

    def save(self, item_id: str, source: str, frame: int | None, labels: np.ndarray,
             objects: np.ndarray | None = None) -> None:
        """Autosave one item's labels (and object map, if it has one; PNG at fast
        compression), then the manifest."""
        self.folder.mkdir(parents=True, exist_ok=True)
        key = self.key(source, frame)
        name = self._items[key]["labels"] if key in self._items else f"{len(self._items):05d}.png"
        while key not in self._items and (self.folder / name).exists():
            name = f"{uuid.uuid4().hex[:8]}.png"
        buf = io.BytesIO()
        Image.fromarray(np.ascontiguousarray(labels, dtype=np.uint8)).save(
            buf, format="PNG", compress_level=1)
        atomic_write_bytes(self.folder / name, buf.getvalue())
        objects_name = None
        if objects is not None:
            objects_name = name[:-4] + ".objects.png"
            buf = io.BytesIO()
            Image.fromarray(np.ascontiguousarray(objects, dtype=np.uint8)).save(
                buf, format="PNG", compress_level=1)
            atomic_write_bytes(self.folder / objects_name, buf.getvalue())
        self._items[key] = {"id": item_id, "labels": name, "source": source, "frame": frame,
                            "saved_at": time.time(), "objects": objects_name}
        self._write_manifest()

    def forget(self, source: str, frame: int | None) -> None:
        """The item was saved for real: its autosave is no longer needed."""
        entry = self._items.pop(self.key(source, frame), None)
        if entry is None:
            return
        self._write_manifest()
        for name in (entry["labels"], entry.get("objects")):
            try:
                if name:
                    (self.folder / name).unlink()
            except OSError:
                pass

    def clear(self) -> None:
        self._items.clear()
        shutil.rmtree(self.folder, ignore_errors=True)

    def _write_manifest(self) -> None:
        data = {"workspace": self.workspace, "pid": os.getpid(), "started": self.started,
                "items": self._items}
        atomic_write_text(self.folder / MANIFEST, json.dumps(data, indent=1))


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def orphans(root: Path, *, exclude: Path | None = None) -> list[RecoverableSession]:
    """Sessions left by processes that are gone, newest first; unreadable ones are skipped."""
    root = Path(root)
    found = []
    if not root.is_dir():
        return found
    for folder in root.iterdir():
        if not folder.is_dir() or (exclude is not None and folder == exclude):
            continue
        try:
            data = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
            if _alive(int(data.get("pid", -1))):
                continue
            items = tuple(
                RecoveredItem(str(v.get("id", k)), str(v["source"]), v.get("frame"),
                              folder / v["labels"], float(v.get("saved_at", 0)),
                              "objects" in v, _objects_file(folder, v.get("objects")))
                for k, v in data.get("items", {}).items() if (folder / v["labels"]).exists())
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            continue
        if items:
            found.append(RecoverableSession(folder, str(data.get("workspace", "")),
                                            float(data.get("started", 0)), items))
    return sorted(found, key=lambda s: s.started, reverse=True)


def _objects_file(folder: Path, name) -> Path | None:
    if not isinstance(name, str) or "/" in name or "\\" in name or name.startswith("."):
        return None
    path = folder / name
    return path if path.is_file() else None
