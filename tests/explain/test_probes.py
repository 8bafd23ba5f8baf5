"""Branch probes read what named modules produce; ablation zeroes one branch."""

import numpy as np
import pytest
import torch
from torch import nn
from torchvision.models.segmentation import deeplabv3_mobilenet_v3_large

from segstudio.explain.probes import (
    Probe, ProbeError, ablate, activation_map, branch_contribution, predict_labels)

torch.set_num_threads(1)

ASPP = {"rate12": "classifier.0.convs.1", "rate24": "classifier.0.convs.2",
        "rate36": "classifier.0.convs.3", "image_pool": "classifier.0.convs.4",
        "projection": "classifier.0.project"}


@pytest.fixture(scope="module")
def deeplab():
    torch.manual_seed(0)
    return deeplabv3_mobilenet_v3_large(weights=None, weights_backbone=None, num_classes=3).eval()


def test_probes_return_every_aspp_branch_at_the_feature_resolution(deeplab):
    image = torch.rand(3, 64, 96)
    with Probe(deeplab, ASPP) as probe:
        maps = probe.run(image)
    assert list(maps) == list(ASPP)
    # The backbone runs at output stride 16: 64x96 -> 4x6, ASPP branches have 256 channels.
    for name, t in maps.items():
        assert tuple(t.shape) == (1, 256, 4, 6), name
    # Image pooling is one vector broadcast over the map.
    pooled = maps["image_pool"][0]
    assert torch.allclose(pooled, pooled[:, :1, :1].expand_as(pooled))


def test_probing_leaves_the_prediction_unchanged(deeplab):
    image = torch.rand(1, 3, 48, 48)
    with torch.no_grad():
        plain = deeplab(image)["out"]
        with Probe(deeplab, ASPP):
            probed = deeplab(image)["out"]
    assert torch.equal(plain, probed)


def test_probe_outside_its_context_records_nothing(deeplab):
    probe = Probe(deeplab, {"rate12": ASPP["rate12"]})
    with probe:
        probe.run(torch.rand(3, 32, 32))
    probe.outputs.clear()
    with torch.no_grad():
        deeplab(torch.rand(1, 3, 32, 32))
    assert probe.outputs == {}


def test_unknown_branch_path_is_a_clear_error(deeplab):
    with pytest.raises(ProbeError, match="no module 'classifier.0.convs.9'.*0, 1, 2, 3, 4"):
        Probe(deeplab, {"x": "classifier.0.convs.9"})


def test_activation_map_reduces_channels_and_resizes_to_the_image():
    t = torch.tensor([[[0.0, 2.0], [4.0, 6.0]], [[2.0, 2.0], [0.0, 10.0]]])
    np.testing.assert_allclose(activation_map(t, "mean"), [[1, 2], [2, 8]])
    np.testing.assert_allclose(activation_map(t, "max"), [[2, 2], [4, 10]])
    np.testing.assert_allclose(activation_map(t[None], 1), [[2, 2], [0, 10]])
    big = activation_map(torch.ones(4, 3, 5), "mean", size=(30, 50))
    assert big.shape == (30, 50) and big.dtype == np.float32
    np.testing.assert_allclose(big, 1.0, rtol=1e-6)
    with pytest.raises(ProbeError, match="channel 5 is out of range"):
        activation_map(t, 5)


class TwoBranches(nn.Module):
    """Class 1 wins where the left branch fires; the right branch adds a constant bias."""

    def __init__(self):
        super().__init__()
        self.left = nn.Conv2d(1, 2, 1)
        self.right = nn.Conv2d(1, 2, 1)
        with torch.no_grad():
            self.left.weight.copy_(torch.tensor([0.0, 2.0]).view(2, 1, 1, 1))
            self.left.bias.zero_()
            self.right.weight.zero_()
            self.right.bias.copy_(torch.tensor([1.0, 0.0]))

    def forward(self, x):
        return {"out": self.left(x) + self.right(x)}


def test_ablating_a_branch_zeroes_its_output_and_the_others_still_run():
    model = TwoBranches()
    x = torch.rand(1, 1, 4, 4)
    with torch.no_grad(), ablate(model, "left"):
        out = model(x)["out"]
    assert torch.equal(out, model.right(x).detach())
    with torch.no_grad():
        assert not torch.equal(model(x)["out"], out)


def test_branch_contribution_lists_the_pixels_the_branch_decides():
    model = TwoBranches()
    image = torch.zeros(1, 6, 6)
    image[0, 1:3, 2:5] = 1.0  # 2 * 1 > 1: class 1 here, class 0 elsewhere
    assert predict_labels(model, image)[1, 2] == 1
    without, changed = branch_contribution(model, image, "left")
    assert (without == 0).all()
    assert changed.sum() == 6 and changed[1:3, 2:5].all()
    # Without the bias branch the logits are (0, 2x): ties go to class 0, so nothing changes.
    _, none_changed = branch_contribution(model, image, "right")
    assert not none_changed.any()


registry = pytest.importorskip("segstudio.models.registry")
HEAVY = {"fcn_resnet101", "deeplabv3_resnet101"}


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in HEAVY else n
                                  for n in registry.REGISTRY])
def test_every_registry_branch_is_probed_on_a_grid_matching_its_receptive_field(name):
    from segstudio.explain.receptive_field import receptive_fields

    spec = registry.get_spec(name)
    config = "lite" if "lite" in spec.configs else "paper"
    torch.manual_seed(0)
    model = registry.build_model(name, 3, config).eval()
    with Probe(model, spec.branches) as probe:
        maps = probe.run(torch.rand(3, 64, 64))
    assert list(maps) == list(spec.branches)
    assert all(t.dim() == 4 and t.shape[0] >= 1 and t.numel() > 0 for t in maps.values())
    if spec.instance or name.startswith("fcn") and name.endswith("s"):
        return  # detectors resize the image; the original FCN pads it by 100 pixels
    # Units times jump span the input: the traced fields and the real maps agree.
    fields = receptive_fields(model, list(spec.branches.values()), (64, 64))
    for branch, path in spec.branches.items():
        rows, cols = maps[branch].shape[-2:]
        jump = fields[path].jump
        assert rows * jump[0] == pytest.approx(64, abs=jump[0] - 1e-6), branch
        assert cols * jump[1] == pytest.approx(64, abs=jump[1] - 1e-6), branch


class TinyDetector(nn.Module):
    """Returns detections, as torchvision's detectors do, instead of per-pixel logits."""

    def __init__(self):
        super().__init__()
        self.body = nn.Conv2d(3, 4, 3, padding=1)

    def forward(self, x):
        return [{"boxes": torch.zeros(0, 4), "masks": self.body(x)[:0]}]


def test_explaining_a_detector_output_is_a_clear_error():
    from segstudio.explain.cam import CamError, grad_cam
    from segstudio.explain.effective_rf import EffectiveFieldError, effective_rf

    image = torch.rand(3, 16, 16)
    with pytest.raises(ProbeError, match="no 'out': it does not predict per-pixel logits"):
        branch_contribution(TinyDetector(), image, "body")
    with pytest.raises(EffectiveFieldError, match="did not run on the input|per-pixel logits"):
        effective_rf(TinyDetector(), image, 3, 3)
    with pytest.raises(CamError, match="per-pixel logits"):
        grad_cam(TinyDetector(), image, "body", 0)
    # Its backbone still has maps to probe.
    with Probe(TinyDetector(), {"body": "body"}) as probe:
        assert tuple(probe.run(image)["body"].shape) == (1, 4, 16, 16)


def test_label_transitions_count_what_each_changed_pixel_became():
    from segstudio.explain.probes import label_transitions

    before = np.array([[0, 1, 1, 2], [2, 2, 255, 0]], np.uint8)
    after = np.array([[0, 2, 2, 1], [2, 0, 0, 0]], np.uint8)
    assert label_transitions(before, after) == [(1, 2, 2), (2, 0, 1), (2, 1, 1), (255, 0, 1)]
    assert label_transitions(before, before) == []
