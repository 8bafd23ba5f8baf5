"""Model folders: which library saved one, read without running anything from it.

Hugging Face transformers and segmentation-models-pytorch both write ``config.json`` beside
``model.safetensors``; smp's config names the class it rebuilds (``_model_class``),
transformers' a ``model_type``.
"""

from __future__ import annotations

import json
from pathlib import Path

from segstudio.models.formats import EXPECTED, ModelFormatError

MAX_CONFIG_BYTES = 4 << 20            # a config is a few kilobytes; more is not a config
WEIGHTS = "model.safetensors"
SHARDED = "model.safetensors.index.json"


def read_config(folder: Path, file: str = "config.json") -> dict:
    """A folder's JSON config as a dict, every failure one sentence naming it."""
    path = folder / file
    where = f"{folder.name}/{file}"
    try:
        if path.stat().st_size > MAX_CONFIG_BYTES:
            raise ModelFormatError(f"{where}: {path.stat().st_size} bytes is too large for a "
                                   "config file")
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ModelFormatError(f"{where}: cannot read ({exc})") from None
    if not isinstance(data, dict):
        raise ModelFormatError(f"{where}: not a model config (expected a JSON object)")
    return data


def folder_kind(folder: Path) -> str:
    """The library that saved ``folder``, or a ModelFormatError saying what it lacks."""
    config = read_config(folder)
    if not ((folder / WEIGHTS).is_file() or (folder / SHARDED).is_file()):
        pickled = [p.name for p in folder.glob("*.bin")] + [p.name for p in folder.glob("*.pth")]
        if pickled:
            raise ModelFormatError(
                f"{folder.name}: holds only pickled weights ({pickled[0]}); segstudio loads "
                f"{WEIGHTS} only, since unpickling runs whatever code the file names. Save "
                "the model again with save_pretrained(..., safe_serialization=True)")
        raise ModelFormatError(f"{folder.name}: no {WEIGHTS} beside config.json; expected "
                               f"{EXPECTED}")
    if "_model_class" in config:
        return "smp"
    if "model_type" in config:
        return "huggingface"
    raise ModelFormatError(f"{folder.name}/config.json: names neither a transformers "
                           f"model_type nor an smp _model_class; expected {EXPECTED}")
