"""A torch Dataset over a Pascal VOC tree, with the usual segmentation augmentation.

Training samples are randomly scaled, flipped and cropped (labels padded with the void index 255,
so padding never counts as background); every image is normalised with the checkpoint's mean and
std. Random choices come from torch's generator, which DataLoader seeds per worker, so a run with
a fixed seed is repeatable.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset

IGNORE_INDEX = 255


class DatasetError(ValueError):
    """A VOC tree or one of its files that cannot be used for training, with the reason."""


@dataclass(frozen=True)
class Augment:
    """Training augmentation: scale range, horizontal flips, and the square crop size.

    Flips are off for anatomy, where left and right differ (the heart sits on the patient's left).
    """

    crop: int = 128
    scale: tuple[float, float] = (0.75, 1.25)
    hflip: bool = True


def read_rgb(path: Path) -> np.ndarray:
    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))
    except (OSError, UnidentifiedImageError) as exc:
        raise DatasetError(f"{path.name}: cannot read image ({exc})") from None


def _read_split(root: Path, split: str) -> list[tuple[str, Path, Path]]:
    from segstudio.io.voc import VocError, read_voc

    try:
        items = read_voc(root, split)
    except VocError as exc:
        raise DatasetError(f"{root.name}: cannot read the {split!r} split ({exc})") from None
    if not items:
        raise DatasetError(f"{root.name}: the {split!r} split is empty")
    return [(str(i), Path(img), Path(lab)) for i, img, lab in items]


def _read_labels(path: Path) -> np.ndarray:
    from segstudio.io.voc import VocError, load_label_png

    try:
        return load_label_png(path)
    except VocError as exc:
        raise DatasetError(str(exc)) from None


class VocSegmentation(Dataset):
    """Samples ``(image 3×H×W float32 normalised, labels H×W int64)`` from one split.

    With ``augment`` set, each sample is scaled, maybe flipped, padded and cropped to
    ``augment.crop``; without it the full image is returned (validation). ``label_lut`` (256
    values) renumbers the stored labels as read: the tree's classes into a network's own order.
    """

    def __init__(self, root: str | Path, split: str = "train", *,
                 mean: tuple[float, float, float], std: tuple[float, float, float],
                 augment: Augment | None = None, num_classes: int | None = None,
                 label_lut: np.ndarray | None = None) -> None:
        self.root = Path(root)
        self.split = split
        self.items = _read_split(self.root, split)
        self.mean = np.asarray(mean, np.float32) * 255.0
        self.std = np.asarray(std, np.float32) * 255.0
        self.augment = augment
        self.num_classes = num_classes
        self.label_lut = label_lut

    def __len__(self) -> int:
        return len(self.items)

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """The raw ``(RGB uint8, labels uint8)`` of item ``index``, checked to agree in size."""
        sid, image_path, label_path = self.items[index]
        image = read_rgb(image_path)
        labels = _read_labels(label_path)
        if self.label_lut is not None:
            labels = self.label_lut[labels]
        if labels.shape != image.shape[:2]:
            raise DatasetError(f"{label_path.name}: labels are {labels.shape[1]}×"
                               f"{labels.shape[0]} but image {image_path.name} is "
                               f"{image.shape[1]}×{image.shape[0]}")
        if self.num_classes is not None:
            bad = (labels >= self.num_classes) & (labels != IGNORE_INDEX)
            if bad.any():
                raise DatasetError(f"{label_path.name}: label {int(labels[bad].max())} is "
                                   f"outside the {self.num_classes} classes of this dataset")
        return image, labels

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image, labels = self.load(index)
        if self.augment is not None:
            image, labels = augment_pair(image, labels, self.augment)
        x = (image.astype(np.float32) - self.mean) / self.std
        return (torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1))),
                torch.from_numpy(labels.astype(np.int64)))


def augment_pair(image: np.ndarray, labels: np.ndarray,
                 aug: Augment) -> tuple[np.ndarray, np.ndarray]:
    """Random scale, flip and crop of an image and its labels (nearest-neighbour for labels)."""
    lo, hi = aug.scale
    s = lo + (hi - lo) * float(torch.rand(()))
    h, w = labels.shape
    nh, nw = max(1, round(h * s)), max(1, round(w * s))
    image = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_LINEAR)
    labels = cv2.resize(labels, (nw, nh), interpolation=cv2.INTER_NEAREST)
    if aug.hflip and float(torch.rand(())) < 0.5:
        image, labels = image[:, ::-1], labels[:, ::-1]
    c = aug.crop
    ph, pw = max(0, c - nh), max(0, c - nw)
    if ph or pw:
        # Image padding is black; its labels are void, so it never teaches "background".
        image = cv2.copyMakeBorder(np.ascontiguousarray(image), 0, ph, 0, pw,
                                   cv2.BORDER_CONSTANT, value=(0, 0, 0))
        labels = cv2.copyMakeBorder(np.ascontiguousarray(labels), 0, ph, 0, pw,
                                    cv2.BORDER_CONSTANT, value=IGNORE_INDEX)
    h, w = labels.shape
    y = int(torch.randint(0, h - c + 1, ()))
    x = int(torch.randint(0, w - c + 1, ()))
    return image[y:y + c, x:x + c], labels[y:y + c, x:x + c]


def pad_collate(batch: list[tuple[torch.Tensor, torch.Tensor]]
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack samples of different sizes: images padded with 0, labels with the void index."""
    h = max(x.shape[1] for x, _ in batch)
    w = max(x.shape[2] for x, _ in batch)
    images = torch.zeros((len(batch), batch[0][0].shape[0], h, w))
    labels = torch.full((len(batch), h, w), IGNORE_INDEX, dtype=torch.int64)
    for i, (x, y) in enumerate(batch):
        images[i, :, :x.shape[1], :x.shape[2]] = x
        labels[i, :y.shape[0], :y.shape[1]] = y
    return images, labels


def channel_stats(dataset: VocSegmentation, limit: int = 64) -> tuple[tuple[float, ...],
                                                                       tuple[float, ...]]:
    """Per-channel mean and std (0..1 scale) over up to ``limit`` evenly spread images."""
    idx = np.linspace(0, len(dataset) - 1, min(limit, len(dataset))).round().astype(int)
    total = np.zeros(3)
    total_sq = np.zeros(3)
    count = 0
    for i in np.unique(idx):
        px = dataset.load(int(i))[0].reshape(-1, 3).astype(np.float64) / 255.0
        total += px.sum(0)
        total_sq += (px ** 2).sum(0)
        count += len(px)
    mean = total / count
    std = np.sqrt(np.maximum(total_sq / count - mean ** 2, 1e-6))
    return tuple(float(v) for v in mean), tuple(float(max(v, 1e-3)) for v in std)


def median_frequency_weights(dataset, num_classes: int) -> list[float]:
    """Per-class loss weights ``median(f) / f_c``, where ``f_c`` is class c's pixel share in
    the images that contain it (SegNet §3.2); classes never seen get weight 1."""
    pixels = np.zeros(num_classes, np.float64)
    present = np.zeros(num_classes, np.float64)
    for i in range(len(dataset)):
        labels = dataset.load(i)[1]
        counts = np.bincount(labels[labels != IGNORE_INDEX].ravel(), minlength=num_classes)
        counts = counts[:num_classes]
        pixels += counts
        present += (counts > 0) * float((labels != IGNORE_INDEX).sum())
    seen = pixels > 0
    freq = np.where(seen, pixels / np.maximum(present, 1), 0.0)
    median = float(np.median(freq[seen])) if seen.any() else 1.0
    return [round(median / f, 5) if f > 0 else 1.0 for f in freq]


class VocInstances(Dataset):
    """Mask R-CNN samples: ``(image 3×H×W in 0..1, target)`` with torchvision's target keys
    (``boxes`` x0,y0,x1,y1, ``labels``, ``masks`` N×H×W) plus ``semantic`` (H×W labels, for
    validation). Instance ids come from the tree's ``SegmentationObject`` PNGs; each instance's
    class is the majority semantic label under it. Training applies only flips."""

    def __init__(self, root: str | Path, split: str = "train", *,
                 augment: Augment | None = None) -> None:
        self.root = Path(root)
        self.items = _read_split(self.root, split)
        self.augment = augment

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, dict]:
        sid, image_path, label_path = self.items[index]
        image = read_rgb(image_path)
        labels = _read_labels(label_path)
        ids = _read_instances(label_path)
        if ids.shape != labels.shape or labels.shape != image.shape[:2]:
            raise DatasetError(f"{sid}: image, class and instance maps differ in size")
        if self.augment is not None and self.augment.hflip and float(torch.rand(())) < 0.5:
            image, labels, ids = image[:, ::-1], labels[:, ::-1], ids[:, ::-1]
        target = instance_target(np.ascontiguousarray(labels), np.ascontiguousarray(ids))
        x = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))).float() / 255.0
        return x, target


def _read_instances(label_path: Path) -> np.ndarray:
    path = label_path.parent.parent / "SegmentationObject" / label_path.name
    if not path.is_file():
        raise DatasetError(f"{label_path.name}: no instance map SegmentationObject/"
                           f"{label_path.name} (instance training needs one per image)")
    return _read_labels(path)


def instance_target(labels: np.ndarray, ids: np.ndarray) -> dict:
    """torchvision detection targets from a class map and an instance-id map (0 and 255 are
    no instance)."""
    found = [i for i in np.unique(ids).tolist() if i not in (0, IGNORE_INDEX)]
    boxes, classes, masks = [], [], []
    for i in found:
        m = ids == i
        cls = np.bincount(labels[m][labels[m] != IGNORE_INDEX], minlength=1)
        if cls.sum() == 0 or cls.argmax() == 0:
            continue
        ys, xs = np.nonzero(m)
        boxes.append([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
        classes.append(int(cls.argmax()))
        masks.append(m)
    h, w = labels.shape
    return {
        "boxes": torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
        "labels": torch.tensor(classes, dtype=torch.int64),
        "masks": torch.from_numpy(np.stack(masks) if masks else np.zeros((0, h, w), bool))
        .to(torch.uint8),
        "semantic": torch.from_numpy(labels.astype(np.int64)),
    }


def instance_collate(batch):
    """Detection batches stay lists: images may differ in size and hold any number of objects."""
    return [x for x, _ in batch], [t for _, t in batch]
