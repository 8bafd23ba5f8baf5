"""Each architecture's defining mechanism, checked on small odd-sized inputs."""

from __future__ import annotations

import functools

import pytest
import torch
from torch import nn

from segstudio.models.backbones import VGG16, ResNet
from segstudio.models.deeplab import DeepLabV3
from segstudio.models.fcn import CROP_OUTPUT, CROP_POOL3, CROP_POOL4, bilinear_upsampler
from segstudio.models.refinenet import (ChainedResidualPool, MultiResolutionFusion,
                                        ResidualConvUnit)
from segstudio.models.registry import REGISTRY, build_model
from segstudio.models.segnet import MaxUnpoolDecoder

torch.set_num_threads(1)

C = 5
OWN_SEMANTIC = ["fcn32s", "fcn16s", "fcn8s", "segnet", "unet", "pspnet", "deeplabv1",
                "deeplabv2", "deeplabv3", "refinenet"]


@functools.lru_cache(maxsize=1)
def paper(name: str) -> nn.Module:
    torch.manual_seed(0)
    return build_model(name, C, "paper").eval()


def lite(name: str) -> nn.Module:
    torch.manual_seed(0)
    return build_model(name, C, "lite").eval()


def capture(module: nn.Module, *, inputs: bool = False) -> list:
    """Record ``module``'s outputs (or first inputs) during the next forwards."""
    seen: list = []
    module.register_forward_hook(lambda m, i, o: seen.append(i[0] if inputs else o))
    return seen


def run(model: nn.Module, h: int, w: int) -> dict:
    with torch.no_grad():
        return model(torch.randn(1, 3, h, w))


@pytest.mark.parametrize("name", OWN_SEMANTIC)
@pytest.mark.parametrize("size", [(37, 53), (64, 31)])
def test_lite_models_return_logits_at_the_input_size(name, size):
    out = run(lite(name), *size)
    assert out["out"].shape == (1, C, *size)
    assert torch.isfinite(out["out"]).all()
    if "aux" in out:
        assert out["aux"].shape == (1, C, *size)


@pytest.mark.parametrize("name", OWN_SEMANTIC)
def test_paper_models_return_logits_at_odd_input_size(name):
    out = run(paper(name), 65, 67)
    assert out["out"].shape == (1, C, 65, 67)
    assert ("aux" in out) == (name == "pspnet")


@pytest.mark.parametrize("name", ["fcn_resnet50", "deeplabv3_mobilenet_v3_large"])
def test_torchvision_models_return_out_and_aux_at_the_input_size(name):
    out = run(paper(name), 45, 51)
    assert out["out"].shape == out["aux"].shape == (1, C, 45, 51)


# FCN ---------------------------------------------------------------------------------------

def bilinear_profile(factor: int) -> torch.Tensor:
    half = torch.tensor([(2 * i + 1) / (2 * factor) for i in range(factor)])
    return torch.cat([half, half.flip(0)])


@pytest.mark.parametrize("factor", [2, 8, 16, 32])
def test_fcn_upsampling_is_initialised_to_a_bilinear_kernel(factor):
    layer = bilinear_upsampler(3, factor)
    p = bilinear_profile(factor)
    expected = p[:, None] * p[None, :]
    assert layer.kernel_size == (2 * factor, 2 * factor) and layer.stride == (factor, factor)
    for i in range(3):
        for j in range(3):
            want = expected if i == j else torch.zeros_like(expected)
            assert torch.allclose(layer.weight[i, j], want)
    # Bilinear interpolation keeps a constant image constant away from the borders.
    with torch.no_grad():
        up = layer(torch.full((1, 3, 4, 4), 2.0))
    inner = up[:, :, 2 * factor:-2 * factor, 2 * factor:-2 * factor]
    assert torch.allclose(inner, torch.full_like(inner, 2.0))


def test_fcn8s_converts_fc6_fc7_to_convolutions_on_vgg16():
    model = paper("fcn8s")
    assert model.fc6.kernel_size == (7, 7) and model.fc6.in_channels == 512
    assert model.fc6.out_channels == 4096
    assert model.fc7.kernel_size == (1, 1) and model.fc7.out_channels == 4096
    assert model.score_pool4.in_channels == 512 and model.score_pool3.in_channels == 256
    ups = [m for m in model.modules() if isinstance(m, nn.ConvTranspose2d)]
    assert sorted(m.stride[0] for m in ups) == [2, 2, 8]


def test_fcn_vgg16_matches_torchvision_layer_names_and_shapes():
    from torchvision.models import vgg16

    ours = paper("fcn8s").backbone.state_dict()
    theirs = {k: v for k, v in vgg16(weights=None).state_dict().items()
              if k.startswith("features.")}
    assert {k: v.shape for k, v in ours.items()} == {k: v.shape for k, v in theirs.items()}


@pytest.mark.parametrize("stride", [8, 16])
def test_fcn_fuses_skip_scores_by_addition(stride):
    model = lite(f"fcn{stride}s")
    for layer in (model.score_pool4, getattr(model, "score_pool3", None)):
        if layer is not None:  # skips start at zero; make them matter for this check
            nn.init.normal_(layer.weight)
            nn.init.normal_(layer.bias)
    coarse = capture(model.upscore_pool4 if stride == 8 else model.upscore2)
    skip = capture(model.score_pool3 if stride == 8 else model.score_pool4)
    fused = capture(model.upscore, inputs=True)
    run(model, 41, 59)
    offset = CROP_POOL3 if stride == 8 else CROP_POOL4
    h, w = coarse[0].shape[-2:]
    expected = coarse[0] + skip[0][:, :, offset:offset + h, offset:offset + w]
    assert torch.allclose(fused[0], expected)


def centre_map(layers, a=1.0, b=0.0):
    """(a, b) with image x = a·y + b for position y after ``layers`` (receptive-field centres)."""
    for m in layers:
        if isinstance(m, nn.ConvTranspose2d):
            k, s = m.kernel_size[0], m.stride[0]
            a, b = a / s, b - a * (k - 1) / (2 * s)
        elif isinstance(m, (nn.Conv2d, nn.MaxPool2d)):
            k, s, p, d = (v if isinstance(v, int) else v[0]
                          for v in (m.kernel_size, m.stride, m.padding, m.dilation))
            a, b = a * s, b + a * (d * (k - 1) / 2 - p)
    return a, b


def shifted(mapping, offset):
    a, b = mapping
    return a, b + a * offset


def test_fcn_crop_offsets_align_every_fused_map_with_the_image():
    model = lite("fcn8s")
    f = model.backbone.features
    pool3, pool4, pool5 = (centre_map(f[:i + 1]) for i in (16, 23, 30))
    score = centre_map([model.fc6], *pool5)
    fused4 = centre_map([model.upscore2], *score)
    assert shifted(pool4, CROP_POOL4) == fused4
    fused3 = centre_map([model.upscore_pool4], *fused4)
    assert shifted(pool3, CROP_POOL3) == fused3
    assert shifted(centre_map([model.upscore], *fused3), CROP_OUTPUT[8]) == (1.0, 0.0)
    for stride in (32, 16):
        m = lite(f"fcn{stride}s")
        chain = [m.fc6] + ([m.upscore2] if stride == 16 else []) + [m.upscore]
        assert shifted(centre_map(chain, *pool5), CROP_OUTPUT[stride]) == (1.0, 0.0)


def test_fcn32s_has_one_32x_upsampling_and_no_skips():
    model = lite("fcn32s")
    ups = [m for m in model.modules() if isinstance(m, nn.ConvTranspose2d)]
    assert [m.stride for m in ups] == [(32, 32)]
    assert not hasattr(model, "score_pool4")


def test_torchvision_fcn_parameter_counts_match_torchvision():
    from torchvision.models.segmentation import fcn_resnet50, fcn_resnet101

    for name, builder in (("fcn_resnet50", fcn_resnet50), ("fcn_resnet101", fcn_resnet101)):
        ours = sum(p.numel() for p in paper(name).parameters())
        theirs = sum(p.numel() for p in builder(weights=None, weights_backbone=None,
                                                num_classes=C, aux_loss=True).parameters())
        assert ours == theirs


# SegNet ------------------------------------------------------------------------------------

def test_segnet_upsamples_only_by_unpooling():
    model = paper("segnet")
    assert not any(isinstance(m, nn.ConvTranspose2d) for m in model.modules())
    assert isinstance(model.decoder, MaxUnpoolDecoder)
    unpools = [m for m in model.decoder.modules() if isinstance(m, nn.MaxUnpool2d)]
    pools = [m for m in model.encoder.modules() if isinstance(m, nn.MaxPool2d)]
    assert len(unpools) == len(pools) == 5
    assert all(p.return_indices for p in pools)


def test_segnet_unpool_places_values_at_the_pooling_indices():
    model = lite("segnet")
    x = torch.randn(1, 3, 9, 11)
    pooled, indices = model.encoder.features[6](x)
    restored = model.decoder.stages[-1].unpool(pooled, indices, output_size=x.shape[-2:])
    assert restored.shape == x.shape
    flat_x, flat_r = x.flatten(2), restored.flatten(2)
    flat_i = indices.flatten(2)
    assert torch.equal(flat_r.gather(2, flat_i), flat_x.gather(2, flat_i))
    assert torch.equal(flat_r.gather(2, flat_i), pooled.flatten(2))
    mask = torch.zeros_like(flat_r, dtype=torch.bool).scatter_(2, flat_i, True)
    assert (flat_r[~mask] == 0).all()


def test_segnet_encoder_matches_torchvision_vgg16_bn_names():
    from torchvision.models import vgg16_bn

    ours = {k: v.shape for k, v in paper("segnet").encoder.state_dict().items()}
    theirs = {k: v.shape for k, v in vgg16_bn(weights=None).state_dict().items()
              if k.startswith("features.")}
    assert ours == theirs


# U-Net -------------------------------------------------------------------------------------

def test_unet_concatenates_contracting_features_before_each_expansion():
    model = lite("unet")
    skips = [capture(model.inc)] + [capture(d) for d in model.downs[:-1]]
    ups = [capture(u.up) for u in model.ups]
    conv_inputs = [capture(u.conv, inputs=True) for u in model.ups]
    run(model, 32, 48)
    for level, (skip, up, seen) in enumerate(zip(reversed(skips), ups, conv_inputs)):
        assert torch.equal(seen[0], torch.cat([skip[0], up[0]], dim=1)), level


def test_unet_paper_widths_and_up_convolutions():
    model = paper("unet")
    assert [d[1][0].out_channels for d in model.downs] == [128, 256, 512, 1024]
    ups = [u.up for u in model.ups]
    assert all(isinstance(u, nn.ConvTranspose2d) and u.kernel_size == (2, 2)
               and u.stride == (2, 2) for u in ups)
    assert [u.out_channels for u in ups] == [512, 256, 128, 64]


# PSPNet ------------------------------------------------------------------------------------

def test_pspnet_dilates_layer3_and_layer4_to_output_stride_8():
    model = paper("pspnet")
    for layer, rate in ((model.backbone.layer3, 2), (model.backbone.layer4, 4)):
        assert all(b.conv2.dilation == (rate, rate) and b.conv2.stride == (1, 1)
                   for b in layer[1:])
    feats = capture(model.backbone.layer4)
    run(model, 65, 67)
    assert feats[0].shape[-2:] == (9, 9)


def test_pspnet_pyramid_pools_into_1_2_3_6_bins_and_concatenates():
    model = paper("pspnet")
    ppm = model.head.ppm
    assert ppm.bins == (1, 2, 3, 6)
    stages = [capture(s) for s in ppm.stages]
    fused = capture(ppm)
    run(model, 65, 67)
    assert [s[0].shape[-2:] for s in stages] == [(b, b) for b in (1, 2, 3, 6)]
    assert all(s[0].shape[1] == 2048 // 4 for s in stages)
    assert fused[0].shape[1] == 2 * 2048


def test_pspnet_aux_head_reads_layer3():
    model = paper("pspnet")
    assert model.aux[0][0].in_channels == model.backbone.layer3[-1].conv3.out_channels == 1024


# DeepLab -----------------------------------------------------------------------------------

def test_deeplabv1_keeps_stride_8_with_atrous_conv5_and_large_fov_fc6():
    model = paper("deeplabv1")
    f = model.backbone.features
    assert [f[i].stride for i in (4, 9, 16, 23, 30)] == [2, 2, 2, 1, 1]
    assert all(f[i].dilation == (2, 2) for i in (24, 26, 28))
    assert model.fc6.kernel_size == (3, 3) and model.fc6.dilation == (12, 12)
    assert model.fc6.out_channels == 1024
    seen = capture(model.fc6, inputs=True)
    run(model, 65, 67)
    assert seen[0].shape[-2:] == (9, 9)
    assert REGISTRY["deeplabv1"].uses_crf


def test_deeplabv2_aspp_sums_four_atrous_branches():
    model = paper("deeplabv2")
    assert type(model.head).__name__ == "ASPPv2"
    assert [c.dilation[0] for c in model.head.convs] == [6, 12, 18, 24]
    assert len(model.backbone.layer3) == 23            # ResNet-101
    branches = [capture(c) for c in model.head.convs]
    total = capture(model.head)
    run(model, 65, 67)
    assert torch.allclose(total[0], sum(b[0] for b in branches), atol=1e-5)
    assert total[0].shape[1] == C
    assert REGISTRY["deeplabv2"].uses_crf


def test_deeplabv3_multi_grid_and_concatenating_aspp_at_output_stride_16():
    model = paper("deeplabv3")
    layer4 = model.backbone.layer4
    assert [b.conv2.dilation[0] for b in layer4] == [2, 4, 8]
    assert model.backbone.layer3[0].conv2.stride == (2, 2)
    aspp = model.head.aspp
    assert aspp.convs[0][0].kernel_size == (1, 1)
    assert [aspp.convs[i][0].dilation[0] for i in (1, 2, 3)] == [6, 12, 18]
    assert sum(isinstance(m, nn.BatchNorm2d) for m in aspp.modules()) == 6
    branches = [capture(c) for c in aspp.convs]
    projected = capture(aspp.project, inputs=True)
    run(model, 65, 67)
    assert torch.equal(projected[0], torch.cat([b[0] for b in branches], dim=1))
    assert branches[4][0].shape[-2:] == (5, 5)         # image pooling broadcast to the map
    assert aspp.project[0].in_channels == 5 * 256


def test_deeplabv3_output_stride_8_doubles_every_rate():
    model = DeepLabV3(C, depth=18, width=0.25, output_stride=8)
    assert [b.conv2.dilation[0] for b in model.backbone.layer4] == [4, 8]
    assert model.backbone.layer3[-1].conv2.dilation == (2, 2)
    assert [model.head.aspp.convs[i][0].dilation[0] for i in (1, 2, 3)] == [12, 24, 36]


def test_torchvision_deeplabv3_parameter_counts_match_torchvision():
    from torchvision.models import segmentation as seg

    for name in ("deeplabv3_resnet50", "deeplabv3_resnet101", "deeplabv3_mobilenet_v3_large"):
        builder = getattr(seg, name)
        theirs = builder(weights=None, weights_backbone=None, num_classes=C, aux_loss=True)
        ours = paper(name)
        assert sum(p.numel() for p in ours.parameters()) == \
            sum(p.numel() for p in theirs.parameters()), name


# RefineNet ---------------------------------------------------------------------------------

def test_refinenet_cascades_four_blocks_of_rcu_fusion_and_chained_pooling():
    model = paper("refinenet")
    blocks = [model.refine4, model.refine3, model.refine2, model.refine1]
    assert all(isinstance(b.crp, ChainedResidualPool) for b in blocks)
    assert all(isinstance(b.out, ResidualConvUnit) for b in blocks)
    assert not hasattr(model.refine4, "fusion")
    assert all(isinstance(b.fusion, MultiResolutionFusion) for b in blocks[1:])
    assert model.backbone.layer4[0].conv2.stride == (2, 2)     # no dilation: real resolutions
    outs = [capture(b) for b in blocks]
    run(model, 65, 67)
    assert [o[0].shape[-2:] for o in outs] == [(3, 3), (5, 5), (9, 9), (17, 17)]


def test_lite_refinenet_refines_at_one_eighth_width_on_a_half_width_resnet18():
    model = lite("refinenet")
    assert model.backbone.channels == [32, 64, 128, 256]
    assert model.refine4.out.conv1.in_channels == 64        # 512 / 8
    assert model.refine1.out.conv1.in_channels == 32        # 256 / 8
    assert paper("refinenet").refine1.out.conv1.in_channels == 256
    assert sum(p.numel() for p in model.parameters()) < 4_000_000


def test_residual_conv_unit_adds_its_input():
    unit = ResidualConvUnit(4)
    nn.init.zeros_(unit.conv2.weight)
    x = torch.randn(1, 4, 5, 7)
    assert torch.equal(unit(x), x)


def test_chained_residual_pool_sums_each_pooled_stage_onto_the_relu_input():
    crp = ChainedResidualPool(2, blocks=2)
    for conv in crp.convs:   # identity convolutions expose the pooling chain
        nn.init.zeros_(conv.weight)
        conv.weight.data[range(2), range(2), 1, 1] = 1.0
    x = torch.randn(1, 2, 9, 9)
    r = torch.relu(x)
    pool = nn.MaxPool2d(5, 1, 2)
    once = pool(r)
    assert torch.allclose(crp(x), r + once + pool(once))


def test_multi_resolution_fusion_upsamples_to_the_finest_input_and_sums():
    mrf = MultiResolutionFusion([3, 6], 4)
    fine, coarse = torch.randn(1, 3, 9, 11), torch.randn(1, 6, 5, 6)
    out = mrf([fine, coarse])
    up = nn.functional.interpolate(mrf.convs[1](coarse), size=(9, 11), mode="bilinear",
                                   align_corners=False)
    assert torch.allclose(out, mrf.convs[0](fine) + up, atol=1e-6)


# Backbones and Mask R-CNN ------------------------------------------------------------------

def test_resnet_matches_torchvision_names_and_shapes():
    from torchvision.models import resnet18, resnet50

    for depth, builder in ((18, resnet18), (50, resnet50)):
        ours = {k: v.shape for k, v in ResNet(depth).state_dict().items()}
        theirs = {k: v.shape for k, v in builder(weights=None).state_dict().items()
                  if not k.startswith("fc.")}
        assert ours == theirs


def test_vgg_width_multiplier_scales_every_convolution():
    convs = [m for m in VGG16(width=0.125).features if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [8, 8, 16, 16, 32, 32, 32] + [64] * 6


def _he_std_ratio(conv: nn.Conv2d) -> float:
    """The weights' spread over He's sqrt(2 / fan-out), 1.0 for a He-initialised layer."""
    fan_out = conv.out_channels * conv.kernel_size[0] * conv.kernel_size[1]
    return conv.weight.std().item() / (2.0 / fan_out) ** 0.5


@pytest.mark.parametrize("name, config", [("fcn32s", "lite"), ("fcn8s", "lite"),
                                          ("deeplabv1", "lite"), ("deeplabv1", "paper")])
def test_plain_vgg_networks_start_from_he_initialisation_without_batch_norm(name, config):
    model = lite(name) if config == "lite" else paper(name)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    convs = [m for m in model.backbone.features if isinstance(m, nn.Conv2d)]
    convs += [model.fc6, model.fc7]
    assert len(convs) == 15
    for conv in convs[1:]:     # conv1_1 has too few weights for a steady estimate
        assert 0.85 < _he_std_ratio(conv) < 1.15
        assert torch.count_nonzero(conv.bias) == 0


def test_he_initialised_lite_fcn_scores_still_vary_across_the_image():
    # The default initialisation left the untrained scores nearly equal at every pixel.
    torch.manual_seed(0)
    out = run(lite("fcn32s"), 96, 96)["out"]
    spread = (out - out.mean(dim=(2, 3), keepdim=True)).std() / out.std()
    assert spread > 0.2


def test_maskrcnn_paper_is_torchvision_v2_and_lite_returns_detections():
    from torchvision.models.detection import maskrcnn_resnet50_fpn_v2

    theirs = maskrcnn_resnet50_fpn_v2(weights=None, weights_backbone=None, num_classes=C)
    ours = build_model("maskrcnn", C, "paper")
    assert sum(p.numel() for p in ours.parameters()) == \
        sum(p.numel() for p in theirs.parameters())
    model = lite("maskrcnn")
    assert model.transform.min_size == (256,) and model.transform.max_size == 512
    with torch.no_grad():
        (det,) = model([torch.rand(3, 61, 83)])
    assert set(det) == {"boxes", "labels", "scores", "masks"}
    k = det["boxes"].shape[0]
    assert det["masks"].shape == (k, 1, 61, 83)
    assert ((det["labels"] >= 1) & (det["labels"] < C)).all()
