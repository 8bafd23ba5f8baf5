"""What every lab needs: a bundled checkpoint in fp32, its input, its held-out scenes."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from segstudio.paths import weights_dir
from segstudio.train.synth import SynthSample, make_sample

# The held-out scenes of resources/weights/README.md: seed 1, at the size each set was scored.
HELDOUT_SEED = 1
KINDS = {"chest": ("xray", 128, "chest_xray"), "context": ("context", 256, "context")}


class LessonError(ValueError):
    """A lab that cannot run: an unknown model or data set, a missing bundled file."""


@dataclass
class Loaded:
    """A bundled network in eval mode and fp32, with what its input needs."""

    name: str
    model: nn.Module
    arch: str
    class_names: tuple[str, ...]
    mean: tuple[float, float, float]
    std: tuple[float, float, float]


def bundled_name(kind: str, arch: str) -> str:
    """The bundled file of ``arch`` trained on ``kind`` ('chest' or 'context')."""
    return f"{_kind(kind)[2]}_{arch}_lite.pt"


def load_bundled(kind: str, arch: str) -> Loaded:
    """The bundled ``arch`` checkpoint of ``kind``, loaded into float32 on the CPU."""
    from segstudio.models.checkpoint import CheckpointError, load_checkpoint

    path = weights_dir() / bundled_name(kind, arch)
    if not path.is_file():
        raise LessonError(f"{path.name} is not installed with this copy of segstudio")
    try:
        model, meta = load_checkpoint(path)
    except CheckpointError as exc:
        raise LessonError(str(exc)) from None
    model.float().eval()
    return Loaded(path.name, model, meta.arch, tuple(meta.classes.names), tuple(meta.mean),
                  tuple(meta.std))


def heldout(kind: str, n: int, *, start: int = 0) -> list[SynthSample]:
    """Scenes ``start … start+n-1`` of the held-out set (seed 1) at the set's scoring size."""
    synth_kind, size, _ = _kind(kind)
    if n < 1:
        raise LessonError(f"a lab needs at least one image, not {n}")
    return [make_sample(synth_kind, i, size=size, seed=HELDOUT_SEED)
            for i in range(start, start + n)]


def to_input(net: Loaded, rgb: np.ndarray) -> torch.Tensor:
    """An H×W×3 uint8 picture as the network's normalised 1×3×H×W float32 input."""
    x = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None].float() / 255.0
    mean = torch.tensor(net.mean, dtype=torch.float32).view(1, 3, 1, 1)
    std = torch.tensor(net.std, dtype=torch.float32).view(1, 3, 1, 1)
    return (x - mean) / std


def logits(net: Loaded, rgb: np.ndarray, model: nn.Module | None = None) -> np.ndarray:
    """The C×H×W output logits of ``model`` (default: the loaded network) on one picture."""
    model = net.model if model is None else model
    with torch.no_grad():
        out = model(to_input(net, rgb))
    out = out["out"] if isinstance(out, dict) else out
    return out[0].float().numpy()


def _kind(kind: str) -> tuple[str, int, str]:
    if kind not in KINDS:
        raise LessonError(f"unknown lesson data {kind!r}; choose one of {', '.join(KINDS)}")
    return KINDS[kind]
