"""FCN-32s/16s/8s (Long, Shelhamer, Darrell, CVPR 2015) and torchvision's ResNet FCNs.

The VGG-16 classifier becomes convolution: fc6 is a 7×7 convolution, fc7 a 1×1 (§3.1). Coarse
class scores are upsampled by transposed convolutions initialised to bilinear interpolation
(§3.3) and fused, by addition, with scores predicted from pool4 and pool3 (§4.2).

Any input size works as in the reference Caffe nets: conv1_1 pads by 100 pixels so the 7×7 fc6
always has room, pools round up, and each upsampled map is cropped at the fixed offsets that
align it with the finer map (5 for pool4, 9 for pool3) and with the input (19, 27 or 31).

The paper fine-tunes from ImageNet VGG-16. Both configurations keep its plain VGG (no batch
norm); for training from scratch (the ``lite`` models) every convolution of the trunk and
fc6/fc7 starts from He initialisation, without which the network sat at the constant-prediction
loss for its first few epochs.
"""

from __future__ import annotations

import torch
from torch import nn

from segstudio.models.backbones import VGG16, he_init, load_cached_weights, scaled

CROP_POOL4 = 5
CROP_POOL3 = 9
CROP_OUTPUT = {32: 19, 16: 27, 8: 31}


def bilinear_kernel(channels: int, size: int) -> torch.Tensor:
    """Weights making ConvTranspose2d(channels, channels, size) upsample each channel bilinearly."""
    factor = (size + 1) // 2
    center = factor - 1 if size % 2 == 1 else factor - 0.5
    steps = torch.arange(size, dtype=torch.float32)
    profile = 1 - (steps - center).abs() / factor
    kernel = profile[:, None] * profile[None, :]
    weight = torch.zeros(channels, channels, size, size)
    weight[range(channels), range(channels)] = kernel
    return weight


def bilinear_upsampler(channels: int, factor: int) -> nn.ConvTranspose2d:
    """A learnable ×``factor`` upsampling that starts as bilinear interpolation (FCN §3.3)."""
    layer = nn.ConvTranspose2d(channels, channels, 2 * factor, stride=factor, bias=False)
    with torch.no_grad():
        layer.weight.copy_(bilinear_kernel(channels, 2 * factor))
    return layer


def _crop(x: torch.Tensor, offset: int, like: torch.Tensor) -> torch.Tensor:
    h, w = like.shape[-2:]
    return x[:, :, offset:offset + h, offset:offset + w]


class FCN(nn.Module):
    """FCN on VGG-16 at final stride 32, 16 or 8 (the number of skip layers fused)."""

    def __init__(self, num_classes: int, stride: int = 8, *, width: float = 1.0) -> None:
        super().__init__()
        if stride not in CROP_OUTPUT:
            raise ValueError(f"FCN stride must be 32, 16 or 8, not {stride}")
        self.stride = stride
        self.backbone = VGG16(width=width, ceil_mode=True, first_padding=100)
        c3, c4, c5 = self.backbone.stage_channels[2:]
        fc = scaled(4096, width)
        self.fc6 = nn.Conv2d(c5, fc, 7)
        self.relu6 = nn.ReLU(inplace=True)
        self.drop6 = nn.Dropout(0.5)      # element dropout, as Caffe's
        self.fc7 = nn.Conv2d(fc, fc, 1)
        self.relu7 = nn.ReLU(inplace=True)
        self.drop7 = nn.Dropout(0.5)
        self.score_fr = nn.Conv2d(fc, num_classes, 1)
        if stride <= 16:
            self.score_pool4 = nn.Conv2d(c4, num_classes, 1)
            self.upscore2 = bilinear_upsampler(num_classes, 2)
        if stride == 8:
            self.score_pool3 = nn.Conv2d(c3, num_classes, 1)
            self.upscore_pool4 = bilinear_upsampler(num_classes, 2)
        self.upscore = bilinear_upsampler(num_classes, stride)
        # fc6/fc7 continue the VGG trunk's He initialisation, so a net trained from scratch does
        # not start with vanishing scores (ImageNet weights, when loaded, replace them).
        he_init(self.fc6)
        he_init(self.fc7)
        # Skip scores start at zero so the untrained fused net equals the coarser one (§4.2).
        for name in ("score_pool4", "score_pool3"):
            if hasattr(self, name):
                nn.init.zeros_(getattr(self, name).weight)
                nn.init.zeros_(getattr(self, name).bias)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        pool3, pool4, pool5 = self.backbone(x)[2:]
        h = self.drop6(self.relu6(self.fc6(pool5)))
        h = self.drop7(self.relu7(self.fc7(h)))
        score = self.score_fr(h)
        if self.stride <= 16:
            score = self.upscore2(score)
            score = score + _crop(self.score_pool4(pool4), CROP_POOL4, score)
        if self.stride == 8:
            score = self.upscore_pool4(score)
            score = score + _crop(self.score_pool3(pool3), CROP_POOL3, score)
        out = _crop(self.upscore(score), CROP_OUTPUT[self.stride], x)
        return {"out": out.contiguous()}

    def load_imagenet(self) -> None:
        """VGG-16 ImageNet weights: conv layers by name, fc6/fc7 reshaped into convolutions."""
        from torchvision.models import VGG16_Weights

        def rename(key: str, value: torch.Tensor):
            if key.startswith("features."):
                return "backbone." + key, value
            if key.startswith("classifier.0."):
                param = key.rsplit(".", 1)[1]
                return f"fc6.{param}", value.reshape(self.fc6.weight.shape) \
                    if param == "weight" else value
            if key.startswith("classifier.3."):
                param = key.rsplit(".", 1)[1]
                return f"fc7.{param}", value.reshape(self.fc7.weight.shape) \
                    if param == "weight" else value
            return None

        part = nn.ModuleDict({"backbone": self.backbone, "fc6": self.fc6, "fc7": self.fc7})
        load_cached_weights(part, VGG16_Weights.IMAGENET1K_V1, rename=rename,
                            expect="FCN's VGG-16")


def torchvision_fcn(depth: int, num_classes: int, *, pretrained_backbone: bool = False):
    """torchvision's ``fcn_resnet50``/``fcn_resnet101``: dilated ResNet at stride 8, aux head."""
    from torchvision.models import segmentation

    builder = {50: segmentation.fcn_resnet50, 101: segmentation.fcn_resnet101}[depth]
    model = builder(weights=None, weights_backbone=None, num_classes=num_classes, aux_loss=True)
    if pretrained_backbone:
        load_torchvision_resnet(model.backbone, depth)
    return model


def load_torchvision_resnet(body: nn.Module, depth: int) -> None:
    """ImageNet ResNet weights into a torchvision IntermediateLayerGetter trunk (cached only)."""
    from torchvision import models as tvm

    weights = {50: tvm.ResNet50_Weights, 101: tvm.ResNet101_Weights}[depth].IMAGENET1K_V1
    load_cached_weights(body, weights, rename=lambda k, v: None if k.startswith("fc.")
                        else (k, v), expect=f"ResNet-{depth} backbone")
