"""How much memory prompted segmentation needs, worked out before it is taken.

Segment Anything's cost hardly depends on the picture: the encoder always sees a 1024² square,
and its global-attention blocks hold a heads × 4096 × 4096 float32 matrix several times over
(the scores, the two steps adding the relative positions, their softmax): about 3.4 GB for
ViT-B, 4.5 GB for ViT-L/H, even for a 64×48 image. The weights come on top, and the masks are
brought back to the image's full size. Measured: ``segstudio prompt`` with ViT-B weights on a
64×48 image peaks at 3.97 GB resident on the CPU (the estimates: 0.75 GB to load, then 3.4 GB
to embed, beside the interpreter and torch themselves). These estimates are checked against the memory available
(:func:`segstudio.io.decode_memory.require_memory`) before loading and before encoding, so that
a machine without the room gets one clear message instead of a crash half way.
"""

from __future__ import annotations

import os
from pathlib import Path

# Bytes per weights-file byte while loading: the state dict read from the file, plus the float32
# copy the network is given when the file stores half precision.
LOAD_FACTOR = 2
# Copies of the global attention matrix alive at once: three in the relative-position step, and
# one more the allocator has not handed back yet (fitted to the measured ViT-B peak).
ATTENTION_COPIES = 4
# float32 activations per token and channel held around one block (qkv, the 4× MLP, residuals).
TOKEN_COPIES = 16
# Bytes per image pixel: the 8-bit RGB copy, a candidate mask resized to full size in float32,
# the bool mask, the uint8 copy written and the PNG encoder's copy.
IMAGE_BYTES_PER_PIXEL = 12


def load_bytes(weights: str | Path) -> int:
    """About the peak bytes loading the weights file (or SAM 2 model folder) takes (0 when it
    cannot be sized: the loader then says what is wrong with it)."""
    if Path(weights).is_dir():
        from segstudio.models.sam2_prompts import load_bytes as folder_bytes

        return folder_bytes(weights)
    try:
        return LOAD_FACTOR * os.stat(weights).st_size
    except (OSError, ValueError):
        return 0


def encoder_bytes(network) -> int:
    """About the peak bytes one encoder pass of ``network`` allocates: its own estimate where it
    gives one (SAM 2), else from its image encoder (Segment Anything's ``ImageEncoderViT``); 0
    for a network that has neither."""
    own = getattr(network, "encoder_bytes", None)
    if callable(own):
        return int(own())
    encoder = getattr(getattr(network, "sam", None), "image_encoder", None)
    if encoder is None:
        return 0
    blocks = list(getattr(encoder, "blocks", ()))
    if not blocks:
        return 0
    img_size = int(getattr(encoder, "img_size", 1024))
    patch = getattr(getattr(encoder, "patch_embed", None), "proj", None)
    stride = int(patch.stride[0]) if patch is not None else 16
    tokens = (img_size // stride) ** 2
    heads = max(int(b.attn.num_heads) for b in blocks)
    windowed = all(int(getattr(b, "window_size", 0)) > 0 for b in blocks)
    if windowed:                       # no global block: attention within windows only
        side = max(int(b.window_size) for b in blocks)
        attention = heads * tokens * side * side * 4
    else:
        attention = heads * tokens * tokens * 4
    dim = int(blocks[0].attn.qkv.in_features)
    return ATTENTION_COPIES * attention + TOKEN_COPIES * tokens * dim * 4


def embed_bytes(network, height: int, width: int) -> int:
    """About the peak bytes of embedding an image of ``height`` × ``width`` pixels and bringing
    its masks back to that size."""
    return encoder_bytes(network) + IMAGE_BYTES_PER_PIXEL * int(height) * int(width)
