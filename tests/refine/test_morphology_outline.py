"""Keep the largest region, smoothing (median / opening / closing) and margins of one class."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from segstudio.refine.morphology import (MorphologyError, keep_largest_region, margin,
                                         smooth_class)


def u8(rows) -> np.ndarray:
    return np.array(rows, dtype=np.uint8)


def test_keep_largest_region_gives_the_others_to_their_surroundings():
    labels = u8([[1, 1, 1, 0, 0, 0],
                 [1, 1, 1, 0, 2, 2],
                 [0, 0, 0, 0, 2, 1],
                 [2, 2, 0, 0, 2, 2]])
    out = keep_largest_region(labels, 1)
    assert (out == u8([[1, 1, 1, 0, 0, 0],
                       [1, 1, 1, 0, 2, 2],
                       [0, 0, 0, 0, 2, 2],
                       [2, 2, 0, 0, 2, 2]])).all()
    assert labels[2, 5] == 1                         # the input is left alone


def test_keep_largest_region_with_one_region_or_none_changes_nothing():
    labels = u8([[1, 1, 0], [0, 0, 0]])
    assert (keep_largest_region(labels, 1) == labels).all()
    assert (keep_largest_region(labels, 3) == labels).all()


def test_keep_largest_region_counts_diagonal_neighbours_with_8_connectivity():
    labels = u8([[1, 0, 0], [0, 1, 0], [0, 0, 0]])
    assert (keep_largest_region(labels, 1, connectivity=8) == labels).all()
    assert keep_largest_region(labels, 1, connectivity=4).sum() == 1


def _square_with_defects():
    labels = np.zeros((40, 40), np.uint8)
    labels[10:30, 10:30] = 1
    labels[19:21, 8:10] = 1           # a 2-px spur on the left
    labels[15, 20] = 0                # a one-pixel pinhole
    labels[5, 35] = 1                 # a speck
    return labels


@pytest.mark.parametrize("method", ["median", "opening"])
def test_median_and_opening_remove_specks_and_spurs(method):
    out = smooth_class(_square_with_defects(), 1, method, 5)
    assert out[5, 35] == 0 and not out[19:21, 8].any()       # the spur's tip goes
    assert (out[12:28, 12:28] == 1).sum() >= 16 * 16 - 1
    assert set(np.unique(out)) == {0, 1}


def test_median_and_closing_fill_a_pinhole():
    for method in ("median", "closing"):
        assert smooth_class(_square_with_defects(), 1, method, 5)[15, 20] == 1


def test_pixels_removed_by_smoothing_take_the_nearest_other_class():
    labels = np.zeros((30, 30), np.uint8)
    labels[:, 15:] = 2
    labels[5:25, 5:25] = 1
    labels[14, 25:27] = 1                         # a spur into class 2
    labels[14, 3:5] = 1                           # a spur into class 0
    out = smooth_class(labels, 1, "opening", 5)
    assert (out[14, 25:27] == 2).all() and (out[14, 3:5] == 0).all()


def test_margin_grows_and_shrinks_by_euclidean_distance():
    labels = np.zeros((21, 21), np.uint8)
    labels[10, 10] = 1
    grown = margin(labels, 1, 3)
    yy, xx = np.mgrid[0:21, 0:21]
    assert ((grown == 1) == ((yy - 10) ** 2 + (xx - 10) ** 2 <= 9)).all()
    back = margin(grown, 1, -3)
    assert (back == 1).sum() == 1 and back[10, 10] == 1


def test_shrinking_gives_pixels_to_the_nearest_other_class_and_not_to_the_border():
    labels = np.zeros((20, 20), np.uint8)
    labels[:, :10] = 1
    labels[:, 10:] = 2
    out = margin(labels, 1, -2)
    assert (out[:, :8] == 1).all() and (out[:, 8:] == 2).all()    # the image edge stays


def test_margin_grows_over_other_classes_and_void():
    labels = u8([[0, 1, 255, 3, 3]])
    assert (margin(labels, 1, 2) == u8([[1, 1, 1, 1, 3]])).all()


@pytest.mark.parametrize("call, message", [
    (lambda m: smooth_class(m, 1, "blur", 5), "one of median"),
    (lambda m: smooth_class(m, 1, "median", 4), "odd"),
    (lambda m: smooth_class(m, 1, "median", 1), "odd"),
    (lambda m: margin(m, 1, 1.5), "whole number"),
    (lambda m: margin(m, 4, 1), "no pixels"),
    (lambda m: keep_largest_region(m, 255), "class index"),
])
def test_bad_arguments_are_clear_errors(call, message):
    with pytest.raises(MorphologyError, match=message):
        call(u8([[0, 1], [1, 1]]))


def test_smoothing_a_class_that_covers_everything_keeps_it():
    labels = np.ones((9, 9), np.uint8)
    for method in ("median", "opening", "closing"):
        assert (smooth_class(labels, 1, method, 3) == 1).all()
    assert (margin(labels, 1, -2) == 1).all()


def test_large_kernels_and_maps_work():
    labels = np.zeros((600, 800), np.uint8)
    cv2.circle(labels, (400, 300), 200, 1, -1)
    out = smooth_class(labels, 1, "median", 31)
    assert abs(int((out == 1).sum()) - int((labels == 1).sum())) < 0.01 * (labels == 1).sum()


@settings(max_examples=120, deadline=None)
@given(labels=arrays(np.uint8, st.tuples(st.integers(1, 20), st.integers(1, 20)),
                     elements=st.sampled_from([0, 1, 2, 255])),
       method=st.sampled_from(["median", "opening", "closing"]), size=st.sampled_from([3, 5]),
       pixels=st.integers(-4, 4))
def test_clean_ups_only_move_pixels_between_classes_already_there(labels, method, size, pixels):
    present = set(np.unique(labels)) | {1}
    count = cv2.connectedComponents((labels == 1).view(np.uint8), connectivity=8)[0] - 1
    largest = keep_largest_region(labels, 1)
    assert cv2.connectedComponents((largest == 1).view(np.uint8), connectivity=8)[0] - 1 \
        == min(count, 1)
    outputs = [largest, smooth_class(labels, 1, method, size)]
    if (labels == 1).any():
        grown = margin(labels, 1, pixels)
        outputs.append(grown)
        inside, after = labels == 1, grown == 1
        assert (inside <= after).all() if pixels >= 0 else (after <= inside).all()
    for out in outputs:
        assert out.shape == labels.shape and set(np.unique(out)) <= present
