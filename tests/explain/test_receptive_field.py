"""Theoretical receptive fields against values worked out by hand."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models import resnet50, vgg16
from torchvision.models.segmentation import deeplabv3_resnet50

from segstudio.explain.receptive_field import (
    MODEL_OUTPUT, ReceptiveField, ReceptiveFieldError, atrous_sampling_grid, box_at,
    receptive_field, receptive_fields, unit_at)

torch.set_num_threads(1)


def _conv(k=3, s=1, d=1, p=None):
    return nn.Conv2d(1, 1, k, stride=s, dilation=d, padding=d * (k - 1) // 2 if p is None else p)


def test_three_stacked_3x3_convolutions_see_7_pixels():
    net = nn.Sequential(_conv(), _conv(), _conv())
    rf = receptive_field(net, "2", (32, 32))
    assert rf.size == (7, 7) and rf.jump == (1, 1) and rf.start == (0, 0)


def test_strided_conv_then_conv_sees_7_pixels_with_jump_2():
    net = nn.Sequential(_conv(s=2), _conv())
    first, second = receptive_fields(net, ["0", "1"], (32, 32)).values()
    assert first.size == (3, 3) and first.jump == (2, 2)
    assert second.size == (7, 7) and second.jump == (2, 2)


def test_dilation_2_spreads_a_3x3_kernel_over_5_pixels():
    assert receptive_field(nn.Sequential(_conv(d=2)), "0", (16, 16)).size == (5, 5)


def test_unpadded_pooling_moves_the_first_unit_centre():
    net = nn.Sequential(_conv(p=0), nn.MaxPool2d(2))
    rf = receptive_field(net, "1", (16, 16))
    # conv3 without padding centres unit 0 on pixel 1; the 2x2 pool then averages units 0 and 1.
    assert rf.size == (4, 4) and rf.jump == (2, 2) and rf.start == (1.5, 1.5)


def test_rectangular_kernels_are_followed_per_axis():
    net = nn.Sequential(nn.Conv2d(1, 1, (1, 7), padding=(0, 3)), nn.Conv2d(1, 1, (3, 1), (2, 1)))
    rf = receptive_field(net, "1", (16, 16))
    assert rf.size == (3, 7) and rf.jump == (2, 1)


def test_vgg16_pool5_sees_212_pixels_and_conv5_3_sees_196():
    with torch.device("meta"):
        features = vgg16(weights=None).features
    fields = receptive_fields(features, ["28", "30", "23"], (224, 224))
    # By hand: conv1 x2 -> 5, pool1 -> 6 (j2), conv2 x2 -> 14, pool2 -> 16 (j4), conv3 x3 -> 40,
    # pool3 -> 44 (j8), conv4 x3 -> 92, pool4 -> 100 (j16), conv5 x3 -> 196, pool5 -> 212 (j32).
    assert fields["28"].size == (196, 196) and fields["28"].jump == (16, 16)
    assert fields["30"].size == (212, 212) and fields["30"].jump == (32, 32)
    assert fields["23"].size == (100, 100)


def test_torchvision_resnet50_layer4_sees_427_pixels_with_jump_32():
    # torchvision puts the stride on the 3x3 conv (ResNet "v1.5"): by hand, stem 7 (j2),
    # maxpool 11 (j4), layer1 +3*8 = 35, layer2 +8 +3*16 = 91 (j8), layer3 +16 +5*32 = 267 (j16),
    # layer4 +32 +2*64 = 427 (j32).
    with torch.device("meta"):
        net = resnet50(weights=None)
    fields = receptive_fields(net, ["layer1", "layer2", "layer3", "layer4"], (224, 224))
    assert [f.size[0] for f in fields.values()] == [35, 91, 267, 427]
    assert [f.jump[0] for f in fields.values()] == [4, 8, 16, 32]


def test_original_resnet50_with_stride_on_the_1x1_conv_sees_483_pixels():
    # The often published 483 counts the Caffe layout: stride 2 on the first 1x1 conv, so each
    # stage's first 3x3 already runs at the new jump: 35, 99, 291, 483.
    with torch.device("meta"):
        net = resnet50(weights=None)
    for stage in (net.layer2, net.layer3, net.layer4):
        stage[0].conv1.stride, stage[0].conv2.stride = (2, 2), (1, 1)
    fields = receptive_fields(net, ["layer2", "layer3", "layer4"], (224, 224))
    assert [f.size[0] for f in fields.values()] == [99, 291, 483]
    assert fields["layer4"].jump == (32, 32)


def test_deeplabv3_image_pooling_sees_the_whole_image_and_aspp_rates_grow_the_field():
    with torch.device("meta"):
        net = deeplabv3_resnet50(weights=None, weights_backbone=None, num_classes=3)
    names = ["backbone.layer4", "classifier.0.convs.1", "classifier.0.convs.3",
             "classifier.0.convs.4", MODEL_OUTPUT]
    fields = receptive_fields(net, names, (128, 128))
    layer4 = fields["backbone.layer4"]
    assert layer4.jump == (8, 8)
    # ASPP rate 12 on a jump-8 map: a 3x3 conv with dilation 12 adds 2 * 12 * 8 pixels.
    assert fields["classifier.0.convs.1"].size[0] == layer4.size[0] + 2 * 12 * 8
    assert fields["classifier.0.convs.3"].size[0] == layer4.size[0] + 2 * 36 * 8
    pooled = fields["classifier.0.convs.4"].size[0]
    assert pooled >= 128 and pooled == layer4.size[0] + (128 // 8 - 1) * 8
    out = fields[MODEL_OUTPUT]
    assert out.jump == (1, 1) and out.size[0] > pooled


def test_skip_connection_keeps_the_larger_field_and_upsampling_divides_the_jump():
    class Skip(nn.Module):
        def __init__(self):
            super().__init__()
            self.down = nn.Conv2d(1, 1, 3, stride=2, padding=1)
            self.deep = nn.Conv2d(1, 1, 3, padding=1)

        def forward(self, x):
            y = self.deep(self.down(x))
            return x + F.interpolate(y, size=x.shape[-2:], mode="nearest")

    net = Skip()
    rf = receptive_field(net, MODEL_OUTPUT, (16, 16))
    assert rf.size == (7, 7) and rf.jump == (1, 1)


def test_transposed_convolution_divides_the_jump():
    net = nn.Sequential(nn.Conv2d(1, 1, 3, stride=2, padding=1), nn.ConvTranspose2d(1, 1, 2, 2))
    rf = receptive_field(net, "1", (16, 16))
    assert rf.jump == (1, 1) and rf.size == (3, 3)


def test_model_that_cannot_run_on_meta_is_traced_with_a_real_pass():
    class DataDependent(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = _conv(s=2)

        def forward(self, x):
            y = self.conv(x)
            return y * 2 if float(y.abs().sum()) >= 0 else y

    rf = receptive_field(DataDependent(), MODEL_OUTPUT, (16, 16))
    assert rf.size == (3, 3) and rf.jump == (2, 2)


def test_unknown_layer_is_a_clear_error():
    with pytest.raises(ReceptiveFieldError, match="no layer named 'layer9'"):
        receptive_field(nn.Sequential(_conv()), "layer9")


def test_box_of_a_unit_is_centred_on_it_and_clipped_to_the_image():
    rf = ReceptiveField((7, 7), (2, 2), (0, 0))
    assert box_at(rf, 3, 4) == (3, 5, 10, 12)
    assert box_at(rf, 0, 0, image_size=(20, 20)) == (0, 0, 4, 4)
    assert unit_at(rf, 6.4, 9.2) == (3, 5)
    assert unit_at(rf, 100, -5, feature_size=(10, 10)) == (9, 0)


def test_atrous_taps_are_rate_times_jump_pixels_apart():
    rf = ReceptiveField((100, 100), (16, 16), (7.5, 7.5))
    taps = atrous_sampling_grid(6, centre=(200, 300), jump=rf)
    assert taps.shape == (9, 2)
    np.testing.assert_allclose(np.unique(taps[:, 0]), [104, 200, 296])
    np.testing.assert_allclose(np.unique(taps[:, 1]), [204, 300, 396])


def test_pooled_vector_expanded_over_the_map_keeps_the_map_grid_and_sees_everything():
    class ExpandedPool(nn.Module):
        def __init__(self):
            super().__init__()
            self.down = nn.Conv2d(1, 1, 3, stride=4, padding=1)
            self.pool = nn.AdaptiveAvgPool2d(1)

        def forward(self, x):
            y = self.down(x)
            return self.pool(y).expand(-1, -1, *y.shape[-2:])

    rf = receptive_field(ExpandedPool(), MODEL_OUTPUT, (32, 32))
    # 8x8 units 4 pixels apart, each 3 wide: pooled together they span 3 + 7 * 4 = 31 pixels.
    assert rf.size == (31, 31) and rf.jump == (4, 4) and rf.start == (0, 0)


def test_squeeze_excitation_gate_widens_the_field_without_moving_the_units():
    class Gated(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 2, 3, stride=2, padding=1)

        def forward(self, x):
            y = self.conv(x)
            return y * torch.sigmoid(y.mean((2, 3), keepdim=True))

    rf = receptive_field(Gated(), MODEL_OUTPUT, (16, 16))
    assert rf.size == (3 + 7 * 2, 3 + 7 * 2) and rf.jump == (2, 2) and rf.start == (0, 0)


def test_max_unpooling_restores_the_grid_and_keeps_what_the_pool_saw():
    class PoolUnpool(nn.Module):
        def __init__(self):
            super().__init__()
            self.pool = nn.MaxPool2d(2, return_indices=True)
            self.unpool = nn.MaxUnpool2d(2)

        def forward(self, x):
            return self.unpool(*self.pool(x))

    rf = receptive_field(PoolUnpool(), "unpool", (8, 8), in_channels=1)
    assert rf.size == (2, 2) and rf.jump == (1, 1)


def test_tracing_leaves_the_model_its_weights_mode_and_hooks_untouched():
    net = nn.Sequential(_conv(s=2), nn.BatchNorm2d(1), _conv())
    net.train()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    seen = []
    net[2].register_forward_hook(lambda _m, _i, out: seen.append(out.device.type))
    assert receptive_field(net, "2", (16, 16)).size == (7, 7)
    assert seen == [] and net.training
    after = net.state_dict()
    assert all(after[k].device.type == "cpu" and torch.equal(after[k], v)
               for k, v in before.items())


def test_a_branch_that_never_runs_is_an_error_unless_skipped():
    class Unused(nn.Module):
        def __init__(self):
            super().__init__()
            self.used, self.spare = _conv(), _conv()

        def forward(self, x):
            return self.used(x)

    with pytest.raises(ReceptiveFieldError, match="did not run.*'spare'"):
        receptive_fields(Unused(), ["used", "spare"], (8, 8))
    fields = receptive_fields(Unused(), ["used", "spare"], (8, 8), skip_missing=True)
    assert list(fields) == ["used"] and fields["used"].size == (3, 3)
