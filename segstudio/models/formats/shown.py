"""A model file's network as the Predictor runs it, as one torch module.

The teaching views differentiate it (a gradient at a pixel is the gradient of what the app
shows there) and fine-tuning trains it (its scores meet the labels at their resolution).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ShownNet(nn.Module):
    """``net`` as the Predictor runs it: the input padded to ``stride`` (or resized to
    ``input_size``), the scores resized to the input bilinearly and cropped to it."""

    def __init__(self, net: nn.Module, stride: int | None,
                 input_size: tuple[int, int] | None) -> None:
        super().__init__()
        self.net = net
        self.stride = max(1, int(stride or 1))
        self.input_size = tuple(input_size) if input_size else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        m = 1 if self.input_size else self.stride
        ph, pw = (-h) % m, (-w) % m
        if ph or pw:
            mode = "reflect" if ph < h and pw < w else "replicate"
            x = F.pad(x, (0, pw, 0, ph), mode=mode)
        size = tuple(x.shape[-2:])
        if self.input_size and size != self.input_size:
            x = F.interpolate(x, size=self.input_size, mode="bilinear", align_corners=False)
        logits = self.net(x)
        if tuple(logits.shape[-2:]) != size:
            logits = F.interpolate(logits.float(), size=size, mode="bilinear",
                                   align_corners=False)
        return logits[:, :, :h, :w]
