"""Instance matching: one to one, same class, mask IoU at least the threshold, rank order."""

import numpy as np
import pytest

from segstudio.core.instance_metrics import InstanceCounts, match_instances, object_classes


def _scene():
    """Three true objects: two circles (class 1) side by side and a square (class 2)."""
    ids = np.zeros((40, 60), np.uint8)
    labels = np.zeros((40, 60), np.uint8)
    ids[5:15, 5:15], ids[5:15, 15:25], ids[25:35, 30:40] = 1, 2, 3
    labels[ids == 1] = labels[ids == 2] = 1
    labels[ids == 3] = 2
    return ids, labels


def test_a_perfect_detector_finds_every_object_once():
    ids, labels = _scene()
    c = match_instances(ids, labels, ids, labels)
    assert (c.tp, c.fp, c.fn) == (3, 0, 0)
    assert c.to_dict(["bg", "circle", "square"])["per_class"]["circle"]["recall"] == 1.0


def test_two_objects_merged_into_one_detection_count_as_one_found_one_missed():
    ids, labels = _scene()
    merged = ids.copy()
    merged[merged == 2] = 1                          # the class map alone cannot tell them apart
    c = match_instances(ids, labels, merged, labels)
    # The merged mask covers 200 px, each circle 100: IoU 0.5 with each, so it matches one.
    assert (c.tp, c.fp, c.fn) == (2, 0, 1)
    d = c.to_dict()
    assert d["precision"] == 1.0 and d["recall"] == pytest.approx(2 / 3)


def test_wrong_class_or_poor_overlap_is_a_false_positive_and_a_miss():
    ids, labels = _scene()
    wrong = labels.copy()
    wrong[ids == 3] = 1                              # the square called a circle
    c = match_instances(ids, labels, ids, wrong)
    assert (c.tp, c.fp, c.fn) == (2, 1, 1)
    assert c.per_class == {1: [2, 1, 0], 2: [0, 0, 1]}
    shifted = np.zeros_like(ids)
    shifted[25:35, 36:46] = 3                        # 40 px of 160 in the union: IoU 0.25
    only_square = np.where(ids == 3, ids, 0)
    c = match_instances(only_square, labels, shifted, np.where(shifted > 0, 2, 0))
    assert (c.tp, c.fp, c.fn) == (0, 1, 1)


def test_duplicates_match_once_in_rank_order_and_void_is_ignored():
    ids, labels = _scene()
    square = np.where(ids == 3, ids, 0)
    pred = np.zeros_like(ids)
    pred[25:35, 30:35] = 1                           # rank 1: the left half (IoU 0.5)
    pred[25:35, 35:40] = 2                           # rank 2: the right half (IoU 0.5 too)
    pred_labels = np.where(pred > 0, 2, 0).astype(np.uint8)
    c = match_instances(square, labels, pred, pred_labels)
    assert (c.tp, c.fp, c.fn) == (1, 1, 0)           # the square is found once, by rank 1
    void = labels.copy()
    void[0:20, 0:30] = 255                           # the circles are void in the ground truth
    c = match_instances(ids, void, ids, labels)
    assert (c.tp, c.fp, c.fn) == (1, 0, 0)           # predictions there are neither right nor wrong


def test_object_classes_take_the_majority_and_skip_background():
    ids, labels = _scene()
    labels[5:7, 5:15] = 2                            # a sliver of another class under object 1
    ids[0, 0] = 4                                    # an "object" on background
    assert object_classes(ids, labels) == {1: 1, 2: 1, 3: 2}


def test_counts_add_up_over_images_and_sizes_must_agree():
    ids, labels = _scene()
    total = InstanceCounts()
    for _ in range(2):
        total.add(match_instances(ids, labels, ids, labels))
    assert (total.tp, total.per_class[1]) == (6, [4, 0, 0])
    with pytest.raises(ValueError, match="differ in size"):
        match_instances(ids, labels, ids[:, :10], labels[:, :10])
