"""Segmentation scores from a confusion matrix: IoU and accuracy per class, mIoU, mAcc, aAcc.

Pixels whose ground truth is void (255) are ignored. A class absent from both ground truth and
prediction has no IoU (NaN) and is left out of the means, as in the standard VOC evaluation.
Predictions outside ``0..n-1`` (void in a prediction) count as wrong for the true class.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

IGNORE = 255


class ConfusionMatrix:
    """An accumulating n × n matrix: rows are ground truth, columns are prediction."""

    def __init__(self, num_classes: int, ignore_index: int = IGNORE) -> None:
        if num_classes < 1:
            raise ValueError("num_classes must be at least 1")
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
        self.unassigned = np.zeros(num_classes, dtype=np.int64)

    def update(self, gt: np.ndarray, pred: np.ndarray) -> "ConfusionMatrix":
        gt = np.asarray(gt)
        pred = np.asarray(pred)
        if gt.shape != pred.shape:
            raise ValueError(f"ground truth {gt.shape} and prediction {pred.shape} differ in size")
        n = self.num_classes
        keep = (gt != self.ignore_index) & (gt < n)
        g = gt[keep].astype(np.int64)
        p = pred[keep].astype(np.int64)
        valid = (p >= 0) & (p < n)
        self.matrix += np.bincount(g[valid] * n + p[valid], minlength=n * n).reshape(n, n)
        self.unassigned += np.bincount(g[~valid], minlength=n)
        return self

    def __iadd__(self, other: "ConfusionMatrix") -> "ConfusionMatrix":
        self.matrix += other.matrix
        self.unassigned += other.unassigned
        return self

    def scores(self) -> "Scores":
        tp = np.diag(self.matrix).astype(np.float64)
        gt_total = self.matrix.sum(axis=1) + self.unassigned
        pred_total = self.matrix.sum(axis=0)
        union = gt_total + pred_total - tp
        with np.errstate(divide="ignore", invalid="ignore"):
            iou = np.where(union > 0, tp / np.maximum(union, 1), np.nan)
            acc = np.where(gt_total > 0, tp / np.maximum(gt_total, 1), np.nan)
        total = gt_total.sum()
        return Scores(
            iou=iou,
            acc=acc,
            miou=float(np.nanmean(iou)) if np.isfinite(iou).any() else float("nan"),
            macc=float(np.nanmean(acc)) if np.isfinite(acc).any() else float("nan"),
            aacc=float(tp.sum() / total) if total else float("nan"),
        )


@dataclass(frozen=True)
class Scores:
    iou: np.ndarray   # per class, NaN where the class is in neither map
    acc: np.ndarray   # per class, NaN where the class is absent from the ground truth
    miou: float
    macc: float
    aacc: float

    def to_dict(self, names: list[str] | tuple[str, ...] | None = None) -> dict:
        names = list(names) if names is not None else [str(i) for i in range(len(self.iou))]
        clean = lambda v: None if not np.isfinite(v) else round(float(v), 6)  # noqa: E731
        return {
            "mIoU": clean(self.miou), "mAcc": clean(self.macc), "aAcc": clean(self.aacc),
            "per_class": {n: {"IoU": clean(i), "Acc": clean(a)}
                          for n, i, a in zip(names, self.iou, self.acc)},
        }


def confusion_matrix(gt: np.ndarray, pred: np.ndarray, num_classes: int,
                     ignore_index: int = IGNORE) -> ConfusionMatrix:
    return ConfusionMatrix(num_classes, ignore_index).update(gt, pred)


def scores(gt: np.ndarray, pred: np.ndarray, num_classes: int, ignore_index: int = IGNORE) -> Scores:
    return confusion_matrix(gt, pred, num_classes, ignore_index).scores()
