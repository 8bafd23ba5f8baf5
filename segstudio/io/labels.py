"""Bring existing labels into a workspace: label PNG folders, Pascal VOC trees, labelme JSON.

Each importer matches label files to workspace items by id (the image's file stem), checks that
sizes agree and that every value is a class of the workspace, and saves the labels through the
workspace (atomic palette PNG + status). A file that does not fit is reported and skipped; the
rest are still imported.

Objects come along where the source has them: a VOC tree's ``SegmentationObject/<id>.png``, and
in labelme files the ``group_id`` of shapes (see :func:`read_labelme`). An imported item without
objects loses any object map it had, since the new labels replace what it described.
"""

from __future__ import annotations

import base64
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from segstudio.core.classes import ClassSet
from segstudio.core.palette import VOID_INDEX
from segstudio.io.workspace import Item, ItemStatus, Workspace, WorkspaceError
from segstudio.io.images import ImageReadError
from segstudio.io.object_store import save_objects
from segstudio.io.regular_files import NotRegularFileError, read_regular_text
from segstudio.io.voc import VocError, find_voc_dir, load_label_png, read_voc

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
    """What an import did: ids imported, label files matching no item, and problems."""

    imported: list[str] = field(default_factory=list)
    unmatched: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    new_classes: list[str] = field(default_factory=list)


# -- label PNG folders and VOC trees -------------------------------------------------------------
def import_label_folder(folder: str | Path, workspace: Workspace, *, by: str = "import",
                        status: ItemStatus = ItemStatus.CORRECTED) -> ImportReport:
    """Import ``<id>.png`` label files found anywhere under ``folder``."""
    folder = Path(folder)
    if not folder.is_dir():
        raise LabelImportError(f"{folder.name}: not a folder of label images")
    files = {p.stem: p for p in sorted(folder.rglob("*.png")) if not p.name.startswith(".")}
    return _import_pngs(files, workspace, by=by, status=status)


def import_voc_tree(root: str | Path, workspace: Workspace, *, by: str = "import",
                    status: ItemStatus = ItemStatus.CORRECTED) -> ImportReport:
    """Import ``SegmentationClass`` labels of a Pascal VOC tree (every split) by id."""
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
    return _import_pngs(files, workspace, by=by, status=status, objects=objects)


def _import_pngs(files: dict[str, Path], workspace: Workspace, *, by: str,
                 status, objects: dict[str, Path] | None = None) -> ImportReport:
    report = ImportReport()
    by_id = _items_by_id(workspace)
    for ident, path in files.items():
        item = by_id.get(ident)
        if item is None:
            report.unmatched.append(path.name)
            continue
        ids = None
        try:
            labels = load_label_png(path)
            _check_fits(path, labels, workspace, item)
            if objects and ident in objects:
                ids = load_label_png(objects[ident])
                if ids.shape != labels.shape:
                    raise LabelImportError(
                        f"{objects[ident].name} (SegmentationObject): the objects are "
                        f"{ids.shape[1]}×{ids.shape[0]} but the labels {labels.shape[1]}×"
                        f"{labels.shape[0]}")
        except (VocError, LabelImportError) as e:
            report.problems.append(str(e))
            continue
        _save(workspace, item, labels, by, status, report, ids)
    return report


def _items_by_id(workspace: Workspace) -> dict[str, Item]:
    found: dict[str, Item] = {}
    for item in workspace.items:
        found.setdefault(item.id, item)
    return found


def _check_fits(path: Path, labels: np.ndarray, workspace: Workspace, item: Item) -> None:
    _check_size(path, labels, workspace, item)
    _check_values(path, labels, workspace.classes)


def _check_size(path: Path, labels: np.ndarray, workspace: Workspace, item: Item) -> None:
    try:
        image = workspace.read_image(item)
    except (ImageReadError, WorkspaceError) as e:
        raise LabelImportError(f"{path.name}: its image cannot be read ({e})") from None
    if labels.shape != (image.height, image.width):
        raise LabelImportError(
            f"{path.name}: the labels are {labels.shape[1]}×{labels.shape[0]} but the image "
            f"{Path(item.source).name} is {image.width}×{image.height}")


def _check_values(path: Path, labels: np.ndarray, classes: ClassSet) -> None:
    bad = (labels >= len(classes)) & (labels != VOID_INDEX)
    if bad.any():
        raise LabelImportError(
            f"{path.name}: label value {int(labels[bad].max())} is not a class of {classes.title} "
            f"(0..{len(classes) - 1}, or 255 for void)")


def _save(workspace: Workspace, item: Item, labels: np.ndarray, by: str, status,
          report: ImportReport, objects: np.ndarray | None = None) -> None:
    try:
        save_objects(workspace, item, objects)          # before the labels and the status
        workspace.save_labels(item, labels, status=status, by=by)
    except WorkspaceError as e:
        report.problems.append(str(e))
        return
    report.imported.append(item.id)


# -- labelme -------------------------------------------------------------------------------------
def import_labelme_folder(folder: str | Path, workspace: Workspace, *, by: str = "import",
                          status: ItemStatus = ItemStatus.CORRECTED) -> ImportReport:
    """Import labelme ``.json`` files under ``folder``; unknown labels become new classes."""
    folder = Path(folder)
    if not folder.is_dir():
        raise LabelImportError(f"{folder.name}: not a folder of labelme files")
    report = ImportReport()
    by_id = _items_by_id(workspace)
    for path in sorted(folder.rglob("*.json")):
        item = by_id.get(path.stem)
        if item is None:
            report.unmatched.append(path.name)
            continue
        try:
            labels, ids, new = read_labelme(path, workspace.classes)
            _check_size(path, labels, workspace, item)
        except LabelImportError as e:
            report.problems.append(str(e))
            continue
        for name in new:
            workspace.classes = workspace.classes.with_class(name)
            report.new_classes.append(name)
        _save(workspace, item, labels, by, status, report, ids)
    return report


def read_labelme_json(path: str | Path, classes: ClassSet) -> tuple[np.ndarray, list[str]]:
    """Rasterise a labelme file into H×W uint8 labels; later shapes paint over earlier ones.

    Labels not in ``classes`` get the next free indices, in order of first appearance, and are
    returned as new class names for the caller to add. ``_background_`` is class 0 and
    ``__ignore__`` is void (255), as in labelme's own conversion scripts.
    """
    labels, _ids, new = read_labelme(path, classes)
    return labels, new


def read_labelme(path: str | Path, classes: ClassSet
                 ) -> tuple[np.ndarray, np.ndarray | None, list[str]]:
    """As :func:`read_labelme_json`, with the file's objects: None when no shape has a
    ``group_id`` (a file of classes only). Otherwise shapes sharing a label and a ``group_id``
    are one object, a shape without one is an object of its own, ids follow first appearance,
    and background and ``__ignore__`` shapes are no object (0) and void (255)."""
    path = Path(path)
    data = _load_json(path)
    height, width = _size(path, data)
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

