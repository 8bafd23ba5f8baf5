"""Mask R-CNN's detections as segstudio shows them: class probabilities, an instance map and
each instance's class and score, pasted as the paper's inference does."""

from __future__ import annotations

import numpy as np
import torch

INSTANCE_SCORE_THRESHOLD = 0.5


def semantic_from_instances(detections: dict, num_classes: int, size: tuple[int, int]
                            ) -> tuple[torch.Tensor, np.ndarray, list[tuple[int, float]]]:
    """Class probabilities, an instance-id map and each instance's (class, score) from Mask R-CNN
    detections.

    As in the paper's inference (He et al. 2017, §3.1), a detection kept (score at least
    ``INSTANCE_SCORE_THRESHOLD``) covers the pixels where its mask probability is 0.5 or more,
    and where detections overlap the more confident one lies on top. A pixel's instance is the
    top detection covering it; ids follow the score order (1 = most confident) without gaps, and
    a detection hidden everywhere by more confident ones is left out; 0 means no instance.
    A class's probability at a pixel is the largest mask probability of its detections, the
    background takes the rest, and the values are normalised to sum to one. Where detections of
    two classes overlap, the top one's class is raised just above the other, so the most likely
    class is always the class of the pixel's instance (background where there is none).
    """
    h, w = size
    keep = (detections["scores"] >= INSTANCE_SCORE_THRESHOLD) & \
        (detections["labels"] > 0) & (detections["labels"] < num_classes)
    scores, labels = detections["scores"][keep], detections["labels"][keep]
    order = torch.argsort(scores, descending=True, stable=True)
    scores, labels = scores[order], labels[order]
    masks = detections["masks"][keep][order].reshape(-1, h, w)
    probs = torch.zeros((num_classes, h, w), dtype=torch.float32)
    ids = torch.zeros((h, w), dtype=torch.int64)
    for i in reversed(range(len(scores))):          # the most confident painted last, on top
        c = int(labels[i])
        torch.maximum(probs[c], masks[i], out=probs[c])
        ids[masks[i] >= 0.5] = i + 1
    shown = [int(k) for k in torch.unique(ids).tolist() if k > 0]
    compact = torch.zeros(len(scores) + 1, dtype=torch.int64)
    compact[shown] = torch.arange(1, len(shown) + 1)
    ids = compact[ids]
    objects = [(int(labels[k - 1]), float(scores[k - 1])) for k in shown]
    probs[0] = 1.0 - probs[1:].amax(dim=0) if num_classes > 1 else 1.0
    if objects:
        cls = torch.tensor([0] + [c for c, _ in objects])[ids]      # the class of each pixel
        wrong = probs.argmax(dim=0) != cls
        if wrong.any():
            raised = torch.where(wrong, probs.amax(dim=0) + 1e-3,
                                 probs.gather(0, cls[None])[0])
            probs.scatter_(0, cls[None], raised[None])
    probs.clamp_(min=1e-6)
    instances = ids.to(torch.int32).numpy().astype(np.uint16)
    return probs.div_(probs.sum(dim=0, keepdim=True)), instances, objects
