"""Bring existing labels into a workspace: label PNG folders, Pascal VOC trees, labelme JSON.

Each importer matches label files to workspace items by id (the image's file stem, see
:mod:`.label_matching`: never guessed when several files or items share a name), checks that
sizes agree and that every value is a class of the workspace, and saves the labels through the
workspace (atomic palette PNG + status). A file that does not fit is reported and skipped; the
rest are still imported. Items a person corrected or reviewed are kept as they are and listed,
unless the import is asked to ``replace`` them; replaced labels take the import's status.

Sizes are compared before anything is allocated: a label PNG's header and a labelme file's
``imageWidth``/``imageHeight`` against the item's picture (see :mod:`.label_sizes`), so a file
claiming a huge image is refused for the claim alone.

Objects come along where the source has them: a VOC tree's ``SegmentationObject/<id>.png``, and
in labelme files the ``group_id`` of shapes (see :func:`read_labelme`). An imported item without
objects loses any object map it had, since the new labels replace what it described; an object
map that cannot be read is never removed or replaced: that item is not imported, and the
report names the map.
"""

from __future__ import annotations

import base64
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from segstudio.core.class_mapping import ClassMapping, same_names
from segstudio.core.classes import ClassSet
from segstudio.core.palette import VOID_INDEX
from segstudio.io.workspace import Item, ItemStatus, Workspace, WorkspaceError
from segstudio.io.label_matching import match_files
from segstudio.io.label_sizes import (SizeUnknown, decoded_size, fits, header_size, picture_name,
                                      png_size)
from segstudio.io.object_store import save_objects
from segstudio.io.regular_files import NotRegularFileError, read_regular_text
from segstudio.io.voc import VocError, find_voc_dir, load_label_png, read_voc, read_voc_classes

# labelme's own conventions for the background and for "do not learn from this region".
_BACKGROUND_NAMES = {"_background_", "__background__"}
_IGNORE_NAMES = {"__ignore__", "_ignore_"}
# Lines and points have no area; they are drawn this many pixels wide so they survive.
LINE_THICKNESS = 3
_MAX_SIDE = 50_000


class LabelImportError(Exception):
    """A label file that cannot be used; the message names the file and the problem."""


@dataclass
class ImportReport:
    """What an import did: ids imported, label files matching no item, problems (files that
    could not be used, ambiguous names, object maps kept because they cannot be read), classes
    added, and the ids of items a person corrected or reviewed that were kept as they are."""

    imported: list[str] = field(default_factory=list)
    unmatched: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    new_classes: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)


def kept_by_import(kind: str, source: str | Path, workspace: Workspace) -> list[str]:
    """Ids of the items a person corrected or reviewed that importing ``source`` (``png``,
    ``voc`` or ``labelme``) would replace if asked to; nothing is read but file names."""
    files, _ = _FINDERS[kind](Path(source))
    return match_files(files, workspace, root=Path(source), replace=False).kept


# -- label PNG folders and VOC trees -------------------------------------------------------------
def import_label_folder(folder: str | Path, workspace: Workspace, *, by: str = "import",
                        status: ItemStatus = ItemStatus.CORRECTED,
                        replace: bool = False) -> ImportReport:
    """Import ``<id>.png`` label files found anywhere under ``folder``."""
    folder = Path(folder)
    files, _ = _png_files(folder)
    return _import_pngs(files, workspace, root=folder, by=by, status=status, replace=replace)


def import_voc_tree(root: str | Path, workspace: Workspace, *, by: str = "import",
                    status: ItemStatus = ItemStatus.CORRECTED,
                    replace: bool = False) -> ImportReport:
    """Import ``SegmentationClass`` labels of a Pascal VOC tree (every split) by id.

    A tree that stores its class set (``classes.json``, as segstudio's exports do) is read by
    class name: its labels are mapped onto the workspace's classes, and names the workspace
    lacks are added to it; a label never changes meaning because two sets number differently.
    """
    files, objects = _voc_files(Path(root))
    try:
        stored = read_voc_classes(root)
    except VocError as e:
        raise LabelImportError(str(e)) from None
    mapping = None
    if stored is not None and not same_names(stored, workspace.classes):
        mapping = ClassMapping.by_name(stored, workspace.classes)
    return _import_pngs(files, workspace, root=Path(root), by=by, status=status, replace=replace,
                        objects=objects, mapping=mapping)


def _png_files(folder: Path) -> tuple[list[Path], dict[str, Path]]:
    if not folder.is_dir():
        raise LabelImportError(f"{folder.name}: not a folder of label images")
    return [p for p in sorted(folder.rglob("*.png")) if not p.name.startswith(".")], {}


def _voc_files(root: Path) -> tuple[list[Path], dict[str, Path]]:
    try:
        voc = find_voc_dir(root)
    except VocError as e:
        raise LabelImportError(str(e)) from None
    files: dict[str, Path] = {}
    for split in ("trainval", "train", "val", "test"):
        try:
            files.update({ident: label for ident, _, label in read_voc(voc, split)})
        except VocError:
            continue
    if not files:
        files = {p.stem: p for p in sorted((voc / "SegmentationClass").glob("*.png"))}
    objects = {p.stem: p for p in sorted((voc / "SegmentationObject").glob("*.png"))
               if not p.name.startswith(".")}
    return list(files.values()), objects


def _import_pngs(files: list[Path], workspace: Workspace, *, root: Path, by: str, status,
                 replace: bool, objects: dict[str, Path] | None = None,
                 mapping: ClassMapping | None = None) -> ImportReport:
    matches = match_files(files, workspace, root=root, replace=replace)
    report = ImportReport(unmatched=matches.unmatched, problems=list(matches.ambiguous),
                          kept=matches.kept)
    if mapping is not None and matches.pairs and mapping.added:
        workspace.classes = mapping.target           # the source's names the workspace lacks
        report.new_classes.extend(mapping.added)
    for item, path in matches.pairs:
        ids = None
        try:
            size = _picture_size(path, png_size(path), workspace, item)
            labels = load_label_png(path, max_pixels=size[0] * size[1])
            if mapping is not None:
                labels = mapping.apply(labels)       # the source's class names, not numbers
            _check_fits(path, labels, size, workspace, item)
            object_file = (objects or {}).get(path.stem)
            if object_file is not None:
                ids = _load_objects(object_file, labels.shape)
        except (VocError, LabelImportError) as e:
            report.problems.append(str(e))
            continue
        _save(workspace, item, labels, by, status, report, ids)
    return report


def _load_objects(path: Path, shape: tuple[int, int]) -> np.ndarray:
    """A ``SegmentationObject`` file beside labels of ``shape``, its size checked first."""
    def mismatch(width: int, height: int) -> LabelImportError:
        return LabelImportError(f"{path.name} (SegmentationObject): the objects are "
                                f"{width}×{height} but the labels {shape[1]}×{shape[0]}")

    declared = png_size(path)
    if declared is not None and declared != (shape[1], shape[0]):
        raise mismatch(*declared)
    ids = load_label_png(path, max_pixels=shape[0] * shape[1])
    if ids.shape != shape:
        raise mismatch(ids.shape[1], ids.shape[0])
    return ids


def _picture_size(path: Path, declared: tuple[int, int] | None, workspace: Workspace,
                  item: Item) -> tuple[int, int]:
    """The (width, height) of the item's picture, once the size ``path`` declares (when its
    header tells) is found to be it; a mismatch names the file and both sizes."""
    try:
        if declared is None:        # the decoder reports the damaged header
            return header_size(workspace, item) or decoded_size(workspace, item)
        same, size = fits(workspace, item, declared)
    except SizeUnknown as e:
        raise LabelImportError(f"{path.name}: its image cannot be read ({e})") from None
    if not same:
        raise _size_mismatch(path, declared, size, workspace, item)
    return size


def _size_mismatch(path: Path, labels: tuple[int, int], image: tuple[int, int],
                   workspace: Workspace, item: Item) -> LabelImportError:
    return LabelImportError(
        f"{path.name}: the labels are {labels[0]}×{labels[1]} but the image "
        f"{picture_name(workspace, item)} is {image[0]}×{image[1]}")


def _check_fits(path: Path, labels: np.ndarray, size: tuple[int, int], workspace: Workspace,
                item: Item) -> None:
    if labels.shape != (size[1], size[0]):         # the file changed since its header was read
        raise _size_mismatch(path, (labels.shape[1], labels.shape[0]), size, workspace, item)
    _check_values(path, labels, workspace.classes)


def _check_values(path: Path, labels: np.ndarray, classes: ClassSet) -> None:
    bad = (labels >= len(classes)) & (labels != VOID_INDEX)
    if bad.any():
        raise LabelImportError(
            f"{path.name}: label value {int(labels[bad].max())} is not a class of {classes.title} "
            f"(0..{len(classes) - 1}, or 255 for void)")


def _save(workspace: Workspace, item: Item, labels: np.ndarray, by: str, status,
          report: ImportReport, objects: np.ndarray | None = None,
          new_classes: list[str] | None = None) -> None:
    try:
        # Before the labels and the status; an object map that cannot be read stops it here.
        save_objects(workspace, item, objects, shape=labels.shape)
        for name in new_classes or ():
            workspace.classes = workspace.classes.with_class(name)
            report.new_classes.append(name)
        workspace.save_labels(item, labels, status=status, by=by)
    except WorkspaceError as e:
        report.problems.append(str(e))
        return
    report.imported.append(item.id)


# -- labelme -------------------------------------------------------------------------------------
def import_labelme_folder(folder: str | Path, workspace: Workspace, *, by: str = "import",
                          status: ItemStatus = ItemStatus.CORRECTED,
                          replace: bool = False) -> ImportReport:
    """Import labelme ``.json`` files under ``folder``; unknown labels become new classes."""
    folder = Path(folder)
    files, _ = _labelme_files(folder)
    matches = match_files(files, workspace, root=folder, replace=replace)
    report = ImportReport(unmatched=matches.unmatched, problems=list(matches.ambiguous),
                          kept=matches.kept)
    for item, path in matches.pairs:
        def check_size(width: int, height: int, path=path, item=item) -> None:
            _picture_size(path, (width, height), workspace, item)

        try:
            labels, ids, new = read_labelme(path, workspace.classes, check_size=check_size)
        except LabelImportError as e:
            report.problems.append(str(e))
            continue
        _save(workspace, item, labels, by, status, report, ids, new)
    return report


def _labelme_files(folder: Path) -> tuple[list[Path], dict[str, Path]]:
    if not folder.is_dir():
        raise LabelImportError(f"{folder.name}: not a folder of labelme files")
    return sorted(folder.rglob("*.json")), {}


_FINDERS = {"png": _png_files, "voc": _voc_files, "labelme": _labelme_files}


def read_labelme_json(path: str | Path, classes: ClassSet) -> tuple[np.ndarray, list[str]]:
    """Rasterise a labelme file into H×W uint8 labels; later shapes paint over earlier ones.

    Labels not in ``classes`` get the next free indices, in order of first appearance, and are
    returned as new class names for the caller to add. ``_background_`` is class 0 and
    ``__ignore__`` is void (255), as in labelme's own conversion scripts.
    """
    labels, _ids, new = read_labelme(path, classes)
    return labels, new


def read_labelme(path: str | Path, classes: ClassSet, *,
                 check_size: Callable[[int, int], None] | None = None
                 ) -> tuple[np.ndarray, np.ndarray | None, list[str]]:
    """As :func:`read_labelme_json`, with the file's objects: None when no shape has a
    ``group_id`` (a file of classes only). Otherwise shapes sharing a label and a ``group_id``
    are one object, a shape without one is an object of its own, ids follow first appearance,
    and background and ``__ignore__`` shapes are no object (0) and void (255).

    ``check_size(width, height)`` sees the declared size before anything of that size is
    allocated, and raises LabelImportError to refuse it."""
    path = Path(path)
    data = _load_json(path)
    height, width = _size(path, data)
    if check_size is not None:
        check_size(width, height)
    names = list(classes.names)
    new: list[str] = []
    labels = np.zeros((height, width), np.uint8)
    shapes = data.get("shapes", [])
    if not isinstance(shapes, list):
        raise LabelImportError(f"{path.name}: 'shapes' must be a list")
    grouped = any(isinstance(s, dict) and s.get("group_id") is not None for s in shapes)
    ids = np.zeros((height, width), np.uint8) if grouped else None
    keys: dict[tuple, int] = {}
    for number, shape in enumerate(shapes, start=1):
        what = _describe(number, shape)
        if not isinstance(shape, dict):
            raise LabelImportError(f"{path.name}: {what} is not an object")
        name = str(shape.get("label", "")).strip()
        if not name:
            raise LabelImportError(f"{path.name}: {what} has no label")
        value = _class_value(name, names, new, path)
        _draw(labels, shape, value, f"{path.name}: {what}")
        if ids is not None:
            group = shape.get("group_id")
            key = (name, str(group)) if group is not None else (number,)
            if value in (0, VOID_INDEX):
                obj = value
            else:
                obj = keys.setdefault(key, len(keys) + 1)
                if obj > 254:
                    raise LabelImportError(f"{path.name}: more than 254 objects; a VOC object "
                                           "map cannot hold them")
            _draw(ids, shape, obj, f"{path.name}: {what}")
    return labels, ids, new


def _describe(number: int, shape) -> str:
    if isinstance(shape, dict):
        return f"shape {number} ('{shape.get('label', '?')}', {shape.get('shape_type', 'polygon')})"
    return f"shape {number}"


def _load_json(path: Path) -> dict:
    try:
        data = json.loads(read_regular_text(path))
    except FileNotFoundError:
        raise LabelImportError(f"{path.name}: the file does not exist") from None
    except NotRegularFileError as e:
        raise LabelImportError(f"{path.name}: {e.reason}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise LabelImportError(f"{path.name}: not readable labelme JSON ({e})") from None
    if not isinstance(data, dict):
        raise LabelImportError(f"{path.name}: not a labelme file (expected a JSON object)")
    return data


def _size(path: Path, data: dict) -> tuple[int, int]:
    h, w = data.get("imageHeight"), data.get("imageWidth")
    whole = all(isinstance(v, int) and not isinstance(v, bool) for v in (h, w))
    if not whole:
        raise LabelImportError(f"{path.name}: imageHeight and imageWidth must be whole numbers")
    if not (0 < h <= _MAX_SIDE and 0 < w <= _MAX_SIDE):
        raise LabelImportError(f"{path.name}: image size {w}×{h} is outside 1..{_MAX_SIDE}")
    return h, w


def _class_value(name: str, names: list[str], new: list[str], path: Path) -> int:
    if name in _IGNORE_NAMES:
        return VOID_INDEX
    if name in _BACKGROUND_NAMES:
        return 0
    if name not in names:
        if len(names) >= 255:
            raise LabelImportError(f"{path.name}: label '{name}' would be class 256; at most "
                                   "255 classes fit")
        names.append(name)
        new.append(name)
    return names.index(name)


def _points(shape: dict, where: str) -> np.ndarray:
    pts = shape.get("points")
    try:
        arr = np.asarray(pts, dtype=np.float64)
    except (TypeError, ValueError):
        raise LabelImportError(f"{where}: points must be [x, y] number pairs") from None
    if arr.ndim != 2 or arr.shape[1] != 2 or arr.shape[0] == 0:
        raise LabelImportError(f"{where}: points must be a non-empty list of [x, y] pairs")
    if not np.isfinite(arr).all() or np.abs(arr).max() > 4 * _MAX_SIDE:
        raise LabelImportError(f"{where}: a point lies far outside the image")
    return arr


def _draw(labels: np.ndarray, shape: dict, value: int, where: str) -> None:
    import cv2

    kind = shape.get("shape_type") or "polygon"
    if kind == "mask":
        _draw_mask(labels, shape, value, where)
        return
    pts = _points(shape, where)
    ipts = np.rint(pts).astype(np.int32)
    if kind == "polygon":
        if len(pts) < 3:
            raise LabelImportError(f"{where}: a polygon needs at least 3 points, this one has "
                                   f"{len(pts)}")
        cv2.fillPoly(labels, [ipts], int(value))
    elif kind == "rectangle":
        _need(pts, 2, where)
        (x0, y0), (x1, y1) = ipts[0], ipts[1]
        cv2.rectangle(labels, (int(min(x0, x1)), int(min(y0, y1))),
                      (int(max(x0, x1)), int(max(y0, y1))), int(value), thickness=-1)
    elif kind == "circle":
        _need(pts, 2, where)
        radius = int(round(math.dist(pts[0], pts[1])))
        cv2.circle(labels, (int(ipts[0][0]), int(ipts[0][1])), radius, int(value), thickness=-1)
    elif kind in ("line", "linestrip"):
        if len(pts) < 2:
            raise LabelImportError(f"{where}: a line needs at least 2 points")
        cv2.polylines(labels, [ipts], False, int(value), thickness=LINE_THICKNESS)
    elif kind == "point":
        cv2.circle(labels, (int(ipts[0][0]), int(ipts[0][1])), LINE_THICKNESS // 2 + 1,
                   int(value), thickness=-1)
    else:
        raise LabelImportError(f"{where}: shape type '{kind}' is not supported")


def _need(pts: np.ndarray, n: int, where: str) -> None:
    if len(pts) != n:
        raise LabelImportError(f"{where}: needs exactly {n} points, has {len(pts)}")


def _draw_mask(labels: np.ndarray, shape: dict, value: int, where: str) -> None:
    """labelme 5's mask shape: a base64 PNG covering the box from points[0] to points[1]."""
    from PIL import Image

    pts = _points(shape, where)
    _need(pts, 2, where)
    try:
        with Image.open(io.BytesIO(base64.b64decode(shape.get("mask") or "", validate=True))) as im:
            if im.width * im.height > labels.size:
                raise LabelImportError(f"{where}: the mask is larger than the image")
            mask = np.asarray(im.convert("L")) > 0
    except LabelImportError:
        raise
    except Exception as e:  # noqa: BLE001 - any decoding failure is a damaged mask
        raise LabelImportError(f"{where}: the mask cannot be decoded ({e})") from None
    x0, y0 = (int(v) for v in np.rint(pts.min(axis=0)))
    region = labels[max(y0, 0):y0 + mask.shape[0], max(x0, 0):x0 + mask.shape[1]]
    sub = mask[max(-y0, 0):max(-y0, 0) + region.shape[0], max(-x0, 0):max(-x0, 0) + region.shape[1]]
    region[sub] = value


