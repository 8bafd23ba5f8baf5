"""A tiny, randomly initialised SAM 2 of the real ``transformers`` classes, saved as a model folder,
and small generated videos: SAM 2 tracking is tested without downloading anything."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch


def tiny_config(size: int = 64):
    """The smallest ``Sam2VideoConfig`` the library's code runs with: a 4-stage Hiera of widths
    8..64, 128 channels after the neck (the object pointers must be wider than the 64-channel
    memory, which the library fixes), one memory-attention layer."""
    from transformers import Sam2VideoConfig

    return Sam2VideoConfig(
        vision_config=dict(
            model_type="sam2_vision_model",
            backbone_config=dict(
                model_type="sam2_hiera_det_model", hidden_size=8, num_attention_heads=1,
                image_size=[size, size], blocks_per_stage=[1, 1, 2, 1],
                embed_dim_per_stage=[8, 16, 32, 64], num_attention_heads_per_stage=[1, 1, 1, 1],
                window_size_per_stage=[4, 4, 4, 4], global_attention_blocks=[3],
                window_positional_embedding_background_size=[2, 2]),
            backbone_channel_list=[64, 32, 16, 8],
            backbone_feature_sizes=[[size // 4] * 2, [size // 8] * 2, [size // 16] * 2],
            fpn_hidden_size=128),
        prompt_encoder_config=dict(hidden_size=128, image_size=size, patch_size=16,
                                   mask_input_channels=4),
        mask_decoder_config=dict(hidden_size=128, mlp_dim=32, num_hidden_layers=1,
                                 num_attention_heads=2, iou_head_hidden_dim=16),
        image_size=size, initializer_range=0.1,
        memory_attention_hidden_size=128, memory_attention_num_layers=1,
        memory_attention_feed_forward_hidden_size=32,
        memory_attention_rope_feat_sizes=[size // 16, size // 16],
        memory_encoder_hidden_size=128, memory_encoder_output_channels=64,
        mask_downsampler_embed_dim=128, memory_fuser_embed_dim=128,
        memory_fuser_intermediate_dim=32,
    )


def save_tiny_sam2(folder: Path, size: int = 64, seed: int = 0, *, nan: bool = False) -> Path:
    """A random tiny SAM 2 saved as the Hugging Face folder a user copies in (config.json,
    model.safetensors, processor_config.json). The object-score head's bias is raised so that
    the random network calls its objects present (its masks are not blanked), which makes the
    masks worth comparing. ``nan`` spoils one weight."""
    from transformers import Sam2VideoModel

    torch.manual_seed(seed)
    model = Sam2VideoModel(tiny_config(size)).eval()
    with torch.no_grad():
        model.mask_decoder.pred_obj_score_head.proj_out.bias.fill_(2.0)
        if nan:
            model.memory_encoder.projection.weight[0, 0, 0, 0] = float("nan")
    model.save_pretrained(folder)
    default_processor_files(folder, size)
    return Path(folder)


def default_processor_files(folder: Path, size: int) -> None:
    """SAM 2's processor for a ``size``² input, saved beside the weights."""
    from transformers import Sam2VideoProcessor
    from transformers.models.sam2.image_processing_sam2 import Sam2ImageProcessor
    from transformers.models.sam2_video.video_processing_sam2_video import \
        Sam2VideoVideoProcessor

    image = {"height": size, "width": size}
    mask = {"height": size // 4, "width": size // 4}
    Sam2VideoProcessor(image_processor=Sam2ImageProcessor(size=image, mask_size=mask),
                       video_processor=Sam2VideoVideoProcessor(size=image)).save_pretrained(folder)


def moving_frames(count: int, width: int = 64, height: int = 64) -> list[np.ndarray]:
    """Frames of a bright square gliding over a textured background (RGB uint8)."""
    rng = np.random.default_rng(7)
    background = (rng.random((height, width, 3)) * 80).astype(np.uint8)
    frames = []
    for i in range(count):
        frame = background.copy()
        x = int(4 + (i * 2) % max(1, width - 24))
        y = int(height // 4 + 6 * np.sin(i / 9))
        frame[y:y + 16, x:x + 16] = (230, 200, 40)
        frames.append(frame)
    return frames


def write_video(path: Path, frames: list[np.ndarray], fps: float = 10.0) -> Path:
    """The frames as a lossless-enough MJPG AVI that OpenCV reads back."""
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (w, h))
    for f in frames:
        writer.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    writer.release()
    return Path(path)


def decoded_frames(path: Path) -> list[np.ndarray]:
    """Every frame of a video as the app decodes it (so a reference sees the same pixels)."""
    from segstudio.io.video import VideoSource

    with VideoSource(path) as video:
        return [np.array(video.read(i)) for i in range(video.frame_count)]
