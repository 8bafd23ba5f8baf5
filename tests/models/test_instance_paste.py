"""Pasting Mask R-CNN detections on their boxes gives exactly what pasting every detection onto
a whole-image mask gave: the same class probabilities, instance ids, classes and scores."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torchvision.models.detection.roi_heads import paste_masks_in_image
from torchvision.models.detection.transform import resize_boxes

from segstudio.models.checkpoint import load_checkpoint
from segstudio.models.engine import Predictor
from segstudio.models.instance_paste import (INSTANCE_SCORE_THRESHOLD, mask_rows,
                                             paint_instances, paint_maps, pieces_on_boxes,
                                             semantic_from_instances)

ROOT = Path(__file__).resolve().parents[2]
SHAPES_MODEL = ROOT / "resources" / "weights" / "shapes_maskrcnn_lite.pt"


def reference(detections: dict, num_classes: int, size: tuple[int, int]):
    """The whole-image algorithm, one full plane per detection: what the maps must equal."""
    h, w = size
    keep = (detections["scores"] >= INSTANCE_SCORE_THRESHOLD) & \
        (detections["labels"] > 0) & (detections["labels"] < num_classes)
    scores, labels = detections["scores"][keep], detections["labels"][keep]
    order = torch.argsort(scores, descending=True, stable=True)
    scores, labels = scores[order], labels[order]
    masks = detections["masks"][keep][order].reshape(-1, h, w)
    probs = torch.zeros((num_classes, h, w), dtype=torch.float32)
    ids = torch.zeros((h, w), dtype=torch.int64)
    for i in reversed(range(len(scores))):
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
        cls = torch.tensor([0] + [c for c, _ in objects])[ids]
        wrong = probs.argmax(dim=0) != cls
        if wrong.any():
            raised = torch.where(wrong, probs.amax(dim=0) + 1e-3,
                                 probs.gather(0, cls[None])[0])
            probs.scatter_(0, cls[None], raised[None])
    probs.clamp_(min=1e-6)
    instances = ids.to(torch.int32).numpy().astype(np.uint16)
    return probs.div_(probs.sum(dim=0, keepdim=True)), instances, objects


def assert_same(got, want):
    (probs, ids, objects), (ref_probs, ref_ids, ref_objects) = got, want
    assert torch.equal(probs, ref_probs)               # bit for bit, not merely close
    assert ids.dtype == ref_ids.dtype == np.uint16
    np.testing.assert_array_equal(ids, ref_ids)
    assert objects == ref_objects


def _random_detections(seed: int, n: int, num_classes: int, size: tuple[int, int]) -> dict:
    """Overlapping rectangles and blobs, scores with ties and at the threshold, labels out of
    range, boxes that say nothing about where the masks are."""
    g = torch.Generator().manual_seed(seed)
    h, w = size
    masks = torch.zeros(n, 1, h, w)
    for i in range(n):
        y0 = int(torch.randint(0, h, (1,), generator=g))
        x0 = int(torch.randint(0, w, (1,), generator=g))
        y1 = y0 + int(torch.randint(1, h, (1,), generator=g))
        x1 = x0 + int(torch.randint(1, w, (1,), generator=g))
        kind = i % 3
        if kind == 0:      # a flat mask, often exactly 0.5
            masks[i, 0, y0:y1, x0:x1] = float(torch.tensor([0.5, 0.7, 0.3, 1.0])[i % 4])
        elif kind == 1:    # a soft blob
            masks[i, 0, y0:y1, x0:x1] = torch.rand(min(y1, h) - y0, min(x1, w) - x0,
                                                   generator=g)
        else:              # two separate pieces, one touching the border
            masks[i, 0, y0:y1, x0:x1] = 0.8
            masks[i, 0, -2:, :3] = 0.6
    levels = torch.tensor([0.3, 0.49, 0.5, 0.5, 0.7, 0.7, 0.9, 0.99])
    scores = levels[torch.randint(0, len(levels), (n,), generator=g)]
    labels = torch.randint(0, num_classes + 1, (n,), generator=g)
    boxes = torch.rand(n, 4, generator=g) * 5           # unrelated to the masks
    return {"boxes": boxes, "labels": labels, "scores": scores, "masks": masks}


@pytest.mark.parametrize("seed", range(12))
def test_whole_image_masks_give_the_reference_maps_exactly(seed):
    size = (37, 53)
    det = _random_detections(seed, n=3 + 2 * seed, num_classes=4, size=size)
    assert_same(semantic_from_instances(det, 4, size), reference(det, 4, size))


def test_masks_outside_their_boxes_still_count():
    masks = torch.zeros(2, 1, 20, 30)
    masks[0, 0, 15:20, 20:30] = 0.9
    masks[1, 0, 0:3, 0:3] = 0.4                        # below 0.5: probability only
    det = {"boxes": torch.tensor([[0.0, 0.0, 4.0, 4.0]] * 2), "labels": torch.tensor([1, 2]),
           "scores": torch.tensor([0.9, 0.8]), "masks": masks}
    got = semantic_from_instances(det, 3, (20, 30))
    assert_same(got, reference(det, 3, (20, 30)))
    assert got[1][17, 25] == 1 and got[1][1, 1] == 0 and got[0][2, 1, 1] > got[0][2, 10, 10]


@pytest.mark.parametrize("scores, labels", [([], []), ([0.2, 0.49], [1, 2]),
                                            ([0.9, 0.8], [0, 3])])
def test_no_shown_detection_gives_background_everywhere(scores, labels):
    n = len(scores)
    det = {"boxes": torch.zeros(n, 4), "labels": torch.tensor(labels, dtype=torch.int64),
           "scores": torch.tensor(scores, dtype=torch.float32),
           "masks": torch.full((n, 1, 12, 9), 0.9)}
    got = semantic_from_instances(det, 3, (12, 9))
    assert_same(got, reference(det, 3, (12, 9)))
    assert got[2] == [] and not got[1].any() and (got[0].argmax(0) == 0).all()


def test_a_detection_hidden_everywhere_leaves_no_gap_in_the_ids():
    masks = torch.zeros(3, 1, 10, 10)
    masks[0, 0, 0:6, 0:6] = 0.9
    masks[1, 0, 1:3, 1:3] = 0.9                        # under detection 0 everywhere
    masks[2, 0, 7:10, 7:10] = 0.9
    det = {"boxes": torch.zeros(3, 4), "labels": torch.tensor([1, 2, 2]),
           "scores": torch.tensor([0.9, 0.8, 0.7]), "masks": masks}
    got = semantic_from_instances(det, 3, (10, 10))
    assert_same(got, reference(det, 3, (10, 10)))
    assert set(np.unique(got[1]).tolist()) == {0, 1, 2} and got[2] == [(1, 0.8999999761581421),
                                                                       (2, 0.699999988079071)]


@pytest.mark.parametrize("num_classes, n, seed", [(2, 9, 1), (5, 12, 7), (21, 30, 3),
                                                  (91, 40, 4), (300, 20, 6), (300, 200, 5)])
def test_any_number_of_classes_gives_the_reference_maps_exactly(num_classes, n, seed):
    """torch sums 16 classes or more in groups, and a tensor's last few pixels in another order
    from 5 classes on, so the sum must run as on the whole image; 300 classes and 200
    detections need instance keys wider than 16 bits, and 300 classes no uint8 labels."""
    size = (37, 53)
    det = _random_detections(seed, n, num_classes, size)
    assert_same(semantic_from_instances(det, num_classes, size),
                reference(det, num_classes, size))


@pytest.mark.parametrize("num_classes", [5, 8, 16])
def test_the_last_pixels_are_summed_as_torch_sums_them(num_classes):
    """From 5 classes torch adds the last few pixels of a tensor in another order than the
    rest: detections of every class with uneven values over the bottom-right corner."""
    size, n = (37, 53), 3 * num_classes
    g = torch.Generator().manual_seed(num_classes)
    masks = torch.zeros(n, 1, *size)
    masks[:, 0, 20:, 30:] = torch.rand(n, 17, 23, generator=g) ** 3
    det = {"boxes": torch.zeros(n, 4), "scores": torch.linspace(0.99, 0.6, n),
           "labels": torch.arange(n) % (num_classes - 1) + 1, "masks": masks}
    assert_same(semantic_from_instances(det, num_classes, size),
                reference(det, num_classes, size))


def _random_found(seed: int, n: int, input_size, num_classes: int = 4) -> dict:
    """RoI heads' detections: boxes of every size and across the border, 28×28 masks."""
    g = torch.Generator().manual_seed(seed)
    ih, iw = input_size
    corner = torch.rand(n, 2, generator=g) * torch.tensor([iw, ih], dtype=torch.float32) - 4
    extent = torch.rand(n, 2, generator=g) * 40 + torch.rand(n, 1, generator=g) * 2
    boxes = torch.cat([corner, corner + extent], dim=1)
    boxes = torch.minimum(boxes.clamp(min=0), torch.tensor([iw, ih, iw, ih], dtype=torch.float32))
    levels = torch.tensor([0.2, 0.5, 0.5, 0.6, 0.8, 0.8, 0.97])
    return {"boxes": boxes,
            "scores": levels[torch.randint(0, len(levels), (n,), generator=g)],
            "labels": torch.randint(0, num_classes, (n,), generator=g),
            "masks": torch.rand(n, 1, 28, 28, generator=g) ** 2}


@pytest.mark.parametrize("seed", range(6))
def test_painted_labels_are_the_first_most_likely_class(seed):
    input_size, size = (64, 80), (83, 101)
    found = _random_found(100 + seed, 8 + 4 * seed, input_size)
    probs, labels, ids, objects = paint_maps(*pieces_on_boxes(found, 4, input_size, size), 4,
                                             size)
    assert labels.dtype == np.uint8 and objects
    np.testing.assert_array_equal(labels, probs.numpy().argmax(0))
    assert_same((probs, ids, objects), reference(_pasted(found, input_size, size), 4, size))


def test_labels_follow_ties_that_the_normalisation_makes():
    """Class 2's instance is a float above class 1 there, and dividing by the sum makes them
    equal: the label is then class 1, the first most likely, as argmax says."""
    v1, v2 = np.float32(0.9000001), np.float32(0.90000015)
    assert v1 < v2
    pieces = [((0, 2, 0, 2), torch.full((2, 2), float(v2))),
              ((0, 2, 0, 2), torch.full((2, 2), float(v1))),
              ((0, 2, 0, 2), torch.full((2, 2), 0.85))]
    probs, labels, ids, objects = paint_maps(torch.tensor([0.9, 0.8, 0.7]),
                                             torch.tensor([2, 1, 3]), pieces, 4, (3, 3))
    assert probs[1, 0, 0] == probs[2, 0, 0] and ids[0, 0] == 1 and objects[0][0] == 2
    assert labels[0, 0] == 1
    np.testing.assert_array_equal(labels, probs.numpy().argmax(0))


def test_more_classes_than_uint8_holds_give_no_labels():
    pieces = [((0, 2, 0, 2), torch.full((2, 2), 0.9))]
    probs, labels, ids, objects = paint_maps(torch.tensor([0.9]), torch.tensor([280]), pieces,
                                             300, (3, 3))
    assert labels is None and objects == [(280, pytest.approx(0.9))]
    assert probs.shape == (300, 3, 3) and ids[0, 0] == 1 and probs[:, 0, 0].argmax() == 280


def _pasted(found: dict, input_size, size) -> dict:
    """What torchvision's forward returns: boxes in the image, every mask on a whole image."""
    boxes = resize_boxes(found["boxes"], input_size, size)
    return {"boxes": boxes, "labels": found["labels"], "scores": found["scores"],
            "masks": paste_masks_in_image(found["masks"], boxes, size)}


@pytest.mark.parametrize("seed", range(8))
def test_pasting_on_boxes_equals_torchvisions_whole_image_paste(seed):
    """Boxes of every size, across the image border, ties and scores at the threshold."""
    g = torch.Generator().manual_seed(seed)
    n, input_size, size = 6 + 3 * seed, (64, 80), (83, 101)
    corner = torch.rand(n, 2, generator=g) * torch.tensor([80.0, 64.0]) - 4
    extent = torch.rand(n, 2, generator=g) * 40 + torch.rand(n, 1, generator=g) * 2
    boxes = torch.cat([corner, corner + extent], dim=1)
    boxes = torch.minimum(boxes.clamp(min=0), torch.tensor([80.0, 64.0, 80.0, 64.0]))
    levels = torch.tensor([0.2, 0.5, 0.5, 0.6, 0.8, 0.8, 0.97])
    found = {"boxes": boxes,
             "scores": levels[torch.randint(0, len(levels), (n,), generator=g)],
             "labels": torch.randint(0, 4, (n,), generator=g),
             "masks": torch.rand(n, 1, 28, 28, generator=g) ** 2}
    got = paint_instances(*pieces_on_boxes(found, 4, input_size, size), 4, size)
    want = reference(_pasted(found, input_size, size), 4, size)
    assert_same(got, want)
    assert got[2]                                       # something was shown


def _bundled_images() -> list[np.ndarray]:
    from PIL import Image

    from segstudio.train.synth import generate

    demo = np.asarray(Image.open(ROOT / "resources" / "demo" / "shapes_01.png").convert("RGB"))
    scenes = [s.image for s in generate("shapes", 3, size=200, seed=5)]
    noise = np.random.default_rng(0).integers(0, 256, (150, 170, 3), dtype=np.uint8)
    return [demo, *scenes, noise]


@pytest.mark.slow
def test_bundled_mask_rcnn_prediction_equals_the_whole_image_paste():
    """The Predictor's maps, objects and probabilities are those of torchvision's own output
    run through the whole-image algorithm, on real detections of the bundled model."""
    torch.manual_seed(0)
    model, meta = load_checkpoint(SHAPES_MODEL, device="cpu")
    predictor = Predictor(model.eval(), meta, device="cpu", precision="fp32")
    shown = below = 0
    for rgb in _bundled_images():
        x = torch.from_numpy(rgb.copy()).permute(2, 0, 1).float().div_(255.0)
        with torch.inference_mode():
            det = model([x])[0]
        probs, ids, objects = reference(det, len(meta.classes), rgb.shape[:2])
        pred = predictor.predict(rgb)
        np.testing.assert_array_equal(pred.probabilities, probs.numpy())
        np.testing.assert_array_equal(pred.instances, ids)
        assert pred.objects == objects
        np.testing.assert_array_equal(pred.labels, probs.numpy().argmax(0))
        shown += len(objects)
        below += int((det["scores"] < INSTANCE_SCORE_THRESHOLD).sum())
    assert shown >= 5 and below >= 5


@pytest.mark.slow
def test_bundled_mask_rcnn_in_bf16_equals_the_whole_image_paste_under_autocast():
    """Under autocast the pieces are resized in the same precision torchvision's paste ran in,
    so a bf16 Predictor still gives what the whole-image paste gives under the same autocast."""
    model, meta = load_checkpoint(SHAPES_MODEL, device="cpu")
    predictor = Predictor(model.eval(), meta, device="cpu", precision="bf16")
    rgb = _bundled_images()[0]
    x = torch.from_numpy(rgb.copy()).permute(2, 0, 1).float().div_(255.0)
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        det = model([x])[0]
    det = {k: v.float() if v.is_floating_point() else v for k, v in det.items()}
    probs, ids, objects = reference(det, len(meta.classes), rgb.shape[:2])
    pred = predictor.predict(rgb)
    assert pred.precision == "bf16" and objects
    np.testing.assert_array_equal(pred.probabilities, probs.numpy())
    np.testing.assert_array_equal(pred.instances, ids)
    assert pred.objects == objects


def test_mask_rows_are_the_kept_ones_and_the_first_others_up_to_a_batch_of_2_or_16():
    def rows(flags):
        return mask_rows(torch.tensor(flags, dtype=torch.bool)).tolist()

    assert rows([0, 0, 0]) == [] and rows([1]) == [0] and rows([0, 1, 0]) == [0, 1]
    assert rows([1, 1, 0, 1]) == [0, 1, 3]
    assert rows([0] * 14 + [1]) == [0, 14]
    assert rows([0] * 16 + [1]) == list(range(15)) + [16]
    assert rows([1] * 20) == list(range(20))


@pytest.mark.slow
@pytest.mark.parametrize("threads", [1, 3])
def test_masks_on_the_shown_rows_equal_torchvisions_whole_batch(threads, monkeypatch):
    """The RoI heads with the mask head on :func:`mask_rows` only give exactly torchvision's
    boxes, scores, labels and masks there: for 1 to 30 detections, across the batch sizes
    where PyTorch changes kernels, with 1 to all of them shown, on one thread and on three
    (whose sigmoid splits the tensor by its size)."""
    from segstudio.models import instance_paste

    kept_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        model, meta = load_checkpoint(SHAPES_MODEL, device="cpu")
        heads = model.eval().roi_heads
        rgb = np.random.default_rng(0).integers(0, 256, (520, 520, 3), dtype=np.uint8)
        with torch.inference_mode():
            x = torch.from_numpy(rgb).permute(2, 0, 1).float().div_(255.0)
            images, _ = model.transform([x])
            features = model.backbone(images.tensors)
            proposals, _ = model.rpn(images, features)
            sizes, smaller = images.image_sizes, 0
            for total in (1, 2, 3, 15, 16, 17, 30):
                heads.detections_per_img = total
                whole = heads(features, proposals, sizes)[0][0]
                assert len(whole["scores"]) == total
                for wanted in sorted({1, min(2, total), total // 2, total - 1, total} - {0}):
                    threshold = float(whole["scores"][wanted - 1])
                    monkeypatch.setattr(instance_paste, "INSTANCE_SCORE_THRESHOLD", threshold)
                    found = instance_paste._roi_heads(heads, features, proposals, sizes,
                                                      len(meta.classes))
                    rows = mask_rows(whole["scores"] >= threshold)
                    smaller += len(rows) < total
                    for key in ("boxes", "scores", "labels", "masks"):
                        assert torch.equal(found[key], whole[key][rows]), (total, wanted, key)
        assert smaller >= 10                           # most of them ran on fewer rows
    finally:
        torch.set_num_threads(kept_threads)


@pytest.mark.parametrize("size", [(520, 520), (37, 300), (301, 17)])
def test_the_fast_normalisation_gives_torchvisions_transform_exactly(size):
    """An image as the Predictor makes it (H×W×3 memory) and a planar one (the transform's own
    path): the same batch, sizes and memory layout as torchvision's transform."""
    from segstudio.models.instance_paste import _transform

    model, _ = load_checkpoint(SHAPES_MODEL, device="cpu")
    rgb = np.random.default_rng(size[0]).integers(0, 256, (*size, 3), dtype=np.uint8)
    pixels = torch.from_numpy(rgb).permute(2, 0, 1).float().div_(255.0)
    for image in (pixels, pixels.contiguous()):
        with torch.inference_mode():
            got, want = _transform(model.eval().transform, image), model.transform([image])[0]
        assert torch.equal(got.tensors, want.tensors)
        assert got.tensors.stride() == want.tensors.stride()
        assert got.image_sizes == want.image_sizes
