"""An item's object map in its workspace: ``objects/<folder>/<id>.png``, beside its labels,
and the instance model's last objects for it under ``predicted-objects/`` (kept, as
``predictions/`` is, to score the model against the corrected objects).

The path is derived from the item's checked label path (``labels/…`` → ``objects/…``, see
:mod:`segstudio.core.label_paths`), never taken from the workspace file, and no folder on the
way may be a link. The file is a palette PNG with VOC ``SegmentationObject`` values (0 no
object, 1..254 objects, 255 void), written atomically, and only for an item that has objects:
saving an item without objects removes a stale file, so such items cost nothing.

A person's object map that cannot be read (damaged, colours instead of ids, values past 255)
or that is of another size than the labels saved with it is never removed or replaced: the
save is refused naming the file, which stays byte for byte as it was. The model's maps under
``predicted-objects/`` are its output, made again by the next prediction, and are replaced.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from segstudio.core.label_paths import objects_of, predicted_objects_of
from segstudio.io.label_sizes import png_size
from segstudio.io.voc import VocError, load_label_png, save_object_png
from segstudio.io.workspace_error import WorkspaceError


def object_path(workspace, item, *, predicted: bool = False) -> Path:
    """Where the item's object map (or the model's, ``predicted``) is kept (checked: no link on
    the way)."""
    rel = (predicted_objects_of if predicted else objects_of)(str(item.label))
    return workspace.checked(item, rel)


def load_objects(workspace, item, *, predicted: bool = False) -> np.ndarray | None:
    """The item's saved object map (H×W uint8), or None when it has no objects."""
    path = object_path(workspace, item, predicted=predicted)
    try:
        if not path.is_file():
            return None
    except (OSError, ValueError):        # a name the system cannot hold: no file there
        return None
    try:
        return load_label_png(path)
    except VocError as e:                # never dropped: a save would then delete the file
        raise WorkspaceError(f"{item.id}: the object map could not be read ({e})") from None
    except OSError as e:
        raise WorkspaceError(f"{item.id}: its object map cannot be read "
                             f"({e.strerror or e})") from None


def has_objects(ids: np.ndarray | None) -> bool:
    if ids is None:
        return False
    ids = np.asarray(ids)
    return bool(((ids > 0) & (ids < 255)).any())


def save_objects(workspace, item, ids: np.ndarray | None, *, predicted: bool = False,
                 shape: tuple[int, int] | None = None) -> None:
    """Write the item's object map atomically, or remove its file when it has no objects.

    ``shape`` is that of the labels saved with it (taken from ``ids`` when given). A person's
    existing map that cannot be read or is of another size is kept: WorkspaceError names it.
    """
    path = object_path(workspace, item, predicted=predicted)
    if ids is not None:
        shape = np.shape(ids)
    try:
        if not predicted:
            _check_replaceable(workspace, item, path, shape)
        if not has_objects(ids):
            if path.is_file() or path.is_symlink():
                path.unlink()
            return
        save_object_png(path, np.asarray(ids, np.uint8))
    except VocError as e:
        raise WorkspaceError(f"{item.id}: {e}") from None
    except OSError as e:
        raise WorkspaceError(f"{item.id}: its object map cannot be saved "
                             f"({e.strerror or e})") from None


def _check_replaceable(workspace, item, path: Path, shape) -> None:
    """Refuse to remove or replace an object map that cannot be read, or one of another size
    than ``shape`` (when known): its size from the header first, so nothing is decoded for a
    map whose header already disagrees."""
    if not path.is_file():
        return
    try:
        name = path.relative_to(workspace.root).as_posix()
    except ValueError:
        name = path.name
    kept = "it is kept as it is; repair, move or delete it to save new objects for this item"
    declared = png_size(path)
    if shape is not None and declared is not None and declared != (shape[1], shape[0]):
        raise WorkspaceError(f"{item.id}: the object map {name} is {declared[0]}×{declared[1]} "
                             f"but the labels {shape[1]}×{shape[0]}; {kept}")
    limit = {} if shape is None else {"max_pixels": max(1, shape[0] * shape[1])}
    try:
        load_label_png(path, **limit)
    except VocError as e:
        raise WorkspaceError(f"{item.id}: the object map {name} cannot be read ({e}); "
                             f"{kept}") from None
