"""Resume files: reading back the state a training run left after an epoch, checked.

A resume file is a ``torch.save`` dict (weights only, never code) holding the architecture,
configuration and class set of the run, the epoch reached, the history, the best scores, the
input normalisation, the weights and the optimiser state. Every part is checked before it is
used, so a damaged or foreign file is one clear ``ResumeError`` naming the file and the part,
never an exception from deep inside torch.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
from torch import nn

from segstudio.core.classes import ClassSet


class ResumeError(Exception):
    """A resume file that cannot continue this run; the message names the file and why."""


def _short(value: Any) -> str:
    try:
        text = value if isinstance(value, str) else repr(value)
    except (ValueError, RecursionError):      # more digits than Python prints, or too deep
        return "(too large to show)"
    return text if len(text) <= 60 else text[:57] + "..."


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _check_parts(state: dict, name: str) -> None:
    """Refuse a resume dict whose parts have the wrong kinds or values."""
    def bad(part: str, what: str) -> ResumeError:
        return ResumeError(f"{name}: damaged resume file: {part} {what}")

    for key in ("arch", "config"):
        if not isinstance(state.get(key), str):
            raise bad(key, "is missing or not a name")
    classes = state.get("classes")
    if not isinstance(classes, dict) or not isinstance(classes.get("classes"), list):
        raise bad("classes", "is not a class set")
    if not _whole(state.get("epoch")):
        raise bad("epoch", f"{_short(state.get('epoch'))!r} is not a whole number")
    history = state.get("history")
    if not isinstance(history, list) or not all(isinstance(h, dict) for h in history):
        raise bad("history", "is not a list of epoch records")
    best = state.get("best")
    if (not isinstance(best, dict) or not _whole(best.get("epoch"))
            or not all(_number(best.get(k)) for k in ("miou", "macc"))):
        raise bad("best", "is not a record of the best epoch and its scores")
    for key in ("mean", "std"):
        values = state.get(key)
        if (not isinstance(values, (list, tuple)) or len(values) != 3
                or not all(_number(v) and math.isfinite(v) for v in values)):
            raise bad(key, "is not three finite numbers (R, G, B)")
    if not all(v > 0 for v in state["std"]):
        raise bad("std", "must be positive (it divides the input)")
    weights = state.get("model")
    if not isinstance(weights, dict) or not all(
            isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in weights.items()):
        raise bad("model", "is not a set of named weight tensors")
    for key, tensor in weights.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise bad(f"weight {_short(key)!r}", "holds NaN or infinite values")
    opt = state.get("optimizer")
    if not isinstance(opt, dict) or not isinstance(opt.get("param_groups"), list) \
            or not isinstance(opt.get("state"), dict):
        raise bad("optimizer", "is not an optimiser state")


def read_resume(path: Path, arch: str, config: str, classes: ClassSet) -> dict:
    """The checked state of resume file ``path`` for a run of ``arch`` (``config``) on
    ``classes``."""
    name = path.name
    if not path.is_file():
        raise ResumeError(f"{name}: no resume file (it is written after each epoch of a run "
                          "with the same --out)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many kinds for a damaged archive
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ResumeError(f"{name}: damaged resume file ({first})") from None
    if not isinstance(state, dict):
        raise ResumeError(f"{name}: not a resume file (it holds a {type(state).__name__}, "
                          "not the state of a training run)")
    _check_parts(state, name)
    held = (state["arch"], state["config"], state["classes"]["classes"])
    if held != (arch, config, classes.to_dict()["classes"]):
        raise ResumeError(f"{name}: was written training {held[0]!r} ({held[1]}) on other "
                          f"classes or settings; it cannot resume {arch!r} ({config}) here")
    return state


def restore(state: dict, model: nn.Module, optimizer: torch.optim.Optimizer, name: str,
            epochs: int) -> tuple[int, list, dict]:
    """Load a checked resume state into ``model`` and ``optimizer``; returns the epoch to start
    from, the history and the best record."""
    if state["epoch"] >= epochs:
        raise ResumeError(f"{name}: the run already finished {state['epoch']} epoch(s); ask for "
                          f"more than that with --epochs to go on")
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[-1].strip()
        raise ResumeError(f"{name}: its weights do not fit the network ({first[:200]})") \
            from None
    try:
        optimizer.load_state_dict(state["optimizer"])
    except (KeyError, ValueError, TypeError, RuntimeError, IndexError) as exc:
        raise ResumeError(f"{name}: its optimiser state does not fit the network "
                          f"({str(exc)[:200] or type(exc).__name__})") from None
    for group in optimizer.param_groups:
        for param in group["params"]:
            for key, value in optimizer.state.get(param, {}).items():
                if isinstance(value, torch.Tensor) and value.dim() and value.shape != param.shape:
                    raise ResumeError(f"{name}: its optimiser state {key!r} has shape "
                                      f"{tuple(value.shape)} where the weight has "
                                      f"{tuple(param.shape)}")
    return state["epoch"], state["history"], state["best"]
