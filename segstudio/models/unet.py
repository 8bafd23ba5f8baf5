"""U-Net (Ronneberger, Fischer, Brox, MICCAI 2015).

A contracting path of double 3×3 convolutions and 2×2 max-pools, and an expanding path that
upsamples with 2×2 transposed convolutions ("up-convolution", §2) and concatenates the feature map
of the same level before its own double convolution.

Two documented departures from the paper: the convolutions are padded, so skips need no cropping
and the output matches the input; and the input is padded at its bottom and right (by mirroring)
up to a multiple of 16 and the logits cropped back, so any image size works. That is not the
paper's overlap-tile strategy, which predicts a large image tile by tile from mirrored context
larger than each tile. The
``lite`` configuration adds batch norm so the narrow network trains quickly from scratch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from segstudio.models.backbones import scaled

LEVELS = 4


class DoubleConv(nn.Sequential):
    """Two 3×3 convolutions, each followed by (optional batch norm and) ReLU."""

    def __init__(self, in_ch: int, out_ch: int, batch_norm: bool) -> None:
        layers: list[nn.Module] = []
        for a, b in ((in_ch, out_ch), (out_ch, out_ch)):
            layers.append(nn.Conv2d(a, b, 3, padding=1, bias=not batch_norm))
            if batch_norm:
                layers.append(nn.BatchNorm2d(b))
            layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)


class Down(nn.Sequential):
    """One contracting step: 2×2 max-pool, then a double convolution at twice the channels."""

    def __init__(self, in_ch: int, out_ch: int, batch_norm: bool) -> None:
        super().__init__(nn.MaxPool2d(2), DoubleConv(in_ch, out_ch, batch_norm))


class Up(nn.Module):
    """One expanding step: 2×2 up-convolution halving channels, concatenated skip, double conv."""

    def __init__(self, in_ch: int, out_ch: int, batch_norm: bool) -> None:
        super().__init__()
        self.up = nn.ConvTranspose2d(in_ch, out_ch, 2, stride=2)
        self.conv = DoubleConv(2 * out_ch, out_ch, batch_norm)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.conv(torch.cat([skip, self.up(x)], dim=1))


class UNet(nn.Module):
    """U-Net with widths 64 … 1024 times ``width``."""

    def __init__(self, num_classes: int, *, width: float = 1.0, batch_norm: bool = False) -> None:
        super().__init__()
        chans = [scaled(64 * 2 ** i, width) for i in range(LEVELS + 1)]
        self.inc = DoubleConv(3, chans[0], batch_norm)
        self.downs = nn.ModuleList(Down(a, b, batch_norm) for a, b in zip(chans, chans[1:]))
        self.ups = nn.ModuleList(Up(b, a, batch_norm)
                                 for a, b in reversed(list(zip(chans, chans[1:]))))
        self.head = nn.Conv2d(chans[0], num_classes, 1)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        h, w = x.shape[-2:]
        m = 2 ** LEVELS
        ph, pw = -h % m, -w % m
        if ph or pw:
            mode = "reflect" if ph < h and pw < w else "replicate"
            x = F.pad(x, (0, pw, 0, ph), mode=mode)
        skips = [self.inc(x)]
        for down in self.downs:
            skips.append(down(skips[-1]))
        y = skips.pop()
        for up in self.ups:
            y = up(y, skips.pop())
        return {"out": self.head(y)[:, :, :h, :w]}
