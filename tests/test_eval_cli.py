import json
import subprocess
import sys

import numpy as np

from segstudio.core.classes import chest_xray
from segstudio.io.voc import save_label_png


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "segstudio", "eval", *args], capture_output=True,
                          text=True, timeout=120)


def test_eval_scores_folders_and_matches_the_metric(tmp_path):
    rng = np.random.default_rng(5)
    (tmp_path / "gt").mkdir()
    (tmp_path / "pred").mkdir()
    inter = np.zeros(4)
    union = np.zeros(4)
    for i in range(3):
        gt = rng.integers(0, 4, (30, 40)).astype(np.uint8)
        gt[:3] = 255
        pred = np.where(rng.random(gt.shape) < 0.7, gt, rng.integers(0, 4, gt.shape)).astype(np.uint8)
        pred[gt == 255] = 0
        save_label_png(tmp_path / "gt" / f"{i}.png", gt, chest_xray())
        save_label_png(tmp_path / "pred" / f"{i}.png", pred, chest_xray())
        valid = gt != 255
        for c in range(4):
            g, p = (gt == c) & valid, (pred == c) & valid
            inter[c] += (g & p).sum()
            union[c] += (g | p).sum()
    save_label_png(tmp_path / "pred" / "extra.png", np.zeros((30, 40), np.uint8), chest_xray())
    out = _cli("--pred", str(tmp_path / "pred"), "--gt", str(tmp_path / "gt"),
               "--classes", "chest-xray", "--json")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["images"] == 3
    assert result["mIoU"] == round(float(np.mean(inter / union)), 6)
    assert result["per_class"]["heart"]["IoU"] == round(float(inter[2] / union[2]), 6)
    assert result["unmatched"]["pred_only"] == ["extra"]


def test_eval_refuses_mismatched_sizes_cleanly(tmp_path):
    (tmp_path / "gt").mkdir()
    (tmp_path / "pred").mkdir()
    save_label_png(tmp_path / "gt" / "a.png", np.zeros((10, 10), np.uint8), chest_xray())
    save_label_png(tmp_path / "pred" / "a.png", np.zeros((10, 12), np.uint8), chest_xray())
    out = _cli("--pred", str(tmp_path / "pred"), "--gt", str(tmp_path / "gt"))
    assert out.returncode == 2
    assert "a.png" in out.stderr and "12×10" in out.stderr and "Traceback" not in out.stderr
