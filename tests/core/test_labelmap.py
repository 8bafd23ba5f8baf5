import numpy as np
import pytest

from segstudio.core.geometry import Rect
from segstudio.core.labelmap import LabelMap, LabelMapError, PaintGuard


def test_one_pixel_brush_paints_exactly_the_pixel_under_the_point():
    lm = LabelMap.blank(5, 5)
    rect = lm.paint_disk(2.5, 2.5, 1, 3)
    assert rect == Rect(2, 2, 3, 3)
    expected = np.zeros((5, 5), np.uint8)
    expected[2, 2] = 3
    np.testing.assert_array_equal(lm.array, expected)


def test_disk_is_round_and_reports_its_dirty_rect():
    lm = LabelMap.blank(50, 50)
    rect = lm.paint_disk(25, 25, 10, 1)
    ys, xs = np.nonzero(lm.array)
    assert rect == Rect(xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
    d2 = (xs + 0.5 - 25) ** 2 + (ys + 0.5 - 25) ** 2
    assert d2.max() <= 25 + 1e-6
    assert len(xs) == pytest.approx(np.pi * 25, rel=0.1)


def test_fast_stroke_segment_leaves_no_gaps():
    lm = LabelMap.blank(40, 200)
    lm.paint_segment(5, 20, 195, 20, 3, 2)
    row = lm.array[20]
    assert (row[5:195] == 2).all()


def test_fill_stops_at_other_classes():
    labels = np.zeros((10, 10), np.uint8)
    labels[:, 5] = 1            # a wall of class 1
    lm = LabelMap(labels)
    lm.fill(2, 2, 3)
    assert (lm.array[:, :5] == 3).all()
    assert (lm.array[:, 5] == 1).all()
    assert (lm.array[:, 6:] == 0).all()


def test_fill_connectivity_four_versus_eight():
    labels = np.ones((4, 4), np.uint8)
    labels[0, 0] = labels[1, 1] = 0   # diagonal neighbours
    lm4, lm8 = LabelMap(labels), LabelMap(labels)
    lm4.fill(0, 0, 2, connectivity=4)
    lm8.fill(0, 0, 2, connectivity=8)
    assert lm4.array[1, 1] == 0 and lm8.array[1, 1] == 2


def test_polygon_fills_its_inside():
    lm = LabelMap.blank(20, 20)
    lm.fill_polygon([(2.5, 2.5), (11.5, 2.5), (11.7, 11.2), (2.1, 11.9)], 4)
    assert (lm.array[2:12, 2:12] == 4).all()
    assert lm.class_counts()[4] == 100


def test_polygon_of_two_points_is_refused():
    with pytest.raises(LabelMapError):
        LabelMap.blank(5, 5).fill_polygon([(0, 0), (3, 3)], 1)


def test_guard_preserves_other_classes():
    labels = np.zeros((10, 10), np.uint8)
    labels[:, :3] = 2
    lm = LabelMap(labels)
    lm.paint_segment(0, 5, 10, 5, 4, 1, PaintGuard(only_over=frozenset({0})))
    assert (lm.array[:, :3] == 2).all()
    assert (lm.array[4:7, 3:] == 1).all()


def test_guard_threshold_paints_only_inside_the_intensity_range():
    intensity = np.tile(np.arange(10, dtype=np.uint16) * 100, (10, 1))
    lm = LabelMap.blank(10, 10)
    lm.paint_mask(np.ones((10, 10), bool), 1, guard=PaintGuard(intensity=intensity, low=300, high=600))
    assert (lm.array[:, 3:7] == 1).all()
    assert (lm.array[:, :3] == 0).all() and (lm.array[:, 7:] == 0).all()


def test_listeners_hear_the_dirty_rect():
    lm = LabelMap.blank(30, 30)
    heard = []
    lm.add_listener(heard.append)
    r = lm.paint_disk(10, 10, 4, 1)
    assert heard == [r]
    lm.paint_disk(10, 10, 4, 1)   # no change, no notification
    assert heard == [r]


def test_array_view_is_read_only():
    lm = LabelMap.blank(3, 3)
    with pytest.raises(ValueError):
        lm.array[0, 0] = 1


def test_replace_with_wrong_size_is_refused():
    with pytest.raises(LabelMapError):
        LabelMap.blank(4, 4).replace(np.zeros((5, 4), np.uint8))


def test_class_counts_of_a_map_past_two_to_the_24_pixels_are_exact():
    # Counted in bands (OpenCV's float32 histogram is exact only below 2^24 per call).
    labels = np.zeros((4100, 4100), np.uint8)            # 16.8 M pixels > 2^24
    labels[:3, :7] = 5
    labels[-1, -1] = 255
    counts = LabelMap(labels).class_counts()
    assert counts[5] == 21 and counts[255] == 1 and counts[0] == labels.size - 22
    assert counts.sum() == labels.size
