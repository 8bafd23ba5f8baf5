"""``segstudio erf`` on the bundled context model and generated scenes."""

import json

import numpy as np
import pytest
from PIL import Image

from segstudio.cli import main
from segstudio.paths import weights_dir


@pytest.fixture
def scenes(tmp_path):
    from segstudio.train.synth import make_sample

    paths = []
    for i in range(2):
        rgb = make_sample("context", i, size=96, seed=1).image
        path = tmp_path / f"scene{i}.png"
        Image.fromarray(np.asarray(rgb, np.uint8)).save(path)
        paths.append(str(path))
    return paths


def test_erf_of_a_trained_model_over_two_images(capsys, scenes):
    weights = weights_dir() / "context_fcn8s_lite.pt"
    assert main(["erf", "--model", "fcn8s", "--weights", str(weights), "--at", "40", "50",
                 "--json", *scenes]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["images"] == 2 and report["pixel"] == [40, 50]
    assert "logit" in report["quantity"]
    # FCN-8s' output pixels see 436 or 468 pixels; the box is unclipped, centred near the pixel.
    x0, y0, x1, y1 = report["box"]
    assert x1 - x0 + 1 in (436, 468) and y1 - y0 + 1 in (436, 468)
    assert report["theoretical_px"] == (x1 - x0 + 1) * (y1 - y0 + 1)
    assert report["inside_image_px"] == 96 * 96
    assert 0 < report["mass95_px"] <= 96 * 96
    cx, cy = report["center"]
    assert abs(cx - 40) < 20 and abs(cy - 50) < 20


def test_erf_errors_are_one_clean_line(capsys, scenes, tmp_path):
    assert main(["erf", "--model", "fcn8s", "--at", "96", "0", scenes[0]]) == 2
    assert "outside the 96×96 images" in capsys.readouterr().err
    small = tmp_path / "small.png"
    Image.fromarray(np.zeros((40, 50, 3), np.uint8)).save(small)
    assert main(["erf", "--model", "fcn8s", "--at", "1", "1", scenes[0], str(small)]) == 2
    assert "one size" in capsys.readouterr().err
    assert main(["erf", "--model", "maskrcnn", "--at", "1", "1", scenes[0]]) == 2
    assert "per-pixel logits" in capsys.readouterr().err


def test_help_of_the_new_commands_prints(capsys):
    for argv in (["erf", "--help"], ["rf", "--help"], ["predict", "--help"]):
        assert main(argv) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "95 percent of it" in out and "%%" not in out and "--tap-curve" in out and "--ablate" in out
