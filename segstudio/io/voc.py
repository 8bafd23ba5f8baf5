"""Pascal VOC 2012 segmentation trees: label PNGs, export, and reading a tree back.

``write_voc(out_dir, ...)`` writes ``out_dir/VOCdevkit/VOC2012/`` so that
``torchvision.datasets.VOCSegmentation(out_dir, year="2012", download=False)`` reads it
unchanged. The tree is built in a hidden folder beside ``VOC2012`` and renamed into place only
when complete, so a cancelled or failed export never leaves a tree that looks finished.

Label PNGs are 'P' mode: the pixel is the class index and the palette gives the colour, with
255 (void) in its VOC colour, as in the VOC devkit.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np
from PIL import Image, UnidentifiedImageError

from segstudio.core.classes import ClassSet
from segstudio.core.palette import VOC_COLORMAP, VOID_INDEX
from segstudio.io import originals as keep_originals
from segstudio.io.atomic import atomic_write_with, follow_umask, temp_prefix
from segstudio.io.decode_memory import format_bytes, memory_problem
from segstudio.io.images import DEFAULT_MAX_PIXELS
from segstudio.io.pillow_pixels import copy_in_strips, decode_bytes, open_header
from segstudio.io.regular_files import NotRegularFileError, open_regular, read_regular_text

VOC_YEAR_DIR = Path("VOCdevkit") / "VOC2012"
SPLITS_DIR = Path("ImageSets") / "Segmentation"
_JPEG_QUALITY = 95
_PARTIAL = ".partial"    # the end of an unfinished export's hidden folder (see write_voc)
_MAX_ID_LENGTH = 120
_RESERVED = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(10)),
             *(f"lpt{i}" for i in range(10))}


class VocError(Exception):
    """A label file or VOC tree that cannot be read or written; the message names the file."""


class VocExportCancelled(Exception):
    """The export was cancelled; nothing that looks like a finished tree was left behind."""


@dataclass
class VocSample:
    """One exported pair: an RGB image, its class labels, and optional instance ids. Samples of
    one ``group`` (the frames of one video) all go to the same split."""

    id: str
    image: np.ndarray
    labels: np.ndarray
    instances: np.ndarray | None = None
    group: str | None = None
    original: object | None = None      # the source ImageData at full depth (io.originals)


@dataclass
class VocExportResult:
    """Where the export went (``root`` is what torchvision's ``VOCSegmentation`` takes)."""

    root: Path
    count: int
    train: list[str] = field(default_factory=list)
    val: list[str] = field(default_factory=list)

    @property
    def voc_dir(self) -> Path:
        return self.root / VOC_YEAR_DIR


# -- label PNGs ----------------------------------------------------------------------------------
def save_label_png(path: str | Path, labels: np.ndarray, classes: ClassSet) -> None:
    """Write labels as a 'P'-mode PNG with the class colours as palette, atomically."""
    _save_indexed_png(Path(path), labels, classes.palette())


def save_object_png(path: str | Path, instances: np.ndarray) -> None:
    """Write an instance-id map as a ``SegmentationObject`` PNG (VOC colours), atomically.
    Ids past 254 cannot be stored (255 is void) and are left out as no object."""
    ids = np.asarray(instances)
    _save_indexed_png(Path(path), np.where(ids < 255, ids, 0), VOC_COLORMAP.reshape(-1).tolist())


def _save_indexed_png(path: Path, labels: np.ndarray, palette: list[int]) -> None:
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise VocError(f"{path.name}: labels must be a 2-D array, got shape {labels.shape}")
    if labels.dtype != np.uint8:
        if labels.size and (labels.min() < 0 or labels.max() > 255):
            raise VocError(f"{path.name}: label values must lie in 0..255")
        labels = labels.astype(np.uint8)
    im = Image.fromarray(np.ascontiguousarray(labels))
    im.putpalette(palette)  # turns the 'L' image into 'P', keeping the values as indices
    try:
        atomic_write_with(path, lambda f: im.save(f, format="PNG"))
    except OSError as e:
        raise VocError(f"{path.name}: cannot be written ({e.strerror or e})") from None


def load_label_png(path: str | Path, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Read a label PNG as H×W uint8 class indices (palette index, or plain 8-bit value).

    The size limit is the app's own ``max_pixels`` (the one images are opened under), not
    Pillow's smaller default, so the labels of every image the app opens can be read back.
    Only regular files are opened, and a decode that cannot fit in free memory is refused.
    """
    path = Path(path)
    try:
        f = open_regular(path)
    except FileNotFoundError:
        raise VocError(f"{path.name}: the label file does not exist") from None
    except NotRegularFileError as e:
        raise VocError(f"{path.name}: {e.reason}") from None
    except OSError as e:
        raise VocError(f"{path.name}: cannot open the label file ({e.strerror or e})") from None
    with f:
        try:
            im = open_header(f)
        except UnidentifiedImageError:
            raise VocError(f"{path.name}: not a readable label image; expected a PNG of class "
                           "indices") from None
        except Exception as e:  # noqa: BLE001 - Pillow reports damaged headers in many ways
            raise VocError(f"{path.name}: the label image is damaged ({e})") from None
        with im:
            return _decode_labels(path, im, max_pixels)


def _decode_labels(path: Path, im: Image.Image, max_pixels: int) -> np.ndarray:
    if im.width * im.height > max_pixels:
        raise VocError(f"{path.name}: the header claims {im.width}×{im.height} pixels, more "
                       f"than the limit of {max_pixels:,}")
    per_pixel = 1 if im.mode in ("P", "L", "1") else 5      # int32 first, then uint8
    needed = decode_bytes(im, array_bytes=per_pixel)
    problem = memory_problem(needed)
    if problem is not None:
        raise VocError(f"{path.name}: {problem}")
    try:
        im.load()
        return _label_array(path, im)
    except VocError:
        raise
    except MemoryError:         # a valid file the machine could not hold: not a damaged one
        raise VocError(f"{path.name}: not enough memory to decode the labels (needs about "
                       f"{format_bytes(needed)})") from None
    except Exception as e:  # noqa: BLE001 - any decoder failure means a damaged file
        raise VocError(f"{path.name}: the label image is damaged and cannot be decoded "
                       f"({e})") from None


def _label_array(path: Path, im: Image.Image) -> np.ndarray:
    shape = (im.height, im.width)
    if im.mode in ("P", "L"):
        return copy_in_strips(im, shape, np.uint8)
    if im.mode == "1":
        return copy_in_strips(im, shape, np.uint8, lambda p: np.asarray(p.convert("L")) // 255)
    if im.mode.startswith("I"):
        arr = copy_in_strips(im, shape, np.int32)
        if arr.size and (arr.min() < 0 or arr.max() > 255):
            raise VocError(f"{path.name}: label values reach {int(arr.max())}; class indices "
                           "must lie in 0..255")
        return arr.astype(np.uint8)
    raise VocError(f"{path.name}: a {im.mode} image holds colours, not class indices; save labels "
                   "as a palette ('P') or 8-bit grey PNG")


# -- ids -----------------------------------------------------------------------------------------
def sanitize_id(name: str) -> str:
    """A file stem safe on every platform: no folders, no leading dots, no reserved device names."""
    name = unicodedata.normalize("NFC", str(name))
    name = re.sub(r"[^\w.\-]+", "_", name, flags=re.UNICODE)  # separators, spaces, ':' ...
    name = re.sub(r"\.{2,}", "_", name).strip("._ ")
    name = name[:_MAX_ID_LENGTH].rstrip("._ ")
    if not name:
        return "item"
    if name.split(".")[0].lower() in _RESERVED:
        name = "_" + name
    return name


def _unique(ident: str, taken: set[str]) -> str:
    # Compared case-folded: two ids differing only in case collide on macOS and Windows.
    candidate, n = ident, 2
    while candidate.casefold() in taken:
        candidate = f"{ident}_{n}"
        n += 1
    taken.add(candidate.casefold())
    return candidate


# -- export --------------------------------------------------------------------------------------
def write_voc(out_dir: str | Path, samples: Iterable[VocSample] | Sequence[VocSample],
              classes: ClassSet, *, val_fraction: float = 0.2, seed: int = 0,
              total: int | None = None, progress: Callable[[int, int], None] | None = None,
              cancel: Callable[[], bool] | None = None, overwrite: bool = False,
              originals: bool = False, deidentify: bool = False) -> VocExportResult:
    """Export samples as ``out_dir/VOCdevkit/VOC2012``; ``progress(done, total)`` gets 0 as
    total when it is unknown. An existing ``VOC2012`` is replaced only with ``overwrite``.
    ``originals`` also keeps each sample's full-depth original and writes the manifest
    (:mod:`segstudio.io.originals`); ``deidentify`` de-identifies the DICOM files kept there."""
    if not 0.0 <= val_fraction < 1.0:
        raise VocError(f"the validation fraction must lie in [0, 1), got {val_fraction}")
    out_dir = Path(out_dir)
    final = out_dir / VOC_YEAR_DIR
    if final.exists() and not overwrite:
        raise VocError(f"{out_dir.name}: already holds a VOC2012 export; choose an empty folder "
                       "or allow overwriting")
    if total is None and isinstance(samples, Sequence):
        total = len(samples)
    created = [p for p in (out_dir, out_dir / "VOCdevkit") if not p.exists()]
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=temp_prefix(final.name), suffix=_PARTIAL,
                                    dir=final.parent))
        follow_umask(tmp, folder=True)      # mkdtemp makes it owner-only; VOC2012 is not
    except OSError as e:
        raise VocError(f"{out_dir.name}: cannot create the export folder "
                       f"({e.strerror or e})") from None
    try:
        groups: dict[str, str] = {}
        kept: list = []
        if originals:
            from segstudio.io.deidentify import Deidentifier

            samples = keep_originals.tap(samples, tmp, kept, cancel,
                                         Deidentifier() if deidentify else None)
        ids = _write_pairs(tmp, samples, classes, total or 0, progress, cancel, groups)
        if originals:
            keep_originals.finish(tmp, ids, kept)
        train, val = split_ids(ids, val_fraction, seed, groups)
        _write_splits(tmp, ids, train, val)
        _write_classes(tmp, classes)
        if final.exists():
            old = tmp.with_name(tmp.name[:-len(_PARTIAL)] + ".old")
            final.rename(old)
            tmp.rename(final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(final)
    except BaseException as e:
        shutil.rmtree(tmp, ignore_errors=True)
        for folder in reversed(created):
            try:
                folder.rmdir()
            except OSError:
                pass
        if isinstance(e, OSError):
            raise VocError(f"{out_dir.name}: the export could not be written "
                           f"({e.strerror or e}); nothing was left behind") from None
        raise
    return VocExportResult(out_dir, len(ids), train, val)


def _write_pairs(tree: Path, samples: Iterable[VocSample], classes: ClassSet, total: int,
                 progress: Callable[[int, int], None] | None,
                 cancel: Callable[[], bool] | None, groups: dict[str, str]) -> list[str]:
    for sub in ("JPEGImages", "SegmentationClass", SPLITS_DIR):
        (tree / sub).mkdir(parents=True, exist_ok=True)
    taken: set[str] = set()
    ids: list[str] = []
    palette = classes.palette()
    for sample in samples:
        if cancel is not None and cancel():
            raise VocExportCancelled("export cancelled")
        ident = _unique(sanitize_id(sample.id), taken)
        image, labels = _checked(sample, classes)
        Image.fromarray(image).save(tree / "JPEGImages" / f"{ident}.jpg", quality=_JPEG_QUALITY)
        _save_indexed_png(tree / "SegmentationClass" / f"{ident}.png", labels, palette)
        if sample.instances is not None:
            inst = np.asarray(sample.instances)
            if inst.shape != labels.shape:
                raise VocError(f"{sample.id}: instance map {inst.shape} does not match labels "
                               f"{labels.shape}")
            (tree / "SegmentationObject").mkdir(exist_ok=True)
            save_object_png(tree / "SegmentationObject" / f"{ident}.png", inst)
        ids.append(ident)
        if sample.group is not None:
            groups[ident] = sample.group
        if progress is not None:
            progress(len(ids), total)
    if cancel is not None and cancel():
        raise VocExportCancelled("export cancelled")
    if not ids:
        raise VocError("nothing to export: no item has labels yet")
    return ids


def _checked(sample: VocSample, classes: ClassSet) -> tuple[np.ndarray, np.ndarray]:
    image, labels = np.asarray(sample.image), np.asarray(sample.labels)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise VocError(f"{sample.id}: the image must be H×W×3 uint8 RGB, got {image.shape} "
                       f"{image.dtype}")
    if labels.shape != image.shape[:2]:
        raise VocError(f"{sample.id}: labels are {labels.shape[1]}×{labels.shape[0]} but the "
                       f"image is {image.shape[1]}×{image.shape[0]}")
    labels = labels.astype(np.uint8) if labels.dtype != np.uint8 else labels
    bad = (labels >= len(classes)) & (labels != VOID_INDEX)
    if bad.any():
        raise VocError(f"{sample.id}: label value {int(labels[bad].max())} is not a class of "
                       f"{classes.title} (0..{len(classes) - 1}, or 255 for void)")
    return image, labels


def split_ids(ids: Sequence[str], val_fraction: float, seed: int,
              groups: dict[str, str] | None = None) -> tuple[list[str], list[str]]:
    """Split ids into (train, val), reproducibly from the seed and the set of ids.

    Ids sharing a ``groups`` value (the frames of one video) land in the same split, so near
    duplicates cannot leak from training into validation; an id without a group is its own.
    Groups are drawn in a seeded order and taken while they fit the validation share; if none
    fits, the smallest goes. Without groups this is a plain draw of single ids.
    """
    ordered = sorted(ids)
    groups = groups or {}
    members: dict[str, list[str]] = {}
    for i in ordered:
        members.setdefault(groups.get(i, "\0" + i), []).append(i)
    keys = sorted(members)
    n_val = int(round(len(ordered) * val_fraction))
    if val_fraction > 0 and len(keys) >= 2:
        n_val = min(max(n_val, 1), len(ordered) - 1)
    order = np.random.default_rng(seed).permutation(len(keys))
    chosen, count = [], 0
    for k in order:
        size = len(members[keys[k]])
        if count + size <= n_val:
            chosen.append(keys[k])
            count += size
    if not chosen and n_val > 0 and len(keys) >= 2:
        chosen.append(min((keys[k] for k in order), key=lambda key: len(members[key])))
    val_set = {i for key in chosen for i in members[key]}
    return [i for i in ordered if i not in val_set], [i for i in ordered if i in val_set]


def _write_splits(tree: Path, ids: list[str], train: list[str], val: list[str]) -> None:
    folder = tree / SPLITS_DIR
    for name, members in (("train", train), ("val", val), ("trainval", sorted(ids))):
        (folder / f"{name}.txt").write_text("".join(f"{i}\n" for i in members), encoding="utf-8")


def _write_classes(tree: Path, classes: ClassSet) -> None:
    (tree / "class_names.txt").write_text("".join(f"{n}\n" for n in classes.names),
                                          encoding="utf-8")
    (tree / "classes.json").write_text(json.dumps(classes.to_dict(), indent=2) + "\n",
                                       encoding="utf-8")


# -- reading a tree ------------------------------------------------------------------------------
def find_voc_dir(root: str | Path) -> Path:
    """The ``VOC2012``-like folder under ``root`` (root itself, ``root/VOC2012`` or the devkit)."""
    root = Path(root)
    for candidate in (root, root / "VOC2012", root / VOC_YEAR_DIR):
        if (candidate / SPLITS_DIR).is_dir() or (candidate / "SegmentationClass").is_dir():
            return candidate
    raise VocError(f"{root.name}: no Pascal VOC tree here (looked for SegmentationClass and "
                   "ImageSets/Segmentation, also under VOC2012 and VOCdevkit/VOC2012)")


def read_voc(root: str | Path, split: str = "train") -> list[tuple[str, Path, Path]]:
    """(id, image path, label path) for each id listed in ``ImageSets/Segmentation/<split>.txt``."""
    voc = find_voc_dir(root)
    listing = voc / SPLITS_DIR / f"{split}.txt"
    try:
        text = read_regular_text(listing)
    except FileNotFoundError:
        raise VocError(f"{listing.name}: the VOC tree has no '{split}' split") from None
    except (OSError, UnicodeDecodeError) as e:
        raise VocError(f"{listing.name}: cannot read the split list ({e})") from None
    pairs = []
    for ident in (line.strip() for line in text.splitlines()):
        if not ident:
            continue
        if sanitize_id(ident) != ident:
            raise VocError(f"{listing.name}: id {ident!r} is not a plain file stem")
        image = _find_image(voc / "JPEGImages", ident)
        label = voc / "SegmentationClass" / f"{ident}.png"
        if not label.is_file():
            raise VocError(f"{label.name}: listed in {listing.name} but missing from "
                           "SegmentationClass")
        pairs.append((ident, image, label))
    return pairs


def _find_image(folder: Path, ident: str) -> Path:
    for suffix in (".jpg", ".jpeg", ".png", ".JPG", ".JPEG", ".PNG"):
        path = folder / f"{ident}{suffix}"
        if path.is_file():
            return path
    raise VocError(f"{ident}.jpg: listed in the split but missing from JPEGImages")


def read_voc_classes(root: str | Path) -> ClassSet | None:
    """The class set an export stored beside its tree, or None for a tree without one."""
    path = find_voc_dir(root) / "classes.json"
    if not path.is_file():
        return None
    try:
        return ClassSet.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise VocError(f"{path.name}: the class list is damaged ({e})") from None
