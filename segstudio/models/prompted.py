"""Prompted segmentation (Segment Anything, MedSAM): points and boxes in, candidate masks out.

The network is the official ``segment-anything`` package's code (an optional extra); this module
only loads the user's weights file into it, and keeps the geometry right around it:

- the image the network sees is the 8-bit RGB image the user sees (grey and 16-bit images come
  through their display window), resized so its longest side is the encoder's input size and
  padded at the right and bottom;
- prompts in image pixels are mapped into that frame, and the masks come back from it (padding
  cut off, then resized) at the full resolution of the image.

The heavy part, :meth:`PromptedSegmenter.embed`, runs once per image with progress and cancel;
:meth:`PromptedSegmenter.predict` is the cheap decoder pass that runs on every click.
"""

from __future__ import annotations

import errno
import pickle
import re
import zipfile
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Callable, Protocol, Sequence

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from segstudio.io.cache_entry import EntryMismatch, expect_equal
from segstudio.models.checkpoint import CheckpointError, check_finite

PACKAGE_HINT = 'install the optional extra: pip install "segstudio[sam]"'
ENCODER_KEY = "image_encoder.patch_embed.proj.weight"
DECODER_HEADS = 8          # the official mask decoder's attention heads (not stored in weights)


class PromptedError(ValueError):
    """A weights file, prompt or image the prompted segmenter cannot use; the message says why."""


class EmbeddingCancelled(Exception):
    """The user cancelled the image embedding."""


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


# -- the network and its geometry ----------------------------------------------------------------
class PromptNetwork(Protocol):
    """What :class:`PromptedSegmenter` asks of a network (SAM, or a test double)."""

    img_size: int
    embedding_shape: tuple[int, ...]      # the shape of ``encode``'s features, 1×C×g×g

    def encode(self, image: torch.Tensor, on_block: Callable[[int, int], None]) -> torch.Tensor:
        """Features of a 1×3×h×w float image (0…255, longest side ``img_size``, not padded)."""

    def decode(self, features: torch.Tensor, coords: torch.Tensor | None,
               labels: torch.Tensor | None, box: torch.Tensor | None,
               mask_input: torch.Tensor | None, multimask: bool):
        """(mask logits 1×C×h×w at low resolution, predicted IoU 1×C), prompts in the input
        frame."""


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


def resized_shape(height: int, width: int, long_side: int) -> tuple[int, int]:
    """(h, w) after scaling the longest side to ``long_side`` (rounded as SAM rounds)."""
    scale = long_side / max(height, width)
    return int(height * scale + 0.5), int(width * scale + 0.5)


@dataclass
class ImageEmbedding:
    """The encoder's output for one image, and the sizes needed to map prompts and masks."""

    features: torch.Tensor                  # 1×C×g×g, float32 whatever the encoder ran in
    original_size: tuple[int, int]          # (H, W) of the image
    input_size: tuple[int, int]             # (h, w) of the resized image inside the padded square
    precision: str = "fp32"                 # what the encoder computed in (fp32, bf16, fp16)


@dataclass
class PromptPrediction:
    """Candidate masks for one set of prompts, best first by the network's predicted IoU."""

    low_res: np.ndarray                     # C×l×l logits in the padded input frame
    scores: np.ndarray                      # C predicted IoU
    embedding: ImageEmbedding
    img_size: int
    _masks: dict[int, np.ndarray] = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return len(self.scores)

    def mask(self, i: int = 0) -> np.ndarray:
        """Candidate ``i`` as an H×W bool mask of the full image (computed once)."""
        if i not in self._masks:
            self._masks[i] = self._full_resolution(self.low_res[i])
        return self._masks[i]

    def _full_resolution(self, logits: np.ndarray) -> np.ndarray:
        h, w = self.embedding.input_size
        big = F.interpolate(torch.from_numpy(logits)[None, None], (self.img_size, self.img_size),
                            mode="bilinear", align_corners=False)[0, 0, :h, :w].numpy()
        height, width = self.embedding.original_size
        if (h, w) != (height, width):
            big = cv2.resize(big, (width, height), interpolation=cv2.INTER_LINEAR)
        return big > 0.0


class PromptedSegmenter:
    """A prompted segmenter on a device: ``embed`` once per image, ``predict`` per prompt."""

    def __init__(self, network: PromptNetwork, device: torch.device | str = "cpu",
                 name: str = "") -> None:
        self.network = network
        self.device = torch.device(device)
        self.name = name
        self.img_size = int(network.img_size)
        # The encoder's precision: fp32 until models.prompt_precision settles ``auto``.
        self.precision = "fp32"
        self.precision_note = ""

    @classmethod
    def from_file(cls, path: str | Path, device: torch.device | str = "cpu") -> "PromptedSegmenter":
        path = Path(path)
        sam, spec = sam_from_state_dict(load_weights_file(path), path.name)
        return cls(SamNetwork(sam.to(device)), device, f"{spec.name} ({path.name})")

    def embed(self, rgb8: np.ndarray, progress: Callable[[int, int], None] | None = None,
              cancelled: Callable[[], bool] | None = None,
              precision: str | None = None) -> ImageEmbedding:
        """Encode an H×W×3 uint8 image; ``cancelled()`` is asked before each encoder block.

        ``precision`` (default: the segmenter's) other than fp32 runs the encoder under
        autocast; the features are handed on as float32, so the decoder and the embedding
        cache see one type whatever the encoder ran in."""
        precision = precision or self.precision
        rgb8 = np.asarray(rgb8)
        if (rgb8.ndim != 3 or rgb8.shape[2] != 3 or rgb8.dtype != np.uint8
                or min(rgb8.shape[:2]) < 1):
            raise PromptedError(f"the image must be H×W×3 uint8, not {rgb8.dtype} {rgb8.shape}")
        height, width = rgb8.shape[:2]
        h, w = resized_shape(height, width, self.img_size)
        # Pillow's bilinear resize with its antialiasing, as the official preprocessing does.
        from PIL import Image

        small = np.array(Image.fromarray(rgb8).resize((w, h), Image.Resampling.BILINEAR))
        x = torch.from_numpy(small).to(self.device)
        x = x.permute(2, 0, 1)[None].float()

        def on_block(i: int, n: int) -> None:
            if cancelled is not None and cancelled():
                raise EmbeddingCancelled("the image embedding was cancelled")
            if progress is not None:
                progress(i, n)

        if cancelled is not None and cancelled():
            raise EmbeddingCancelled("the image embedding was cancelled")
        if precision == "fp32":
            features = self.network.encode(x, on_block).detach()
        else:
            from segstudio.models.device import DTYPES

            with torch.autocast(self.device.type, dtype=DTYPES[precision]):
                features = self.network.encode(x, on_block).detach()
            features = features.float()
        if not bool(torch.isfinite(features).all()):
            raise PromptedError(f"{self.name or 'the network'}: the image embedding holds NaN or "
                                "infinite values; the weights or this device's arithmetic "
                                "cannot be trusted for this image")
        if progress is not None:
            progress(1, 1)
        return ImageEmbedding(features, (height, width), (h, w), precision)

    def check_embedding(self, embedding: ImageEmbedding, image_shape: Sequence[int]) -> None:
        """Raise :class:`EntryMismatch` unless ``embedding`` is what :meth:`embed` makes of an
        image of ``image_shape`` (H, W, …) with these weights: the image's size, the resized
        input's size, the network's feature shape, float32 and finite throughout.

        A stored embedding is held against this before use: one for another image size writes
        a mask of the wrong size, one of another shape fails inside the decoder, and NaN
        features give an empty mask."""
        height, width = int(image_shape[0]), int(image_shape[1])
        expect_equal(tuple(embedding.original_size), (height, width), "the image size (H, W)")
        expect_equal(tuple(embedding.input_size), resized_shape(height, width, self.img_size),
                     "the resized input's size (h, w)")
        features = embedding.features
        if not isinstance(features, torch.Tensor) or features.dtype != torch.float32:
            # The network runs in float32 (the weights are loaded as float32), and so must
            # what its decoder is given.
            raise EntryMismatch(f"the features are {type(features).__name__} "
                                f"{getattr(features, 'dtype', '')}, not a float32 tensor")
        expect_equal(tuple(features.shape), tuple(self.network.embedding_shape),
                     "the feature map's shape")
        if not bool(torch.isfinite(features).all()):
            raise EntryMismatch("the features hold NaN or infinite values")

    def to_input_frame(self, xy: np.ndarray, embedding: ImageEmbedding) -> np.ndarray:
        """Image pixel coordinates (x, y) → the resized input's coordinates."""
        (height, width), (h, w) = embedding.original_size, embedding.input_size
        out = np.array(xy, dtype=np.float64, copy=True)
        out[..., 0] *= w / width
        out[..., 1] *= h / height
        return out

    def predict(self, embedding: ImageEmbedding, points: Sequence[tuple[float, float]] = (),
                labels: Sequence[int] = (), box: Sequence[float] | None = None, *,
                multimask: bool | None = None,
                mask_input: np.ndarray | None = None) -> PromptPrediction:
        """Masks for object points (label 1), background points (0) and/or a box (x0, y0, x1, y1).

        Coordinates are pixel indices of the image. ``multimask`` defaults to three candidates
        for an ambiguous prompt (one point, no box) and one otherwise, as SAM's authors advise;
        ``mask_input`` is a previous candidate's low-resolution logits, to refine it.
        """
        if len(points) != len(labels):
            raise PromptedError("every point needs a label (1 = object, 0 = background)")
        if not len(points) and box is None:
            raise PromptedError("give at least one point or a box")
        height, width = embedding.original_size
        for x, y in points:
            if not (0 <= x < width and 0 <= y < height):
                raise PromptedError(f"point ({x:g}, {y:g}) lies outside the "
                                    f"{width}×{height} image")
        if multimask is None:
            multimask = len(points) == 1 and box is None
        dev = self.device
        coords = lab = box_t = mask_t = None
        if len(points):
            coords = torch.as_tensor(self.to_input_frame(np.asarray(points, float), embedding),
                                     dtype=torch.float32, device=dev)[None]
            lab = torch.as_tensor(np.asarray(labels), dtype=torch.int32, device=dev)[None]
        if box is not None:
            x0, y0, x1, y1 = (float(v) for v in box)
            if x1 <= x0 or y1 <= y0:
                raise PromptedError(f"the box ({x0:g}, {y0:g}, {x1:g}, {y1:g}) is empty: give "
                                    "X0 Y0 X1 Y1 with X1 > X0 and Y1 > Y0")
            corners = self.to_input_frame(np.array([[x0, y0], [x1, y1]]), embedding)
            box_t = torch.as_tensor(corners.reshape(1, 4), dtype=torch.float32, device=dev)
        if mask_input is not None:
            mask_t = torch.as_tensor(mask_input, dtype=torch.float32, device=dev)[None, None]
        low_res, iou = self.network.decode(embedding.features.to(dev), coords, lab, box_t,
                                           mask_t, multimask)
        low_res = low_res[0].float().cpu().numpy()
        scores = iou[0].float().cpu().numpy()
        order = np.argsort(-scores, kind="stable")
        return PromptPrediction(low_res[order], scores[order], embedding, self.img_size)
