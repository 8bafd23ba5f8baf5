"""Boundary accuracy: IoU counted only within k pixels of the ground truth's label edges.

The trimap measure of DeepLab (Chen et al., TPAMI 2018, Fig. 5, after Kohli et al. 2009): a
band around every edge of the true labels, and the mean IoU of the pixels in it. Skips and the
dense CRF change little of a region's inside and much of its outline, which this measure sees
and whole-image mIoU barely does.
"""

from __future__ import annotations

import cv2
import numpy as np

from segstudio.core.metrics import IGNORE, ConfusionMatrix

BANDS = (2, 4, 8, 16)


def label_edges(labels: np.ndarray) -> np.ndarray:
    """Pixels whose right or lower neighbour holds another label (both sides marked); void
    (255) is a label like any other here, so its outline counts as an edge."""
    labels = np.asarray(labels)
    edge = np.zeros(labels.shape, bool)
    dx = labels[:, 1:] != labels[:, :-1]
    dy = labels[1:, :] != labels[:-1, :]
    edge[:, 1:] |= dx
    edge[:, :-1] |= dx
    edge[1:, :] |= dy
    edge[:-1, :] |= dy
    return edge


def disk(radius: int) -> np.ndarray:
    """The structuring element {(dy, dx) : dy² + dx² ≤ radius²}."""
    r = int(radius)
    yy, xx = np.mgrid[-r:r + 1, -r:r + 1]
    return (yy * yy + xx * xx <= r * r).astype(np.uint8)


def edge_band(labels: np.ndarray, k: int) -> np.ndarray:
    """Pixels within Euclidean distance ``k`` of a label edge."""
    if k < 0:
        raise ValueError(f"a band width must be ≥ 0 pixels, not {k}")
    edges = label_edges(labels).astype(np.uint8)
    return cv2.dilate(edges, disk(k), borderType=cv2.BORDER_CONSTANT, borderValue=0) > 0


def band_confusion(gt: np.ndarray, pred: np.ndarray, k: int, num_classes: int,
                   into: ConfusionMatrix | None = None) -> ConfusionMatrix:
    """The confusion matrix of the pixels within ``k`` px of ``gt``'s edges (void ignored),
    added to ``into`` when given."""
    gt = np.asarray(gt)
    masked = np.where(edge_band(gt, k), gt, IGNORE).astype(np.uint8)
    cm = into if into is not None else ConfusionMatrix(num_classes)
    return cm.update(masked, np.asarray(pred))


def trimap_miou(pairs, num_classes: int, bands=BANDS) -> dict[int, float]:
    """Mean IoU within each band width over ``(gt, pred)`` pairs, confusion summed over all
    images first (as whole-set mIoU is), in 0..1."""
    cms = {k: ConfusionMatrix(num_classes) for k in bands}
    for gt, pred in pairs:
        for k in bands:
            band_confusion(gt, pred, k, num_classes, cms[k])
    return {k: cms[k].scores().miou for k in bands}


def full_miou(pairs, num_classes: int) -> float:
    """Whole-image mean IoU over ``(gt, pred)`` pairs, for comparison with the bands."""
    cm = ConfusionMatrix(num_classes)
    for gt, pred in pairs:
        cm.update(gt, pred)
    return cm.scores().miou
