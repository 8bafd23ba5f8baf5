"""Hugging Face model folders (``save_pretrained``), run with transformers (the optional extra
``segstudio[hf]``).

The folder's ``config.json`` names a model type that transformers itself implements; code
shipped inside a folder (``auto_map``) is refused, never run, and so are pickled weights: only
``model.safetensors`` is read. The classes come from the config's ``id2label`` and the input
normalisation from ``preprocessor_config.json``, converted to segstudio's 0..1 units.
"""

from __future__ import annotations

import math
from pathlib import Path

from torch import nn

from segstudio.core.classes import ClassSet, ClassSetError
from segstudio.io.model_sidecar import ModelFacts, channels, read_sidecar
from segstudio.models.formats import (PROBES, LoadedModel, ModelFormatError,
                                      check_finite_weights, finish, first_line)
from segstudio.models.formats.folders import SHARDED, WEIGHTS, read_config

PREPROCESSOR = "preprocessor_config.json"


class HuggingFaceNet(nn.Module):
    """A transformers segmentation model as a module: pixel values in, class logits out (at
    the resolution the model gives, a quarter of the input for SegFormer)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model(pixel_values=x).logits


def load(path: Path, overrides: ModelFacts) -> LoadedModel:
    name = path.name
    config = read_config(path)
    if "auto_map" in config:
        raise ModelFormatError(f"{name}: its config asks for code shipped in the folder "
                               "(auto_map); segstudio runs only model types transformers "
                               "itself implements")
    classes = _classes(config, name)
    mean, std = _normalisation(path)
    try:
        import transformers
        from transformers import AutoModelForSemanticSegmentation
    except ImportError:
        raise ModelFormatError(f"{name}: Hugging Face models need transformers: pip install "
                               "'segstudio[hf]'") from None
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    try:
        model = AutoModelForSemanticSegmentation.from_pretrained(
            str(path), local_files_only=True, use_safetensors=True, trust_remote_code=False)
    except Exception as exc:   # noqa: BLE001 - transformers raises many kinds for a bad folder
        raise ModelFormatError(f"{name}: transformers cannot load it as a semantic "
                               f"segmentation model ({first_line(exc)})") from None
    model.eval()
    check_finite_weights(model, name)
    facts = overrides.over(read_sidecar(path))
    weights = path / WEIGHTS if (path / WEIGHTS).is_file() else path / SHARDED
    model_type = str(config.get("model_type", "model"))
    return finish(HuggingFaceNet(model), source=path, weights_file=weights, fmt="huggingface",
                  facts=facts, file_classes=classes, file_mean=mean, file_std=std,
                  views=frozenset({PROBES}), arch=f"Hugging Face {model_type}"[:60])


def _classes(config: dict, name: str) -> ClassSet | None:
    """The config's ``id2label`` as a class set (None when it has none)."""
    labels = config.get("id2label")
    if labels is None:
        return None
    if not isinstance(labels, dict) or not labels:
        raise ModelFormatError(f"{name}/config.json: id2label is not a mapping of class "
                               "indices to names")
    try:
        indexed = sorted((int(k), v) for k, v in labels.items())
    except (TypeError, ValueError):
        raise ModelFormatError(f"{name}/config.json: id2label has a key that is not a class "
                               "index") from None
    if [i for i, _ in indexed] != list(range(len(indexed))):
        raise ModelFormatError(f"{name}/config.json: id2label's indices must run "
                               f"0..{len(indexed) - 1} without gaps")
    if any(not isinstance(v, str) for _, v in indexed):
        raise ModelFormatError(f"{name}/config.json: id2label names must be text")
    try:
        return ClassSet([v for _, v in indexed], title=name)
    except ClassSetError as exc:
        raise ModelFormatError(f"{name}/config.json: id2label: {exc}") from None


def _normalisation(folder: Path):
    """(mean, std) in 0..1 units from the preprocessor config, or (None, None) without one.

    The processor feeds ``(pixel × rescale_factor − image_mean) / image_std``; the Predictor
    feeds ``(pixel / 255 − mean) / std``, the same when mean and std are the processor's
    divided by ``255 × rescale_factor``.
    """
    if not (folder / PREPROCESSOR).is_file():
        return None, None
    data = read_config(folder, PREPROCESSOR)
    where = f"{folder.name}/{PREPROCESSOR}"
    try:
        factor = data.get("rescale_factor", 1 / 255) if data.get("do_rescale", True) else 1.0
        if isinstance(factor, bool) or not isinstance(factor, (int, float)) \
                or not math.isfinite(factor) or factor <= 0:
            raise ValueError(f"rescale_factor {factor!r} is not a positive number")
        scale = 255.0 * factor
        if data.get("do_normalize", True) and "image_mean" in data:
            mean = _triple(data["image_mean"], "image_mean")
            std = _triple(data.get("image_std"), "image_std")
        else:
            mean, std = (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)
        mean = channels([m / scale for m in mean], "image_mean")
        std = channels([s / scale for s in std], "image_std", positive=True)
    except (TypeError, ValueError) as exc:
        raise ModelFormatError(f"{where}: {exc}") from None
    return mean, std


def _triple(value, what: str):
    """A processor's per-channel value: three numbers, or one for every channel."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = [value] * 3
    if not isinstance(value, list) or len(value) != 3:
        raise ValueError(f"{what} needs three values (R, G, B)")
    for v in value:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise ValueError(f"{what} holds {v!r}, not a finite number")
    return [float(v) for v in value]
