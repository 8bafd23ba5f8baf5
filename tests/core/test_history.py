import numpy as np

from segstudio.core.history import History
from segstudio.core.labelmap import LabelMap


def _random_edits(lm, rng, n):
    h, w = lm.shape
    for _ in range(n):
        kind = rng.integers(3)
        v = int(rng.integers(0, 5))
        if kind == 0:
            x, y = rng.uniform(0, w, 2), rng.uniform(0, h, 2)
            lm.paint_segment(x[0], y[0], x[1], y[1], float(rng.uniform(1, 12)), v)
        elif kind == 1:
            lm.fill(int(rng.integers(w)), int(rng.integers(h)), v)
        else:
            pts = [(float(rng.uniform(0, w)), float(rng.uniform(0, h))) for _ in range(5)]
            lm.fill_polygon(pts, v)


def test_undo_and_redo_restore_bit_exact_maps_over_250_steps():
    rng = np.random.default_rng(0)
    lm = LabelMap(rng.integers(0, 3, (120, 170)).astype(np.uint8))
    snapshots = [lm.array.copy()]
    for _ in range(250):
        before = lm.history.can_undo, len(lm.history)
        _random_edits(lm, rng, 1)
        if len(lm.history) != before[1]:
            snapshots.append(lm.array.copy())
    steps = len(snapshots) - 1
    assert steps >= 200
    for i in range(steps, 0, -1):
        np.testing.assert_array_equal(lm.array, snapshots[i])
        lm.undo()
    np.testing.assert_array_equal(lm.array, snapshots[0])
    assert not lm.history.can_undo
    for i in range(1, steps + 1):
        lm.redo()
        np.testing.assert_array_equal(lm.array, snapshots[i])


def test_a_stroke_of_many_dabs_is_one_undo_step():
    lm = LabelMap.blank(64, 64)
    with lm.step("brush"):
        for x in range(5, 60, 3):
            lm.paint_disk(x, 30, 5, 2)
    assert len(lm.history) == 1
    lm.undo()
    assert (lm.array == 0).all()


def test_new_edit_after_undo_drops_the_redo_stack():
    lm = LabelMap.blank(16, 16)
    lm.paint_disk(4, 4, 3, 1)
    lm.undo()
    lm.paint_disk(10, 10, 3, 2)
    assert not lm.history.can_redo


def test_history_memory_grows_with_area_edited_not_image_size():
    lm = LabelMap.blank(4096, 4096)   # 16 MiB per full copy
    rng = np.random.default_rng(1)
    for _ in range(250):
        x, y = rng.uniform(0, 4096, 2)
        lm.paint_segment(x, y, x + 20, y + 10, 9, 1)
    assert len(lm.history) == 250
    # Full snapshots would hold 250 × 16 MiB = 4 GiB; tile diffs hold a few tiles per step.
    assert lm.history.nbytes < 250 * 4 * 2 * 64 * 64 + 1
    assert lm.history.nbytes < 0.002 * 250 * lm.array.nbytes


def test_history_is_bounded_in_steps_and_bytes():
    lm = LabelMap(np.zeros((256, 256), np.uint8), history=History(max_steps=300, max_bytes=2**20))
    for i in range(400):
        lm.paint_disk(128, 128, 250, 1 + i % 2)   # each step rewrites most of the map
    assert lm.history.nbytes <= 2**20 + 2 * 256 * 256
    assert len(lm.history) < 300
    lm2 = LabelMap(np.zeros((64, 64), np.uint8), history=History(max_steps=200))
    for i in range(260):
        lm2.paint_disk(float(i % 60) + 2, 10, 1, 1 + (i // 60) % 2)
    assert len(lm2.history) == 200
