"""The model zoo: each architecture's facts (paper, year, output stride, probe branches) and its
builder.

The facts are plain data, importable without torch, so the GUI can list models before torch has
loaded; ``build_model`` imports the architecture's module only when it is asked for.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    import torch

FAMILIES = ("fcn", "encoder-decoder", "pyramid", "atrous", "refinement", "instance")

# Channel multiplier of the laptop-sized configurations. VGG nets keep 1/8 of their channels;
# ResNet trunks become ResNet-18 at half width (32 … 256 channels).
LITE_VGG_WIDTH = 0.125
LITE_RESNET = {"depth": 18, "width": 0.5}


class UnknownModelError(KeyError):
    """A model name the registry does not know; the message lists the known ones."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown model"


class ModelConfigError(ValueError):
    """A build request the architecture cannot satisfy (configuration, class count)."""


@dataclass(frozen=True)
class ModelSpec:
    """What the app knows about one architecture without building it."""

    name: str
    title: str
    paper: str
    year: int
    family: str
    output_stride: int
    branches: dict[str, str] = field(hash=False)
    uses_crf: bool
    instance: bool
    description: str
    configs: tuple[str, ...] = ("lite", "paper")
    paper_differences: tuple[str, ...] = ()
    """Where this network or its numbers differ from the paper, one sentence each; the
    description ends with them too (see :func:`_differing`), so every view of it shows them."""

    def to_dict(self) -> dict:
        return {"name": self.name, "title": self.title, "paper": self.paper, "year": self.year,
                "family": self.family, "output_stride": self.output_stride,
                "branches": dict(self.branches), "uses_crf": self.uses_crf,
                "instance": self.instance, "configs": list(self.configs),
                "description": self.description,
                "paper_differences": list(self.paper_differences)}


def _differing(description: str, *differences: str) -> dict:
    """``description`` and ``paper_differences`` keywords of a spec whose network departs from
    its paper: the description closes with the differences."""
    return {"description": f"{description} Where it differs from the paper: "
                           f"{' '.join(differences)}",
            "paper_differences": differences}


FCN_PAPER = "Long, Shelhamer, Darrell: Fully Convolutional Networks for Semantic Segmentation"
DEEPLAB_V3_PAPER = "Chen, Papandreou, Schroff, Adam: Rethinking Atrous Convolution for " \
                   "Semantic Image Segmentation"
DEEPLAB_V2_PAPER = "Chen, Papandreou, Kokkinos, Murphy, Yuille: DeepLab: Semantic Image " \
                   "Segmentation with Deep Convolutional Nets, Atrous Convolution, and Fully " \
                   "Connected CRFs"

_VGG_POOLS = {"backbone.pool3": "backbone.features.16", "backbone.pool4": "backbone.features.23",
              "backbone.pool5": "backbone.features.30"}
_RESNET = {"backbone.layer1": "backbone.layer1", "backbone.layer2": "backbone.layer2",
           "backbone.layer3": "backbone.layer3", "backbone.layer4": "backbone.layer4"}
_TV_RESNET = {"backbone.layer3": "backbone.layer3", "backbone.layer4": "backbone.layer4"}
_TV_ASPP = {"aspp.1x1": "classifier.0.convs.0", "aspp.rate12": "classifier.0.convs.1",
            "aspp.rate24": "classifier.0.convs.2", "aspp.rate36": "classifier.0.convs.3",
            "aspp.image_pool": "classifier.0.convs.4", "aspp.project": "classifier.0.project",
            "aux": "aux_classifier"}


def _fcn(stride: int) -> ModelSpec:
    branches = dict(_VGG_POOLS, fc7="fc7", score_fr="score_fr")
    if stride <= 16:
        branches["score_pool4"] = "score_pool4"
    if stride == 8:
        branches["score_pool3"] = "score_pool3"
    skips = {32: "no skip: the stride-32 scores are upsampled in one step",
             16: "pool4 scores are added to the 2× upsampled stride-32 scores",
             8: "pool4 and pool3 scores are added in turn, each after a 2× upsampling"}[stride]
    return ModelSpec(
        name=f"fcn{stride}s", title=f"FCN-{stride}s", paper=FCN_PAPER, year=2015, family="fcn",
        output_stride=stride, branches=branches, uses_crf=False, instance=False,
        **_differing(
            f"VGG-16 made fully convolutional (fc6 is a 7×7 convolution); {skips}, with "
            "transposed convolutions initialised to bilinear interpolation.",
            f"The final ×{stride} upsampling to the image is fixed bilinear interpolation in the "
            f"paper (each class on its own); here it is learned like the others and mixes the "
            f"classes ({2 * stride}×{2 * stride} weights per pair of classes, 21 × 21 × "
            f"{(2 * stride) ** 2} = {21 * 21 * (2 * stride) ** 2 / 1e6:.2f} M for 21 classes)."))


def _tv_fcn(depth: int) -> ModelSpec:
    return ModelSpec(
        name=f"fcn_resnet{depth}", title=f"FCN (ResNet-{depth}, torchvision)", paper=FCN_PAPER,
        year=2015, family="fcn", output_stride=8, uses_crf=False, instance=False,
        configs=("paper",),
        branches=dict(_TV_RESNET, head="classifier", aux="aux_classifier"),
        description=f"torchvision's FCN: a dilated ResNet-{depth} (output stride 8) with a 3×3 "
                    "convolutional head and bilinear upsampling; auxiliary head on layer3.")


def _tv_deeplab(backbone: str, title: str) -> ModelSpec:
    if backbone == "mobilenet_v3_large":
        # The MobileNet trunk is torchvision's ``features`` re-rooted; 4 feeds aux, 16 the head.
        trunk = {"backbone.aux": "backbone.4", "backbone.out": "backbone.16"}
        # At output stride 16 torchvision keeps rates 12/24/36 for this variant.
        stride = 16
    else:
        trunk, stride = dict(_TV_RESNET), 8
    return ModelSpec(
        name=f"deeplabv3_{backbone}", title=f"DeepLab v3 ({title}, torchvision)",
        paper=DEEPLAB_V3_PAPER, year=2017, family="atrous", output_stride=stride,
        uses_crf=False, instance=False, configs=("paper",), branches=dict(trunk, **_TV_ASPP),
        description=f"torchvision's DeepLab v3 on {title}: ASPP at rates 12/24/36 with "
                    "image-level pooling, concatenated and projected; auxiliary FCN head.")


_SPECS = [
    _fcn(32), _fcn(16), _fcn(8), _tv_fcn(50), _tv_fcn(101),
    ModelSpec(
        name="segnet", title="SegNet",
        paper="Badrinarayanan, Kendall, Cipolla: SegNet: A Deep Convolutional Encoder-Decoder "
              "Architecture for Image Segmentation",
        year=2017, family="encoder-decoder", output_stride=1, uses_crf=False, instance=False,
        branches={"encoder.conv1_2": "encoder.features.5", "encoder.conv2_2": "encoder.features.12",
                  "encoder.conv3_3": "encoder.features.22",
                  "encoder.conv4_3": "encoder.features.32",
                  "encoder.conv5_3": "encoder.features.42",
                  "decoder.stage5": "decoder.stages.0", "decoder.stage4": "decoder.stages.1",
                  "decoder.stage3": "decoder.stages.2", "decoder.stage2": "decoder.stages.3",
                  "decoder.stage1": "decoder.stages.4"},
        description="VGG-16 encoder whose max-pools remember where the maxima were; the decoder "
                    "unpools to exactly those positions and densifies with convolutions, "
                    "learning no upsampling."),
    ModelSpec(
        name="unet", title="U-Net",
        paper="Ronneberger, Fischer, Brox: U-Net: Convolutional Networks for Biomedical Image "
              "Segmentation",
        year=2015, family="encoder-decoder", output_stride=1, uses_crf=False, instance=False,
        branches={"enc1": "inc", "enc2": "downs.0", "enc3": "downs.1", "enc4": "downs.2",
                  "bottleneck": "downs.3", "dec4": "ups.0", "dec3": "ups.1", "dec2": "ups.2",
                  "dec1": "ups.3"},
        description="A contracting path and a symmetric expanding path of up-convolutions; "
                    "each level concatenates the contracting path's features (skip by "
                    "concatenation) before its convolutions."),
    ModelSpec(
        name="pspnet", title="PSPNet",
        paper="Zhao, Shi, Qi, Wang, Jia: Pyramid Scene Parsing Network",
        year=2017, family="pyramid", output_stride=8, uses_crf=False, instance=False,
        branches=dict(_RESNET, **{"psp.bin1": "head.ppm.stages.0", "psp.bin2": "head.ppm.stages.1",
                                  "psp.bin3": "head.ppm.stages.2", "psp.bin6": "head.ppm.stages.3",
                                  "psp.fuse": "head.fuse", "aux": "aux"}),
        description="A dilated ResNet (output stride 8) whose last map is average-pooled into "
                    "1×1, 2×2, 3×3 and 6×6 bins, upsampled and concatenated, so each pixel "
                    "sees global and regional context."),
    ModelSpec(
        name="deeplabv1", title="DeepLab v1 (LargeFOV)",
        paper="Chen, Papandreou, Kokkinos, Murphy, Yuille: Semantic Image Segmentation with Deep "
              "Convolutional Nets and Fully Connected CRFs",
        year=2015, family="atrous", output_stride=8, uses_crf=True, instance=False,
        branches={"backbone.pool3": "backbone.features.16", "backbone.conv5_3":
                  "backbone.features.29", "fc6": "fc6", "fc7": "fc7", "fc8": "fc8"},
        **_differing(
            "VGG-16 with the last two pools at stride 1 and atrous convolution instead (conv5 "
            "rate 2, a 3×3 stride-1 average pool 'pool5a', fc6 3×3 at rate 12), then a fully "
            "connected CRF sharpens the boundaries.",
            "The paper's Table 2 gives DeepLab-LargeFOV a receptive field of 224 pixels; the 435 "
            "shown here is this project's count, fc6's theoretical field traced through the "
            "whole network with pool5a (419 without it, as in checkpoints trained before "
            "pool5a existed: segstudio rf --weights FILE shows a file's own).")),
    ModelSpec(
        name="deeplabv2", title="DeepLab v2 (ASPP)", paper=DEEPLAB_V2_PAPER, year=2017,
        family="atrous", output_stride=8, uses_crf=True, instance=False,
        branches=dict(_RESNET, **{"aspp.rate6": "head.convs.0", "aspp.rate12": "head.convs.1",
                                  "aspp.rate18": "head.convs.2", "aspp.rate24": "head.convs.3"}),
        **_differing(
            "A dilated ResNet-101 with atrous spatial pyramid pooling: four 3×3 classifiers at "
            "rates 6, 12, 18 and 24 whose scores are summed; a fully connected CRF refines the "
            "result.",
            "The ResNet strides on the 3×3 convolution (torchvision), not on the 1×1 as the "
            "Caffe original.")),
    ModelSpec(
        name="deeplabv3", title="DeepLab v3", paper=DEEPLAB_V3_PAPER, year=2017,
        family="atrous", output_stride=16, uses_crf=False, instance=False,
        branches=dict(_RESNET, **{"aspp.1x1": "head.aspp.convs.0", "aspp.rate6":
                                  "head.aspp.convs.1", "aspp.rate12": "head.aspp.convs.2",
                                  "aspp.rate18": "head.aspp.convs.3",
                                  "aspp.image_pool": "head.aspp.convs.4",
                                  "aspp.project": "head.aspp.project"}),
        description="A ResNet with multi-grid atrous rates in its last block and ASPP with batch "
                    "norm: a 1×1 branch, rates 6/12/18 and image-level pooling, concatenated and "
                    "projected."),
    _tv_deeplab("resnet50", "ResNet-50"), _tv_deeplab("resnet101", "ResNet-101"),
    _tv_deeplab("mobilenet_v3_large", "MobileNetV3-Large"),
    ModelSpec(
        name="refinenet", title="RefineNet",
        paper="Lin, Milan, Shen, Reid: RefineNet: Multi-Path Refinement Networks for "
              "High-Resolution Semantic Segmentation",
        year=2017, family="refinement", output_stride=4, uses_crf=False, instance=False,
        branches=dict(_RESNET, **{"refine4": "refine4", "refine3": "refine3",
                                  "refine2": "refine2", "refine1": "refine1",
                                  "refine4.crp": "refine4.crp", "refine1.fusion":
                                  "refine1.fusion", "refine1.crp": "refine1.crp"}),
        description="Four cascaded RefineNet blocks fuse coarse ResNet features with finer ones "
                    "through residual conv units, multi-resolution fusion and chained residual "
                    "pooling."),
    ModelSpec(
        name="maskrcnn", title="Mask R-CNN (torchvision v2 recipe)",
        paper="He, Gkioxari, Dollár, Girshick: Mask R-CNN", year=2017, family="instance",
        output_stride=4, uses_crf=False, instance=True,
        branches={"backbone.layer2": "backbone.body.layer2",
                  "backbone.layer3": "backbone.body.layer3",
                  "backbone.layer4": "backbone.body.layer4",
                  "fpn.p2": "backbone.fpn.layer_blocks.0", "fpn.p3": "backbone.fpn.layer_blocks.1",
                  "fpn.p4": "backbone.fpn.layer_blocks.2", "fpn.p5": "backbone.fpn.layer_blocks.3",
                  "mask_head": "roi_heads.mask_head"},
        **_differing(
            "Faster R-CNN on a feature pyramid proposes and classifies boxes; a small "
            "convolutional branch predicts one mask per box, aligned by RoIAlign.",
            "The paper configuration is torchvision's maskrcnn_resnet50_fpn_v2 (the improved "
            "recipe of Li et al. 2021: a 4-convolution box head, batch norm in FPN and heads), "
            "not the 2017 network.")),
]

REGISTRY: dict[str, ModelSpec] = {spec.name: spec for spec in _SPECS}


def get_spec(name: str) -> ModelSpec:
    """The facts of model ``name``; an unknown name lists the known ones."""
    try:
        return REGISTRY[name]
    except (KeyError, TypeError):
        raise UnknownModelError(f"unknown model {name!r}; known models: "
                                f"{', '.join(REGISTRY)}") from None


def _vgg(config: str) -> dict:
    return {"width": 1.0 if config == "paper" else LITE_VGG_WIDTH}


def _resnet(config: str, paper_depth: int) -> dict:
    return {"depth": paper_depth, "width": 1.0} if config == "paper" else dict(LITE_RESNET)


def _builder(name: str) -> Callable[[int, str, bool], "torch.nn.Module"]:
    """A function ``(num_classes, config, pretrained_backbone) -> module`` for ``name``."""
    def own(module: str, cls: str, kwargs: Callable[[str], dict]):
        def build(num_classes: int, config: str, pretrained: bool):
            model = getattr(importlib.import_module(f"segstudio.models.{module}"), cls)(
                num_classes, **kwargs(config))
            if pretrained:
                model.load_imagenet()
            return model
        return build

    def torchvision(module: str, func: str, arg):
        def build(num_classes: int, config: str, pretrained: bool):
            fn = getattr(importlib.import_module(f"segstudio.models.{module}"), func)
            return fn(arg, num_classes, pretrained_backbone=pretrained)
        return build

    if name.startswith("fcn") and name.endswith("s"):
        stride = int(name[3:-1])
        return own("fcn", "FCN", lambda c: dict(_vgg(c), stride=stride))
    table: dict[str, Callable] = {
        "fcn_resnet50": torchvision("fcn", "torchvision_fcn", 50),
        "fcn_resnet101": torchvision("fcn", "torchvision_fcn", 101),
        "segnet": own("segnet", "SegNet", _vgg),
        "unet": own("unet", "UNet", lambda c: dict(_vgg(c), batch_norm=c == "lite")),
        "pspnet": own("pspnet", "PSPNet", lambda c: dict(
            _resnet(c, 50), head_channels=512 if c == "paper" else 128)),
        "deeplabv1": own("deeplab", "DeepLabV1", _vgg),
        "deeplabv2": own("deeplab", "DeepLabV2", lambda c: _resnet(c, 101)),
        "deeplabv3": own("deeplab", "DeepLabV3", lambda c: _resnet(c, 101)),
        "deeplabv3_resnet50": torchvision("deeplab", "torchvision_deeplabv3", "resnet50"),
        "deeplabv3_resnet101": torchvision("deeplab", "torchvision_deeplabv3", "resnet101"),
        "deeplabv3_mobilenet_v3_large": torchvision("deeplab", "torchvision_deeplabv3",
                                                    "mobilenet_v3_large"),
        # Lite refinement path at 1/8 width (64 and 32 channels): at 1/4 it held 60 % of the
        # parameters and made a 13 MB float16 file.
        "refinenet": own("refinenet", "RefineNet", lambda c: dict(
            _resnet(c, 101), refine_width=1.0 if c == "paper" else 0.125)),
    }
    if name == "maskrcnn":
        def build_maskrcnn(num_classes: int, config: str, pretrained: bool):
            from segstudio.models.maskrcnn import mask_rcnn

            return mask_rcnn(num_classes, config, pretrained_backbone=pretrained)
        return build_maskrcnn
    return table[name]


def build_model(name: str, num_classes: int, config: str = "lite", *,
                pretrained_backbone: bool = False) -> "torch.nn.Module":
    """Build architecture ``name`` for ``num_classes`` classes with random weights.

    ``config`` is ``"paper"`` (the published widths and depth) or ``"lite"`` (the same code at
    reduced width/depth, for CPUs). ``pretrained_backbone`` fills the encoder with torchvision
    ImageNet weights already in the torch hub cache; nothing is downloaded.
    """
    spec = get_spec(name)
    if config not in spec.configs:
        raise ModelConfigError(f"{name} has no {config!r} configuration; it has "
                               f"{', '.join(repr(c) for c in spec.configs)}")
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ModelConfigError(f"{name}: num_classes must be a positive integer, "
                               f"not {num_classes!r}")
    if pretrained_backbone:
        if name == "unet":
            raise ModelConfigError("unet has no ImageNet backbone; build it without "
                                   "pretrained_backbone")
        if config != "paper":
            raise ModelConfigError(f"{name}: ImageNet backbone weights fit only the 'paper' "
                                   f"configuration, not {config!r} (its widths are reduced)")
    return _builder(name)(num_classes, config, pretrained_backbone)


def parameter_count(name: str, config: str = "lite", num_classes: int = 21) -> int:
    """Trainable and frozen parameters of ``name`` in ``config`` for ``num_classes`` classes,
    counted on a meta-device build (shapes only: no memory, no arithmetic). Buffers (batch norm
    statistics) are not parameters and are not counted."""
    import torch

    with torch.device("meta"):
        model = build_model(name, num_classes, config)
    return sum(p.numel() for p in model.parameters())
