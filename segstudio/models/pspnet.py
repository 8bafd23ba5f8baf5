"""PSPNet (Zhao, Shi, Qi, Wang, Jia, CVPR 2017).

A dilated ResNet keeps output stride 8 (§3.2). The pyramid pooling module average-pools the last
feature map into 1×1, 2×2, 3×3 and 6×6 bins, reduces each to a quarter of the channels with a
1×1 convolution, upsamples them back and concatenates them with the map itself (§3.3), so every
pixel sees global and sub-region context. A deeply supervised auxiliary head on layer3 (§3.4)
helps training. Logits are bilinearly resized to the input's own size, so any size works.

The ``paper`` configuration uses ResNet-50, the backbone of the paper's ablations (§4.2). The
paper's ResNet has a three-convolution stem; this one keeps torchvision's 7×7 stem so that
ImageNet weights load unchanged.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from segstudio.models.backbones import ResNet, load_imagenet_resnet


def conv_bn_relu(in_ch: int, out_ch: int, kernel: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_ch, out_ch, kernel, padding=kernel // 2, bias=False),
                         nn.BatchNorm2d(out_ch), nn.ReLU(inplace=True))


class PyramidPooling(nn.Module):
    """Pool to each of ``bins`` grids, 1×1-reduce, upsample, concatenate with the input."""

    def __init__(self, in_channels: int, bins: Sequence[int] = (1, 2, 3, 6)) -> None:
        super().__init__()
        self.bins = tuple(bins)
        reduced = max(1, in_channels // len(self.bins))
        self.stages = nn.ModuleList(
            nn.Sequential(nn.AdaptiveAvgPool2d(b), conv_bn_relu(in_channels, reduced, 1))
            for b in self.bins)
        self.out_channels = in_channels + reduced * len(self.bins)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        pooled = [F.interpolate(stage(x), size=size, mode="bilinear", align_corners=False)
                  for stage in self.stages]
        return torch.cat([x, *pooled], dim=1)


class PSPHead(nn.Module):
    """Pyramid pooling, then a 3×3 fusion convolution and the per-pixel classifier."""

    def __init__(self, in_channels: int, mid_channels: int, num_classes: int) -> None:
        super().__init__()
        self.ppm = PyramidPooling(in_channels, bins=(1, 2, 3, 6))
        self.fuse = conv_bn_relu(self.ppm.out_channels, mid_channels, 3)
        self.dropout = nn.Dropout2d(0.1)
        self.classifier = nn.Conv2d(mid_channels, num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.dropout(self.fuse(self.ppm(x))))


class AuxHead(nn.Sequential):
    """The auxiliary classifier on layer3 (§3.4), used for its loss only during training."""

    def __init__(self, in_channels: int, mid_channels: int, num_classes: int) -> None:
        super().__init__(conv_bn_relu(in_channels, mid_channels, 3), nn.Dropout2d(0.1),
                         nn.Conv2d(mid_channels, num_classes, 1))


class PSPNet(nn.Module):
    """Dilated ResNet (layer3 rate 2, layer4 rate 4), pyramid pooling head, auxiliary head."""

    def __init__(self, num_classes: int, *, depth: int = 50, width: float = 1.0,
                 head_channels: int = 512) -> None:
        super().__init__()
        self.backbone = ResNet(depth, width=width,
                               replace_stride_with_dilation=(False, True, True))
        c3, c4 = self.backbone.channels[2:]
        self.head = PSPHead(c4, head_channels, num_classes)
        self.aux = AuxHead(c3, max(4, head_channels // 2), num_classes)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        size = x.shape[-2:]
        _, _, f3, f4 = self.backbone(x)
        out = F.interpolate(self.head(f4), size=size, mode="bilinear", align_corners=False)
        aux = F.interpolate(self.aux(f3), size=size, mode="bilinear", align_corners=False)
        return {"out": out, "aux": aux}

    def load_imagenet(self) -> None:
        load_imagenet_resnet(self.backbone)
