"""Island removal and hole filling, checked against exact expected maps and a slow reference."""

from __future__ import annotations

from collections import deque

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from segstudio.refine.morphology import MorphologyError, fill_holes, remove_islands

A = np.array


def u8(rows) -> np.ndarray:
    return A(rows, dtype=np.uint8)


def test_an_island_takes_the_majority_class_around_it():
    labels = u8([[0, 0, 0, 2, 2],
                 [0, 1, 0, 2, 2],
                 [0, 0, 2, 2, 2]])
    # The 1 touches five 0s and three 2s.
    assert (remove_islands(labels, 1, min_size=2) == u8([[0, 0, 0, 2, 2],
                                                         [0, 0, 0, 2, 2],
                                                         [0, 0, 2, 2, 2]])).all()


def test_components_of_exactly_min_size_are_kept():
    labels = u8([[1, 1, 0, 0, 0],
                 [0, 0, 0, 0, 1],
                 [0, 0, 0, 0, 0]])
    assert (remove_islands(labels, 1, min_size=2) == u8([[1, 1, 0, 0, 0],
                                                         [0, 0, 0, 0, 0],
                                                         [0, 0, 0, 0, 0]])).all()


def test_connectivity_decides_whether_diagonal_pixels_are_one_island():
    labels = u8([[1, 0, 0],
                 [0, 1, 0],
                 [0, 0, 3]])
    # Joined by the diagonal, two pixels make one island of size 2: kept.
    assert (remove_islands(labels, 1, min_size=2, connectivity=8) == labels).all()
    # Apart, each is an island of size 1; the centre one touches four 0s.
    assert (remove_islands(labels, 1, min_size=2, connectivity=4) == u8([[0, 0, 0],
                                                                         [0, 0, 0],
                                                                         [0, 0, 3]])).all()


def test_ties_go_to_the_lower_class_and_void_only_wins_a_clear_majority():
    tie = u8([[2, 2, 2],
              [2, 1, 3],
              [3, 3, 3]])
    # Neighbours: 2 ×4 and 3 ×4, a tie.
    assert remove_islands(tie, 1, min_size=2)[1, 1] == 2
    in_void = u8([[255, 255, 255],
                  [255, 1, 255],
                  [0, 255, 255]])
    assert remove_islands(in_void, 1, min_size=2)[1, 1] == 255


def test_fill_with_a_fixed_class_and_input_left_unchanged():
    labels = u8([[1, 0, 0, 0],
                 [0, 0, 1, 1],
                 [0, 0, 1, 1]])
    original = labels.copy()
    assert (remove_islands(labels, 1, min_size=3, fill_with=255) == u8([[255, 0, 0, 0],
                                                                        [0, 0, 1, 1],
                                                                        [0, 0, 1, 1]])).all()
    assert (labels == original).all()


def test_a_class_covering_the_whole_map_has_no_neighbours_and_stays():
    labels = np.full((2, 2), 4, np.uint8)
    assert (remove_islands(labels, 4, min_size=10) == labels).all()


def test_enclosed_holes_of_any_classes_are_filled_but_regions_at_the_border_are_not():
    labels = u8([[1, 1, 1, 1, 0],
                 [1, 0, 2, 1, 0],
                 [1, 255, 1, 1, 0],
                 [1, 1, 1, 0, 0]])
    assert (fill_holes(labels, 1) == u8([[1, 1, 1, 1, 0],
                                         [1, 1, 1, 1, 0],
                                         [1, 1, 1, 1, 0],
                                         [1, 1, 1, 0, 0]])).all()


def test_max_size_limits_which_holes_are_filled():
    labels = u8([[1, 1, 1, 1, 1, 1, 1],
                 [1, 0, 1, 2, 2, 2, 1],
                 [1, 1, 1, 2, 2, 2, 1],
                 [1, 1, 1, 1, 1, 1, 1]])
    assert (fill_holes(labels, 1, max_size=5) == u8([[1, 1, 1, 1, 1, 1, 1],
                                                     [1, 1, 1, 2, 2, 2, 1],
                                                     [1, 1, 1, 2, 2, 2, 1],
                                                     [1, 1, 1, 1, 1, 1, 1]])).all()
    assert (fill_holes(labels, 1) == 1).all()


def test_a_diagonal_gap_closes_a_hole_only_for_an_eight_connected_class():
    labels = u8([[1, 1, 1, 1, 1],
                 [1, 0, 0, 1, 1],
                 [1, 0, 0, 1, 1],
                 [1, 1, 1, 0, 1],
                 [1, 1, 1, 0, 1]])
    filled = labels.copy()
    filled[1:3, 1:3] = 1
    assert (fill_holes(labels, 1, connectivity=8) == filled).all()
    assert (fill_holes(labels, 1, connectivity=4) == labels).all()


@pytest.mark.parametrize("call, words", [
    (lambda: remove_islands(np.zeros((3, 3), np.int32), 1, 2), "uint8"),
    (lambda: remove_islands(np.zeros((3, 3, 1), np.uint8), 1, 2), "H×W"),
    (lambda: remove_islands(np.zeros((3, 3), np.uint8), 255, 2), "class index"),
    (lambda: remove_islands(np.zeros((3, 3), np.uint8), 1, 0), "min_size"),
    (lambda: remove_islands(np.zeros((3, 3), np.uint8), 1, 2, connectivity=6), "connectivity"),
    (lambda: remove_islands(np.zeros((3, 3), np.uint8), 1, 2, fill_with="nearest"), "fill_with"),
    (lambda: remove_islands(np.zeros((3, 3), np.uint8), 1, 2, fill_with=300), "fill_with"),
    (lambda: fill_holes(np.zeros((3, 3), np.uint8), 1, max_size=0), "max_size"),
])
def test_bad_arguments_raise_morphology_error(call, words):
    with pytest.raises(MorphologyError, match=words):
        call()


# Slow, obvious references: one component at a time, dilation for neighbours, BFS for holes.

def reference_remove_islands(labels, cls, min_size, connectivity):
    out = labels.copy()
    count, ids = cv2.connectedComponents((labels == cls).astype(np.uint8),
                                         connectivity=connectivity)
    kernel = np.ones((3, 3), np.uint8) if connectivity == 8 else \
        cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))
    for c in range(1, count):
        island = ids == c
        if island.sum() >= min_size:
            continue
        ring = cv2.dilate(island.astype(np.uint8), kernel).astype(bool) & ~island
        if ring.any():
            votes = np.bincount(labels[ring], minlength=256)
            out[island] = int(np.argmax(votes))
    return out


def reference_fill_holes(labels, cls, connectivity):
    h, w = labels.shape
    steps = [(-1, 0), (1, 0), (0, -1), (0, 1)]
    if connectivity == 4:   # the holes' own connectivity is the other one
        steps += [(-1, -1), (-1, 1), (1, -1), (1, 1)]
    outside = np.zeros_like(labels, bool)
    queue = deque((y, x) for y in range(h) for x in range(w)
                  if (y in (0, h - 1) or x in (0, w - 1)) and labels[y, x] != cls)
    for y, x in queue:
        outside[y, x] = True
    while queue:
        y, x = queue.popleft()
        for dy, dx in steps:
            ny, nx = y + dy, x + dx
            if 0 <= ny < h and 0 <= nx < w and not outside[ny, nx] and labels[ny, nx] != cls:
                outside[ny, nx] = True
                queue.append((ny, nx))
    out = labels.copy()
    out[(labels != cls) & ~outside] = cls
    return out


small_maps = arrays(np.uint8, st.tuples(st.integers(1, 12), st.integers(1, 12)),
                    elements=st.sampled_from([0, 1, 2, 255]))


@settings(max_examples=80, deadline=None)
@given(small_maps, st.integers(1, 6), st.sampled_from([4, 8]))
def test_remove_islands_matches_the_component_by_component_reference(labels, min_size, conn):
    assert (remove_islands(labels, 1, min_size, connectivity=conn)
            == reference_remove_islands(labels, 1, min_size, conn)).all()


@settings(max_examples=80, deadline=None)
@given(small_maps, st.sampled_from([4, 8]))
def test_fill_holes_matches_a_flood_from_the_border(labels, conn):
    assert (fill_holes(labels, 1, connectivity=conn) == reference_fill_holes(labels, 1, conn)).all()
