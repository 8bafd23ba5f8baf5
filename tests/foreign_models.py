"""Small networks in other libraries' file formats, built on the fly (nothing is downloaded),
with the answer each library itself gives: forward, bilinear resize to the image, argmax."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

MEAN = (0.5, 0.4, 0.3)
STD = (0.2, 0.25, 0.3)
NAMES = ("background", "road", "car")
COLORS = ([0, 0, 0], [128, 64, 128], [0, 0, 142])


class TinyNet(nn.Module):
    """Two strided convolutions: logits at a quarter of the input's resolution."""

    def __init__(self, classes: int = 3) -> None:
        super().__init__()
        torch.manual_seed(5)
        self.a = nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.b = nn.Conv2d(8, classes, 3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.b(F.relu(self.a(x)))


def image(h: int = 70, w: int = 90, seed: int = 0) -> np.ndarray:
    """An RGB uint8 image with structure at several scales (noise alone is too easy)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([(xx * 3) % 256, (yy * 5) % 256, ((xx + yy) * 2) % 256], axis=-1)
    return np.clip(base + rng.integers(-40, 40, (h, w, 3)), 0, 255).astype(np.uint8)


def normalised(rgb: np.ndarray, mean=MEAN, std=STD) -> torch.Tensor:
    x = torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255
    return (x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)


def reference_labels(logits: torch.Tensor, shape: tuple[int, int]) -> np.ndarray:
    """What the model's library answers: its logits resized bilinearly, then argmax."""
    up = F.interpolate(logits.float(), size=shape, mode="bilinear", align_corners=False)
    return up.argmax(1)[0].numpy().astype(np.uint8)


def write_sidecar(model: Path, **facts) -> Path:
    path = model.with_name(model.name + ".segstudio.json") if not model.is_dir() \
        else model / "segstudio.json"
    path.write_text(json.dumps(facts), encoding="utf-8")
    return path


def class_facts() -> dict:
    return {"classes": [{"name": n, "color": c} for n, c in zip(NAMES, COLORS)],
            "mean": list(MEAN), "std": list(STD)}


def save_torchscript(path: Path, classes: int = 3, sidecar: bool = True) -> TinyNet:
    net = TinyNet(classes).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.save(torch.jit.trace(net, torch.zeros(1, 3, 64, 64)), str(path))
    if sidecar:
        write_sidecar(path, **class_facts())
    return net


def save_onnx(path: Path, classes: int = 3, sidecar: bool = True) -> TinyNet:
    net = TinyNet(classes).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, torch.zeros(1, 3, 64, 64), str(path), input_names=["image"],
                          output_names=["logits"], dynamo=False,
                          dynamic_axes={"image": {0: "n", 2: "h", 3: "w"},
                                        "logits": {0: "n", 2: "h", 3: "w"}})
    if sidecar:
        write_sidecar(path, **class_facts())
    return net


def save_segformer(folder: Path):
    """A tiny random SegFormer saved as transformers saves it, with its preprocessor config."""
    from transformers import SegformerConfig, SegformerForSemanticSegmentation

    torch.manual_seed(7)
    config = SegformerConfig(num_channels=3, num_encoder_blocks=2, depths=[1, 1],
                             sr_ratios=[2, 1], hidden_sizes=[8, 16], patch_sizes=[7, 3],
                             strides=[4, 2], num_attention_heads=[1, 1], mlp_ratios=[2, 2],
                             decoder_hidden_size=16, num_labels=len(NAMES),
                             id2label=dict(enumerate(NAMES)),
                             label2id={n: i for i, n in enumerate(NAMES)})
    model = SegformerForSemanticSegmentation(config).eval()
    model.save_pretrained(folder)
    (folder / "preprocessor_config.json").write_text(json.dumps({
        "image_processor_type": "SegformerImageProcessor", "do_normalize": True,
        "do_rescale": True, "rescale_factor": 1 / 255, "image_mean": list(MEAN),
        "image_std": list(STD), "size": {"height": 512, "width": 512}}), encoding="utf-8")
    return model


def save_smp_unet(folder: Path, **extra):
    """A small random smp U-Net (depth 3, so inputs must be multiples of 8), saved as smp saves
    it, with a sidecar naming its classes."""
    import segmentation_models_pytorch as smp

    torch.manual_seed(9)
    model = smp.Unet(encoder_name="resnet18", encoder_weights=None, encoder_depth=3,
                     decoder_channels=(16, 8, 4), classes=len(NAMES), **extra).eval()
    model.save_pretrained(str(folder))
    write_sidecar(folder, **class_facts())
    return model
