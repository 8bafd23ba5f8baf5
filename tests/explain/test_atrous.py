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
