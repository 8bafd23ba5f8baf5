import numpy as np
import pytest

from segstudio.core.metrics import ConfusionMatrix, scores


def _reference(gt_list, pred_list, n):
    """An independent per-class computation with plain loops over classes."""
    inter = np.zeros(n)
    gt_count = np.zeros(n)
    pred_count = np.zeros(n)
    correct = total = 0
    for gt, pred in zip(gt_list, pred_list):
        valid = gt != 255
        for c in range(n):
            g = (gt == c) & valid
            p = (pred == c) & valid
            inter[c] += np.logical_and(g, p).sum()
            gt_count[c] += g.sum()
            pred_count[c] += p.sum()
        correct += (gt[valid] == pred[valid]).sum()
        total += valid.sum()
    iou = [inter[c] / (gt_count[c] + pred_count[c] - inter[c])
           for c in range(n) if gt_count[c] + pred_count[c] > 0]
    acc = [inter[c] / gt_count[c] for c in range(n) if gt_count[c] > 0]
    return np.mean(iou), np.mean(acc), correct / total


def test_scores_match_an_independent_computation_with_ignored_pixels():
    rng = np.random.default_rng(7)
    n = 6
    gts, preds = [], []
    cm = ConfusionMatrix(n)
    for _ in range(5):
        gt = rng.integers(0, n - 1, (40, 50)).astype(np.uint8)   # class 5 never in gt
        gt[rng.random(gt.shape) < 0.1] = 255
        pred = np.where(rng.random(gt.shape) < 0.6, gt, rng.integers(0, n - 2, gt.shape)).astype(np.uint8)
        pred[gt == 255] = rng.integers(0, n, (gt == 255).sum())
        gts.append(gt)
        preds.append(pred)
        cm.update(gt, pred)
    s = cm.scores()
    miou, macc, aacc = _reference(gts, preds, n)
    assert s.miou == pytest.approx(miou)
    assert s.macc == pytest.approx(macc)
    assert s.aacc == pytest.approx(aacc)
    assert np.isnan(s.iou[5]) and np.isnan(s.acc[5])   # absent from both: left out


def test_perfect_prediction_scores_one():
    gt = np.array([[0, 1], [2, 255]], np.uint8)
    s = scores(gt, np.where(gt == 255, 0, gt), 3)
    assert s.miou == 1.0 and s.macc == 1.0 and s.aacc == 1.0


def test_void_in_prediction_counts_as_wrong():
    gt = np.array([[1, 1]], np.uint8)
    pred = np.array([[1, 255]], np.uint8)
    s = scores(gt, pred, 2)
    assert s.acc[1] == 0.5 and s.iou[1] == 0.5


def test_size_mismatch_is_a_clear_error():
    with pytest.raises(ValueError, match="differ in size"):
        scores(np.zeros((2, 2), np.uint8), np.zeros((2, 3), np.uint8), 2)
