"""The accuracy benchmark's generated video: its true masks are what the frames show, the bar
is really hidden for a stretch, and the scoring is IoU per object."""

import importlib.util
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "bench_sam2_accuracy.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_sam2_accuracy", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_sam2_accuracy"] = module
    spec.loader.exec_module(module)
    return module


def test_the_true_masks_are_the_objects_drawn(bench):
    images, truths, hidden = bench.scene(frames=24, size=128)
    colours = {1: (230, 200, 50), 2: (40, 110, 220), 3: (200, 60, 150)}
    for image, truth in zip(images, truths):
        for obj, colour in colours.items():
            inside = truth == obj
            assert inside.any()
            # away from the edges (the frames are blurred by one pixel) the colour is exact
            core = cv2.erode(inside.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
            assert np.all(np.abs(image[core].astype(int) - colour) <= 1)
    # the bar is hidden behind the disc for a stretch in the middle, not at the ends
    assert len(hidden) >= 3 and 0 < hidden[0] and hidden[-1] < 23
    areas = [int((t == 2).sum()) for t in truths]
    assert min(areas[i] for i in hidden) < 0.8 * max(areas)
    # the ellipse changes shape: the ratio of its axes (from its second moments) swings widely
    ratios = []
    for t in truths:
        ys, xs = np.nonzero(t == 3)
        low, high = np.linalg.eigvalsh(np.cov(np.stack([xs, ys]).astype(float)))
        ratios.append(np.sqrt(high / low))
    assert max(ratios) > 2 * min(ratios)


def test_iou_per_object_scores_overlap_and_leaves_out_absent_objects(bench):
    truth = np.zeros((10, 10), np.uint8)
    truth[:5, :5] = 1
    found = np.zeros_like(truth)
    found[:5, :4] = 1
    found[9, 9] = 3                      # an object not in the truth is not scored
    assert bench.iou_per_object(found, truth) == {1: pytest.approx(20 / 25)}


def test_optical_flow_from_the_true_first_map_starts_right_and_loses_the_hidden_bar(bench):
    images, truths, hidden = bench.scene(frames=24, size=128)
    result = bench.score(bench.by_flow(images, truths), truths, hidden)
    assert result["per_frame"][0] == 1.0 and result["per_frame"][1] > 0.7
    assert result["occluded"] < result["per_object"][1]
