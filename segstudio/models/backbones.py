"""Encoders shared by the zoo: VGG-16 and ResNet, with the knobs the papers turn.

Both keep torchvision's module names (``features.N`` for VGG, ``conv1 … layer4`` for ResNet) so
ImageNet weights load by name into the full-width ("paper") networks. The ``width`` multiplier
scales every channel count for the laptop-sized ("lite") configurations; dilation, pooling strides
and multi-grid rates are the mechanisms of FCN, SegNet, DeepLab and PSPNet.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch
from torch import nn

VGG16_LAYOUT = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M",
                512, 512, 512, "M")


class BackboneWeightsError(Exception):
    """ImageNet weights that cannot be used: not in the local cache, or not fitting the network."""


def scaled(channels: int, width: float) -> int:
    """``channels`` times ``width``, never below 4 so tiny configurations still have features."""
    return max(4, int(round(channels * width)))


def he_init(module: nn.Module) -> None:
    """He et al. (ICCV 2015) initialisation of every convolution in ``module``, zero biases.

    Trained from scratch, 13+ plain convolutions at PyTorch's default initialisation shrink the
    signal at every layer until the scores are almost the same at every pixel: a network
    without batch norm then sits at the constant-prediction loss for hundreds of steps. With a
    variance of 2 / fan-out (as torchvision's VGG and ResNet) the activations keep their scale.
    ImageNet weights, when loaded, replace all of it.
    """
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)


class VGG16(nn.Module):
    """The 13 convolutions and 5 max-pools of VGG-16, as ``features`` in torchvision's order.

    ``pool_strides``/``pool_kernel``/``pool_padding`` and ``stage_dilations`` give DeepLab's
    stride-1 pool4/pool5 with dilated conv5; ``first_padding=100`` with ``ceil_mode`` is FCN's
    Caffe set-up; ``return_indices`` keeps the argmax locations SegNet's decoder unpools with.
    Convolutions start from He initialisation (see ``he_init``).
    """

    def __init__(self, *, width: float = 1.0, batch_norm: bool = False,
                 pool_strides: Sequence[int] = (2, 2, 2, 2, 2), pool_kernel: int = 2,
                 pool_padding: int = 0, stage_dilations: Sequence[int] = (1, 1, 1, 1, 1),
                 ceil_mode: bool = False, return_indices: bool = False,
                 first_padding: int = 1) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        in_ch, stage = 3, 0
        self.pool_positions: list[int] = []
        self.stage_channels: list[int] = []
        for item in VGG16_LAYOUT:
            if item == "M":
                self.pool_positions.append(len(layers))
                self.stage_channels.append(in_ch)
                layers.append(nn.MaxPool2d(pool_kernel, pool_strides[stage], pool_padding,
                                           ceil_mode=ceil_mode, return_indices=return_indices))
                stage += 1
                continue
            out_ch = scaled(int(item), width)
            d = stage_dilations[stage]
            pad = first_padding if not layers else d
            layers.append(nn.Conv2d(in_ch, out_ch, 3, padding=pad, dilation=d))
            if batch_norm:
                layers.append(nn.BatchNorm2d(out_ch))
            layers.append(nn.ReLU(inplace=True))
            in_ch = out_ch
        self.features = nn.Sequential(*layers)
        self.return_indices = return_indices
        self.out_channels = in_ch
        he_init(self.features)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The output of each of the five pools (pool1 … pool5)."""
        return [out for out, _, _ in self.forward_with_indices(x)]

    def forward_with_indices(self, x: torch.Tensor):
        """Per stage ``(pooled, argmax indices or None, size before pooling)``."""
        stages = []
        for i, layer in enumerate(self.features):
            if i in self.pool_positions:
                size = x.shape[-2:]
                if self.return_indices:
                    x, idx = layer(x)
                else:
                    x, idx = layer(x), None
                stages.append((x, idx, size))
            else:
                x = layer(x)
        return stages


class BasicBlock(nn.Module):
    """Two 3×3 convolutions with an identity shortcut (ResNet-18/34), dilation allowed."""

    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1, dilation: int = 1,
                 downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, padding=dilation, dilation=dilation,
                               bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=dilation, dilation=dilation, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """1×1 reduce, 3×3 (strided or dilated), 1×1 expand ×4, as torchvision's ResNet-50/101."""

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, dilation: int = 1,
                 downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, padding=dilation, dilation=dilation,
                               bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


RESNET_DEPTHS = {18: (BasicBlock, (2, 2, 2, 2)), 34: (BasicBlock, (3, 4, 6, 3)),
                 50: (Bottleneck, (3, 4, 6, 3)), 101: (Bottleneck, (3, 4, 23, 3))}


class ResNet(nn.Module):
    """A ResNet trunk (no classifier) returning layer1 … layer4.

    ``replace_stride_with_dilation`` has torchvision's meaning: for layer2/3/4, trade the stride-2
    for dilation so the output stride drops from 32 to 16 or 8 (DeepLab §3.1, PSPNet §3.2).
    ``multi_grid`` multiplies the dilation of layer4's successive units (DeepLab v3 §3.2); a
    shallower layer4 uses the grid's first entries.
    """

    def __init__(self, depth: int = 50, *, width: float = 1.0,
                 replace_stride_with_dilation: Sequence[bool] = (False, False, False),
                 multi_grid: Sequence[int] = (1,)) -> None:
        super().__init__()
        if depth not in RESNET_DEPTHS:
            raise ValueError(f"ResNet depth {depth} is not one of {sorted(RESNET_DEPTHS)}")
        block, counts = RESNET_DEPTHS[depth]
        self.depth = depth
        self.inplanes = scaled(64, width)
        self.dilation = 1
        self.conv1 = nn.Conv2d(3, self.inplanes, 7, 2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(self.inplanes)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, padding=1)
        dilate = (False, *replace_stride_with_dilation)
        self.channels: list[int] = []
        for i, (planes, n) in enumerate(zip((64, 128, 256, 512), counts)):
            grid = tuple(multi_grid) if i == 3 else (1,)
            layer = self._make_layer(block, scaled(planes, width), n, 1 if i == 0 else 2,
                                     dilate[i], grid)
            setattr(self, f"layer{i + 1}", layer)
            self.channels.append(self.inplanes)
        self.out_channels = self.inplanes
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def _make_layer(self, block, planes: int, blocks: int, stride: int, dilate: bool,
                    grid: tuple[int, ...]) -> nn.Sequential:
        previous = self.dilation
        if dilate:
            self.dilation *= stride
            stride = 1
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes * block.expansion, 1, stride, bias=False),
                nn.BatchNorm2d(planes * block.expansion))
        if len(grid) > 1:
            # Multi-grid: every unit's rate is the layer's rate times its grid entry.
            rates = [self.dilation * grid[min(i, len(grid) - 1)] for i in range(blocks)]
        else:
            rates = [previous] + [self.dilation] * (blocks - 1)
        layers = [block(self.inplanes, planes, stride, rates[0], downsample)]
        self.inplanes = planes * block.expansion
        layers += [block(self.inplanes, planes, 1, r) for r in rates[1:]]
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        feats = []
        for layer in (self.layer1, self.layer2, self.layer3, self.layer4):
            x = layer(x)
            feats.append(x)
        return feats


def cached_weights_file(weights) -> Path:
    """Where torch hub keeps the file of a torchvision ``Weights`` entry (it may be absent)."""
    name = weights.url.rsplit("/", 1)[-1]
    return Path(torch.hub.get_dir()) / "checkpoints" / name


def load_cached_weights(module: nn.Module, weights, *, rename=None,
                        expect: str = "backbone") -> None:
    """Copy torchvision ImageNet ``weights`` into ``module`` from the local cache only.

    Nothing is downloaded: a file missing from the cache is an error saying where to put it.
    ``rename`` maps a checkpoint key to this module's key (or None to skip it). Every tensor of
    ``module`` must be filled, so a width or layout mismatch is reported, not silently ignored.
    """
    path = cached_weights_file(weights)
    if not path.is_file():
        raise BackboneWeightsError(
            f"{path.name}: ImageNet weights for the {expect} are not in the torch hub cache "
            f"(expected at {path}); download {weights.url} there, or build without "
            "pretrained_backbone")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the same problem to a user
        raise BackboneWeightsError(f"{path.name}: cannot read cached weights ({exc})") from None
    own = module.state_dict()
    loaded = {}
    for key, value in state.items():
        target = rename(key, value) if rename else (key, value)
        if target is None:
            continue
        new_key, new_value = target
        if new_key in own:
            if own[new_key].shape != new_value.shape:
                raise BackboneWeightsError(
                    f"{path.name}: {new_key} has shape {tuple(new_value.shape)} but the network "
                    f"needs {tuple(own[new_key].shape)}; ImageNet weights fit only the 'paper' "
                    "configuration")
            loaded[new_key] = new_value
    missing = [k for k in own if k not in loaded and not k.endswith("num_batches_tracked")]
    if missing:
        raise BackboneWeightsError(
            f"{path.name}: does not cover the {expect} ({len(missing)} tensors missing, e.g. "
            f"{missing[0]})")
    module.load_state_dict(loaded, strict=False)


def load_imagenet_resnet(backbone: ResNet) -> None:
    """Fill a full-width ResNet-18/34/50/101 trunk with torchvision's ImageNet weights (cached)."""
    from torchvision import models as tvm

    weights = {18: tvm.ResNet18_Weights, 34: tvm.ResNet34_Weights, 50: tvm.ResNet50_Weights,
               101: tvm.ResNet101_Weights}[backbone.depth].IMAGENET1K_V1
    load_cached_weights(backbone, weights, rename=lambda k, v: None if k.startswith("fc.")
                        else (k, v), expect=f"ResNet-{backbone.depth} backbone")


def load_imagenet_vgg16(backbone: VGG16, batch_norm: bool = False) -> None:
    """Fill a full-width VGG-16 ``features`` with torchvision's ImageNet weights (cached)."""
    from torchvision import models as tvm

    weights = (tvm.VGG16_BN_Weights if batch_norm else tvm.VGG16_Weights).IMAGENET1K_V1
    load_cached_weights(backbone, weights, rename=lambda k, v: (k, v)
                        if k.startswith("features.") else None, expect="VGG-16 backbone")
