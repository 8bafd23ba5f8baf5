"""Instance scores: which true objects a detector found, one to one, at a mask IoU threshold.

Instances are id maps in the Pascal VOC ``SegmentationObject`` convention (0 is no object, 255 is
void, each other value one object), read together with their class maps; an object's class is
the majority class under it. Predicted objects are taken in rank order (id 1 is the detector's
most confident, as segstudio writes them); each is matched to the unmatched true object of the
same class that it overlaps most, when their mask IoU reaches the threshold (0.5, as in VOC and
COCO). A matched prediction is a true positive, an unmatched one a false positive, and an
unmatched true object a miss. Pixels whose true class is void count for neither mask.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

IGNORE = 255
DEFAULT_IOU = 0.5


@dataclass
class InstanceCounts:
    """True positives, false positives and misses, overall and per class index."""

    tp: int = 0
    fp: int = 0
    fn: int = 0
    per_class: dict[int, list[int]] = field(default_factory=dict)     # class → [tp, fp, fn]

    def _count(self, cls: int, which: int) -> None:
        self.per_class.setdefault(cls, [0, 0, 0])[which] += 1

    def add(self, other: InstanceCounts) -> InstanceCounts:
        self.tp, self.fp, self.fn = self.tp + other.tp, self.fp + other.fp, self.fn + other.fn
        for cls, counts in other.per_class.items():
            mine = self.per_class.setdefault(cls, [0, 0, 0])
            for i in range(3):
                mine[i] += counts[i]
        return self

    @staticmethod
    def _ratios(tp: int, fp: int, fn: int) -> dict:
        precision = tp / (tp + fp) if tp + fp else None
        recall = tp / (tp + fn) if tp + fn else None
        f1 = (2 * precision * recall / (precision + recall)
              if precision and recall else (0.0 if precision is not None and recall is not None
                                            else None))
        return {"precision": precision, "recall": recall, "F1": f1, "TP": tp, "FP": fp, "FN": fn}

    def to_dict(self, names: list[str] | tuple[str, ...] | None = None) -> dict:
        name = (lambda c: names[c] if names is not None and c < len(names) else str(c))
        return {**self._ratios(self.tp, self.fp, self.fn),
                "per_class": {name(c): self._ratios(*self.per_class[c])
                              for c in sorted(self.per_class)}}


def object_classes(ids: np.ndarray, labels: np.ndarray) -> dict[int, int]:
    """Each object's class: the majority non-void label under it (objects on void alone and
    objects on background are left out)."""
    ids = np.asarray(ids).ravel().astype(np.int64)
    labels = np.asarray(labels).ravel().astype(np.int64)
    keep = (ids != 0) & (ids != IGNORE) & (labels != IGNORE)
    if not keep.any():
        return {}
    ids, labels = ids[keep], labels[keep]
    m, n = int(ids.max()) + 1, int(labels.max()) + 1
    joint = np.bincount(ids * n + labels, minlength=m * n).reshape(m, n)
    found = {}
    for i in np.flatnonzero(joint.sum(axis=1)):
        cls = int(joint[i].argmax())
        if cls != 0:
            found[int(i)] = cls
    return found


def match_instances(gt_ids: np.ndarray, gt_labels: np.ndarray, pred_ids: np.ndarray,
                    pred_labels: np.ndarray, iou: float = DEFAULT_IOU) -> InstanceCounts:
    """Counts for one image; all four maps H×W of the same size."""
    shapes = {np.shape(a) for a in (gt_ids, gt_labels, pred_ids, pred_labels)}
    if len(shapes) != 1:
        raise ValueError(f"instance and class maps differ in size: {sorted(shapes)}")
    gt_cls = object_classes(gt_ids, gt_labels)
    pred_cls = object_classes(pred_ids, pred_labels)
    valid = np.asarray(gt_labels) != IGNORE
    g = np.where(valid & np.isin(gt_ids, list(gt_cls)), gt_ids, 0).astype(np.int64).ravel()
    p = np.where(valid & np.isin(pred_ids, list(pred_cls)), pred_ids, 0).astype(np.int64).ravel()
    ng, npred = int(g.max(initial=0)) + 1, int(p.max(initial=0)) + 1
    inter = np.bincount(g * npred + p, minlength=ng * npred).reshape(ng, npred)
    area_g, area_p = inter.sum(axis=1), inter.sum(axis=0)
    counts = InstanceCounts()
    taken: set[int] = set()
    for pi in sorted(pred_cls):
        if pi >= npred or area_p[pi] == 0:
            continue                          # drawn on void pixels only: neither right nor wrong
        best, best_iou = None, 0.0
        for gi, cls in gt_cls.items():
            if gi in taken or cls != pred_cls[pi]:
                continue
            overlap = inter[gi, pi]
            union = area_g[gi] + area_p[pi] - overlap
            score = overlap / union if union else 0.0
            if score >= iou and score > best_iou:
                best, best_iou = gi, score
        if best is None:
            counts.fp += 1
            counts._count(pred_cls[pi], 1)
        else:
            taken.add(best)
            counts.tp += 1
            counts._count(pred_cls[pi], 0)
    for gi, cls in gt_cls.items():
        if gi not in taken:
            counts.fn += 1
            counts._count(cls, 2)
    return counts
