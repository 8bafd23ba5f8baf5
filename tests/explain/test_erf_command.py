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


def _gradient_heat(weights, scenes, x, y):
    """Recomputed here from the network itself: |d logit / d input| of the class predicted at
    (x, y), summed over channels and averaged over the scenes."""
    import torch

    from segstudio.models.checkpoint import load_checkpoint

    model, meta = load_checkpoint(weights)
    mean, std = torch.tensor(meta.mean).view(3, 1, 1), torch.tensor(meta.std).view(3, 1, 1)
    heat = 0
    for path in scenes:
        rgb = torch.from_numpy(np.array(Image.open(path).convert("RGB"))).permute(2, 0, 1)
        image = ((rgb.float() / 255 - mean) / std)[None].requires_grad_(True)
        logits = model(image)["out"]
        cls = int(logits[0, :, y, x].argmax())
        (grad,) = torch.autograd.grad(logits[0, cls, y, x], image)
        heat = heat + grad[0].abs().sum(0).double().numpy() / len(scenes)
    return heat


def test_erf_share_is_given_of_the_field_inside_the_image_first(capsys, scenes):
    # FCN-8s' field (436 px or more) covers the whole 96 px scene, so the in-image part is the
    # image; the fewest pixels holding 95 % of the gradient are counted here from the gradient.
    weights = weights_dir() / "context_fcn8s_lite.pt"
    heat = _gradient_heat(weights, scenes, 40, 50)
    ordered = np.sort(heat.ravel())[::-1]
    needed = int(np.argmax(np.cumsum(ordered) >= 0.95 * ordered.sum() * (1 - 1e-9))) + 1

    argv = ["erf", "--model", "fcn8s", "--weights", str(weights), "--at", "40", "50", *scenes]
    assert main([*argv, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert abs(report["mass95_px"] - needed) <= 2
    assert report["mass95_in_image_share"] == pytest.approx(report["mass95_px"] / 96 ** 2,
                                                            abs=1e-4)
    assert report["mass95_share"] == pytest.approx(report["mass95_px"] /
                                                   report["theoretical_px"], abs=1e-4)
    assert main(argv) == 0
    line = next(ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("95 %"))
    inside, whole = (f"{report['mass95_px'] / n:.1%}" for n in (96 ** 2,
                                                                report["theoretical_px"]))
    assert f"= {inside} of the 9216 px of the field inside the image ({whole} of the whole" \
        in line


def test_region_share_is_the_gradient_mass_inside_the_region(capsys, scenes, tmp_path):
    weights = weights_dir() / "context_fcn8s_lite.pt"
    heat = _gradient_heat(weights, scenes, 40, 50)
    base = ["erf", "--model", "fcn8s", "--weights", str(weights), "--at", "40", "50", *scenes,
            "--json"]
    # A box around the pixel holds much of the mass; a box far from it little.
    near, far = np.zeros((96, 96), bool), np.zeros((96, 96), bool)
    near[40:61, 30:51] = True
    far[80:96, 80:96] = True
    for region, argv in ((near, ["--region", "30", "40", "50", "60"]),
                         (far, ["--region", "80", "80", "95", "95"])):
        assert main([*base, *argv]) == 0
        report = json.loads(capsys.readouterr().out)["region"]
        assert report["pixels"] == int(region.sum())
        assert report["share"] == pytest.approx(heat[region].sum() / heat.sum(), abs=1e-4)
    # A mask: every pixel that is not black, here the left third of the image.
    mask = np.zeros((96, 96), np.uint8)
    mask[:, :32] = 200
    Image.fromarray(mask).save(tmp_path / "left.png")
    assert main([*base, "--region-mask", str(tmp_path / "left.png")]) == 0
    report = json.loads(capsys.readouterr().out)["region"]
    assert report["pixels"] == 96 * 32
    assert report["share"] == pytest.approx(heat[:, :32].sum() / heat.sum(), abs=1e-4)
    assert main(base[:-1] + ["--region-mask", str(tmp_path / "left.png")]) == 0
    assert "region (mask" in capsys.readouterr().out


def test_region_errors_are_one_clean_line(capsys, scenes, tmp_path):
    base = ["erf", "--model", "fcn8s", "--at", "1", "1", scenes[0]]
    assert main([*base, "--region", "0", "0", "96", "10"]) == 2
    assert "--region 0 0 96 10: needs 0 ≤ X0 ≤ X1 < 96" in capsys.readouterr().err
    assert main([*base, "--region", "5", "0", "4", "10"]) == 2
    capsys.readouterr()
    Image.fromarray(np.zeros((96, 96), np.uint8)).save(tmp_path / "black.png")
    Image.fromarray(np.ones((90, 96), np.uint8)).save(tmp_path / "small.png")
    assert main([*base, "--region-mask", str(tmp_path / "black.png")]) == 2
    assert "every pixel is black" in capsys.readouterr().err
    assert main([*base, "--region-mask", str(tmp_path / "small.png")]) == 2
    assert "is 96×90 but the images are 96×96" in capsys.readouterr().err
    assert main([*base, "--region-mask", str(tmp_path / "nope.png")]) == 2
    assert "nope.png" in capsys.readouterr().err
    assert main([*base, "--region-mask", str(tmp_path / "small.png"), "--region", "0", "0", "1",
                 "1"]) == 2
    assert "not allowed with" in capsys.readouterr().err
