"""Grad-CAM on a net whose answer is known: one channel alone drives each class."""

import numpy as np
import pytest
import torch
from torch import nn

from segstudio.explain.cam import CamError, grad_cam

torch.set_num_threads(1)


class BrightOrDark(nn.Module):
    """Channel 0 fires on bright pixels, channel 1 on dark ones; class 1 reads only channel 0,
    class 0 only channel 1, class 2 counts channel 0 against itself."""

    def __init__(self, stride=1):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 2, 1), nn.ReLU(), nn.AvgPool2d(stride))
        self.head = nn.Conv2d(2, 3, 1)
        self.stride = stride
        with torch.no_grad():
            self.features[0].weight.copy_(torch.tensor([1.0, -1.0]).view(2, 1, 1, 1))
            self.features[0].bias.copy_(torch.tensor([0.0, 0.5]))
            self.head.weight.copy_(torch.tensor([[0.0, 1.0], [1.0, 0.0], [-1.0, 0.0]])
                                   .view(3, 2, 1, 1))
            self.head.bias.copy_(torch.tensor([0.0, -0.25, -1.0]))

    def forward(self, x):
        logits = self.head(self.features(x))
        return {"out": nn.functional.interpolate(logits, scale_factor=self.stride)}


def _square():
    image = torch.zeros(1, 16, 16)
    image[0, 4:10, 6:12] = 1.0
    return image, image[0].numpy() > 0


def test_cam_of_the_bright_class_is_the_bright_square():
    image, square = _square()
    cam = grad_cam(BrightOrDark(), image, "features.1", 1)
    assert cam.shape == (16, 16) and cam.dtype == np.float32
    np.testing.assert_allclose(cam[square], 1.0)
    np.testing.assert_allclose(cam[~square], 0.0)


def test_cam_of_the_dark_class_is_everything_but_the_square():
    image, square = _square()
    cam = grad_cam(BrightOrDark(), image, "features.1", 0, region="image")
    np.testing.assert_allclose(cam[~square], 1.0)
    np.testing.assert_allclose(cam[square], 0.0)


def test_class_that_features_argue_against_gets_an_empty_map():
    image, _ = _square()
    cam = grad_cam(BrightOrDark(), image, "features.1", 2)
    assert not cam.any()


def test_cam_from_a_coarse_layer_is_resized_to_the_image_and_scaled_to_one():
    image, square = _square()
    cam = grad_cam(BrightOrDark(stride=2), image, "features.2", 1, region=square)
    assert cam.shape == (16, 16) and cam.max() == pytest.approx(1.0) and cam.min() >= 0
    assert cam[square].mean() > 0.8 and cam[0:2, 0:2].max() == 0


def test_bad_layer_class_or_region_is_a_clear_error():
    image, _ = _square()
    model = BrightOrDark()
    with pytest.raises(CamError, match="no module 'backbone'"):
        grad_cam(model, image, "backbone", 1)
    with pytest.raises(CamError, match="class 7 is out of range"):
        grad_cam(model, image, "features.1", 7)
    with pytest.raises(CamError, match="region mask is empty"):
        grad_cam(model, image, "features.1", 1, region=np.zeros((16, 16), bool))


def test_cam_at_the_classifier_of_a_registry_model_is_its_rectified_class_logits():
    registry = pytest.importorskip("segstudio.models.registry")
    torch.manual_seed(0)
    model = registry.build_model("pspnet", 3, "lite").eval()
    image = torch.rand(3, 64, 64)
    logits = {}
    model.head.classifier.register_forward_hook(lambda _m, _i, out: logits.update(c=out))
    cam = grad_cam(model, image, "head.classifier", 2, region="image")
    # Only channel 2 carries gradient, with a positive mean: the map is ReLU(logit 2), resized.
    expected = nn.functional.interpolate(logits["c"][:, 2:3].detach().clamp(min=0), size=(64, 64),
                                         mode="bilinear", align_corners=False)[0, 0]
    expected = (expected / expected.max()).numpy()
    np.testing.assert_allclose(cam, expected, atol=1e-5)
