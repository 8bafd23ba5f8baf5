"""The object map beside the class map: consistency rules and one undo step per edit."""

import numpy as np
import pytest

from segstudio.core.geometry import Rect
from segstudio.core.labelmap import LabelMap
from segstudio.core.objectmap import ObjectMap, ObjectMapError, compact_ids, object_classes


def _two_squares():
    labels = np.zeros((20, 30), np.uint8)
    ids = np.zeros((20, 30), np.uint8)
    labels[2:8, 2:8], ids[2:8, 2:8] = 1, 1
    labels[10:16, 12:24], ids[10:16, 12:24] = 2, 2
    lm = LabelMap(labels)
    return lm, ObjectMap(lm, ids)


def test_classes_are_read_from_the_class_map():
    lm, om = _two_squares()
    assert om.classes() == {1: 1, 2: 2}
    assert om.counts() == {1: 36, 2: 72}


def test_painting_another_class_takes_pixels_out_of_the_object_and_undo_restores_both():
    lm, om = _two_squares()
    lm.paint_disk(4.5, 4.5, 1, 0)                 # background over one pixel of object 1
    assert om.at(4, 4) == 0 and lm.at(4, 4) == 0
    lm.paint_disk(5.5, 5.5, 1, 1)                 # its own class: nothing leaves
    assert om.at(3, 3) == 1
    lm.undo()
    assert om.at(4, 4) == 1 and lm.at(4, 4) == 1
    lm.redo()
    assert om.at(4, 4) == 0


def test_delete_set_class_merge_are_one_undo_step_each():
    lm, om = _two_squares()
    before_l, before_o = lm.array.copy(), om.array.copy()
    om.set_class(2, 3)
    assert om.class_of(2) == 3 and (lm.array[om.array == 2] == 3).all()
    lm.undo()
    assert np.array_equal(lm.array, before_l) and om.class_of(2) == 2
    om.delete(1)
    assert 1 not in om.classes() and (lm.array[2:8, 2:8] == 0).all()
    lm.undo()
    assert np.array_equal(lm.array, before_l) and np.array_equal(om.array, before_o)
    om.merge(1, 2)
    assert om.classes() == {1: 1} and (lm.array[10:16, 12:24] == 1).all()
    lm.undo()
    assert om.classes() == {1: 1, 2: 2}


def test_split_along_a_line_gives_two_objects_of_the_same_class():
    lm, om = _two_squares()
    pieces = om.split(2, [(18, 8), (18, 18)])
    assert pieces == [2, 3]
    assert om.classes() == {1: 1, 2: 2, 3: 2}
    assert (om.array[10:16, 12:24] > 0).all()            # the line's pixels joined a piece
    assert om.counts()[2] + om.counts()[3] == 72
    lm.undo()
    assert om.classes() == {1: 1, 2: 2}
    with pytest.raises(ObjectMapError):
        om.split(2, [(30, 0), (30, 5)])                  # misses the object


def test_new_object_grow_and_shrink():
    lm = LabelMap.blank(10, 10)
    om = ObjectMap.of(lm)
    assert not om.has_objects()
    mask = np.ones((3, 3), bool)
    k = om.paint_new(mask, Rect(1, 1, 4, 4), 4)
    assert k == 1 and om.classes() == {1: 4} and lm.at(2, 2) == 4
    om.grow(1, np.ones((1, 3), bool), Rect(1, 4, 4, 5))
    assert om.counts() == {1: 12} and lm.at(1, 4) == 4
    om.shrink(1, np.ones((1, 3), bool), Rect(1, 1, 4, 2))
    assert om.counts() == {1: 9} and lm.at(1, 1) == 0
    lm.undo()
    lm.undo()
    lm.undo()
    assert not om.has_objects() and (lm.array == 0).all()


def test_compact_ids_keeps_order_and_void():
    ids = np.array([[0, 3, 7, 255]], np.uint8)
    assert compact_ids(ids).tolist() == [[0, 1, 2, 255]]
    assert object_classes(ids, np.array([[0, 1, 2, 255]], np.uint8)) == {3: 1, 7: 2}


def test_an_object_painted_over_entirely_is_gone_and_comes_back_with_undo():
    lm, om = _two_squares()
    lm.begin_step("brush")
    for y in range(2, 8):
        lm.paint_segment(1, y + 0.5, 9, y + 0.5, 1, 0)
    lm.end_step()
    assert om.classes() == {2: 2} and om.next_id() == 3
    lm.paint_segment(13, 11.5, 14, 11.5, 1, 2)            # the other object's own class: kept
    assert om.counts()[2] == 72
    lm.undo()
    lm.undo()
    assert om.classes() == {1: 1, 2: 2}


def test_an_object_map_from_elsewhere_is_made_consistent_with_the_classes():
    from segstudio.core.objectmap import consistent_ids

    labels = np.zeros((4, 6), np.uint8)
    ids = np.zeros((4, 6), np.uint8)
    labels[:, :3], ids[:, :4] = 1, 1            # one column of object 1 lies on background
    fixed = consistent_ids(ids, labels)
    assert (fixed[:, 3] == 0).all() and (fixed[:, :3] == 1).all()
    om = ObjectMap(LabelMap(labels), ids)
    assert om.counts() == {1: 12}
