"""The sidecar of a model file: what a foreign model does not say about itself.

A TorchScript or ONNX file holds a network but not what its output channels mean or how it
wants its input scaled. ``<file>.segstudio.json`` beside it (or ``segstudio.json`` inside a
model folder) says so::

    {"classes": ["background", "road", "car"],            # or [{"name", "color"}, ...]
     "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225],   # RGB, 0..1 units
     "stride": 32,                 # pad the input to a multiple of this
     "input_size": [512, 512],     # or: the network takes only this size (H, W)
     "output": "logits"}           # or "probabilities", "labels"

Every key is optional. The file is untrusted input: each value is checked (finite numbers,
positive std, known output kinds) and the first problem is one sentence naming the file.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from segstudio.core.classes import ClassSet, ClassSetError

SUFFIX = ".segstudio.json"
FOLDER_NAME = "segstudio.json"
OUTPUT_KINDS = ("logits", "probabilities", "labels")
KEYS = ("classes", "mean", "std", "stride", "input_size", "output")
MAX_SIDE = 16384                      # larger input sizes or strides are typing errors


class SidecarError(ValueError):
    """A sidecar (or override) that cannot be used: one sentence naming the file."""


@dataclass(frozen=True)
class ModelFacts:
    """What a sidecar or the command line says about a model; None: not said."""

    classes: ClassSet | None = None
    mean: tuple[float, float, float] | None = None
    std: tuple[float, float, float] | None = None
    stride: int | None = None
    input_size: tuple[int, int] | None = None
    output: str | None = None

    def over(self, base: "ModelFacts") -> "ModelFacts":
        """These facts where said, ``base``'s elsewhere (overrides over a sidecar)."""
        return ModelFacts(**{k: getattr(self, k) if getattr(self, k) is not None
                             else getattr(base, k) for k in KEYS})


def sidecar_path(model: str | Path) -> Path:
    """Where the sidecar of ``model`` (a file or a model folder) lives."""
    model = Path(model)
    if model.is_dir():
        return model / FOLDER_NAME
    return model.with_name(model.name + SUFFIX)


def read_sidecar(model: str | Path) -> ModelFacts:
    """The facts in ``model``'s sidecar; empty facts when there is none."""
    path = sidecar_path(model)
    if not path.is_file():
        return ModelFacts()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise SidecarError(f"{path.name}: cannot read the model's sidecar ({exc})") from None
    except RecursionError:
        raise SidecarError(f"{path.name}: not a model sidecar (nested too deeply)") from None
    return parse_facts(data, path.name)


def parse_facts(data: Any, source: str) -> ModelFacts:
    """Checked facts from the JSON object ``data``; ``source`` names it in messages."""
    if not isinstance(data, dict):
        raise SidecarError(f"{source}: not a model sidecar (expected a JSON object)")
    unknown = sorted(str(k) for k in data if k not in KEYS)
    if unknown:
        raise SidecarError(f"{source}: unknown key {unknown[0]!r}; a sidecar may hold "
                           f"{', '.join(KEYS)}")
    try:
        return ModelFacts(
            classes=None if data.get("classes") is None else parse_classes(data["classes"]),
            mean=None if data.get("mean") is None else channels(data["mean"], "mean"),
            std=None if data.get("std") is None else channels(data["std"], "std", positive=True),
            stride=None if data.get("stride") is None else _whole(data["stride"], "stride"),
            input_size=None if data.get("input_size") is None else _size(data["input_size"]),
            output=None if data.get("output") is None else _output(data["output"]),
        )
    except (ClassSetError, ValueError) as exc:
        raise SidecarError(f"{source}: {exc}") from None


def parse_classes(value: Any) -> ClassSet:
    """Class names (``["a", "b"]``), entries with colours (``[{"name", "color"}]``), or a
    class-set file's object (``{"classes": [{"index", "name", "color"}]}``)."""
    if isinstance(value, dict):
        return ClassSet.from_dict(value)
    if not isinstance(value, list) or not value:
        raise ValueError("classes must be a non-empty list of names or {name, color} entries")
    if all(isinstance(v, str) for v in value):
        return ClassSet(value)
    if all(isinstance(v, dict) for v in value):
        try:
            names = [v["name"] for v in value]
        except KeyError:
            raise ValueError("every class entry needs a 'name'") from None
        if any(not isinstance(n, str) for n in names):
            raise ValueError("class names must be text")
        colors = [v.get("color") for v in value]
        return ClassSet(names, None if all(c is None for c in colors) else colors)
    raise ValueError("classes must be a list of names or a list of {name, color} entries, "
                     "not a mix")


def channels(values: Any, what: str, *, positive: bool = False) -> tuple[float, float, float]:
    """Three finite numbers, one per RGB channel, on the 0..1 scale."""
    if isinstance(values, (str, bytes, dict)) or not hasattr(values, "__len__") \
            or len(values) != 3:
        raise ValueError(f"{what} needs three values (R, G, B)")
    out = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise ValueError(f"{what} holds {_shown(v)}, not a finite number")
        if positive and v <= 0:
            raise ValueError(f"{what} holds {v}: it must be positive (it divides the input)")
        if not (0 <= v <= 1 if not positive else v <= 1):
            raise ValueError(f"{what} holds {v}: give it in 0..1 units (pixel / 255)")
        out.append(float(v))
    return out[0], out[1], out[2]


def _whole(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_SIDE:
        raise ValueError(f"{what} {_shown(value)} is not a whole number from 1 to {MAX_SIDE}")
    return value


def _size(value: Any) -> tuple[int, int]:
    if not isinstance(value, list) or len(value) != 2:
        raise ValueError("input_size needs two whole numbers (height, width)")
    return _whole(value[0], "input_size height"), _whole(value[1], "input_size width")


def _output(value: Any) -> str:
    if value not in OUTPUT_KINDS:
        raise ValueError(f"output {_shown(value)} is not one of {', '.join(OUTPUT_KINDS)}")
    return value


def _shown(value: Any) -> str:
    try:
        text = repr(value)
    except (ValueError, RecursionError):
        return "(too large to show)"
    return text if len(text) <= 60 else text[:57] + "..."
