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


def test_eval_scores_instances_from_voc_object_maps(tmp_path):
    """A VOC tree's objects against predictions where two touching objects were merged."""
    from segstudio.core.classes import from_names
    from segstudio.io.voc import VocSample, save_object_png, write_voc
    from segstudio.train.synth import generate

    samples = list(generate("shapes", 4, size=96, seed=3))
    root = tmp_path / "voc"
    write_voc(root, [VocSample(s.id, s.image, s.labels, s.instances) for s in samples],
              from_names(["background", "circle", "square", "triangle"]))
    tree = root / "VOCdevkit" / "VOC2012"
    pred = tmp_path / "pred"
    (pred / "SegmentationObject").mkdir(parents=True)
    true_objects = 0
    for s in samples:
        ids = s.instances.copy()
        true_objects += len(np.unique(ids[ids > 0]))
        if s is samples[0]:
            ids[ids == 2] = 0                        # the detector missed object 2 here
        save_label_png(pred / f"{s.id}.png", s.labels, chest_xray())
        save_object_png(pred / "SegmentationObject" / f"{s.id}.png", ids.astype(np.uint16))
    out = _cli("--pred", str(pred), "--gt", str(tree / "SegmentationClass"), "--json")
    assert out.returncode == 0, out.stderr
    inst = json.loads(out.stdout)["instances"]
    assert (inst["TP"], inst["FP"], inst["FN"]) == (true_objects - 1, 0, 1)
    assert inst["images"] == 4 and inst["precision"] == 1.0
    text = _cli("--pred", str(pred), "--gt", str(tree / "SegmentationClass"))
    assert "instances (same class, mask IoU ≥ 0.5), 4 image(s)" in text.stdout
    assert text.stdout.rstrip().splitlines()[-1].split()[-3:] == [str(true_objects - 1), "0", "1"]
    bad = _cli("--pred", str(pred), "--gt", str(tree / "SegmentationClass"),
               "--gt-objects", str(tmp_path / "nowhere"))
    assert bad.returncode != 0 and "is not a folder" in bad.stderr
    (tmp_path / "flat").mkdir()                      # class maps with no objects beside them
    for s in samples:
        save_label_png(tmp_path / "flat" / f"{s.id}.png", s.labels, chest_xray())
    half = _cli("--pred", str(pred), "--gt", str(tmp_path / "flat"),
                "--pred-objects", str(pred / "SegmentationObject"))
    assert half.returncode != 0 and "name --gt-objects" in half.stderr
    plain = _cli("--pred", str(pred), "--gt", str(tmp_path / "flat"), "--json")
    assert plain.returncode == 0 and "instances" not in json.loads(plain.stdout)


def test_eval_reports_ground_truth_values_outside_the_classes(tmp_path):
    """Values ≥ the class count (other than void) cannot be scored: said, with counts and files."""
    (tmp_path / "gt").mkdir()
    (tmp_path / "pred").mkdir()
    gt = np.zeros((10, 10), np.uint8)
    gt[0, :3] = 7
    gt[1, :2] = 4
    gt[2, :] = 255                                   # void stays quietly ignored
    save_label_png(tmp_path / "gt" / "a.png", gt, chest_xray())
    save_label_png(tmp_path / "gt" / "b.png", np.ones((10, 10), np.uint8), chest_xray())
    for name in ("a", "b"):
        save_label_png(tmp_path / "pred" / f"{name}.png", np.ones((10, 10), np.uint8),
                       chest_xray())
    args = ("--pred", str(tmp_path / "pred"), "--gt", str(tmp_path / "gt"),
            "--classes", "chest-xray")
    out = _cli(*args, "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["unscored_gt"] == {"pixels": 5, "values": [4, 7],
                                                     "files": {"a": 5}}
    warning = [line for line in out.stderr.splitlines() if line.startswith("warning: ")]
    assert len(warning) == 1 and "5 ground-truth pixel(s) in 1 file(s)" in warning[0]
    assert "4, 7" in warning[0] and "a.png (5)" in warning[0] and "b.png" not in warning[0]
    plain = _cli(*args)
    assert plain.returncode == 0 and "warning: 5 ground-truth pixel(s)" in plain.stderr
    quiet = _cli("--pred", str(tmp_path / "pred"), "--gt", str(tmp_path / "gt"), "--json")
    assert "warning" not in quiet.stderr and "unscored_gt" not in json.loads(quiet.stdout)
