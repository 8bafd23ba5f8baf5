"""Model cards: what a checkpoint was trained on, how well it did, and what it is for.

A card is plain JSON data kept in the checkpoint's metadata (``meta.training["card"]``), or,
for a file written before cards existed, in a sidecar ``<name>.card.json`` beside it, which
:func:`read_card` finds. ``segstudio train`` computes one from its training data
(:func:`card_from_training`): how many images, their sizes, the intensity distribution the
network saw (grey 0..255 after the display window, the model's own input), the validation
scores, and the validation set's mean max-softmax confidence and mean entropy, the yardsticks
that :mod:`segstudio.models.domain` holds every later prediction against.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from segstudio.io.cache_entry import EntryMismatch, expect_count, expect_number
from segstudio.io.regular_files import NotRegularFileError, check_regular, open_regular
from segstudio.models import card_values as values

CARD_VERSION = 1
CARD_SUFFIX = ".card.json"
CARD_MAX_BYTES = 4 << 20    # a card is a few kB; a larger "card" is not read
CARD_PROBLEM = "card_unreadable"  # in a loaded checkpoint's training summary: why no card
PERCENTILES = (1, 5, 50, 95, 99)
DATA_KINDS = ("synthetic", "real", "not recorded")
# What demo-data writes beside its tree, so a model trained on it knows its data was generated.
DATASET_FILE = "dataset.json"

INTENDED_SYNTHETIC = ("demonstration and teaching on images like its synthetic training set; "
                      "a rough first draft at best on real images, to be corrected by hand; "
                      "not a medical device")
INTENDED_DEFAULT = ("a first draft of labels on images like its training set, to be checked and "
                    "corrected by hand; not a medical device")


@dataclass
class ModelCard:
    """What a checkpoint knows about its own training; every field is plain data."""

    data_kind: str                      # one of DATA_KINDS
    data_description: str
    train_images: int
    val_images: int
    size_min: tuple[int, int]           # (width, height) of the smallest training image
    size_max: tuple[int, int]
    intensity: dict                     # pooled grey 0..255: mean, std, p1 … p99
    image_means: tuple[float, float]    # range of the per-image grey means
    image_stds: tuple[float, float]     # range of the per-image grey standard deviations
    colourfulness: float                # mean |R−G| + |G−B| over the training pixels
    histogram: list                     # pooled 256-bin grey histogram of the training images
    histogram_distance: float           # largest distance of a training image to it (grey levels)
    class_fractions: list               # per class: [min, max] share of a training label map
    val_scores: dict                    # mIoU, mAcc (0..1)
    val_confidence: float | None        # mean max-softmax probability on the val split
    val_entropy: float | None           # mean entropy in nats on the val split
    num_classes: int
    intended_use: str
    # per class: [min, max] share of a validation image the network itself gives the class
    predicted_fractions: list = field(default_factory=list)
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "version": CARD_VERSION,
            "data": {"kind": self.data_kind, "description": self.data_description,
                     "train_images": self.train_images, "val_images": self.val_images,
                     "size_min": list(self.size_min), "size_max": list(self.size_max),
                     "intensity": dict(self.intensity), "image_means": list(self.image_means),
                     "image_stds": list(self.image_stds), "colourfulness": self.colourfulness,
                     "histogram": [int(v) for v in self.histogram],
                     "histogram_distance": self.histogram_distance,
                     "class_fractions": [list(p) for p in self.class_fractions]},
            "validation": {**self.val_scores, "confidence": self.val_confidence,
                           "entropy": self.val_entropy, "num_classes": self.num_classes,
                           "predicted_fractions": [list(p) for p in self.predicted_fractions]},
            "intended_use": self.intended_use,
            **({"extra": self.extra} if self.extra else {}),
        }

    @classmethod
    def from_dict(cls, data: Any) -> "ModelCard":
        """A card from its JSON form; a malformed one, or one holding a value no training set
        can give (a grey mean of -1e308, a confidence of 5, a negative count, NaN), raises
        ValueError saying what is wrong."""
        if not isinstance(data, dict) or not isinstance(data.get("data"), dict):
            raise ValueError("the model card is not a mapping with a 'data' section")
        d, v = data["data"], data.get("validation") or {}
        try:
            if not isinstance(v, dict):
                raise EntryMismatch("the validation section is not a mapping")
            kind = values.text(d.get("kind", "not recorded"), "the data kind")
            intensity = d["intensity"]
            if not isinstance(intensity, dict):
                raise EntryMismatch("the intensity statistics are not a mapping")
            histogram = [expect_count(c, "a histogram count")
                         for c in values.plain_list(d.get("histogram"), "the histogram")]
            if histogram and len(histogram) != 256:
                raise EntryMismatch(f"the histogram has {len(histogram)} bins, not 256")
            extra = data.get("extra") or {}
            if not isinstance(extra, dict):
                raise EntryMismatch("the extra section is not a mapping")
            grey_max = values.GREY_MAX
            return cls(
                data_kind=kind if kind in DATA_KINDS else "not recorded",
                data_description=values.text(d.get("description", ""), "the data description"),
                train_images=expect_count(d["train_images"], "the training image count"),
                val_images=expect_count(d.get("val_images", 0), "the validation image count"),
                size_min=values.size(d["size_min"], "a side of the smallest image"),
                size_max=values.size(d["size_max"], "a side of the largest image"),
                intensity={str(k): values.grey(x, f"the grey {k}") for k, x in intensity.items()},
                image_means=values.pair_range(d["image_means"], "an image grey mean", 0, grey_max),
                image_stds=values.pair_range(d["image_stds"], "an image grey sd", 0, grey_max),
                colourfulness=expect_number(d.get("colourfulness", 0.0), "the colourfulness",
                                            low=0, high=510),
                histogram=histogram,
                histogram_distance=expect_number(d.get("histogram_distance", 0.0),
                                                 "the histogram distance", low=0, high=255),
                class_fractions=[values.pair_range(p, "a class's share of the labels", 0, 1)
                                 for p in values.plain_list(d.get("class_fractions"),
                                                            "the class shares")],
                val_scores={k: expect_number(v[k], f"the validation {k}", low=0, high=1)
                            for k in ("mIoU", "mAcc") if v.get(k) is not None},
                val_confidence=values.optional(v.get("confidence"), "the validation confidence",
                                               high=1),
                val_entropy=values.optional(v.get("entropy"), "the validation entropy",
                                            high=None),
                num_classes=expect_count(v.get("num_classes", 0), "the class count"),
                predicted_fractions=[values.pair_range(p, "a class's predicted share", 0, 1)
                                     for p in values.plain_list(v.get("predicted_fractions"),
                                                                "the predicted shares")],
                intended_use=values.text(data.get("intended_use", INTENDED_DEFAULT),
                                         "the intended use"),
                extra=dict(extra),
            )
        except EntryMismatch as exc:
            raise ValueError(str(exc)) from None
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"the model card is malformed ({exc})") from None

    def summary_lines(self) -> list[str]:
        """The card as short lines for a panel or a terminal."""
        kind = {"synthetic": "synthetic images", "real": "real images"}.get(
            self.data_kind, "images of unrecorded origin")
        size = (f"{self.size_min[0]}×{self.size_min[1]} px" if self.size_min == self.size_max
                else f"{self.size_min[0]}×{self.size_min[1]} to "
                     f"{self.size_max[0]}×{self.size_max[1]} px")
        it = self.intensity
        lines = [f"Trained on: {kind}: {self.data_description}" if self.data_description
                 else f"Trained on: {kind}",
                 f"Images: {self.train_images} train, {self.val_images} validation; {size}",
                 f"Intensity (grey 0–255): mean {it.get('mean', 0):.0f}, sd {it.get('std', 0):.0f},"
                 f" 1–99 % {it.get('p1', 0):.0f}–{it.get('p99', 0):.0f}"]
        scores = ", ".join(f"{k} {v:.1%}" for k, v in self.val_scores.items())
        if scores:
            lines.append(f"Validation: {scores}")
        if self.val_confidence is not None and self.val_entropy is not None:
            lines.append(f"Validation confidence {self.val_confidence:.2f}, "
                         f"entropy {self.val_entropy:.2f} nats")
        lines.append(f"Intended use: {self.intended_use}")
        return lines


# -- statistics ---------------------------------------------------------------------------------
def grey_of(rgb: np.ndarray) -> np.ndarray:
    """H×W uint8 luma (ITU-R 601) of an H×W×3 uint8 image; a grey H×W image is returned as is."""
    rgb = np.asarray(rgb)
    if rgb.ndim == 2:
        return rgb.astype(np.uint8, copy=False)
    grey = rgb[..., :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    return np.clip(np.rint(grey), 0, 255).astype(np.uint8)


def colourfulness(rgb: np.ndarray) -> float:
    """Mean |R−G| + |G−B| (0 for a grey picture, up to 510)."""
    rgb = np.asarray(rgb)
    if rgb.ndim == 2:
        return 0.0
    r, g, b = (rgb[..., i].astype(np.int16) for i in range(3))
    return float(np.mean(np.abs(r - g) + np.abs(g - b)))


def histogram_stats(hist: np.ndarray) -> dict:
    """Mean, standard deviation and percentiles of a 256-bin grey histogram (exact for uint8)."""
    hist = np.asarray(hist, np.float64)
    total = hist.sum()
    if total <= 0:
        return {"mean": 0.0, "std": 0.0, **{f"p{p}": 0.0 for p in PERCENTILES}}
    values = np.arange(256, dtype=np.float64)
    mean = float((hist * values).sum() / total)
    std = float(np.sqrt(max((hist * (values - mean) ** 2).sum() / total, 0.0)))
    cdf = np.cumsum(hist) / total
    stats = {"mean": round(mean, 3), "std": round(std, 3)}
    for p in PERCENTILES:
        stats[f"p{p}"] = float(np.searchsorted(cdf, p / 100.0))
    return stats


def histogram_distance(hist: np.ndarray, reference: np.ndarray) -> float:
    """Earth mover's distance between two grey histograms, in grey levels (0 = identical)."""
    a = np.cumsum(np.asarray(hist, np.float64))
    b = np.cumsum(np.asarray(reference, np.float64))
    if a[-1] <= 0 or b[-1] <= 0:
        return 0.0
    return float(np.abs(a / a[-1] - b / b[-1]).sum())


def grey_histogram(rgb: np.ndarray) -> np.ndarray:
    return np.bincount(grey_of(rgb).ravel(), minlength=256)


def fraction_ranges(shares: list) -> list[tuple[float, float]]:
    """Per class (min, max) over a list of per-image share vectors."""
    if not shares:
        return []
    arr = np.asarray(shares, np.float64)
    return [(float(lo), float(hi)) for lo, hi in zip(arr.min(axis=0), arr.max(axis=0))]


def class_fractions(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Share of each class among an image's labelled pixels (255 = void left out)."""
    counts = np.bincount(np.asarray(labels, np.uint8).ravel(), minlength=256)[:num_classes]
    total = counts.sum()
    return counts / total if total else np.zeros(num_classes)


@dataclass
class DataStatistics:
    """Running statistics over a set of images (what a card's data section holds)."""

    num_classes: int = 0
    hist: np.ndarray = field(default_factory=lambda: np.zeros(256, np.int64))
    hists: list = field(default_factory=list)
    means: list = field(default_factory=list)
    stds: list = field(default_factory=list)
    sizes: list = field(default_factory=list)
    fractions: list = field(default_factory=list)
    colour_sum: float = 0.0

    def add(self, rgb: np.ndarray, labels: np.ndarray | None = None) -> None:
        grey = grey_of(rgb)
        h = np.bincount(grey.ravel(), minlength=256)
        self.hist += h
        self.hists.append(h)
        self.means.append(float(grey.mean()))
        self.stds.append(float(grey.std()))
        self.sizes.append((int(grey.shape[1]), int(grey.shape[0])))
        self.colour_sum += colourfulness(rgb)
        if labels is not None and self.num_classes:
            self.fractions.append(class_fractions(labels, self.num_classes))

    @property
    def count(self) -> int:
        return len(self.sizes)

    def summary(self) -> dict:
        """Sizes (smallest and largest by area), intensity, per-image ranges, colourfulness,
        the pooled histogram with the largest distance of one image to it, class shares."""
        if not self.sizes:
            raise ValueError("no images to describe")
        by_area = sorted(self.sizes, key=lambda s: s[0] * s[1])
        fr = np.array(self.fractions) if self.fractions else np.zeros((0, 0))
        return {"size_min": by_area[0], "size_max": by_area[-1],
                "intensity": histogram_stats(self.hist),
                "image_means": (round(min(self.means), 3), round(max(self.means), 3)),
                "image_stds": (round(min(self.stds), 3), round(max(self.stds), 3)),
                "colourfulness": round(self.colour_sum / self.count, 3),
                "histogram": [int(v) for v in self.hist],
                "histogram_distance": round(max(histogram_distance(h, self.hist)
                                                for h in self.hists), 3),
                "class_fractions": [(round(float(lo), 4), round(float(hi), 4))
                                    for lo, hi in zip(fr.min(axis=0), fr.max(axis=0))]
                if fr.size else []}


def describe_images(images: Iterable[tuple[np.ndarray, np.ndarray | None]],
                    num_classes: int = 0) -> dict:
    """:meth:`DataStatistics.summary` of ``(H×W×3 uint8 image, labels or None)`` pairs plus
    their count."""
    stats = DataStatistics(num_classes)
    for rgb, labels in images:
        stats.add(rgb, labels)
    return {**stats.summary(), "count": stats.count}


def confidence_and_entropy(probabilities: np.ndarray) -> tuple[float, float]:
    """Mean max-softmax probability and mean entropy (nats) of a C×H×W probability map."""
    probs = np.asarray(probabilities, np.float32)
    top = probs.max(axis=0)
    entropy = np.zeros(probs.shape[1:], np.float32)
    for plane in probs:
        entropy -= plane * np.log(np.maximum(plane, 1e-12))
    return float(top.mean()), float(entropy.mean())


# -- dataset description ------------------------------------------------------------------------
def read_dataset_description(voc_dir: str | Path) -> tuple[str, str]:
    """(kind, description) from the ``dataset.json`` beside a VOC tree; ("not recorded", name
    of the folder) when there is none or it cannot be read."""
    voc_dir = Path(voc_dir)
    for folder in (voc_dir, voc_dir / "VOC2012", voc_dir / "VOCdevkit" / "VOC2012"):
        path = folder / DATASET_FILE
        if path.is_file():
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
                kind = str(data.get("kind", "not recorded"))
                return (kind if kind in DATA_KINDS else "not recorded",
                        str(data.get("description", "")))
            except (OSError, ValueError, AttributeError):
                break
    return "not recorded", f"the Pascal VOC tree '{voc_dir.name}'"


def dataset_description_for(generator: str, count: int, size: int, seed: int) -> dict:
    """What ``segstudio demo-data`` writes as ``dataset.json``."""
    what = {"xray": "chest X-ray phantoms (not patient data)", "context": "road-and-water scenes",
            "shapes": "coloured shapes"}.get(generator, generator)
    return {"kind": "synthetic", "generator": generator, "count": int(count), "size": int(size),
            "seed": int(seed),
            "description": f"{count} generated {what}, {size} px, seed {seed}"}


# -- reading a card -----------------------------------------------------------------------------
def card_json(data: dict) -> str:
    """A card as indented JSON with each list of numbers on one line (the histogram holds
    256), for a sidecar a person can read."""
    text = json.dumps(data, indent=2)
    return re.sub(r"\[\s*((?:-?[\d.eE+-]+,\s*)*-?[\d.eE+-]+)\s*\]",
                  lambda m: "[" + ", ".join(v.strip() for v in m.group(1).split(",")) + "]",
                  text) + "\n"


def sidecar_path(checkpoint: str | Path) -> Path:
    path = Path(checkpoint)
    return path.with_name(path.stem + CARD_SUFFIX)


class CardUnreadable(ValueError):
    """A model card that exists but cannot be used; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def unreadable_message(name: str, reason: str) -> str:
    """What the Model panel and ``segstudio predict`` say about a card they cannot use."""
    return (f"model card {name} could not be read ({reason}); inputs are not checked against "
            "its training data")


def load_sidecar(path: str | Path) -> dict:
    """The checked JSON data of a sidecar card; :class:`CardUnreadable` says why it cannot be
    used (a folder or pipe in its place, not JSON, nested too deeply, impossible values)."""
    path = Path(path)
    try:
        st = check_regular(path)
        if st.st_size > CARD_MAX_BYTES:
            raise CardUnreadable(f"{st.st_size} bytes, more than a card holds")
        with open_regular(path) as f:
            text = f.read(CARD_MAX_BYTES + 1).decode("utf-8")
    except NotRegularFileError as exc:
        raise CardUnreadable(exc.reason.replace(", so it is not opened", "")) from None
    except OSError as exc:
        raise CardUnreadable(f"cannot be read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise CardUnreadable("not UTF-8 text") from None
    try:
        data = json.loads(text)
    except RecursionError:
        raise CardUnreadable("nested too deeply to be a card") from None
    except ValueError as exc:
        raise CardUnreadable(f"not JSON: {str(exc)[:120]}") from None
    check_card(data)
    return data


def check_card(data: Any) -> ModelCard:
    """``data`` as a card, or :class:`CardUnreadable` with the reason."""
    try:
        return ModelCard.from_dict(data)
    except RecursionError:
        raise CardUnreadable("nested too deeply to be a card") from None
    except ValueError as exc:
        raise CardUnreadable(str(exc)) from None


def attach_sidecar(training: dict, checkpoint: str | Path) -> None:
    """Put the sidecar's card into a checkpoint's ``training`` summary when it holds none, so
    that every reader of the metadata sees it. A card (in the file or beside it) that cannot be
    used leaves a sentence under ``CARD_PROBLEM`` instead, which the Model panel and
    ``segstudio predict`` show: without a card nothing checks the inputs."""
    training.pop(CARD_PROBLEM, None)
    name = Path(checkpoint).name
    if training.get("card") is not None:
        try:
            check_card(training["card"])
        except CardUnreadable as exc:
            del training["card"]
            training[CARD_PROBLEM] = unreadable_message(f"in {name}", exc.reason)
        return
    training.pop("card", None)
    side = sidecar_path(checkpoint)
    if not os.path.lexists(side):
        return
    try:
        training["card"] = load_sidecar(side)
    except CardUnreadable as exc:
        training[CARD_PROBLEM] = unreadable_message(side.name, exc.reason)


def card_problem(training: dict | None) -> str | None:
    """The sentence saying a checkpoint's card could not be read, or None."""
    problem = (training or {}).get(CARD_PROBLEM)
    return problem if isinstance(problem, str) else None


def read_card(training: dict | None, checkpoint: str | Path | None = None) -> ModelCard | None:
    """The card stored in a checkpoint's training summary, else the sidecar beside the file;
    None when neither exists or the one found cannot be used (the card is a description; a
    damaged one must not stop the model from loading: :func:`card_problem` says why)."""
    data = (training or {}).get("card")
    if data is None and checkpoint is not None:
        side = sidecar_path(checkpoint)
        if os.path.lexists(side):
            try:
                data = load_sidecar(side)
            except CardUnreadable:
                return None
    if data is None:
        return None
    try:
        return check_card(data)
    except CardUnreadable:
        return None


def build_card(*, data_kind: str, description: str, train: dict, val_count: int,
               scores: dict, confidence: float | None, entropy: float | None,
               num_classes: int, predicted: list | None = None,
               intended_use: str | None = None, extra: dict | None = None) -> ModelCard:
    """A card from a :func:`describe_images` summary of the training images and val figures."""
    return ModelCard(
        data_kind=data_kind if data_kind in DATA_KINDS else "not recorded",
        data_description=description, train_images=int(train["count"]),
        val_images=int(val_count), size_min=tuple(train["size_min"]),
        size_max=tuple(train["size_max"]), intensity=dict(train["intensity"]),
        image_means=tuple(train["image_means"]), image_stds=tuple(train["image_stds"]),
        colourfulness=float(train["colourfulness"]), histogram=list(train["histogram"]),
        histogram_distance=float(train["histogram_distance"]),
        class_fractions=[tuple(p) for p in train["class_fractions"]],
        val_scores={k: round(float(v), 4) for k, v in scores.items()
                    if v is not None and np.isfinite(v)},
        val_confidence=None if confidence is None else round(float(confidence), 4),
        val_entropy=None if entropy is None else round(float(entropy), 4),
        num_classes=int(num_classes),
        predicted_fractions=[(round(float(lo), 4), round(float(hi), 4))
                             for lo, hi in (predicted or [])],
        intended_use=intended_use or (INTENDED_SYNTHETIC if data_kind == "synthetic"
                                      else INTENDED_DEFAULT),
        extra=dict(extra or {}))
