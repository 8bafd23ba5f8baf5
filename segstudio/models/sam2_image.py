"""SAM 2 on still images: the user's SAM 2 model folder behind the Prompt tool.

The network is the library's own ``Sam2Model`` (``transformers``, the optional extra
``.[sam2]``), read from the same local folder as video tracking (a SAM 2 or SAM 2.1 folder of
``config.json`` and ``.safetensors`` weights; :func:`segstudio.models.sam2_video.load_model`'s
checks apply: local files only, no pickles, no remote code, every weight present and finite).

It plugs into :class:`segstudio.models.prompted.PromptedSegmenter` like Segment Anything does,
so the Prompt tool, the embedding cache, the precision calibration and ``segstudio prompt``
are one code path for SAM, MedSAM and SAM 2. What differs is SAM 2's geometry, kept as the
library has it:

- the image is squashed to the network's square input by the library's own image processor
  (no padding, no kept aspect ratio), and prompts are mapped into that square;
- the embedding is three feature maps (two high-resolution levels the mask decoder reads, and
  the 1/16 level), not one;
- masks come back by one bilinear resize of the decoder's logits to the image's size, as the
  library's ``post_process_masks`` does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import torch

from segstudio.models.sam2_prompts import Sam2Error, check_folder

# Peak bytes of one encoder pass per input pixel (fitted, like tracking's, to SAM 2.1 tiny's
# shape on the CPU; see bench/bench_sam2_click.py), on top of the weights.
ENCODER_BYTES_PER_PIXEL = 640


class Sam2ImageNetwork:
    """``Sam2Model`` behind :class:`segstudio.models.prompted.PromptNetwork`."""

    square_input = True          # the image fills the input square; masks resize straight back

    def __init__(self, model, processor) -> None:
        self.model = model.eval()
        self.processor = processor
        config = model.config
        self.img_size = int(config.image_size)
        sizes = [tuple(int(v) for v in s) for s in config.vision_config.backbone_feature_sizes]
        decoder = model.mask_decoder
        channels = (int(decoder.conv_s0.out_channels), int(decoder.conv_s1.out_channels),
                    int(config.vision_config.fpn_hidden_size))
        self.embedding_shapes = tuple((1, c, *s) for c, s in zip(channels, sizes))
        self.embedding_shape = self.embedding_shapes[-1]
        self._blocks = list(model.vision_encoder.backbone.blocks)

    def encoder_bytes(self) -> int:
        """About the peak bytes one encoder pass allocates."""
        return ENCODER_BYTES_PER_PIXEL * self.img_size * self.img_size

    def preprocess(self, rgb8) -> torch.Tensor:
        """The library's own resizing and normalisation of an H×W×3 uint8 image: 1×3×S×S."""
        pixels = self.processor.image_processor(images=rgb8, return_tensors="pt")["pixel_values"]
        return pixels.to(next(self.model.parameters()).device)

    @torch.inference_mode()
    def encode(self, image: torch.Tensor, on_block: Callable[[int, int], None]):
        blocks = self._blocks
        hooks = [b.register_forward_pre_hook(lambda _m, _a, i=i: on_block(i, len(blocks)))
                 for i, b in enumerate(blocks)]
        try:
            return tuple(self.model.get_image_embeddings(image))
        finally:
            for h in hooks:
                h.remove()

    @torch.inference_mode()
    def decode(self, features, coords, labels, box, mask_input, multimask):
        """The library's own forward from the stored embedding; prompts already in the input
        square's pixels, as its processor gives them."""
        out = self.model(
            image_embeddings=list(features),
            input_points=None if coords is None else coords[:, None],
            input_labels=None if labels is None else labels[:, None],
            input_boxes=None if box is None else box[:, None],
            input_masks=mask_input, multimask_output=multimask)
        return out.pred_masks[:, 0], out.iou_scores[:, 0]


def _image_library():
    try:
        from transformers import Sam2Model
    except ImportError:
        from segstudio.models.sam2_video import PACKAGE_HINT

        raise Sam2Error("SAM 2 needs the transformers package; " + PACKAGE_HINT) from None
    return Sam2Model


def load_network(folder: str | Path, device: torch.device) -> Sam2ImageNetwork:
    """The still-image network of a checked SAM 2 folder, in float32 on ``device``. A folder
    saved for video (``sam2_video``) serves still images too: its image parts are the same."""
    from segstudio.models import sam2_video

    check_folder(folder)
    model_class = _image_library()
    model, processor = sam2_video.load_model(folder, device, model_class=model_class)
    return Sam2ImageNetwork(model, processor)


def describe(folder: str | Path, network: Sam2ImageNetwork) -> str:
    """The name the window and the command line give the network."""
    return f"SAM 2 {network.img_size}² ({Path(folder).name})"
