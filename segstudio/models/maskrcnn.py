"""Mask R-CNN (He, Gkioxari, Dollár, Girshick, ICCV 2017) from torchvision's detection models.

Faster R-CNN proposes and classifies boxes; a small fully convolutional branch predicts a binary
mask per box and class, aligned to the image by RoIAlign (§3). This is instance segmentation:
in eval mode the model takes a list of 3×H×W images (0..1) and returns torchvision's detection
dicts (``boxes``, ``labels``, ``scores``, ``masks``). Class 0 is the background.

``paper`` is torchvision's ``maskrcnn_resnet50_fpn_v2``, not the 2017 network: ResNet-50-FPN with
the improved recipe of its v2 weights (Li et al., "Benchmarking Detection Transfer Learning with
Vision Transformers", 2021: a box head of four convolutions and one fully connected layer, batch
norm in the FPN and heads, a two-convolution RPN head), which the model list says in its title.
``lite`` is the same design built from the same torchvision parts with a
half-width ResNet-18 trunk, 64-channel FPN and heads, smaller anchors, and images resized to
256-512 pixels instead of 800-1333, and keeps fewer proposals and detections at test time, so it
runs on a laptop CPU. It also trains on fewer RoIs and proposals per image than the paper's
512 and 2000, sized for scenes of a handful of objects: the RoI heads are most of a training step's
time on the CPU, and the two together make a step 2.4× faster (``bench/bench_maskrcnn_step.py``).
"""

from __future__ import annotations

from torch import nn

from segstudio.models.backbones import ResNet

LITE_MIN_SIZE = 256
LITE_MAX_SIZE = 512
LITE_CHANNELS = 64
LITE_BOX_FC = 256
# Fewer proposals (pre/post NMS) and detections at test time: the RoI heads dominate CPU time.
LITE_PROPOSALS = (300, 150)
LITE_DETECTIONS = 50
# Training: RoIs sampled per image for the heads (a quarter positive, as in the paper), and the
# RPN's proposals kept per level before NMS and in all after it.
LITE_ROIS_PER_IMAGE = 128
LITE_TRAIN_PROPOSALS = (1000, 500)


def _anchors(sizes):
    from torchvision.models.detection.anchor_utils import AnchorGenerator

    return AnchorGenerator(tuple((s,) for s in sizes), ((0.5, 1.0, 2.0),) * len(sizes))


def mask_rcnn(num_classes: int, config: str = "lite", *, pretrained_backbone: bool = False):
    """Mask R-CNN for ``num_classes`` classes including the background."""
    from torchvision.models.detection import MaskRCNN, maskrcnn_resnet50_fpn_v2

    if config == "paper":
        model = maskrcnn_resnet50_fpn_v2(weights=None, weights_backbone=None,
                                         num_classes=num_classes)
        if pretrained_backbone:
            from segstudio.models.fcn import load_torchvision_resnet

            load_torchvision_resnet(model.backbone.body, 50)
        return model

    from torchvision.models.detection.backbone_utils import BackboneWithFPN
    from torchvision.models.detection.faster_rcnn import (FastRCNNConvFCHead, FastRCNNPredictor,
                                                          RPNHead)
    from torchvision.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor
    from torchvision.ops.feature_pyramid_network import LastLevelMaxPool

    trunk = ResNet(18, width=0.5)
    ch = LITE_CHANNELS
    backbone = BackboneWithFPN(
        trunk, {f"layer{i}": str(i - 1) for i in range(1, 5)}, list(trunk.channels), ch,
        extra_blocks=LastLevelMaxPool(), norm_layer=nn.BatchNorm2d)
    anchors = _anchors((16, 32, 64, 128, 256))
    return MaskRCNN(
        backbone, num_classes=None, min_size=LITE_MIN_SIZE, max_size=LITE_MAX_SIZE,
        rpn_anchor_generator=anchors, rpn_pre_nms_top_n_test=LITE_PROPOSALS[0],
        rpn_post_nms_top_n_test=LITE_PROPOSALS[1], box_detections_per_img=LITE_DETECTIONS,
        rpn_pre_nms_top_n_train=LITE_TRAIN_PROPOSALS[0],
        rpn_post_nms_top_n_train=LITE_TRAIN_PROPOSALS[1],
        box_batch_size_per_image=LITE_ROIS_PER_IMAGE,
        rpn_head=RPNHead(ch, anchors.num_anchors_per_location()[0], conv_depth=2),
        box_head=FastRCNNConvFCHead((ch, 7, 7), [ch] * 4, [LITE_BOX_FC],
                                    norm_layer=nn.BatchNorm2d),
        box_predictor=FastRCNNPredictor(LITE_BOX_FC, num_classes),
        mask_head=MaskRCNNHeads(ch, [ch] * 4, 1, norm_layer=nn.BatchNorm2d),
        mask_predictor=MaskRCNNPredictor(ch, ch, num_classes),
    )
