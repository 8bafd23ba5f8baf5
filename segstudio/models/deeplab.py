"""DeepLab v1, v2 and v3 (Chen et al., ICLR 2015 / TPAMI 2017 / arXiv 2017) and torchvision's.

All three trade pooling strides for atrous (dilated) convolution so that feature maps stay dense
while the field of view grows. v1 and v2 end in bilinear upsampling refined by a fully connected
CRF (done outside the network, in ``segstudio.refine``). Logits are resized to the input's own
size, so any image size works.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from segstudio.models.backbones import (VGG16, ResNet, he_init, load_imagenet_resnet,
                                        load_imagenet_vgg16, scaled)


def _resize(x: torch.Tensor, size) -> torch.Tensor:
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


class DeepLabV1(nn.Module):
    """DeepLab-LargeFOV (v1 §3.1, §4.1): VGG-16 with pool4/pool5 at stride 1, conv5 at rate 2,
    a 3×3 stride-1 average pool ``pool5a`` (as in the published prototxt), and fc6 as a 3×3
    convolution at rate 12 with 1024 channels; output stride 8, fc6's field 435 pixels.
    Dropout drops single elements, as Caffe's does.

    Plain VGG without batch norm, as the paper; trained from scratch it relies on the He
    initialisation of the trunk and of fc6/fc7 (fc8 keeps PyTorch's default).
    ``pool5a=False`` builds the network without the average pool (fc6's field is then 419).
    The choice travels in the state dict (``pool5a_on``); a checkpoint saved before the pool
    existed has no such entry and loads without it, computing what it was trained to compute.
    """

    OPTIONAL_STATE = ("pool5a_on",)

    def __init__(self, num_classes: int, *, width: float = 1.0, pool5a: bool = True) -> None:
        super().__init__()
        # DeepLab's pools are 3×3 with padding 1; pool4 and pool5 keep the resolution.
        self.backbone = VGG16(width=width, pool_kernel=3, pool_padding=1,
                              pool_strides=(2, 2, 2, 1, 1), stage_dilations=(1, 1, 1, 1, 2))
        fc = scaled(1024, width)
        # Caffe's AVE pooling divides by the whole window, padding included.
        self.pool5a = nn.AvgPool2d(3, stride=1, padding=1) if pool5a else None
        self.register_buffer("pool5a_on", torch.tensor(bool(pool5a)))
        self.fc6 = nn.Conv2d(self.backbone.out_channels, fc, 3, padding=12, dilation=12)
        self.fc7 = nn.Conv2d(fc, fc, 1)
        self.fc8 = nn.Conv2d(fc, num_classes, 1)
        self.relu = nn.ReLU(inplace=True)
        self.dropout = nn.Dropout(0.5)
        # As the VGG trunk: He initialisation keeps a from-scratch net's scores from vanishing.
        he_init(self.fc6)
        he_init(self.fc7)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        h = self.backbone(x)[-1]
        if self.pool5a is not None:
            h = self.pool5a(h)
        h = self.dropout(self.relu(self.fc6(h)))
        h = self.dropout(self.relu(self.fc7(h)))
        return {"out": _resize(self.fc8(h), x.shape[-2:])}

    def load_imagenet(self) -> None:
        load_imagenet_vgg16(self.backbone)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        key = prefix + "pool5a_on"
        if key not in state_dict:              # saved before pool5a existed: trained without it
            state_dict[key] = torch.tensor(False)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        if state_dict[key].device.type != "meta":
            on = bool(state_dict[key])
            self.pool5a = nn.AvgPool2d(3, stride=1, padding=1) if on else None


class ASPPv2(nn.Module):
    """Atrous spatial pyramid pooling of DeepLab v2 (§3.3): parallel 3×3 atrous classifiers at
    ``rates``, whose score maps are SUMMED."""

    def __init__(self, in_channels: int, num_classes: int,
                 rates: Sequence[int] = (6, 12, 18, 24)) -> None:
        super().__init__()
        self.rates = tuple(rates)
        self.convs = nn.ModuleList(nn.Conv2d(in_channels, num_classes, 3, padding=r, dilation=r)
                                   for r in self.rates)
        for conv in self.convs:
            nn.init.normal_(conv.weight, std=0.01)
            nn.init.zeros_(conv.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([conv(x) for conv in self.convs]).sum(dim=0)


class DeepLabV2(nn.Module):
    """ResNet with layer3/layer4 dilated (output stride 8) and the summing ASPP head.

    The ResNet is torchvision's ("v1.5"): a bottleneck block that downsamples puts its stride on
    the 3×3 convolution, where the Caffe ResNet-101 of the published DeepLab v2 puts it on the
    first 1×1. Only layer2's first block strides here (layer3 and layer4 are dilated), so the
    published network's field is 8 pixels larger (1371 instead of 1363 at paper size).
    """

    def __init__(self, num_classes: int, *, depth: int = 101, width: float = 1.0) -> None:
        super().__init__()
        self.backbone = ResNet(depth, width=width,
                               replace_stride_with_dilation=(False, True, True))
        self.head = ASPPv2(self.backbone.out_channels, num_classes, rates=(6, 12, 18, 24))

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"out": _resize(self.head(self.backbone(x)[-1]), x.shape[-2:])}

    def load_imagenet(self) -> None:
        load_imagenet_resnet(self.backbone)


class ASPPConv(nn.Sequential):
    """A 3×3 atrous convolution with batch norm (v3 §3.3)."""

    def __init__(self, in_ch: int, out_ch: int, rate: int) -> None:
        super().__init__(nn.Conv2d(in_ch, out_ch, 3, padding=rate, dilation=rate, bias=False),
                         nn.BatchNorm2d(out_ch), nn.ReLU(inplace=True))


class ImagePooling(nn.Module):
    """Image-level features (v3 §3.3): global average pool, 1×1 conv, upsample to the map size."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.conv = nn.Conv2d(in_ch, out_ch, 1, bias=False)
        self.bn = nn.BatchNorm2d(out_ch)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.relu(self.bn(self.conv(self.pool(x))))
        return y.expand(-1, -1, *x.shape[-2:])


class ASPP(nn.Module):
    """DeepLab v3's ASPP: a 1×1 branch, 3×3 branches at ``rates`` and image pooling, each with
    batch norm, CONCATENATED and projected by a 1×1 convolution."""

    def __init__(self, in_ch: int, out_ch: int = 256, rates: Sequence[int] = (6, 12, 18)) -> None:
        super().__init__()
        self.rates = tuple(rates)
        branches: list[nn.Module] = [nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, bias=False),
                                                   nn.BatchNorm2d(out_ch), nn.ReLU(inplace=True))]
        branches += [ASPPConv(in_ch, out_ch, r) for r in self.rates]
        branches.append(ImagePooling(in_ch, out_ch))
        self.convs = nn.ModuleList(branches)
        self.project = nn.Sequential(nn.Conv2d(out_ch * len(branches), out_ch, 1, bias=False),
                                     nn.BatchNorm2d(out_ch), nn.ReLU(inplace=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.project(torch.cat([branch(x) for branch in self.convs], dim=1))


class DeepLabV3Head(nn.Module):
    """ASPP followed by the final 1×1 classifier."""

    def __init__(self, in_ch: int, channels: int, num_classes: int,
                 rates: Sequence[int]) -> None:
        super().__init__()
        self.aspp = ASPP(in_ch, channels, rates)
        self.classifier = nn.Conv2d(channels, num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.aspp(x))


class DeepLabV3(nn.Module):
    """ResNet with multi-grid (1, 2, 4) in layer4 and ASPP (§3.2-3.3).

    At output stride 16 layer4 runs at rate 2 (units at 2, 4, 8) and ASPP at rates 6/12/18; at
    output stride 8 layer3 is dilated too and every rate doubles.
    """

    def __init__(self, num_classes: int, *, depth: int = 101, width: float = 1.0,
                 output_stride: int = 16, multi_grid: Sequence[int] = (1, 2, 4)) -> None:
        super().__init__()
        if output_stride not in (8, 16):
            raise ValueError(f"DeepLab v3 output stride must be 8 or 16, not {output_stride}")
        dilate = (False, output_stride == 8, True)
        self.backbone = ResNet(depth, width=width, replace_stride_with_dilation=dilate,
                               multi_grid=multi_grid)
        rates = (6, 12, 18) if output_stride == 16 else (12, 24, 36)
        self.head = DeepLabV3Head(self.backbone.out_channels, scaled(256, width), num_classes,
                                  rates)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"out": _resize(self.head(self.backbone(x)[-1]), x.shape[-2:])}

    def load_imagenet(self) -> None:
        load_imagenet_resnet(self.backbone)


def torchvision_deeplabv3(backbone: str, num_classes: int, *, pretrained_backbone: bool = False):
    """torchvision's DeepLab v3 on ResNet-50/101 (output stride 8) or MobileNetV3-Large (16),
    with its auxiliary head."""
    from torchvision.models import segmentation

    builders = {"resnet50": segmentation.deeplabv3_resnet50,
                "resnet101": segmentation.deeplabv3_resnet101,
                "mobilenet_v3_large": segmentation.deeplabv3_mobilenet_v3_large}
    model = builders[backbone](weights=None, weights_backbone=None, num_classes=num_classes,
                               aux_loss=True)
    if pretrained_backbone:
        _load_torchvision_backbone(model.backbone, backbone)
    return model


def _load_torchvision_backbone(body: nn.Module, backbone: str) -> None:
    from torchvision import models as tvm

    from segstudio.models.backbones import load_cached_weights
    from segstudio.models.fcn import load_torchvision_resnet

    if backbone.startswith("resnet"):
        load_torchvision_resnet(body, int(backbone[len("resnet"):]))
        return
    # The MobileNet trunk is torchvision's ``features`` with its children re-rooted.
    load_cached_weights(body, tvm.MobileNet_V3_Large_Weights.IMAGENET1K_V1,
                        rename=lambda k, v: (k[len("features."):], v)
                        if k.startswith("features.") else None,
                        expect="MobileNetV3-Large backbone")
