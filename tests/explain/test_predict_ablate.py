"""``segstudio predict --ablate`` zeroes a branch as the Branches view does."""

import numpy as np
import pytest
import torch
from PIL import Image

from segstudio.cli import main
from segstudio.paths import weights_dir


@pytest.fixture
def scene(tmp_path):
    from segstudio.train.synth import make_sample

    path = tmp_path / "in" / "scene.png"
    path.parent.mkdir()
    Image.fromarray(make_sample("context", 3, size=96, seed=1).image).save(path)
    return path


def _labels(tmp_path, scene, model, *extra):
    out = tmp_path / ("out" + "_".join(extra).replace(".", "_"))
    argv = ["predict", str(scene), "--out", str(out), "--model", model, "--weights",
            str(weights_dir() / f"context_{model}_lite.pt"), "--device", "cpu",
            "--precision", "fp32", "--threads", "1"]
    for branch in extra:
        argv += ["--ablate", branch]
    assert main(argv) == 0
    return np.array(Image.open(out / "scene.png"))


def test_ablated_prediction_matches_the_branch_view(tmp_path, scene, capsys):
    from segstudio.explain.probes import ablate_branches, predict_labels
    from segstudio.models.checkpoint import load_checkpoint
    from segstudio.models.registry import REGISTRY

    full = _labels(tmp_path, scene, "deeplabv3")
    ablated = _labels(tmp_path, scene, "deeplabv3", "aspp.rate6", "aspp.image_pool")
    assert "zeroed branches: aspp.rate6, aspp.image_pool" in capsys.readouterr().out
    model, meta = load_checkpoint(weights_dir() / "context_deeplabv3_lite.pt")
    rgb = np.array(Image.open(scene).convert("RGB"))
    x = torch.from_numpy(rgb).permute(2, 0, 1).float() / 255
    x = (x - torch.tensor(meta.mean).view(3, 1, 1)) / torch.tensor(meta.std).view(3, 1, 1)
    with ablate_branches(model, REGISTRY["deeplabv3"].branches, ["aspp.rate6",
                                                                  "aspp.image_pool"]):
        expected = predict_labels(model, x)
    assert (ablated == expected).mean() > 0.999
    assert (full == predict_labels(model, x)).mean() > 0.999
    # Zeroing the projection leaves only the classifier's bias: one class everywhere.
    flat = _labels(tmp_path, scene, "deeplabv3", "aspp.project")
    assert len(np.unique(flat)) == 1 and len(np.unique(full)) > 1


def test_unknown_branch_lists_the_valid_ones(tmp_path, scene, capsys):
    assert main(["predict", str(scene), "--out", str(tmp_path / "o"), "--model", "pspnet",
                 "--weights", str(weights_dir() / "context_pspnet_lite.pt"),
                 "--ablate", "aspp.rate6"]) == 2
    err = capsys.readouterr().err
    assert "--ablate: no branch 'aspp.rate6'" in err and "psp.bin1" in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()
