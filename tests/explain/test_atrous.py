"""Valid atrous taps against the convolution itself: ones through a dilated 3×3 convolution of
ones with zero padding count the taps that read the map."""

import numpy as np
import pytest
import torch
from torch import nn

from segstudio.explain.atrous import atrous_conv, tap_curve, valid_tap_map, valid_taps


@pytest.mark.parametrize("rate, size", [(1, 9), (6, 9), (12, 8), (18, 33), (24, 65)])
def test_counts_match_a_convolution_of_ones(rate, size):
    conv = nn.Conv2d(1, 1, 3, padding=rate, dilation=rate, bias=False)
    nn.init.constant_(conv.weight, 1.0)
    with torch.no_grad():
        counted = conv(torch.ones(1, 1, size, size))[0, 0].round().int().numpy()
    np.testing.assert_array_equal(valid_tap_map(conv, (size, size)), counted)


def test_rate_past_the_map_leaves_only_the_centre():
    conv = nn.Conv2d(4, 4, 3, padding=65, dilation=65)
    assert (valid_tap_map(conv, (65, 65)) == 1).all()
    assert valid_taps(conv, (65, 65), (32, 32)) == 1
    curve = tap_curve(conv, 65, rates=(1, 32, 33, 64, 65, 100))
    assert curve.only_centre[-2:] == (1.0, 1.0) and curve.valid_fraction[-1] == pytest.approx(1 / 9)
    assert curve.all_valid[0] > 0.9 and curve.only_centre[0] == 0.0
    # Below half the map some units still see all nine; from rate 33 on none does.
    assert curve.all_valid[1] > 0 and curve.all_valid[2] == 0.0


def test_finds_the_dilated_convolution_of_a_branch():
    branch = nn.Sequential(nn.Conv2d(2, 2, 3, padding=12, dilation=12), nn.BatchNorm2d(2))
    assert atrous_conv(branch) is branch[0]
    assert atrous_conv(nn.Conv2d(2, 2, 3, padding=1)) is None


@pytest.mark.parametrize("size", [17, 65])
def test_shares_by_valid_count_match_a_convolution_of_ones(size):
    # Per rate, run the real dilated convolution (weights one, zero padding) over a map of ones:
    # each output counts the taps that fall on the map. The shares of each count are Fig. 4.
    rates = (1, 5, size // 4, size // 2, size // 2 + 1, size - 1, size + 3)
    curve = tap_curve(nn.Conv2d(1, 1, 3, padding=2, dilation=2), size, rates=rates)
    measured = {}
    for i, rate in enumerate(rates):
        conv = nn.Conv2d(1, 1, 3, padding=rate, dilation=rate, bias=False)
        nn.init.constant_(conv.weight, 1.0)
        with torch.no_grad():
            counted = conv(torch.ones(1, 1, size, size))[0, 0].round().int().numpy()
        values, numbers = np.unique(counted, return_counts=True)
        for v, n in zip(values, numbers):
            measured.setdefault(int(v), [0.0] * len(rates))[i] = n / counted.size
    assert curve.counts == tuple(sorted(measured))
    for count, shares in measured.items():
        assert curve.share(count) == pytest.approx(shares, abs=1e-12)


def test_four_valid_weights_dominate_at_half_the_map():
    # DeepLab v3 Fig. 4's middle curve: at rates 32-33 on a 65×65 map 97 % of the units apply
    # only a 2×2 corner of the 3×3 filter; neither 1 nor 9 describes them.
    curve = tap_curve(nn.Conv2d(1, 1, 3, padding=6, dilation=6), 65, rates=(32, 33))
    assert curve.share(4) == pytest.approx((0.969, 0.969), abs=1e-3)
    assert curve.share(9)[1] == curve.share(1)[0] == 0.0
    assert 4 in curve.counts and curve.to_dict()["valid_count_shares"]["4"] == [0.9695, 0.9695]


def test_the_tap_curve_plot_draws_the_four_valid_curve(qtbot):
    from PySide6.QtGui import QColor, QImage

    from segstudio.ui.explain.tap_curve import SERIES, TapCurveView

    view = TapCurveView()
    qtbot.addWidget(view)
    view.resize(300, 130)
    view.set_curve(tap_curve(nn.Conv2d(1, 1, 3, padding=6, dilation=6), 65), (6, 12, 18))
    image = QImage(view.size(), QImage.Format.Format_RGB32)
    image.fill(QColor(0, 0, 0))
    view.render(image)
    four = next(colour for key, _label, colour in SERIES if key == 4)
    # The curve's peak (0.97 at rates 32-33) is drawn in its colour in the upper plot area.
    pixels = {image.pixelColor(x, y).getRgb()[:3] for x in range(30, 290) for y in range(8, 30)}
    assert four in pixels
