"""The zoo as published: DeepLab-LargeFOV's pool5a, Caffe's element dropout, and bundled
DeepLab v1 checkpoints that keep computing what they were trained to compute."""

import numpy as np
import torch
from torch import nn

from segstudio.explain.receptive_field import receptive_field
from segstudio.models.checkpoint import load_checkpoint, save_checkpoint
from segstudio.models.registry import build_model
from segstudio.paths import weights_dir


def test_largefov_has_pool5a_and_fc6_sees_435_pixels():
    with torch.device("meta"):
        model = build_model("deeplabv1", 21, "paper")
    assert isinstance(model.pool5a, nn.AvgPool2d) and model.pool5a.stride == 1
    assert receptive_field(model, "fc6", (512, 512)).size == (435, 435)


def test_fcn_and_largefov_drop_single_elements_as_caffe():
    for name in ("fcn8s", "deeplabv1"):
        model = build_model(name, 3, "lite")
        drops = [m for m in model.modules() if isinstance(m, nn.modules.dropout._DropoutNd)]
        assert drops and all(type(m) is nn.Dropout for m in drops), name


def test_bundled_largefov_was_trained_without_pool5a_and_loads_so(tmp_path):
    model, meta = load_checkpoint(weights_dir() / "chest_xray_deeplabv1_lite.pt")
    assert model.pool5a is None and not bool(model.pool5a_on)
    assert receptive_field(model, "fc6", (256, 256)).size == (419, 419)
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        before = model(x)["out"]
    save_checkpoint(tmp_path / "again.pt", model, meta)
    again, _ = load_checkpoint(tmp_path / "again.pt")
    assert again.pool5a is None
    with torch.no_grad():
        np.testing.assert_allclose(again(x)["out"].numpy(), before.numpy(), rtol=1e-5,
                                   atol=1e-5)
    fresh = build_model("deeplabv1", len(meta.classes), "lite")
    save_checkpoint(tmp_path / "fresh.pt", fresh, meta)
    assert isinstance(load_checkpoint(tmp_path / "fresh.pt")[0].pool5a, nn.AvgPool2d)


def test_the_context_largefov_trained_since_has_pool5a():
    # Retrained on the current 256 px context scenes after pool5a existed: it records the pool.
    model, _ = load_checkpoint(weights_dir() / "context_deeplabv1_lite.pt")
    assert isinstance(model.pool5a, nn.AvgPool2d) and bool(model.pool5a_on)
    assert receptive_field(model, "fc6", (256, 256)).size == (435, 435)
