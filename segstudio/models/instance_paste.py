"""Mask R-CNN's detections as segstudio shows them: class probabilities, an instance map and
each instance's class and score, pasted as the paper's inference does.

Only the detections that are shown (score at least ``INSTANCE_SCORE_THRESHOLD``) get a mask,
pasted on its own box: torchvision's forward runs the mask head on every detection and pastes
each onto a whole-image mask, which on a 520² image with 50 detections, 15 of them shown, is
half of its time.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import torch
import torch.nn.functional as F

INSTANCE_SCORE_THRESHOLD = 0.5

# (y0, y1, x0, x1) of a detection's mask in the image, and the mask's values there
Piece = tuple[tuple[int, int, int, int], torch.Tensor]


def semantic_from_instances(detections: dict, num_classes: int, size: tuple[int, int]
                            ) -> tuple[torch.Tensor, np.ndarray, list[tuple[int, float]]]:
    """Class probabilities, an instance-id map and each instance's (class, score) from Mask R-CNN
    detections with whole-image masks, as torchvision's forward returns them.

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
    scores, labels, index = _shown(detections["scores"], detections["labels"], num_classes)
    masks = detections["masks"]
    pieces = []
    for k in index.tolist():
        mask = masks[k].reshape(h, w)
        y0, y1, x0, x1 = _support(mask)
        pieces.append(((y0, y1, x0, x1), mask[y0:y1, x0:x1]))
    return paint_instances(scores, labels, pieces, num_classes, size)


def detect_instances(model: torch.nn.Module, image: torch.Tensor, num_classes: int
                     ) -> tuple[torch.Tensor, torch.Tensor, list[Piece]] | None:
    """Scores, labels and mask pieces (float32, CPU) of the detections ``model`` shows on one
    3×H×W image (0..1), in score order; None for a model that is not torchvision's Mask R-CNN.

    This is torchvision's eval forward with its last step, pasting each detection's 28×28 mask
    onto a whole-image canvas, done instead for the shown detections only and on their own boxes,
    and on the CPU their mask head too (:func:`_roi_heads`). The values are torchvision's own:
    the same padding of the mask, the same box growth and rounding, the same bilinear resize,
    the same crop at the image border; only the zeros around each box are never written.
    """
    from torchvision.models.detection.generalized_rcnn import GeneralizedRCNN

    if not isinstance(model, GeneralizedRCNN) or model.training or not model.roi_heads.has_mask():
        return None
    images = _transform(model.transform, image)
    features = model.backbone(images.tensors)
    if isinstance(features, torch.Tensor):
        features = OrderedDict([("0", features)])
    proposals, _ = model.rpn(images, features)
    found = _roi_heads(model.roi_heads, features, proposals, images.image_sizes, num_classes)
    return pieces_on_boxes(found, num_classes, images.image_sizes[0], tuple(image.shape[-2:]))


def _transform(transform: torch.nn.Module, image: torch.Tensor):
    """torchvision's ``GeneralizedRCNNTransform`` of one image in eval: normalised, resized
    and padded into an ``ImageList``, with the same values.

    Its normalisation broadcasts the mean and deviation over an image whose channels are its
    innermost dimension in memory (an H×W×3 picture seen as 3×H×W), three values at a time:
    1.5 ms on a 520² image. Over rows of the H×W×3 memory against the three values repeated,
    the same subtraction and division take 0.4 ms; the result keeps the layout, so the resize
    after it runs the same way. Other transforms and layouts run as they are.
    """
    from torchvision.models.detection.image_list import ImageList
    from torchvision.models.detection.transform import GeneralizedRCNNTransform

    pixels = image.permute(1, 2, 0)
    own = GeneralizedRCNNTransform
    if type(transform).forward is not own.forward or \
            type(transform).normalize is not own.normalize or \
            not image.is_floating_point() or not pixels.is_contiguous():
        return transform([image])[0]
    h, w, c = pixels.shape
    mean, std = (torch.as_tensor(v, dtype=image.dtype, device=image.device).repeat(w)
                 for v in (transform.image_mean, transform.image_std))
    rows = torch.sub(pixels.reshape(h, w * c), mean).div_(std)
    resized, _ = transform.resize(rows.view(h, w, c).permute(2, 0, 1), None)
    batch = transform.batch_images([resized], size_divisible=transform.size_divisible)
    return ImageList(batch, [(int(resized.shape[-2]), int(resized.shape[-1]))])


def _roi_heads(heads: torch.nn.Module, features: dict, proposals: list[torch.Tensor],
               image_sizes: list[tuple[int, int]], num_classes: int) -> dict:
    """The RoI heads' eval forward on one image, with masks only for the detections shown
    (and a few more, :func:`mask_rows`); the other detections are left out.

    torchvision runs the mask head on every detection; on the 50 of a noisy 520² image, most
    below the score threshold, that is two thirds of the heads' time. The values are the
    whole batch's: on the CPU a RoI's mask logits do not depend on the other RoIs once the
    batch takes the same convolution kernels, and the sigmoid runs on a batch of the whole
    size (zeros elsewhere), as its threads split the tensor by size and compute the edges of
    their parts another way. Elsewhere (cuDNN may choose its algorithms by batch size), and
    for heads other than torchvision's own, the whole forward runs.
    """
    from torchvision.models.detection.roi_heads import RoIHeads

    device = next(iter(features.values())).device
    if type(heads).forward is not RoIHeads.forward or heads.has_keypoint() or \
            device.type != "cpu":
        return heads(features, proposals, image_sizes)[0][0]
    box_features = heads.box_head(heads.box_roi_pool(features, proposals, image_sizes))
    class_logits, box_regression = heads.box_predictor(box_features)
    boxes, scores, labels = (found[0] for found in heads.postprocess_detections(
        class_logits, box_regression, proposals, image_sizes))
    keep = (scores >= INSTANCE_SCORE_THRESHOLD) & (labels > 0) & (labels < num_classes)
    rows = mask_rows(keep)
    boxes, scores, labels = boxes[rows], scores[rows], labels[rows]
    pooled = heads.mask_roi_pool(features, [boxes], image_sizes)
    logits = heads.mask_predictor(heads.mask_head(pooled))
    whole = logits.new_zeros((len(keep), *logits.shape[1:]))
    whole[rows] = logits
    # torchvision's maskrcnn_inference: the sigmoid of every class, then each RoI's own
    masks = whole.sigmoid()[rows, labels][:, None]
    return {"boxes": boxes, "scores": scores, "labels": labels, "masks": masks}


def mask_rows(keep: torch.Tensor) -> torch.Tensor:
    """Indices, in order, of the detections to run the mask head on: those ``keep`` marks,
    and the first others, so that each gets the mask logits the whole batch would give it.

    PyTorch's CPU convolutions choose their kernels by batch size: oneDNN from 2 RoIs (one is
    too little input for it), and for 1×1 kernels on one thread from 16; within one kernel a
    RoI's values do not depend on the others. A batch of at least 2, or of 16 where the whole
    had 16, takes the whole batch's kernels. ``tests/models/test_instance_paste.py`` checks
    this against torchvision's heads, so a PyTorch that chooses otherwise fails there.
    """
    total, wanted = len(keep), int(keep.sum())
    if wanted == 0:
        return keep.nonzero()[:, 0]
    floor = 16 if total >= 16 else min(total, 2)
    extra = max(0, floor - wanted)
    keep = keep | ((~keep).cumsum(0) <= extra) & ~keep     # and the first `extra` others
    return keep.nonzero()[:, 0]


def pieces_on_boxes(found: dict, num_classes: int, input_size: tuple[int, int],
                    size: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor, list[Piece]]:
    """Scores, labels and mask pieces (float32, CPU) of the shown detections among the RoI
    heads' ``found`` (boxes in the network input's coordinates, ``input_size``; 28×28 mask
    probabilities), in score order, for an image of ``size``: :func:`detect_instances`."""
    from torchvision.models.detection.roi_heads import expand_boxes, expand_masks
    from torchvision.models.detection.transform import resize_boxes

    h, w = size
    scores, labels, index = _shown(found["scores"].float().cpu(), found["labels"].cpu(),
                                   num_classes)
    index = index.to(found["boxes"].device)
    boxes = resize_boxes(found["boxes"][index], input_size, size)
    masks, scale = expand_masks(found["masks"][index], padding=1)
    boxes = expand_boxes(boxes, scale).to(torch.int64)
    pieces = []
    for mask, (bx0, by0, bx1, by1) in zip(masks, boxes.tolist()):
        box_size = (max(by1 - by0 + 1, 1), max(bx1 - bx0 + 1, 1))
        mask = F.interpolate(mask[None], size=box_size, mode="bilinear",
                             align_corners=False)[0, 0]
        y0, y1, x0, x1 = max(by0, 0), min(by1 + 1, h), max(bx0, 0), min(bx1 + 1, w)
        pieces.append(((y0, y1, x0, x1),
                       mask[y0 - by0:y1 - by0, x0 - bx0:x1 - bx0].float().cpu()))
    return scores, labels, pieces


def paint_instances(scores: torch.Tensor, labels: torch.Tensor, pieces: list[Piece],
                    num_classes: int, size: tuple[int, int]
                    ) -> tuple[torch.Tensor, np.ndarray, list[tuple[int, float]]]:
    """:func:`semantic_from_instances` for shown detections in score order, each given by its
    mask's values on a rectangle of the image (zero everywhere else)."""
    probs, _, instances, objects = paint_maps(scores, labels, pieces, num_classes, size)
    return probs, instances, objects


def paint_maps(scores: torch.Tensor, labels: torch.Tensor, pieces: list[Piece],
               num_classes: int, size: tuple[int, int]
               ) -> tuple[torch.Tensor, np.ndarray | None, np.ndarray, list[tuple[int, float]]]:
    """:func:`paint_instances` with the labels too: the probabilities' first argmax as uint8
    (None for more than 256 classes, which uint8 cannot hold).

    Only the smallest rectangle holding every piece is painted and compared, on a contiguous
    copy: outside it no pixel has an instance or a label, and all have the probabilities of
    the background's 1 and the other classes' 0 (:func:`_normalise`). NumPy's comparisons
    and maxima, several times faster than torch's on boolean masks, give what torch's give.
    """
    h, w = size
    probs = torch.empty((num_classes, h, w), dtype=torch.float32)
    ids = np.zeros((h, w), np.uint16)
    small = num_classes <= 256
    classes = np.zeros((h, w), np.uint8) if small else None
    boxes = {i: region for i, (region, _) in enumerate(pieces)
             if region[1] > region[0] and region[3] > region[2]}
    if not boxes or num_classes < 2:
        _normalise(probs, np.zeros((num_classes, 0, 0), np.float32), (0, 0, 0, 0))
        return probs, classes, ids, []
    y0, y1 = min(b[0] for b in boxes.values()), max(b[1] for b in boxes.values())
    x0, x1 = min(b[2] for b in boxes.values()), max(b[3] for b in boxes.values())
    near = np.zeros((num_classes, y1 - y0, x1 - x0), np.float32)
    # Each pixel keeps the largest key of the pieces covering it (mask 0.5 or more): the most
    # confident piece, whose rank (span - 1 - i for piece i) is the high bits, and its class
    # the low bits. No piece: 0. Powers of two make both parts and the id bit operations.
    n, bits = len(pieces), max(1, (num_classes - 1).bit_length())
    span = 1 << n.bit_length()                       # above every id, i + 1 = span - rank
    kind = np.uint16 if span << bits <= 1 << 16 else np.uint64
    key = np.zeros(near.shape[1:], kind)
    for i, (py0, py1, px0, px1) in boxes.items():
        piece, label = pieces[i][1].numpy(), int(labels[i])
        rows, cols = slice(py0 - y0, py1 - y0), slice(px0 - x0, px1 - x0)
        plane = near[label, rows, cols]
        np.maximum(plane, piece, out=plane)
        mine = key[rows, cols]
        np.maximum(mine, np.multiply(piece >= 0.5, kind((span - 1 - i) << bits | label)),
                   out=mine)
    rank = key >> kind(bits)
    cls = key & kind((1 << bits) - 1)                # the class of each pixel's instance
    shown = [i + 1 for i, (py0, py1, px0, px1) in boxes.items()
             if (rank[py0 - y0:py1 - y0, px0 - x0:px1 - x0] == span - 1 - i).any()]
    objects = [(int(labels[k - 1]), float(scores[k - 1])) for k in shown]
    inside = ids[y0:y1, x0:x1]
    if len(shown) == n:                              # rank 0 (no instance) gives 0 too
        np.bitwise_and(kind(span) - rank, kind(span - 1), out=inside, casting="unsafe")
    else:                                            # close the gaps of hidden detections
        compact = np.zeros(span, np.uint16)
        compact[[span - k for k in shown]] = np.arange(1, len(shown) + 1)
        np.take(compact, rank.astype(np.intp), out=inside)
    np.copyto(near[0], near[1])
    for plane in near[2:]:
        np.maximum(near[0], plane, out=near[0])
    np.subtract(np.float32(1.0), near[0], out=near[0])  # 1 - the most likely class
    if objects:
        best, top = _first_max(near, np.uint8 if small else np.uint32)
        wrong = np.flatnonzero(top != cls)          # flat: several times faster than 2-D
        if len(wrong):
            near.reshape(num_classes, -1)[cls.reshape(-1)[wrong], wrong] = \
                best.reshape(-1)[wrong] + np.float32(1e-3)
    final = _normalise(probs, near, (y0, y1, x0, x1))
    if small:
        classes[y0:y1, x0:x1] = _first_max(final)[1]
    return probs, classes, ids, objects


# Up to this many classes torch's sum over them adds one class after the other at every pixel,
# whatever the tensor's shape; from 5 it adds a tensor's last few pixels in another order, and
# from 17 all of them in groups of 16, so that the sum depends on where the pixel lies.
_SEQUENTIAL_SUM = 4


def _normalise(probs: torch.Tensor, near: np.ndarray, box: tuple[int, int, int, int]
               ) -> np.ndarray:
    """Fill ``probs`` (C×H×W) with the clamped and normalised values of ``near`` (C×h×w,
    changed) on ``box`` (y0, y1, x0, x1) and those of the background's 1 and the other
    classes' 0 elsewhere, as the whole-image algorithm computes them; the box's values.

    Up to ``_SEQUENTIAL_SUM`` classes the box and the constant rest are summed alone, one
    class after the other as torch does; with more classes, on the whole image by torch.
    """
    y0, y1, x0, x1 = box
    every = probs.numpy()
    np.maximum(near, np.float32(1e-6), out=near)     # torch's clamp_(min=1e-6)
    rest = np.full((len(near), 1, 1), np.float32(1e-6))
    rest[0] = 1.0
    if len(near) > _SEQUENTIAL_SUM:
        _fill_outside(every, box, rest[:, 0, 0])
        every[:, y0:y1, x0:x1] = near
        probs.div_(probs.sum(dim=0, keepdim=True))
        return every[:, y0:y1, x0:x1]
    for values in (near, rest):
        total = values[0].copy()
        for plane in values[1:]:
            np.add(total, plane, out=total)
        np.divide(values, total, out=values)
    _fill_outside(every, box, rest[:, 0, 0])
    every[:, y0:y1, x0:x1] = near
    return near


def _fill_outside(probs: np.ndarray, box: tuple[int, int, int, int], values: np.ndarray
                  ) -> None:
    """Set every pixel of ``probs`` outside ``box`` (y0, y1, x0, x1) to ``values``, one a
    class (those of all classes but the background are equal)."""
    y0, y1, x0, x1 = box
    parts = [(slice(None, y0), slice(None)), (slice(y1, None), slice(None)),
             (slice(y0, y1), slice(None, x0)), (slice(y0, y1), slice(x1, None))]
    for rows, cols in parts:
        probs[0, rows, cols] = values[0]
        probs[1:, rows, cols] = values[-1]


def _shown(scores: torch.Tensor, labels: torch.Tensor, num_classes: int
           ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Scores, labels and input indices of the detections shown, most confident first (ties
    in input order)."""
    keep = (scores >= INSTANCE_SCORE_THRESHOLD) & (labels > 0) & (labels < num_classes)
    index = keep.nonzero()[:, 0]
    index = index[torch.argsort(scores[index], descending=True, stable=True)]
    return scores[index], labels[index], index


def _first_max(probs: np.ndarray, dtype=np.uint8) -> tuple[np.ndarray, np.ndarray]:
    """The largest value over axis 0 and its first index (as ``dtype``, unsigned and large
    enough for it), as ``max`` and ``argmax`` give them.

    One class plane at a time: ``argmax`` over the outermost axis walks memory with a stride of
    H×W. The index is raised by a maximum rather than a masked write, which is several times
    slower: a class is taken only where it beats every lower one, so it is above the index so
    far.
    """
    best = probs[0].copy()
    top = np.zeros(best.shape, dtype)
    better = np.empty(best.shape, bool)
    for c in range(1, len(probs)):
        np.greater(probs[c], best, out=better)      # strict: ties keep the lower class
        np.maximum(top, np.multiply(better, top.dtype.type(c)), out=top)
        np.maximum(best, probs[c], out=best)
    return best, top


def _support(mask: torch.Tensor) -> tuple[int, int, int, int]:
    """(y0, y1, x0, x1): the smallest rectangle outside which ``mask`` has no value above 0.

    Nothing else can change the maps: a class's probability starts at 0 and an instance needs
    0.5. A NaN counts as a value, as it would poison the class probability.
    """
    rows = (~(mask.amax(dim=1) <= 0)).nonzero()[:, 0]
    if len(rows) == 0:
        return 0, 0, 0, 0
    cols = (~(mask.amax(dim=0) <= 0)).nonzero()[:, 0]
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
