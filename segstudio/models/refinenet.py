"""RefineNet (Lin, Milan, Shen, Reid, CVPR 2017).

Instead of dilating the encoder, RefineNet keeps the ResNet's four resolutions (1/4 … 1/32) and
refines coarse semantics with finer features in four cascaded blocks (§3.1). Each block adapts its
inputs with residual convolution units, fuses them at the finest input resolution
(multi-resolution fusion), gathers context from large regions through a chain of pooling blocks
(chained residual pooling) and ends with one more residual unit (§3.2). Logits come out at
stride 4 and are resized to the input's own size, so any image size works.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from segstudio.models.backbones import ResNet, load_imagenet_resnet, scaled


def conv3x3(in_ch: int, out_ch: int, bias: bool = False) -> nn.Conv2d:
    return nn.Conv2d(in_ch, out_ch, 3, padding=1, bias=bias)


class ResidualConvUnit(nn.Module):
    """ReLU, 3×3 conv, ReLU, 3×3 conv, plus the input (no batch norm, as in the paper)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = conv3x3(channels, channels, bias=True)
        self.conv2 = conv3x3(channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv1(F.relu(x))
        return x + self.conv2(F.relu(y))


class MultiResolutionFusion(nn.Module):
    """A 3×3 conv per input to ``out_channels``, upsample all to the largest input, then sum."""

    def __init__(self, in_channels: Sequence[int], out_channels: int) -> None:
        super().__init__()
        self.convs = nn.ModuleList(conv3x3(c, out_channels) for c in in_channels)

    def forward(self, xs: Sequence[torch.Tensor]) -> torch.Tensor:
        size = max((x.shape[-2:] for x in xs), key=lambda s: s[0] * s[1])
        out = None
        for conv, x in zip(self.convs, xs):
            y = conv(x)
            if y.shape[-2:] != size:
                y = F.interpolate(y, size=size, mode="bilinear", align_corners=False)
            out = y if out is None else out + y
        return out


class ChainedResidualPool(nn.Module):
    """ReLU, then a chain of (5×5 max-pool stride 1, 3×3 conv) blocks; each block pools the
    previous block's output and every output is added to the running sum (§3.2)."""

    def __init__(self, channels: int, blocks: int = 2) -> None:
        super().__init__()
        self.pool = nn.MaxPool2d(5, stride=1, padding=2)
        self.convs = nn.ModuleList(conv3x3(channels, channels) for _ in range(blocks))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(x)
        path = x
        for conv in self.convs:
            path = conv(self.pool(path))
            x = x + path
        return x


class RefineNetBlock(nn.Module):
    """Two residual units per input, fusion (when there are several inputs), chained residual
    pooling and an output residual unit."""

    def __init__(self, in_channels: Sequence[int], out_channels: int) -> None:
        super().__init__()
        self.adapt = nn.ModuleList(nn.Sequential(ResidualConvUnit(c), ResidualConvUnit(c))
                                   for c in in_channels)
        if len(in_channels) > 1:
            self.fusion = MultiResolutionFusion(in_channels, out_channels)
        elif in_channels[0] != out_channels:
            raise ValueError("a single-input RefineNet block keeps its channel count")
        self.crp = ChainedResidualPool(out_channels)
        self.out = ResidualConvUnit(out_channels)

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        ys = [adapt(x) for adapt, x in zip(self.adapt, xs)]
        y = self.fusion(ys) if len(ys) > 1 else ys[0]
        return self.out(self.crp(y))


class RefineNet(nn.Module):
    """4-cascaded RefineNet on a ResNet: RefineNet-4 (1/32) … RefineNet-1 (1/4)."""

    def __init__(self, num_classes: int, *, depth: int = 101, width: float = 1.0,
                 refine_width: float | None = None) -> None:
        super().__init__()
        self.backbone = ResNet(depth, width=width)
        rw = width if refine_width is None else refine_width
        wide, narrow = scaled(512, rw), scaled(256, rw)
        # Dimension reduction of each encoder output before its RefineNet block (§3.1).
        self.reduce = nn.ModuleList(conv3x3(c, wide if i == 3 else narrow)
                                    for i, c in enumerate(self.backbone.channels))
        self.refine4 = RefineNetBlock([wide], wide)
        self.refine3 = RefineNetBlock([narrow, wide], narrow)
        self.refine2 = RefineNetBlock([narrow, narrow], narrow)
        self.refine1 = RefineNetBlock([narrow, narrow], narrow)
        self.final = nn.Sequential(ResidualConvUnit(narrow), ResidualConvUnit(narrow),
                                   nn.Dropout2d(0.5))
        self.classifier = nn.Conv2d(narrow, num_classes, 1)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        f1, f2, f3, f4 = (r(f) for r, f in zip(self.reduce, self.backbone(x)))
        y = self.refine4(f4)
        y = self.refine3(f3, y)
        y = self.refine2(f2, y)
        y = self.refine1(f1, y)
        logits = self.classifier(self.final(y))
        return {"out": F.interpolate(logits, size=x.shape[-2:], mode="bilinear",
                                     align_corners=False)}

    def load_imagenet(self) -> None:
        load_imagenet_resnet(self.backbone)
