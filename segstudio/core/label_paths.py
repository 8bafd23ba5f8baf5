"""Where an item's label and prediction files live, so that a save never writes anything else.

Every label file is ``labels/<source folder>/<name>.png`` inside the workspace, and its
prediction is the same name under ``predictions/`` and its object map (only when it has objects)
the same name under ``objects/``. A path recorded in the workspace file is
honoured (read and written) only when it has that form: relative, with ``/`` separators, first
folder ``labels``, a visible ``.png`` name, no empty, ``.`` or ``..`` parts, no control
characters, every part short enough for a file system, and taken by no source file and no other
item. Any other record (``"b.png"``, ``"./b.png"``, the workspace file itself, a NUL, a shared
path) is ignored and the item gets a fresh path derived from its source.

Before a label file is read or written, :func:`checked_file` makes sure that no folder on the
way from the workspace root is a link: ``labels/`` replaced by a link to somewhere else is an
error, never a place that is written to.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path, PurePosixPath
from typing import Iterable

LABELS_DIR = "labels"
PREDICTIONS_DIR = "predictions"     # the model's own output, kept apart for scoring
OBJECTS_DIR = "objects"             # object maps (VOC SegmentationObject) of items with objects
PREDICTED_OBJECTS_DIR = "predicted-objects"   # an instance model's last objects, for scoring
NAME_MAX_BYTES = 240                # below the 255 bytes of common file systems
_PATH_MAX_CHARS = 1024


class LabelPathError(Exception):
    """A label or prediction folder that leads outside the workspace; the message says which."""


def recorded_label(value: object) -> str | None:
    """``value`` if it is an acceptable recorded label path (see the module doc), else None."""
    if not isinstance(value, str) or not value or len(value) > _PATH_MAX_CHARS:
        return None
    if any(ord(c) < 32 or ord(c) == 127 for c in value) or "\\" in value or ":" in value:
        return None
    parts = value.split("/")
    if len(parts) < 2 or parts[0] != LABELS_DIR or any(p in ("", ".", "..") for p in parts):
        return None
    name = parts[-1]
    if name.startswith(".") or not name.lower().endswith(".png") or len(name) <= 4:
        return None
    if not all(_fits(p) for p in parts):
        return None
    return value


def natural_label(source: str, item_id: str) -> str:
    """The label path an item gets when nothing else claims it: ``labels/<folder>/<id>.png``."""
    folder = PurePosixPath(LABELS_DIR, PurePosixPath(source).parent)
    return (folder / _short(f"{item_id}.png")).as_posix()


def derive_label(source: str, item_id: str, taken: set[str]) -> str:
    """A label path for the item that no entry of ``taken`` (case-folded paths) holds.

    The first free of ``<id>.png``, ``<id>_<suffix>.png`` (``scan.jpg`` beside ``scan.png``)
    and ``<id>_<suffix>_2.png`` ... ; names too long for a file system are shortened with a hash.
    """
    src = PurePosixPath(source)
    folder = PurePosixPath(LABELS_DIR, src.parent)
    suffix = src.suffix.lower().replace(".", "_")
    candidates = [f"{item_id}.png", f"{item_id}{suffix}.png"]
    n = 2
    while True:
        for name in candidates:
            path = (folder / _short(name)).as_posix()
            if path.casefold() not in taken:
                return path
        candidates = [f"{item_id}{suffix}_{n}.png"]
        n += 1


def assign_labels(entries: Iterable[tuple[str, str, object]], sources: Iterable[str],
                  reserved: Iterable[object] = ()) -> list[str]:
    """One label path per ``(source, item id, recorded label)`` entry, all distinct.

    A valid recorded path is kept unless a source file or an earlier claim holds it; the item
    whose natural path it is claims first, so two records sharing one file leave it to its
    owner. ``reserved`` are the labels of records whose items are absent now: new paths avoid
    them. The rest get :func:`derive_label` paths.
    """
    entries = list(entries)
    taken = {PurePosixPath(s).as_posix().casefold() for s in sources}
    result: list[str | None] = [None] * len(entries)
    claims = [(recorded_label(rec) is not None and rec != natural_label(src, ident), i)
              for i, (src, ident, rec) in enumerate(entries)]
    for not_natural, i in sorted(claims):
        rec = recorded_label(entries[i][2])
        if rec is not None and rec.casefold() not in taken:
            result[i] = rec
            taken.add(rec.casefold())
    for rec in reserved:
        rec = recorded_label(rec)
        if rec is not None:
            taken.add(rec.casefold())
    for i, (src, ident, _rec) in enumerate(entries):
        if result[i] is None:
            result[i] = derive_label(src, ident, taken)
            taken.add(result[i].casefold())
    return [str(r) for r in result]


def prediction_of(label: str) -> str:
    """The prediction path that mirrors a label path under ``predictions/``."""
    return PurePosixPath(PREDICTIONS_DIR, PurePosixPath(label).relative_to(LABELS_DIR)).as_posix()


def objects_of(label: str) -> str:
    """The object-map path that mirrors a label path under ``objects/``."""
    return PurePosixPath(OBJECTS_DIR, PurePosixPath(label).relative_to(LABELS_DIR)).as_posix()


def predicted_objects_of(label: str) -> str:
    """The path of the model's last object map, mirroring a label path under
    ``predicted-objects/``."""
    return PurePosixPath(PREDICTED_OBJECTS_DIR,
                         PurePosixPath(label).relative_to(LABELS_DIR)).as_posix()


def checked_file(root: Path, rel: str) -> Path:
    """``root/rel`` after checking that no folder on the way is a link and that the file, if it
    is a link, stays in its folder tree; raises :class:`LabelPathError` otherwise."""
    real_root = Path(os.path.realpath(root))
    parts = rel.split("/")
    here = real_root
    for depth, part in enumerate(parts[:-1], start=1):
        here = here / part
        if here.is_symlink():
            shown = "/".join(parts[:depth]) + "/"
            raise LabelPathError(
                f"{shown} is a link (to {os.readlink(here)}), not a folder of the workspace; "
                "segstudio keeps labels only inside the workspace folder and neither reads nor "
                f"writes them through a link. Replace the link with a real folder named {shown}")
    path = here / parts[-1]
    if path.is_symlink():
        top = real_root / parts[0]
        target = Path(os.path.realpath(path))
        if target != top and top not in target.parents:
            raise LabelPathError(f"{rel} is a link leading out of {parts[0]}/ (to "
                                 f"{os.readlink(path)}); segstudio does not follow it")
    return path


def _fits(part: str) -> bool:
    try:
        return len(os.fsencode(part)) <= NAME_MAX_BYTES
    except UnicodeEncodeError:          # a lone surrogate that stands for no byte
        return False


def _short(name: str) -> str:
    """``name`` cut to fit a file system, with a hash of the whole so cut names stay apart."""
    if _fits(name):
        return name
    stem, dot, ext = name.rpartition(".")
    digest = hashlib.sha1(name.encode("utf-8", "surrogatepass")).hexdigest()[:10]
    keep = stem
    while not _fits(f"{keep}~{digest}{dot}{ext}"):
        keep = keep[:-1]
    return f"{keep}~{digest}{dot}{ext}"
