"""Prompted segmentation (Segment Anything, MedSAM, SAM 2): points and boxes in, candidate masks out.

The networks are their authors' code (optional extras): Segment Anything and MedSAM from a
weights file (:mod:`.sam_network`), SAM 2 from a model folder (:mod:`.sam2_image`). This module
is the one interface in front of them, and keeps the geometry right around each:

- the image the network sees is the 8-bit RGB image the user sees (grey and 16-bit images come
  through their display window), resized so its longest side is the encoder's input size and
  padded at the right and bottom — or, for a network with a ``square_input`` (SAM 2), squashed
  to the square by the network's own ``preprocess``;
- prompts in image pixels are mapped into that frame, and the masks come back from it (padding
  cut off, then resized) at the full resolution of the image.

The heavy part, :meth:`PromptedSegmenter.embed`, runs once per image with progress and cancel;
:meth:`PromptedSegmenter.predict` is the cheap decoder pass that runs on every click.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Protocol, Sequence

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from segstudio.io.cache_entry import EntryMismatch, expect_equal
from segstudio.models.prompt_errors import EmbeddingCancelled, PromptedError  # noqa: F401
# The Segment Anything network and its weights file, re-exported: they were defined here.
from segstudio.models.sam_network import (DECODER_HEADS, ENCODER_KEY, PACKAGE_HINT,  # noqa: F401
                                          SamNetwork, SamSpec, build_sam, load_weights_file,
                                          sam_from_state_dict, spec_from_state_dict,
                                          unwrap_state_dict)


# -- the network and its geometry ----------------------------------------------------------------
class PromptNetwork(Protocol):
    """What :class:`PromptedSegmenter` asks of a network (SAM, or a test double)."""

    img_size: int
    embedding_shape: tuple[int, ...]      # the shape of ``encode``'s features, 1×C×g×g
    # Optional: ``embedding_shapes`` (a network whose features are several maps, a tuple of
    # tensors), ``square_input`` and ``preprocess(rgb8)`` (a network that takes the image
    # squashed to its square by its own code), ``encoder_bytes()`` (its memory estimate).

    def encode(self, image: torch.Tensor, on_block: Callable[[int, int], None]) -> torch.Tensor:
        """Features of a 1×3×h×w float image (0…255, longest side ``img_size``, not padded)."""

    def decode(self, features: torch.Tensor, coords: torch.Tensor | None,
               labels: torch.Tensor | None, box: torch.Tensor | None,
               mask_input: torch.Tensor | None, multimask: bool):
        """(mask logits 1×C×h×w at low resolution, predicted IoU 1×C), prompts in the input
        frame."""




def resized_shape(height: int, width: int, long_side: int) -> tuple[int, int]:
    """(h, w) after scaling the longest side to ``long_side`` (rounded as SAM rounds)."""
    scale = long_side / max(height, width)
    return int(height * scale + 0.5), int(width * scale + 0.5)


@dataclass
class ImageEmbedding:
    """The encoder's output for one image, and the sizes needed to map prompts and masks."""

    features: torch.Tensor | tuple          # 1×C×g×g (or several maps), float32 whatever
                                            # the encoder ran in
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
    square: bool = False                    # the input was the whole square (SAM 2)
    _masks: dict[int, np.ndarray] = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return len(self.scores)

    def mask(self, i: int = 0) -> np.ndarray:
        """Candidate ``i`` as an H×W bool mask of the full image (computed once)."""
        if i not in self._masks:
            self._masks[i] = self._full_resolution(self.low_res[i])
        return self._masks[i]

    def _full_resolution(self, logits: np.ndarray) -> np.ndarray:
        if self.square:       # one bilinear resize to the image, as SAM 2's library does
            big = F.interpolate(torch.from_numpy(logits)[None, None],
                                tuple(self.embedding.original_size), mode="bilinear",
                                align_corners=False)[0, 0]
            return (big > 0.0).numpy()
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
        self.square = bool(getattr(network, "square_input", False))
        self.shapes = tuple(getattr(network, "embedding_shapes", (network.embedding_shape,)))
        # The encoder's precision: fp32 until models.prompt_precision settles ``auto``.
        self.precision = "fp32"
        self.precision_note = ""

    @classmethod
    def from_file(cls, path: str | Path, device: torch.device | str = "cpu") -> "PromptedSegmenter":
        """The segmenter of a Segment Anything or MedSAM weights file, or of a SAM 2 model
        folder (SAM 2's errors are a :class:`ValueError` too)."""
        path = Path(path)
        if path.is_dir():
            from segstudio.models import sam2_image

            network = sam2_image.load_network(path, torch.device(device))
            return cls(network, device, sam2_image.describe(path, network))
        sam, spec = sam_from_state_dict(load_weights_file(path), path.name)
        return cls(SamNetwork(sam.to(device)), device, f"{spec.name} ({path.name})")

    def input_size(self, height: int, width: int) -> tuple[int, int]:
        """(h, w) of the image inside the network's input square."""
        if self.square:
            return self.img_size, self.img_size
        return resized_shape(height, width, self.img_size)

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
        h, w = self.input_size(height, width)
        if self.square:
            x = self.network.preprocess(rgb8)
        else:
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
            features = _detached(self.network.encode(x, on_block))
        else:
            from segstudio.models.device import DTYPES

            with torch.autocast(self.device.type, dtype=DTYPES[precision]):
                features = _detached(self.network.encode(x, on_block))
        if not all(bool(torch.isfinite(f).all()) for f in _maps(features)):
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
        expect_equal(tuple(embedding.input_size), self.input_size(height, width),
                     "the resized input's size (h, w)")
        features = embedding.features
        several = len(self.shapes) > 1
        if several != isinstance(features, (tuple, list)):
            raise EntryMismatch(f"the features are {type(features).__name__}, not "
                                + ("several maps" if several else "one map"))
        for f in _maps(features):
            if not isinstance(f, torch.Tensor) or f.dtype != torch.float32:
                # The network runs in float32 (the weights are loaded as float32), and so
                # must what its decoder is given.
                raise EntryMismatch(f"the features are {type(f).__name__} "
                                    f"{getattr(f, 'dtype', '')}, not a float32 tensor")
        expect_equal(tuple(tuple(f.shape) for f in _maps(features)),
                     tuple(tuple(s) for s in self.shapes), "the feature map's shape")
        if not all(bool(torch.isfinite(f).all()) for f in _maps(features)):
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
        features = embedding.features
        features = (tuple(f.to(dev) for f in features) if isinstance(features, (tuple, list))
                    else features.to(dev))
        low_res, iou = self.network.decode(features, coords, lab, box_t, mask_t, multimask)
        low_res = low_res[0].float().cpu().numpy()
        scores = iou[0].float().cpu().numpy()
        order = np.argsort(-scores, kind="stable")
        return PromptPrediction(low_res[order], scores[order], embedding, self.img_size,
                                self.square)


def _maps(features) -> tuple:
    """The feature maps of an embedding: one tensor, or several."""
    return tuple(features) if isinstance(features, (tuple, list)) else (features,)


def _detached(features):
    """The encoder's output as float32 tensors off the graph (one, or a tuple of several)."""
    if isinstance(features, (tuple, list)):
        return tuple(f.detach().float() for f in features)
    return features.detach().float()
