"""Tracking objects through a video with SAM 2, through the Hugging Face ``transformers`` code.

The network and its video session are the library's own (``Sam2VideoModel``,
``Sam2VideoProcessor``, an optional extra); this module loads the user's own local model folder
into them and drives the session so that a long video costs no more memory than a short one:

- Only a local folder is read: a SAM 2 ``config.json`` and ``.safetensors`` weights, opened with
  ``local_files_only`` and never with remote code. Pickled weights (``.bin``, ``.pt``) are
  refused, and so are weights that leave parts of the network unset or hold NaN.
- Frames are handed to the session one at a time, in the library's streaming mode, as they come
  from the decoder. The library keeps every frame it was given and every frame's outputs; the
  memory bank only ever reads the prompted frames and the last few tracked ones, so after each
  frame the pixels and the outputs it can no longer reach are dropped. What stays is bounded by
  the memory bank (``num_maskmem`` and ``max_object_pointers_in_encoder`` frames per object),
  not by the length of the video.
- Prompts for every frame are given first, each frame's followed by a model pass on it (as a
  person clicking would), then the frames are tracked in order. The masks are the ones the
  library's own whole-video loop (``propagate_in_video_iterator``) gives for the same calls.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np
import torch

from segstudio.models.checkpoint import CheckpointError, check_finite
# The folder and prompt checks live apart, free of torch; they are this module's API too.
from segstudio.models.sam2_prompts import (MODEL_TYPES, Sam2Error, TrackPrompt,  # noqa: F401
                                           check_folder, check_prompts, group_by_frame,
                                           library_inputs, load_bytes, tracking_order,
                                           weights_files)

PACKAGE_HINT = 'install the optional extra: pip install "segstudio[sam2]"'
# Peak bytes of one frame's pass per input pixel (the image encoder's activations and what the
# library keeps around them), fitted to SAM 2.1 tiny's shape on the CPU: about 0.6 GB above the
# weights at its 1024² input (bench/bench_sam2_track.py --shape hiera-tiny).
ACTIVATION_BYTES = 640


class TrackingCancelled(Exception):
    """The caller asked tracking to stop."""


def _library():
    try:
        from transformers import Sam2VideoModel, Sam2VideoProcessor
    except ImportError:
        raise Sam2Error("SAM 2 tracking needs the transformers package; " + PACKAGE_HINT) \
            from None
    return Sam2VideoModel, Sam2VideoProcessor


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:200]


def load_model(folder: str | Path, device: torch.device, model_class=None):
    """The network and processor of a checked model folder, in float32 on ``device``
    (``model_class``: the library's class to load, the video model by default)."""
    folder = Path(folder)
    check_folder(folder)
    video_class, processor_class = _library()
    model_class = model_class or video_class
    from transformers.utils import logging as hf_logging

    # The library's progress bars and load reports stay off the user's stderr: what is wrong
    # with a folder is said here, in one line.
    bar, verbosity = hf_logging.is_progress_bar_enabled(), hf_logging.get_verbosity()
    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    try:
        model, info = model_class.from_pretrained(
            folder, local_files_only=True, use_safetensors=True, trust_remote_code=False,
            dtype=torch.float32, output_loading_info=True)
    except (OSError, ValueError, RuntimeError, KeyError, TypeError, AttributeError) as exc:
        if "mismatched" in str(exc) or "size mismatch" in str(exc):
            raise Sam2Error(f"{folder}: the weights do not fit the network its config.json "
                            "describes (weights of another shape)") from None
        raise Sam2Error(f"{folder}: the SAM 2 model cannot be loaded ({_first_line(exc)})") \
            from None
    except Exception as exc:  # noqa: BLE001 - safetensors raises its own error types
        raise Sam2Error(f"{folder}: the weights are damaged ({_first_line(exc)})") from None
    finally:
        hf_logging.set_verbosity(verbosity)
        if bar:
            hf_logging.enable_progress_bar()
    missing = list(info.get("missing_keys") or [])
    mismatched = list(info.get("mismatched_keys") or [])
    if missing or mismatched:
        some = ", ".join(str(k if isinstance(k, str) else k[0]) for k in (missing + mismatched)[:3])
        raise Sam2Error(f"{folder}: the weights do not fill the network its config describes "
                        f"({len(missing) + len(mismatched)} part(s) missing or of another shape, "
                        f"e.g. {some})")
    try:
        check_finite(model.state_dict(), str(folder))
    except CheckpointError as exc:
        raise Sam2Error(str(exc)) from None
    try:
        processor = processor_class.from_pretrained(folder, local_files_only=True)
    except (OSError, ValueError, KeyError, TypeError):
        processor = default_processor(int(model.config.image_size))
    side = int(model.config.image_size)
    sizes = {(processor.video_processor.size.height, processor.video_processor.size.width),
             (processor.image_processor.size.height, processor.image_processor.size.width),
             (processor.target_size, processor.target_size)}
    if sizes != {(side, side)}:
        raise Sam2Error(f"{folder}: the processor files resize frames to "
                        f"{sorted(sizes)[0][1]}×{sorted(sizes)[0][0]}, but the network takes "
                        f"{side}×{side}; remove them or copy the model folder again")
    return model.to(device).eval(), processor


def default_processor(image_size: int):
    """The processor SAM 2 uses (the input square, ImageNet statistics), for a folder that
    brings none of its own."""
    _, processor_class = _library()
    from transformers.models.sam2.image_processing_sam2 import Sam2ImageProcessor
    from transformers.models.sam2_video.video_processing_sam2_video import \
        Sam2VideoVideoProcessor

    size = {"height": image_size, "width": image_size}
    mask = {"height": image_size // 4, "width": image_size // 4}
    return processor_class(image_processor=Sam2ImageProcessor(size=size, mask_size=mask),
                           video_processor=Sam2VideoVideoProcessor(size=size))


# -- results -------------------------------------------------------------------------------
@dataclass
class TrackedFrame:
    """One frame's result: per object its mask and the model's score that it is present."""

    index: int
    object_ids: tuple[int, ...]
    logits: np.ndarray                # K × H × W float32, the masks' logits at full size
    scores: tuple[float, ...]         # sigmoid of the object score logits

    @property
    def masks(self) -> np.ndarray:
        return self.logits > 0

    def object_map(self) -> np.ndarray:
        """H × W uint8 object ids: each pixel goes to the object whose mask logit there is the
        highest of those above 0 (SAM 2 masks may overlap); 0 where none is. Ids above 254
        cannot be stored and stay 0."""
        h, w = self.logits.shape[1:]
        out = np.zeros((h, w), np.uint8)
        if not self.object_ids:
            return out
        best = self.logits.argmax(axis=0)
        present = self.logits.max(axis=0) > 0
        ids = np.array([i if 0 < i < 255 else 0 for i in self.object_ids], np.uint8)
        out[present] = ids[best[present]]
        return out


# -- the tracker -------------------------------------------------------------------------
class Sam2VideoTracker:
    """A loaded SAM 2 network that tracks prompted objects through frames read one at a time."""

    def __init__(self, model, processor, device: torch.device, name: str = "SAM 2") -> None:
        self.model = model
        self.processor = processor
        self.device = device
        self.name = name
        config = model.config
        # How far back (or ahead, in reverse) the memory bank reads tracked frames.
        self.reach = max(int(config.num_maskmem), int(config.max_object_pointers_in_encoder))

    @classmethod
    def from_folder(cls, folder: str | Path, device: torch.device) -> "Sam2VideoTracker":
        model, processor = load_model(folder, device)
        return cls(model, processor, device, name=f"SAM 2 ({Path(folder).name})")

    @property
    def image_size(self) -> int:
        return int(self.model.config.image_size)

    def session_bytes(self, objects: int, prompted_frames: int, height: int, width: int) -> int:
        """About the peak bytes tracking takes beside the network: per object the memory bank
        (``reach`` tracked frames, every prompted frame with its full-size mask), one frame's
        activations, and the frame and its masks at the video's size."""
        s = self.image_size
        cells = (s // 16) ** 2
        mem_dim = int(self.model.config.memory_encoder_output_channels)
        tracked = cells * mem_dim * 6 + 4 * 1024                   # bf16 features + fp32 pos
        prompted = tracked + 4 * (s * s + (s // 4) ** 2 * 3)       # masks kept with the output
        activations = ACTIVATION_BYTES * s * s * self._width_factor()
        frame = height * width * (3 + 4 * 3 * max(1, objects))
        return int(objects * (self.reach * tracked + prompted_frames * prompted) + activations
                   + frame)

    def _width_factor(self) -> float:
        """How much wider the image encoder is than SAM 2.1 tiny's (whose peak was measured)."""
        try:
            width = int(self.model.config.vision_config.backbone_config.hidden_size)
        except (AttributeError, TypeError, ValueError):
            return 1.0
        return max(1.0, width / 96)

    def _pixels(self, frame: np.ndarray) -> torch.Tensor:
        """The frame as the network sees it: the library's video processor on one frame."""
        processed = self.processor.video_processor(videos=[np.ascontiguousarray(frame)],
                                                   return_tensors="pt")
        return processed.pixel_values_videos[0][0]

    def _result(self, output, height: int, width: int) -> TrackedFrame:
        logits = self.processor.post_process_masks(
            [output.pred_masks], original_sizes=[[height, width]], binarize=False)[0]
        scores = torch.sigmoid(output.object_score_logits.float().reshape(-1))
        return TrackedFrame(index=int(output.frame_idx), object_ids=tuple(output.object_ids),
                            logits=logits[:, 0].float().cpu().numpy(),
                            scores=tuple(float(s) for s in scores))

    def track(self, read_frame: Callable[[int], np.ndarray], frame_count: int,
              prompts: Sequence[TrackPrompt], first: int = 0, last: int | None = None,
              reverse: bool = False,
              cancelled: Callable[[], bool] | None = None) -> Iterator[TrackedFrame]:
        """Track the prompted objects over ``first..last`` (see :func:`tracking_order`),
        yielding each frame's result as soon as it is computed. ``read_frame(i)`` gives frame
        ``i`` as H×W×3 uint8 RGB; only the prompted frames and the frame being tracked are held.
        """
        last = frame_count - 1 if last is None else last
        if not prompts:
            raise Sam2Error("nothing to track: give at least one point or box")
        if not 0 <= first <= last < frame_count:
            raise Sam2Error(f"frames {first}..{last} are not a range of the video's "
                            f"{frame_count} frames (0..{frame_count - 1})")
        by_frame = group_by_frame(prompts)
        order = tracking_order(prompts, first, last, reverse)
        probe = read_frame(order[0])
        height, width = probe.shape[:2]
        check_prompts(prompts, width, height, frame_count)
        # The library's streaming session: no video up front, frames handed in one by one.
        session = self.processor.init_video_session(inference_device=self.device,
                                                    dtype=torch.float32)
        # Streaming, the library cannot know the video's length, so it spaces the object
        # pointers' time codes for max_object_pointers_in_encoder frames even in a shorter video;
        # its whole-video mode uses the length. Here the length is known: use it as that does.
        config = self.model.config
        pointers = config.max_object_pointers_in_encoder
        config.max_object_pointers_in_encoder = min(pointers, frame_count)
        try:
            yield from self._track(session, read_frame, by_frame, order, height, width, reverse,
                                   cancelled)
        finally:
            config.max_object_pointers_in_encoder = pointers

    def _track(self, session, read_frame, by_frame, order, height, width, reverse, cancelled):
        with torch.inference_mode():
            # The prompts first, frame by frame, each followed by a pass on its frame.
            for index in sorted(by_frame):
                pixels = self._pixels(read_frame(index))
                with self._failing(index):
                    self.processor.add_inputs_to_inference_session(
                        session, frame_idx=index, original_size=(height, width),
                        **library_inputs(by_frame[index]))
                    self.model(inference_session=session, frame=pixels, frame_idx=index)
                session.processed_frames.pop(index, None)
            for index in order:
                if cancelled is not None and cancelled():
                    raise TrackingCancelled
                pixels = self._pixels(read_frame(index))
                with self._failing(index):
                    output = self.model(inference_session=session, frame=pixels,
                                        frame_idx=index, reverse=reverse)
                    result = self._result(output, height, width)
                self._forget(session, index, reverse)
                yield result

    @contextmanager
    def _failing(self, index: int):
        """The library failing inside the network (a config.json whose sizes do not agree with
        each other, say) is one sentence naming the frame; running out of memory stays what it
        is, for the caller's own message."""
        from segstudio.io.decode_memory import is_out_of_memory

        try:
            yield
        except (RuntimeError, ValueError, IndexError, TypeError) as exc:
            if is_out_of_memory(exc):
                raise
            raise Sam2Error(f"{self.name} failed on frame {index} ({_first_line(exc)}); the "
                            "model folder's config.json may not match its weights") from None

    def _forget(self, session, index: int, reverse: bool) -> None:
        """Drop what the memory bank can no longer reach once ``index`` is tracked: its pixels,
        the tracked outputs more than ``reach`` frames behind, and the full-size masks of the
        tracked frames (only prompted frames' masks are read again)."""
        session.processed_frames.pop(index, None)
        behind = index + self.reach if reverse else index - self.reach
        for obj_idx, outputs in session.output_dict_per_obj.items():
            tracked = outputs["non_cond_frame_outputs"]
            for old in [i for i in tracked if (i > behind if reverse else i < behind)]:
                del tracked[old]
            done = tracked.get(index)
            if done is not None:
                done.pop("high_res_masks", None)
                done.pop("pred_masks", None)
            seen = session.frames_tracked_per_obj.get(obj_idx, {})
            for old in [i for i in seen if (i > behind if reverse else i < behind)]:
                del seen[old]
