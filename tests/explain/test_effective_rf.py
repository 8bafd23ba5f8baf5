"""Effective receptive fields (input gradients of one unit) on networks small enough to solve."""

import numpy as np
import pytest
import torch
from torch import nn

from segstudio.explain.effective_rf import EffectiveFieldError, effective_rf, mass_share

torch.set_num_threads(1)


class Logits(nn.Module):
    """Wraps a stack so it returns ``{"out": ...}`` like the segmentation models."""

    def __init__(self, *layers):
        super().__init__()
        self.body = nn.Sequential(*layers)

    def forward(self, x):
        return {"out": self.body(x)}


def test_single_3x3_conv_erf_is_exactly_its_kernel_support():
    torch.manual_seed(1)
    conv = nn.Conv2d(2, 3, 3, padding=1, bias=False)
    erf = effective_rf(Logits(conv), torch.rand(2, 12, 12), 5, 7)
    support = np.argwhere(erf.heat > 0)
    assert support.min(0).tolist() == [4, 6] and support.max(0).tolist() == [6, 8]
    assert len(support) == 9
    # d(sum over output channels)/d input = sum of the kernels over output channels.
    expected = conv.weight.detach().sum(0).abs().sum(0).numpy()
    np.testing.assert_allclose(erf.heat[4:7, 6:9], expected, rtol=1e-6)
    assert erf.box == (4, 6, 7, 9) and erf.unit == (5, 7)


def test_class_target_uses_only_that_class_kernel():
    torch.manual_seed(2)
    conv = nn.Conv2d(1, 3, 3, padding=1, bias=False)
    erf = effective_rf(Logits(conv), torch.rand(1, 9, 9), 4, 4, target=2)
    np.testing.assert_allclose(erf.heat[3:6, 3:6], conv.weight[2, 0].detach().abs().numpy(),
                               rtol=1e-6)


def test_dilated_conv_erf_touches_only_its_nine_spread_taps():
    conv = nn.Conv2d(1, 1, 3, padding=2, dilation=2, bias=False)
    nn.init.constant_(conv.weight, 1.0)
    erf = effective_rf(Logits(conv), torch.rand(1, 11, 11), 5, 5)
    assert sorted(map(tuple, np.argwhere(erf.heat > 0))) == [
        (r, c) for r in (3, 5, 7) for c in (3, 5, 7)]


def test_uniform_conv_stack_erf_is_the_binomial_bump_and_smaller_than_theory():
    # Luo et al. §2.2: with unit weights and no nonlinearity, 5 stacked 3x3 convs give a heat map
    # that is the outer product of the 5-fold convolution of [1, 1, 1] with itself.
    layers = [nn.Conv2d(1, 1, 3, padding=1, bias=False) for _ in range(5)]
    for conv in layers:
        nn.init.constant_(conv.weight, 1.0)
    erf = effective_rf(Logits(*layers), torch.rand(1, 21, 21), 10, 10)
    line = np.array([1.0])
    for _ in range(5):
        line = np.convolve(line, [1.0, 1.0, 1.0])
    expected = np.zeros((21, 21))
    expected[5:16, 5:16] = np.outer(line, line)
    np.testing.assert_allclose(erf.heat, expected, rtol=1e-5)
    assert erf.box == (5, 5, 16, 16)
    assert erf.mass95_share == pytest.approx(mass_share(expected, 121))
    assert 0.2 < erf.mass95_share < 0.6


def test_layer_output_picks_the_unit_nearest_the_pixel_and_stays_inside_its_field():
    torch.manual_seed(3)
    model = Logits(nn.Conv2d(1, 4, 3, stride=2, padding=1), nn.ReLU(),
                   nn.Conv2d(4, 4, 3, padding=1), nn.Conv2d(4, 2, 1))
    erf = effective_rf(model, torch.rand(1, 32, 32), 13, 20, output="body.2")
    assert erf.field.size == (7, 7) and erf.field.jump == (2, 2)
    assert erf.unit == (6, 10)  # centres at 12 and 20 are nearest to pixel (13, 20)
    top, left, bottom, right = erf.box
    assert (top, left, bottom, right) == (9, 17, 16, 24)
    outside = erf.heat.copy()
    outside[top:bottom, left:right] = 0
    assert erf.heat.sum() > 0 and not outside.any()


def test_mass_share_counts_the_fewest_pixels_holding_95_percent():
    heat = np.array([[10.0, 5.0], [4.0, 1.0]])
    assert mass_share(heat, 4) == 0.75  # 10 + 5 + 4 = 19 of 20
    assert mass_share(np.zeros((3, 3)), 9) == 0.0


def test_parameters_get_no_gradient_and_training_mode_is_restored():
    model = Logits(nn.Conv2d(1, 2, 3, padding=1), nn.BatchNorm2d(2))
    model.train()
    effective_rf(model, torch.rand(1, 8, 8), 1, 1)
    assert model.training and all(p.grad is None for p in model.parameters())


def test_bad_pixel_target_or_layer_is_a_clear_error():
    model = Logits(nn.Conv2d(1, 2, 3, padding=1))
    image = torch.rand(1, 8, 8)
    with pytest.raises(EffectiveFieldError, match=r"pixel \(8, 0\) is outside the 8×8 image"):
        effective_rf(model, image, 8, 0)
    with pytest.raises(EffectiveFieldError, match="channel 5 is out of range"):
        effective_rf(model, image, 1, 1, target=5)
    with pytest.raises(EffectiveFieldError, match="no module 'head'"):
        effective_rf(model, image, 1, 1, output="head")


registry = pytest.importorskip("segstudio.models.registry")


@pytest.mark.parametrize("name, layer", [("deeplabv1", "backbone.features.16"),
                                         ("unet", "downs.1"), ("pspnet", "backbone.layer2")])
def test_gradient_of_a_registry_unit_fills_exactly_its_theoretical_field(name, layer):
    torch.manual_seed(0)
    model = registry.build_model(name, 3, "lite")
    erf = effective_rf(model, torch.rand(3, 160, 160), 80, 80, output=layer)
    top, left, bottom, right = erf.box
    assert erf.field.size[0] < 160 and (bottom - top) == erf.field.size[0]
    # With random weights the gradient reaches exactly the edges of the traced field.
    rows, cols = np.nonzero(erf.heat)
    assert (rows.min(), cols.min(), rows.max() + 1, cols.max() + 1) == erf.box
    assert 0 < erf.mass95_share <= 1


def test_prediction_field_differentiates_the_predicted_class_at_the_pixel_itself():
    from segstudio.explain.effective_rf import prediction_erf

    conv = nn.Conv2d(1, 2, 3, padding=1, bias=False)
    with torch.no_grad():
        conv.weight.zero_()
        conv.weight[0, 0, 1, 2] = 1.0       # class 0 looks one pixel to the right
        conv.weight[1, 0, 0, 1] = -1.0      # class 1 one pixel up
    bright = torch.ones(1, 10, 10)
    erf = prediction_erf(Logits(conv), bright, 5, 5)
    assert erf.classes == (0,) and erf.heat[5, 6] == 1 and erf.heat.sum() == 1
    assert erf.center == (5.0, 6.0) and erf.offset == (0.0, 1.0)
    assert erf.box == (4, 4, 6, 6) and erf.theoretical_px == erf.inside_image_px == 9
    assert erf.mass95_px == 1
    # Two images predicting different classes: the magnitudes are averaged.
    both = prediction_erf(Logits(conv), [bright, -bright], 5, 5)
    assert both.classes == (0, 1) and both.heat[5, 6] == both.heat[4, 5] == 0.5
    assert both.center == (4.5, 5.5) and both.mass95_px == 2


def test_prediction_field_is_measured_against_the_unclipped_field():
    from segstudio.explain.effective_rf import prediction_erf

    layers = [nn.Conv2d(1, 1, 3, padding=1, bias=False) for _ in range(4)]
    for conv in layers:
        nn.init.constant_(conv.weight, 1.0)
    erf = prediction_erf(Logits(*layers), torch.rand(1, 12, 12), 0, 0)
    assert erf.box == (-4, -4, 4, 4) and erf.theoretical_px == 81
    assert erf.inside_image_px == 25 and erf.mass95_share == erf.mass95_px / 81
    assert erf.mass95_px <= 25


def test_prediction_field_needs_one_image_size():
    from segstudio.explain.effective_rf import prediction_erf

    model = Logits(nn.Conv2d(1, 2, 3, padding=1))
    with pytest.raises(EffectiveFieldError, match="differ in size"):
        prediction_erf(model, [torch.rand(1, 8, 8), torch.rand(1, 9, 8)], 2, 2)
    with pytest.raises(EffectiveFieldError, match="outside"):
        prediction_erf(model, torch.rand(1, 8, 8), 2, 8)


def test_unit_field_share_is_of_the_unclipped_field():
    from segstudio.explain.effective_rf import mass_pixels

    layers = [nn.Conv2d(1, 1, 3, padding=1, bias=False) for _ in range(4)]
    for conv in layers:
        nn.init.constant_(conv.weight, 1.0)
    erf = effective_rf(Logits(*layers), torch.rand(1, 12, 12), 0, 0)
    assert erf.box == (0, 0, 5, 5)                     # clipped, for drawing
    assert erf.mass95_share == mass_pixels(erf.heat) / 81
    # The gradient itself reaches the 25 pixels of the field inside the image.
    image = torch.rand(1, 1, 12, 12, requires_grad=True)
    (grad,) = torch.autograd.grad(Logits(*layers)(image)["out"][0, 0, 0, 0], image)
    assert int((grad != 0).sum()) == 25
    assert erf.mass95_in_image_share == mass_pixels(erf.heat) / 25


def test_prediction_share_is_given_inside_the_image_first():
    # Four 3×3 convolutions: a 9×9 field, of which a 5×5 quarter lies inside the image at the
    # corner. Computed here from the gradient itself: the pixels it reaches are those 25.
    from segstudio.explain.effective_rf import prediction_erf
    from segstudio.ui.explain.receptive_field import erf_text

    layers = [nn.Conv2d(1, 1, 3, padding=1, bias=False) for _ in range(4)]
    for conv in layers:
        nn.init.constant_(conv.weight, 1.0)
    image = torch.rand(1, 1, 12, 12, requires_grad=True)
    (grad,) = torch.autograd.grad(Logits(*layers)(image)["out"][0, 0, 0, 0], image)
    reached = int((grad != 0).sum())
    assert reached == 25
    erf = prediction_erf(Logits(*layers), image[0].detach(), 0, 0)
    assert erf.mass95_in_image_share == erf.mass95_px / reached
    assert erf.to_dict()["mass95_in_image_share"] == round(erf.mass95_px / reached, 4)
    text = erf_text("model", erf)
    inside = f"{erf.mass95_px / reached:.1%} of the 25 px of the field inside the image"
    whole = f"({erf.mass95_px / 81:.1%} of the whole 9×9 px theoretical field"
    assert inside in text and whole in text and text.index(inside) < text.index(whole)


def test_the_peak_area_of_four_box_convolutions_is_counted_from_their_coefficients():
    # Four 3 × 3 all-ones convolutions: the gradient at an interior pixel is the outer product
    # of the coefficients of (1 + x + x²)⁴, peak 19² at the pixel.
    from segstudio.explain.effective_rf import PEAK_FRACTION, prediction_erf

    layers = [nn.Conv2d(1, 1, 3, padding=1, bias=False) for _ in range(4)]
    for conv in layers:
        nn.init.constant_(conv.weight, 1.0)
    erf = prediction_erf(Logits(*layers), torch.rand(1, 20, 20), 10, 10)
    a = np.polynomial.polynomial.polypow([1, 1, 1], 4)
    assert list(a) == [1, 4, 10, 16, 19, 16, 10, 4, 1]
    expected = sum(1 for u in a for v in a if u * v >= PEAK_FRACTION * 19 * 19)
    assert erf.peak_px == expected == 37
    assert erf.to_dict()["peak_px"] == expected


def test_the_peak_area_of_a_gaussian_is_its_two_sigma_disc_and_ignores_a_diffuse_tail():
    from segstudio.explain.effective_rf import mass_pixels, peak_pixels

    yy, xx = np.mgrid[-60:61, -60:61].astype(np.float64)
    sigma = 8.0
    gaussian = np.exp(-(yy ** 2 + xx ** 2) / (2 * sigma ** 2))
    assert peak_pixels(gaussian) == pytest.approx(np.pi * (2 * sigma) ** 2, rel=0.03)
    # The same peak over a faint floor (2 % of it) holding most of the mass: the 95 % mass
    # spreads over nearly the whole map, the peak area grows by under a tenth.
    tail = gaussian + 0.02
    assert peak_pixels(gaussian) < peak_pixels(tail) < 1.1 * peak_pixels(gaussian)
    assert mass_pixels(tail) > 0.8 * tail.size > 5 * mass_pixels(gaussian)
    assert peak_pixels(np.zeros((4, 4))) == 0
