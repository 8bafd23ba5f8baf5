"""A workspace: the images (and the frames of videos and multi-frame DICOM files) of one folder,
their labels and their status.

Labels live beside the images as palette PNGs under ``<root>/labels/``, mirroring the folders
of the sources; statuses, authors and the class set live in ``segstudio-workspace.json``
(see ``docs/workspace-format.md``). Both are written atomically, so a crash never leaves half a
file, and the workspace file only under its lock, merged with what another segstudio wrote
since (``workspace_lock``). No Qt and no torch here: the GUI and the command line share this
code.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import threading
from collections import OrderedDict
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np

from segstudio.core.classes import ClassSet, ClassSetError, voc21
from segstudio.core.label_paths import (LABELS_DIR, OBJECTS_DIR, PREDICTED_OBJECTS_DIR,
                                        PREDICTIONS_DIR, LabelPathError, assign_labels,
                                        checked_file, prediction_of)
from segstudio.core.objectmap import compact_ids, consistent_ids
from segstudio.core.palette import VOID_INDEX
from segstudio.io.atomic import old_style_parts, remove_stale_parts
from segstudio.io.dicom import frame_count as dicom_frame_count
from segstudio.io.images import DICOM_SUFFIXES, ImageData, is_image_path, read_image
from segstudio.io.object_store import load_objects
from segstudio.io.workspace_error import WorkspaceError
from segstudio.io.workspace_file import (FORMAT_NAME, FORMAT_VERSION, load_workspace_file,
                                         parse_workspace_file, read_workspace_bytes)
from segstudio.io.workspace_items import (Item, ItemStatus, apply_record, frame_phrase,
                                          record_of, scan_sources, set_record)
from segstudio.io.workspace_lock import workspace_lock, write_merged
from segstudio.io.workspace_merge import (Adoption, Base, Merge, Snapshot, merge_workspace_data,
                                          plan_adoption, settle)
from segstudio.io.regular_files import check_regular
from segstudio.io.video import VideoError, VideoSource, is_video_path
from segstudio.io.voc import VocError, VocSample, load_label_png, save_label_png

_OWN_DIRS = (LABELS_DIR, PREDICTIONS_DIR, OBJECTS_DIR, PREDICTED_OBJECTS_DIR)
_OPEN_VIDEOS = 4


class Workspace:
    """The items of one root folder with their labels, statuses and class set."""

    FILE_NAME = "segstudio-workspace.json"

    def __init__(self, root: Path, classes: ClassSet, items: list[Item], *, scan: str = "folder",
                 foreign: list[dict] | None = None) -> None:
        self.root = Path(root)
        self.classes = classes
        self.items = items
        self.scan = scan
        self.problems: list[str] = []  # files skipped while scanning, as messages
        self._foreign = foreign or []  # records of items not present now, kept on save
        self._videos: OrderedDict[Path, VideoSource] = OrderedDict()
        self._videos_lock = threading.Lock()
        self.deferred_save: Callable[[dict], None] | None = None
        # Told (from the thread that took them in) what another segstudio changed; see adopt().
        self.adopted: Callable[["Adoption"], None] | None = None
        self._state = threading.RLock()     # items, classes, base: GUI thread against writer
        self._base = Base(None, None)       # the workspace file as last read or written here
        self._numbers = itertools.count(1)  # snapshots and direct writes, in the order taken
        self._transaction_thread: int | None = None
        self._assign_label_paths()

    # -- opening -----------------------------------------------------------------------------
    @classmethod
    def open(cls, folder: str | Path, *, classes: ClassSet | None = None) -> "Workspace":
        """Scan ``folder`` (and its subfolders) and restore the workspace file if present.

        The class set stored in the file wins over ``classes``, so labels are never
        reinterpreted under another set; ``classes`` (default VOC 21) starts a new workspace.
        """
        root = _folder(folder)
        raw, stored = load_workspace_file(root / cls.FILE_NAME)
        skipped: list[str] = []
        sources = scan_sources(root, skipped)
        ws = cls._assemble(root, sources, stored, classes, scan="folder", raw=raw)
        ws.problems[:0] = skipped
        return ws

    @classmethod
    @contextlib.contextmanager
    def locked(cls, folder: str | Path, *, classes: ClassSet | None = None,
               timeout: float | None = None) -> Iterator["Workspace"]:
        """Open ``folder`` with its workspace file locked until the block ends: a command's
        open, change and save is one step that no other segstudio can come between (the
        second of two imports sees the first one's new class and numbers its own after it)."""
        root = _folder(folder)
        with workspace_lock(root / cls.FILE_NAME, timeout):
            ws = cls.open(root, classes=classes)
            with ws.transaction(timeout):
                yield ws

    @classmethod
    def from_paths(cls, paths: Iterable[str | Path],
                   classes: ClassSet | None = None) -> "Workspace":
        """Loose image and video files together; the root is their common folder."""
        files = [Path(p).absolute() for p in paths]
        if not files:
            raise WorkspaceError("no files were given")
        if len(files) == 1 and files[0].is_dir():
            return cls.open(files[0], classes=classes)
        for f in files:
            try:
                check_regular(f)
            except FileNotFoundError:
                raise WorkspaceError(f"{f.name}: does not exist") from None
            except OSError as e:
                raise WorkspaceError(f"{f.name}: {getattr(e, 'reason', None) or e}") from None
            if not (is_image_path(f) or is_video_path(f)):
                raise WorkspaceError(f"{f.name}: not an image or video segstudio can open")
        root = Path(os.path.commonpath([str(f.parent) for f in files]))
        raw, stored = load_workspace_file(root / cls.FILE_NAME)
        rels = {f.relative_to(root).as_posix() for f in files}
        scan = "files"
        if stored is not None:
            if stored.get("scan") == "folder":
                scan = "folder"
            rels |= {r for r in stored.get("files", []) if (root / r).is_file()}
        return cls._assemble(root, sorted(rels), stored, classes, scan=scan, raw=raw)

    @classmethod
    def _assemble(cls, root: Path, sources: list[str], stored: dict | None,
                  classes: ClassSet | None, scan: str, raw: bytes | None = None) -> "Workspace":
        records = {}
        if stored is not None:
            try:
                classes = ClassSet.from_dict(stored["classes"]) if "classes" in stored else classes
            except ClassSetError as e:
                raise WorkspaceError(f"{cls.FILE_NAME}: the class set is damaged ({e})") from None
            records = {(r["source"], r.get("frame")): r for r in stored.get("items", [])}
        items: list[Item] = []
        problems: list[str] = []
        for rel in sources:
            path = root / rel
            if is_video_path(path):
                try:
                    with VideoSource(path, cache_frames=1) as video:
                        count = video.frame_count
                except VideoError as e:
                    problems.append(str(e))
                    continue
                items.extend(Item(Path(rel), frame=i) for i in range(count))
            elif path.suffix.lower() in DICOM_SUFFIXES and (count := dicom_frame_count(path)) > 1:
                items.extend(Item(Path(rel), frame=i) for i in range(count))
            else:
                items.append(Item(Path(rel)))
        for item in items:
            rec = records.pop(item.key, None)
            if rec is None and item.frame == 0 and not is_video_path(item.source):
                # Before its frames were items, a multi-frame DICOM was one item showing its
                # first frame: that record, and the labels it names, now belong to frame 0.
                rec = records.pop((item.key[0], None), None)
            if rec is not None:
                apply_record(item, rec)
        ws = cls(root, classes or voc21(), items, scan=scan, foreign=list(records.values()))
        ws._base = Base(raw, stored)        # before any write below (an unfinished relabel)
        ws.problems = problems
        for item in ws.items:  # labels written by hand or by another tool, without a record
            if item.status is ItemStatus.UNLABELLED and _is_file(ws.label_path(item)):
                item.status = ItemStatus.CORRECTED
        ws.remove_stale_temporary_files()
        kept = ws.old_temporary_files()
        if kept:
            more = f" and {len(kept) - 1} more like it" if len(kept) > 1 else ""
            ws.problems.append(
                f"{kept[0].relative_to(root).as_posix()}{more}: kept, though named like the "
                "temporary file of a save an older segstudio could not finish; nothing proves "
                "it is not yours, so delete it by hand if you do not need it")
        if stored is not None:
            from segstudio.io.relabel import finish_interrupted_relabel

            finish_interrupted_relabel(ws)       # a change of class set a crash cut short
        return ws

    def _assign_label_paths(self) -> None:
        """Give each item a label file of its own under ``labels/``, keeping recorded ones that
        are safe (see :mod:`segstudio.core.label_paths`); any other record is ignored."""
        paths = assign_labels(
            ((Path(it.source).as_posix(), it.id, it.label) for it in self.items),
            sources=(Path(it.source).as_posix() for it in self.items),
            reserved=(r.get("label") for r in self._foreign))
        for item, path in zip(self.items, paths):
            item.label = path

    def remove_stale_temporary_files(self) -> int:
        """Delete the hidden temporary files that saves killed midway left in the workspace's
        own files (``labels/``, ``predictions/``, the object folders, the workspace file), only
        those segstudio provably wrote on this machine (see :func:`remove_stale_parts`);
        returns how many."""
        removed = remove_stale_parts(self.root, recursive=False)
        for folder in _OWN_DIRS:
            removed += remove_stale_parts(self.root / folder)
        return len(removed)

    def old_temporary_files(self) -> list[Path]:
        """Files in the workspace's own folders named like an older version's temporary files
        (``.<name>.<pid>-<random>.part``): never removed, as a user's file can look the same."""
        found = [p for p in old_style_parts(self.root, recursive=False)
                 if p.name.startswith(f".{self.FILE_NAME}.")]
        for folder in _OWN_DIRS:
            found += old_style_parts(self.root / folder)
        return found

    # -- labels ------------------------------------------------------------------------------
    def labels_dir(self) -> Path:
        return self.root / LABELS_DIR

    def label_path(self, item: Item) -> Path:
        """Where the item's labels are kept (``labels/…``, never anywhere else)."""
        return self.root.joinpath(*str(item.label).split("/"))

    def checked(self, item: Item, rel: str) -> Path:
        """``root/rel`` for a file of the workspace's own folders, checked for links."""
        return self._checked(item, rel)

    def _checked(self, item: Item, rel: str) -> Path:
        try:
            return checked_file(self.root, rel)
        except LabelPathError as e:
            raise WorkspaceError(f"{item.id}: {e}") from None

    def source_path(self, item: Item) -> Path:
        return self.root / item.source

    def load_labels(self, item: Item) -> np.ndarray | None:
        """The item's saved labels (H×W uint8), or None when it has none yet."""
        return _read_labels(self._checked(item, str(item.label)), item)

    def save_labels(self, item: Item, labels: np.ndarray, *,
                    status: ItemStatus = ItemStatus.CORRECTED, by: str = "") -> None:
        """Write the labels (atomic palette PNG), then record status and author in the file."""
        labels = np.asarray(labels)
        if labels.ndim != 2:
            raise WorkspaceError(f"{item.id}: labels must be a 2-D array, got shape {labels.shape}")
        bad = (labels < 0) | ((labels >= len(self.classes)) & (labels != VOID_INDEX))
        if bad.any():
            raise WorkspaceError(f"{item.id}: label value {int(labels[bad].max())} is not a class "
                                 f"(0..{len(self.classes) - 1}) or 255 (void)")
        self.write_label_file(item, labels.astype(np.uint8))
        self._mark(item, ItemStatus(status), by)
        self.save()

    def write_label_file(self, item: Item, labels: np.ndarray) -> None:
        """Write the item's label PNG only (atomic), leaving status and workspace file alone."""
        self._write_png(item, str(item.label), labels)

    def prediction_path(self, item: Item) -> Path:
        """Where the model's last prediction for ``item`` is kept (beside, not in, its labels)."""
        return self.root.joinpath(*prediction_of(str(item.label)).split("/"))

    def save_prediction(self, item: Item, labels: np.ndarray) -> None:
        """Keep the model's raw prediction so it can be scored against the corrected labels."""
        self._write_png(item, prediction_of(str(item.label)), labels)

    def load_prediction(self, item: Item) -> np.ndarray | None:
        """The model's last prediction for ``item``, or None."""
        return _read_labels(self._checked(item, prediction_of(str(item.label))), item)

    def _write_png(self, item: Item, rel: str, labels: np.ndarray) -> None:
        path = self._checked(item, rel)
        try:
            save_label_png(path, np.asarray(labels, np.uint8), self.classes)
        except (VocError, OSError) as e:
            raise WorkspaceError(f"{item.id}: {e}") from None

    def set_status(self, item: Item, status: ItemStatus, *, by: str = "") -> None:
        self._mark(item, ItemStatus(status), by)
        self.save()

    def _mark(self, item: Item, status: ItemStatus, by: str) -> None:
        with self._state:
            item.status = status
            item.updated = datetime.now(timezone.utc).isoformat(timespec="seconds")
            item.updated_by = by or None

    # -- pixels ------------------------------------------------------------------------------
    def read_image(self, item: Item) -> ImageData:
        """The item's picture: the image file, the DICOM frame at full depth, or the video frame
        as 8-bit RGB."""
        path = self.source_path(item)
        if item.frame is None:
            return read_image(path)
        if not is_video_path(path):
            return read_image(path, frame=item.frame)     # a frame of a multi-frame DICOM
        try:
            video = self._video(path)
            frame = video.read(item.frame)
            count = video.frame_count
        except VideoError as e:
            raise WorkspaceError(str(e)) from None
        return ImageData(np.array(frame), path, "VIDEO", 8, None,
                         (float(frame.min()), float(frame.max())),
                         [frame_phrase(item.frame, count)])

    def _video(self, path: Path) -> VideoSource:
        with self._videos_lock:
            video = self._videos.get(path)
            if video is None:
                video = VideoSource(path)
                self._videos[path] = video
                while len(self._videos) > _OPEN_VIDEOS:
                    self._videos.popitem(last=False)[1].close()
            self._videos.move_to_end(path)
            return video

    def close(self) -> None:
        """Release open video files."""
        with self._videos_lock:
            for video in self._videos.values():
                video.close()
            self._videos.clear()

    def labelled_items(self, statuses: Iterable[ItemStatus] | None = None) -> list[Item]:
        wanted = set(statuses) if statuses is not None else {
            ItemStatus.PREDICTED, ItemStatus.CORRECTED, ItemStatus.REVIEWED}
        return [it for it in self.items if it.status in wanted and _is_file(self.label_path(it))]

    def samples(self, statuses: Iterable[ItemStatus] | None = None) -> Iterator[VocSample]:
        """Labelled items as export samples, read one at a time."""
        for item in self.labelled_items(statuses):
            image = self.read_image(item)
            labels = self.load_labels(item)
            if labels is None:
                continue
            if labels.shape != (image.height, image.width):
                raise WorkspaceError(
                    f"{item.id}: labels are {labels.shape[1]}×{labels.shape[0]} but the image is "
                    f"{image.width}×{image.height}")
            # The frames of one video share a split: neighbours are near duplicates.
            group = None if item.frame is None else Path(item.source).as_posix()
            objects = load_objects(self, item)       # SegmentationObject/ for items with objects
            if objects is not None and objects.shape != labels.shape:
                raise WorkspaceError(
                    f"{item.id}: its object map is {objects.shape[1]}×{objects.shape[0]} but its "
                    f"labels {labels.shape[1]}×{labels.shape[0]}")
            yield VocSample(item.id, image.to_rgb8(), labels, group=group, original=image,
                            instances=None if objects is None
                            else compact_ids(consistent_ids(objects, labels)))

    # -- the workspace file ------------------------------------------------------------------
    def file_path(self) -> Path:
        return self.root / self.FILE_NAME

    def to_dict(self) -> dict:
        with self._state:
            records = [r for r in map(record_of, self.items) if r is not None]
            data: dict = {"format": FORMAT_NAME, "version": FORMAT_VERSION, "scan": self.scan,
                          "classes": self.classes.to_dict()}
            if self.scan == "files":
                data["files"] = sorted({Path(it.source).as_posix() for it in self.items})
            data["items"] = records + self._foreign
            return data

    def snapshot(self) -> Snapshot:
        """The content to save now, with the base it changes (so a write that comes later, from
        another thread, still knows which records this workspace changed)."""
        with self._state:
            return Snapshot(self.to_dict(), self._base, next(self._numbers))

    def save(self) -> None:
        """Write the workspace file, or hand a snapshot to ``deferred_save``.

        A GUI sets ``deferred_save`` to write from a background thread (the snapshot is taken
        here, so later changes never tear it); scripts, and saves inside a
        :meth:`transaction`, write at once and take in what another segstudio changed.
        """
        data = self.snapshot()
        if self.deferred_save is not None and \
                self._transaction_thread != threading.get_ident():
            self.deferred_save(data)
            return
        merge = self.write_file(data)
        if merge is not None:
            self.adopt(merge)

    def write_file(self, data: dict) -> Merge | None:
        """Write ``data`` (a :meth:`snapshot`, or any content for the file) under the workspace
        lock, merged with what another segstudio wrote since this workspace's base.

        Returns what this workspace still has to take in from the others (for :meth:`adopt`,
        on the thread that changes the workspace), or None. A class set changed both here and
        there, a damaged file or a lock held too long is a :class:`WorkspaceError`, and nothing
        is written.
        """
        if isinstance(data, Snapshot):
            base, number = data.base, data.number
        else:
            base, number = self._base, next(self._numbers)
        ours, path = dict(data), self.file_path()
        with workspace_lock(path):
            with self._state:
                latest = self._base
            if isinstance(data, Snapshot) and latest.own and latest is not base:
                # The file was last written from this workspace's own content, after this
                # snapshot's base was taken: a later snapshot holds all of it (so it replaces
                # it), an earlier one has nothing newer to write.
                if number <= latest.own:
                    return None
                base = latest
            written, raw = write_merged(path, ours, base.raw, base.data)
            return self._settle(base, ours, written, written, raw, number)

    @contextlib.contextmanager
    def transaction(self, timeout: float | None = None) -> Iterator["Workspace"]:
        """Hold the workspace lock for a read, change and save: first take in what other
        processes wrote since, then every save in the block is written at once under the same
        hold, so no other segstudio changes the file in between."""
        with workspace_lock(self.file_path(), timeout):
            raw = read_workspace_bytes(self.file_path())
            ours = self.snapshot()
            if raw is not None and raw != ours.base.raw:
                theirs = parse_workspace_file(self.FILE_NAME, raw)
                merged = merge_workspace_data(ours.base.data, dict(ours), theirs)
                merge = self._settle(ours.base, ours, merged, theirs, raw)
                if merge is not None:
                    self.adopt(merge)
            outer, self._transaction_thread = self._transaction_thread, threading.get_ident()
            try:
                yield self
            finally:
                self._transaction_thread = outer

    def _settle(self, base: Base, ours: dict, merged: dict, held: dict,
                raw: bytes, number: int = 0) -> Merge | None:
        with self._state:
            self._base, merge = settle(base, ours, merged, held, raw, number)
        return merge

    def adopt(self, merge: Merge) -> Adoption:
        """Take in what another segstudio changed (records, class set) where this workspace
        has not changed the same since the merge's snapshot. Call it on the thread that changes
        the workspace (the GUI's); ``adopted`` is told what changed."""
        with self._state:
            where = {it.key: (row, it) for row, it in enumerate(self.items)}
            plan = plan_adoption(merge, self._base,
                                 {key: record_of(it) for key, (_, it) in where.items()},
                                 self.classes.to_dict(), self._foreign)
            for key, record in plan.records.items():
                set_record(where[key][1], record)
            if plan.classes is not None:
                self.classes = ClassSet.from_dict(plan.classes)
            self._foreign, self._base = plan.foreign, plan.base
            if plan.records:
                self._assign_label_paths()
        adoption = Adoption(plan.classes is not None, sorted(where[k][0] for k in plan.records))
        if self.adopted is not None and (adoption.rows or adoption.classes):
            self.adopted(adoption)
        return adoption


def _is_file(path: Path) -> bool:
    """``path.is_file()``, False also for names the system cannot hold (too long, ...)."""
    try:
        return path.is_file()
    except (OSError, ValueError):
        return False


def _read_labels(path: Path, item: Item) -> np.ndarray | None:
    if not _is_file(path):
        return None
    try:
        return load_label_png(path)
    except VocError as e:
        raise WorkspaceError(f"{item.id}: {e}") from None


def _folder(folder: str | Path) -> Path:
    root = Path(folder)
    if not root.is_dir():
        raise WorkspaceError(f"{root.name}: not a folder that can be opened as a workspace")
    return root
