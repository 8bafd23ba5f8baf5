"""Checkpoints: a network's weights with what is needed to use them again.

A checkpoint is one ``torch.save`` file holding ``{"format", "version", "meta", "state_dict"}``:
plain dicts, lists, numbers and tensors only, so it loads with ``weights_only=True`` and a file
from a stranger can never run code. ``meta`` names the architecture, its configuration, the class
set and the input normalisation, so a checkpoint rebuilds its own network.
"""

from __future__ import annotations

import json
import math
import pickle
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from segstudio.core.classes import ClassSet, ClassSetError
from segstudio.io.atomic import atomic_write_with
from segstudio.models.model_card import attach_sidecar

FORMAT = "segstudio-checkpoint"
FORMAT_VERSION = 1
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class CheckpointError(Exception):
    """A checkpoint that cannot be used: the message names the file and the problem."""


@dataclass
class CheckpointMeta:
    """What a checkpoint says about its weights.

    ``mean`` and ``std`` are per RGB channel on the 0..1 scale. ``trained`` is False for random
    weights, which the GUI must then show as "untrained". ``training`` is a free summary
    (dataset, epochs, val mIoU/mAcc, command, date) of plain JSON values.
    """

    arch: str
    config: str
    classes: ClassSet
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    trained: bool = True
    training: dict = field(default_factory=dict)
    format_version: int = FORMAT_VERSION

    def to_dict(self) -> dict:
        return {
            "arch": self.arch,
            "config": self.config,
            "classes": self.classes.to_dict(),
            "mean": [float(v) for v in self.mean],
            "std": [float(v) for v in self.std],
            "trained": bool(self.trained),
            "training": _plain(self.training),
            "format_version": int(self.format_version),
        }

    @classmethod
    def from_dict(cls, data: Any, source: str = "checkpoint") -> "CheckpointMeta":
        if not isinstance(data, dict):
            raise CheckpointError(f"{source}: metadata is not a mapping")
        try:
            mean = _channels(data["mean"], "mean")
            std = _channels(data["std"], "std")
            if any(v <= 0 for v in std):
                raise ValueError(f"std {std} must be positive (it divides the input)")
            training = data.get("training", {})
            if not isinstance(training, dict):
                raise ValueError("training summary is not a mapping")
            return cls(
                arch=str(data["arch"]),
                config=str(data.get("config", "lite")),
                classes=ClassSet.from_dict(data["classes"]),
                mean=mean,  # type: ignore[arg-type]
                std=std,  # type: ignore[arg-type]
                trained=bool(data.get("trained", True)),
                training=training,
                format_version=_version(data.get("format_version", FORMAT_VERSION)),
            )
        except KeyError as exc:
            raise CheckpointError(f"{source}: metadata lacks {exc.args[0]!r}") from None
        except (ClassSetError, TypeError, ValueError) as exc:
            raise CheckpointError(f"{source}: bad metadata: {exc}") from None


def _channels(values: Any, what: str) -> tuple[float, float, float]:
    """Three finite numbers, one per RGB channel (NaN or infinity would poison every input)."""
    if isinstance(values, (str, bytes)) or not hasattr(values, "__len__") or len(values) != 3:
        raise ValueError(f"{what} needs three values (R, G, B)")
    out = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise ValueError(f"{what} holds {v!r}, not a finite number")
        out.append(float(v))
    return out[0], out[1], out[2]


def _version(value: Any) -> int:
    """A format version: a whole number, said so when it is anything else."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"format version {_short(value)!r} is not a whole number")
    return value


def _short(value: Any) -> str:
    """A value from a file, as short text for a message: a file may hold a number of more
    digits than Python prints, or a list nested too deeply to print."""
    try:
        text = value if isinstance(value, str) else repr(value)
    except (ValueError, RecursionError):
        return "(too large to show)"
    return text if len(text) <= 60 else text[:57] + "..."


def _plain(value: Any) -> Any:
    """``value`` as JSON-like data (numpy scalars become numbers), so weights_only can load it."""
    def default(obj: Any) -> Any:
        if hasattr(obj, "item"):
            return obj.item()
        if isinstance(obj, Path):
            return str(obj)
        raise TypeError(f"{type(obj).__name__} is not a plain value")

    try:
        return json.loads(json.dumps(value, default=default))
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"training summary cannot be stored: {exc}") from None


def save_checkpoint(path: str | Path, model: nn.Module, meta: CheckpointMeta) -> None:
    """Write ``model``'s weights and ``meta`` to ``path`` atomically (old file kept on failure)."""
    path = Path(path)
    state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    payload = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "meta": meta.to_dict(),
        "state_dict": state,
    }
    try:
        atomic_write_with(path, lambda f: torch.save(payload, f))
    except OSError as exc:
        raise CheckpointError(f"{path.name}: cannot write checkpoint ({exc.strerror or exc})") \
            from None


def _load_payload(path: Path, *, mmap: bool) -> dict:
    """The checkpoint's top-level dict, loaded without ever running pickled code."""
    name = path.name
    if not path.is_file():
        raise CheckpointError(f"{name}: no such checkpoint file")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{name}: the file is empty (0 bytes)")
    if not zipfile.is_zipfile(path):
        raise CheckpointError(f"{name}: not a segstudio checkpoint (not a torch.save archive; "
                              "truncated, or a different kind of file)")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "unknown reason"
        raise CheckpointError(
            f"{name}: refused to load: the file contains objects that would run code when "
            f"unpickled, which a checkpoint never needs ({first})") from None
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{name}: damaged or truncated checkpoint ({first})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{name}: not a segstudio checkpoint (a torch file without the "
                              f"'{FORMAT}' marker; plain state dicts need converting)")
    version = payload.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise CheckpointError(f"{name}: damaged checkpoint: its format version "
                              f"{_short(version)!r} is not a version segstudio writes "
                              f"(a whole number from 1)")
    if version > FORMAT_VERSION:
        raise CheckpointError(f"{name}: checkpoint format version {_short(version)} is newer than "
                              f"this segstudio reads ({FORMAT_VERSION}); update segstudio")
    if not isinstance(payload.get("state_dict"), dict):
        raise CheckpointError(f"{name}: checkpoint has no weights (state_dict missing)")
    return payload


def read_meta(path: str | Path, *, check_weights: bool = False) -> CheckpointMeta:
    """The metadata of a checkpoint, cheaply: tensors are memory-mapped, not read.

    ``check_weights`` also reads every tensor once and refuses NaN or infinite weights (what a
    model list needs to call a file usable; it costs one pass over the file).
    """
    path = Path(path)
    payload = _load_payload(path, mmap=True)
    meta = CheckpointMeta.from_dict(payload.get("meta"), source=path.name)
    if check_weights:
        check_finite(payload["state_dict"], path.name)
    attach_sidecar(meta.training, path)       # a model card kept beside an older file
    return meta


def check_finite(state: dict, source: str) -> None:
    """Refuse weights holding NaN or infinity: such a network predicts nothing, whatever its
    metadata says (a diverged run, or a damaged file)."""
    floats = [(key, tensor) for key, tensor in state.items()
              if isinstance(tensor, torch.Tensor) and (tensor.is_floating_point()
                                                       or tensor.is_complex())]
    if _all_finite([t for _, t in floats]):
        return
    for key, tensor in floats:       # which weight, and how many values: worth a pass each
        bad = int((~torch.isfinite(tensor)).sum())
        if bad:
            raise CheckpointError(
                f"{source}: weight {_short(key)!r} holds {bad} NaN or infinite value(s) "
                f"of {tensor.numel()}; the file is damaged or its training diverged")


def _all_finite(tensors: list, block: int = 1 << 22) -> bool:
    """Whether every value is finite, checked over blocks of about ``block`` values.

    One check per tensor is one parallel reduction per tensor: on a busy machine each waits for
    its threads, and a hundred small ones took most of a second where a few large ones take
    milliseconds. Complex tensors are checked as their real and imaginary parts.
    """
    batch: list = []
    size = 0

    def finite(parts: list) -> bool:
        flat = parts[0] if len(parts) == 1 else torch.cat(parts)
        return bool(torch.isfinite(flat).all())

    for tensor in tensors:
        flat = (torch.view_as_real(tensor) if tensor.is_complex() else tensor).reshape(-1)
        batch.append(flat.float())
        size += flat.numel()
        if size >= block:
            if not finite(batch):
                return False
            batch, size = [], 0
    return not batch or finite(batch)


def build_model(arch: str, num_classes: int, config: str = "lite") -> nn.Module:
    """Build ``arch`` through the model registry; an unknown name or config is a CheckpointError."""
    from segstudio.models import registry

    try:
        return registry.build_model(arch, num_classes, config=config)
    except (KeyError, ValueError) as exc:
        # The registry's UnknownModelError (a KeyError) and ModelConfigError carry full sentences.
        raise CheckpointError(str(exc) if not isinstance(exc, KeyError) or not exc.args
                              else str(exc.args[0])) from None


def check_state_dict(model: nn.Module, state: dict, source: str) -> None:
    """Refuse tensors that don't fit ``model``, naming the first misfit and both shapes."""
    expected = model.state_dict()
    for key, tensor in state.items():
        if key not in expected:
            raise CheckpointError(f"{source}: weight {key!r} has no place in this architecture "
                                  "(unexpected parameter)")
        if not isinstance(tensor, torch.Tensor):
            raise CheckpointError(f"{source}: weight {key!r} is not a tensor")
        if tuple(tensor.shape) != tuple(expected[key].shape):
            raise CheckpointError(
                f"{source}: weight {key!r} has shape {tuple(tensor.shape)} but the architecture "
                f"expects {tuple(expected[key].shape)}")
    optional = getattr(model, "OPTIONAL_STATE", ())   # entries older files may lack
    missing = [k for k in expected if k not in state and k not in optional]
    if missing:
        more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
        raise CheckpointError(f"{source}: weight {missing[0]!r}{more} missing from the checkpoint")


def load_checkpoint(path: str | Path, *, expected_arch: str | None = None,
                    num_classes: int | None = None,
                    device: str | torch.device = "cpu") -> tuple[nn.Module, CheckpointMeta]:
    """Rebuild the network a checkpoint describes, load its weights and put it in eval mode.

    ``expected_arch`` and ``num_classes`` guard against loading a checkpoint into the wrong
    place: a mismatch is refused saying what the file holds and what was expected.
    """
    path = Path(path)
    payload = _load_payload(path, mmap=False)
    meta = CheckpointMeta.from_dict(payload.get("meta"), source=path.name)
    attach_sidecar(meta.training, path)
    if expected_arch is not None and meta.arch != expected_arch:
        raise CheckpointError(f"{path.name}: holds a {meta.arch!r} network, but "
                              f"{expected_arch!r} was expected")
    if num_classes is not None and len(meta.classes) != num_classes:
        raise CheckpointError(f"{path.name}: predicts {len(meta.classes)} classes, but "
                              f"{num_classes} were expected")
    try:
        model = build_model(meta.arch, len(meta.classes), meta.config)
    except CheckpointError as exc:
        raise CheckpointError(f"{path.name}: {exc}") from None
    check_state_dict(model, payload["state_dict"], path.name)
    check_finite(payload["state_dict"], path.name)
    model.load_state_dict(payload["state_dict"], strict=True)
    model.eval()
    return model.to(device), meta
