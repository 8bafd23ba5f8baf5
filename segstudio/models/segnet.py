"""SegNet (Badrinarayanan, Kendall, Cipolla, TPAMI 2017).

The encoder is VGG-16's 13 convolutions with batch norm; each max-pool remembers where its maxima
were. The decoder upsamples by *unpooling*: it puts every value back at its remembered location
and leaves the rest zero, then densifies with convolutions (§3). Nothing in the upsampling is
learned. Unpooling restores each pool's input size exactly, so odd image sizes need no padding;
only a side shorter than 32 pixels (too short for five 2× pools) is padded and cropped back.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from segstudio.models.backbones import VGG16, load_imagenet_vgg16

# Convolutions per decoder stage, deepest first, mirroring the encoder (3, 3, 3, 2, 2); the last
# convolution of stage 1 is the classifier.
DECODER_CONVS = (3, 3, 3, 2, 1)
MIN_SIDE = 32


def conv_bn_relu(in_ch: int, out_ch: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_ch, out_ch, 3, padding=1, bias=False),
                         nn.BatchNorm2d(out_ch), nn.ReLU(inplace=True))


class UnpoolStage(nn.Module):
    """Unpool with the encoder's indices, then 3×3 convolutions with batch norm."""

    def __init__(self, in_ch: int, out_ch: int, convs: int) -> None:
        super().__init__()
        self.unpool = nn.MaxUnpool2d(2, 2)
        chans = [in_ch] * convs + [out_ch]
        self.convs = nn.Sequential(*(conv_bn_relu(a, b) for a, b in zip(chans, chans[1:])))

    def forward(self, x: torch.Tensor, indices: torch.Tensor, size) -> torch.Tensor:
        return self.convs(self.unpool(x, indices, output_size=size))


class MaxUnpoolDecoder(nn.Module):
    """The five unpooling stages of SegNet's decoder, deepest first."""

    def __init__(self, stage_channels: list[int]) -> None:
        super().__init__()
        widths = list(reversed(stage_channels))           # 512, 512, 256, 128, 64
        outs = widths[1:] + [widths[-1]]
        self.stages = nn.ModuleList(UnpoolStage(w, o, n)
                                    for w, o, n in zip(widths, outs, DECODER_CONVS))

    def forward(self, x: torch.Tensor, pooled: list) -> torch.Tensor:
        for stage, (_, indices, size) in zip(self.stages, reversed(pooled)):
            x = stage(x, indices, size)
        return x


class SegNet(nn.Module):
    """VGG-16-BN encoder with pooling indices, mirrored unpooling decoder, 3×3 classifier."""

    def __init__(self, num_classes: int, *, width: float = 1.0) -> None:
        super().__init__()
        self.encoder = VGG16(width=width, batch_norm=True, return_indices=True)
        self.decoder = MaxUnpoolDecoder(self.encoder.stage_channels)
        self.classifier = nn.Conv2d(self.encoder.stage_channels[0], num_classes, 3, padding=1)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        h, w = x.shape[-2:]
        if h < MIN_SIDE or w < MIN_SIDE:
            x = F.pad(x, (0, max(0, MIN_SIDE - w), 0, max(0, MIN_SIDE - h)), mode="replicate")
        pooled = self.encoder.forward_with_indices(x)
        out = self.classifier(self.decoder(pooled[-1][0], pooled))
        return {"out": out[:, :, :h, :w]}

    def load_imagenet(self) -> None:
        """VGG-16-BN ImageNet weights into the encoder (cached only)."""
        load_imagenet_vgg16(self.encoder, batch_norm=True)
