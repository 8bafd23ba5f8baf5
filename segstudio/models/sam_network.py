"""Segment Anything and MedSAM: a weights file read safely into the official network.

The network code is the official ``segment-anything`` package's (an optional extra); this module
reads the user's weights file without running code (``weights_only``), works out the network's
sizes from the tensors, builds it on the meta device, loads the weights strictly and refuses
NaN. :class:`SamNetwork` puts it behind :class:`segstudio.models.prompted.PromptNetwork`.
"""

from __future__ import annotations

import errno
import pickle
import re
import zipfile
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import torch

from segstudio.models.checkpoint import CheckpointError, check_finite
from segstudio.models.prompt_errors import PromptedError

PACKAGE_HINT = 'install the optional extra: pip install "segstudio[sam]"'
ENCODER_KEY = "image_encoder.patch_embed.proj.weight"
DECODER_HEADS = 8          # the official mask decoder's attention heads (not stored in weights)


# -- weights -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SamSpec:
    """Sizes of a Segment Anything network, read from its state dict."""

    embed_dim: int
    depth: int
    num_heads: int
    global_attn_indexes: tuple[int, ...]
    window_size: int
    img_size: int = 1024
    patch_size: int = 16
    mlp_ratio: float = 4.0
    prompt_dim: int = 256
    mask_in_chans: int = 16
    decoder_depth: int = 2
    decoder_mlp_dim: int = 2048
    num_multimask_outputs: int = 3
    iou_head_depth: int = 3
    iou_head_hidden_dim: int = 256

    @property
    def name(self) -> str:
        known = {(768, 12): "ViT-B", (1024, 24): "ViT-L", (1280, 32): "ViT-H"}
        return known.get((self.embed_dim, self.depth), f"ViT {self.embed_dim}×{self.depth}")


def _indices(state: dict, prefix: str) -> list[int]:
    pattern = re.compile(re.escape(prefix) + r"(\d+)\.")
    return sorted({int(m.group(1)) for k in state if (m := pattern.match(k))})


def spec_from_state_dict(state: dict) -> SamSpec:
    """The network sizes a state dict was saved from (official ViT-B/L/H, MedSAM, or smaller)."""
    try:
        e, _, p, _ = state[ENCODER_KEY].shape
        grid = state["image_encoder.pos_embed"].shape[1]
        blocks = _indices(state, "image_encoder.blocks.")
        rel = [state[f"image_encoder.blocks.{i}.attn.rel_pos_h"].shape for i in blocks]
        head_dim = rel[0][1]
        global_idx = tuple(i for i, s in zip(blocks, rel) if s[0] == 2 * grid - 1)
        local = [s[0] for s in rel if s[0] != 2 * grid - 1]
        return SamSpec(
            embed_dim=e, depth=len(blocks), num_heads=e // head_dim,
            global_attn_indexes=global_idx,
            window_size=(local[0] + 1) // 2 if local else 0,
            img_size=grid * p, patch_size=p,
            mlp_ratio=state["image_encoder.blocks.0.mlp.lin1.weight"].shape[0] / e,
            prompt_dim=state["image_encoder.neck.0.weight"].shape[0],
            mask_in_chans=state["prompt_encoder.mask_downscaling.3.weight"].shape[0],
            decoder_depth=len(_indices(state, "mask_decoder.transformer.layers.")),
            decoder_mlp_dim=state["mask_decoder.transformer.layers.0.mlp.lin1.weight"].shape[0],
            num_multimask_outputs=state["mask_decoder.mask_tokens.weight"].shape[0] - 1,
            iou_head_depth=len(_indices(state, "mask_decoder.iou_prediction_head.layers.")),
            iou_head_hidden_dim=state["mask_decoder.iou_prediction_head.layers.0.weight"].shape[0],
        )
    except (KeyError, IndexError, ValueError, ZeroDivisionError) as exc:
        raise PromptedError(f"the weights lack a Segment Anything part ({exc})") from None


def _sam_modules():
    try:
        from segment_anything import modeling
    except ImportError:
        raise PromptedError("prompted segmentation needs the segment-anything package; "
                            + PACKAGE_HINT) from None
    return modeling


def build_sam(spec: SamSpec) -> torch.nn.Module:
    """An (untrained) Segment Anything network of ``spec``'s sizes, from the official classes."""
    m = _sam_modules()
    grid = spec.img_size // spec.patch_size
    return m.Sam(
        image_encoder=m.ImageEncoderViT(
            depth=spec.depth, embed_dim=spec.embed_dim, img_size=spec.img_size,
            mlp_ratio=spec.mlp_ratio, norm_layer=partial(torch.nn.LayerNorm, eps=1e-6),
            num_heads=spec.num_heads, patch_size=spec.patch_size, qkv_bias=True,
            use_rel_pos=True, global_attn_indexes=spec.global_attn_indexes,
            window_size=spec.window_size, out_chans=spec.prompt_dim),
        prompt_encoder=m.PromptEncoder(
            embed_dim=spec.prompt_dim, image_embedding_size=(grid, grid),
            input_image_size=(spec.img_size, spec.img_size), mask_in_chans=spec.mask_in_chans),
        mask_decoder=m.MaskDecoder(
            num_multimask_outputs=spec.num_multimask_outputs,
            transformer=m.TwoWayTransformer(depth=spec.decoder_depth,
                                            embedding_dim=spec.prompt_dim,
                                            mlp_dim=spec.decoder_mlp_dim,
                                            num_heads=DECODER_HEADS),
            transformer_dim=spec.prompt_dim, iou_head_depth=spec.iou_head_depth,
            iou_head_hidden_dim=spec.iou_head_hidden_dim),
    ).eval()


def unwrap_state_dict(obj, name: str) -> dict:
    """The plain state dict inside a checkpoint (MedSAM's training saves it under ``model``)."""
    for key in ("model", "state_dict"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise PromptedError(f"{name}: this file holds no state dict of tensors")
    if obj and all(k.startswith("module.") for k in obj):
        obj = {k[len("module."):]: v for k, v in obj.items()}
    if ENCODER_KEY not in obj:
        some = ", ".join(list(obj)[:3]) or "none"
        raise PromptedError(f"{name}: not a Segment Anything or MedSAM checkpoint (it has no "
                            f"{ENCODER_KEY}; its first keys: {some})")
    return obj


def sam_from_state_dict(state: dict, name: str = "weights", *, meta: bool = False):
    """Build the network the state dict describes and load it (strictly).

    The network is built on the meta device and the tensors assigned, so no time goes into a
    random initialisation that is thrown away. ``meta=True`` leaves it there (a shape check).
    """
    spec = spec_from_state_dict(state)
    with torch.device("meta"):
        sam = build_sam(spec)
    try:
        sam.load_state_dict({k: v if meta else v.float() for k, v in state.items()},
                            strict=True, assign=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        detail = " ".join(first[:2])[:300]
        raise PromptedError(f"{name}: the weights do not fit a Segment Anything {spec.name} "
                            f"network ({detail})") from None
    if not meta:
        # Buffers outside the state dict (the pixel statistics) are made afresh on the CPU.
        sam.pixel_mean = torch.tensor([123.675, 116.28, 103.53]).view(-1, 1, 1)
        sam.pixel_std = torch.tensor([58.395, 57.12, 57.375]).view(-1, 1, 1)
        left = [n for n, b in sam.named_buffers() if b.is_meta]
        if left:
            raise PromptedError(f"{name}: the weights leave {', '.join(left)} unset")
    return sam, spec


def load_weights_file(path: str | Path) -> dict:
    """The state dict of a weights file, read with ``weights_only=True`` (no code runs);
    weights holding NaN or infinity are refused, naming the first such weight."""
    path = Path(path)
    if not path.is_file():
        raise PromptedError(f"{path}: no such weights file")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except OSError as exc:
        if exc.errno in (errno.EACCES, errno.EPERM, errno.EISDIR, errno.EIO):
            raise PromptedError(f"{path.name}: cannot be read ({exc.strerror or exc})") from None
        raise _damaged(path, exc) from None
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, zipfile.BadZipFile,
            AttributeError, ImportError, IndexError, KeyError) as exc:
        raise _damaged(path, exc) from None
    state = unwrap_state_dict(obj, path.name)
    try:
        check_finite(state, path.name)
    except CheckpointError as exc:
        raise PromptedError(str(exc)) from None
    return state


def _damaged(path: Path, exc: BaseException) -> PromptedError:
    text = str(exc).strip()
    detail = text.splitlines()[0][:200] if text else type(exc).__name__
    return PromptedError(f"{path.name}: not a readable PyTorch weights file — damaged, "
                         f"incomplete or another format ({detail})")


class SamNetwork:
    """The official network behind :class:`PromptNetwork`."""

    def __init__(self, sam: torch.nn.Module) -> None:
        self.sam = sam.eval()
        self.img_size = int(sam.image_encoder.img_size)
        prompt = sam.prompt_encoder
        self.embedding_shape = (1, int(prompt.embed_dim), *map(int, prompt.image_embedding_size))
        self._dense_pe: torch.Tensor | None = None      # constant: made once, not per click

    @torch.inference_mode()
    def encode(self, image, on_block):
        blocks = self.sam.image_encoder.blocks
        hooks = [b.register_forward_pre_hook(lambda _m, _a, i=i: on_block(i, len(blocks)))
                 for i, b in enumerate(blocks)]
        try:
            return self.sam.image_encoder(self.sam.preprocess(image))
        finally:
            for h in hooks:
                h.remove()

    @torch.inference_mode()
    def decode(self, features, coords, labels, box, mask_input, multimask):
        points = (coords, labels) if coords is not None else None
        sparse, dense = self.sam.prompt_encoder(points=points, boxes=box, masks=mask_input)
        if self._dense_pe is None or self._dense_pe.device != features.device:
            self._dense_pe = self.sam.prompt_encoder.get_dense_pe().to(features.device)
        return self.sam.mask_decoder(
            image_embeddings=features, image_pe=self._dense_pe,
            sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense,
            multimask_output=multimask)
