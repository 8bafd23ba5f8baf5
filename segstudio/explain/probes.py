"""Branch probes and branch ablation through forward hooks.

The model's code path is never changed: a probe only records what a named module returned, and
an ablation replaces that output with zeros, so the caller can see what each branch (a pyramid
bin, an ASPP rate, a skip) contributes to the prediction.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator, Mapping

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["ProbeError", "Probe", "activation_map", "ablate", "ablate_branches", "zero_branches",
           "predict_labels",
           "branch_contribution", "branch_effect", "label_transitions", "find_module", "as_batch", "main_output", "feature_tensor"]


class ProbeError(ValueError):
    """A probe cannot be placed or read: unknown module path, or an output with no feature map."""


def find_module(model: nn.Module, path: str) -> nn.Module:
    """The submodule at dotted ``path``, or a :class:`ProbeError` naming what exists nearby."""
    try:
        return model.get_submodule(path)
    except AttributeError:
        parent = path.rpartition(".")[0]
        try:
            options = [n for n, _ in model.get_submodule(parent).named_children()]
        except AttributeError:
            options = [n for n, _ in model.named_children()]
        raise ProbeError(f"the model has no module '{path}'; next to it: "
                         f"{', '.join(options) or 'nothing'}") from None


def as_batch(image: torch.Tensor) -> torch.Tensor:
    """A C×H×W image as a batch of one; an N×C×H×W batch unchanged."""
    if image.dim() == 3:
        return image.unsqueeze(0)
    if image.dim() != 4:
        raise ProbeError(f"expected an image tensor C×H×W or N×C×H×W, got shape "
                         f"{tuple(image.shape)}")
    return image


def main_output(out) -> torch.Tensor:
    """The logits of a model output: ``out["out"]`` of a dict, or the tensor itself."""
    if isinstance(out, (tuple, list)) and out:
        out = out[0]
    if isinstance(out, Mapping):
        if "out" not in out:
            raise ProbeError(f"the model returned {', '.join(map(str, out))} but no 'out': it "
                             "does not predict per-pixel logits (a detector?)")
        out = out["out"]
    if not isinstance(out, torch.Tensor) or out.dim() != 4:
        raise ProbeError("the model output is not an N×C×H×W tensor of per-pixel logits")
    return out


def feature_tensor(output) -> torch.Tensor:
    """The tensor a module produced: the first one, depth first, for modules that return
    several (a detector head returns lists per pyramid level)."""
    if isinstance(output, torch.Tensor):
        return output
    items = list(output.values()) if isinstance(output, Mapping) else output
    if isinstance(items, (tuple, list)):
        for item in items:
            try:
                return feature_tensor(item)
            except ProbeError:
                continue
    raise ProbeError(f"the module returned {type(output).__name__}, not a tensor")


class Probe:
    """Records the outputs of named modules each time the model runs inside the context.

    ``with Probe(model, {"bin1": "decode.ppm.stages.0"}) as probe: maps = probe.run(image)``.
    Outputs are kept detached; they stay readable in :attr:`outputs` after the context closes.
    """

    def __init__(self, model: nn.Module, branches: Mapping[str, str]):
        self.model = model
        self.branches = dict(branches)
        self.modules = {name: find_module(model, path) for name, path in self.branches.items()}
        self.outputs: dict[str, torch.Tensor] = {}
        self._handles = []

    def __enter__(self) -> "Probe":
        for name, module in self.modules.items():
            self._handles.append(module.register_forward_hook(self._recorder(name)))
        return self

    def __exit__(self, *exc) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def _recorder(self, name: str):
        def hook(_module, _inputs, output):
            self.outputs[name] = feature_tensor(output).detach()
        return hook

    def run(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        """Run the model on ``image`` (eval mode, no gradients) and return each branch's output."""
        if not self._handles:
            raise ProbeError("Probe.run needs the probe to be active: use 'with Probe(...) as p'")
        self.outputs.clear()
        with _evaluating(self.model), torch.no_grad():
            self.model(as_batch(image).to(_device_of(self.model)))
        missing = [name for name in self.branches if name not in self.outputs]
        if missing:
            raise ProbeError("these branches did not run: " + ", ".join(
                f"{n} ({self.branches[n]})" for n in missing))
        return {name: self.outputs[name] for name in self.branches}


def activation_map(t: torch.Tensor, mode: str | int = "mean", size=None) -> np.ndarray:
    """One H×W float32 map of a feature tensor for display.

    ``mode`` is ``"mean"`` or ``"max"`` over channels, or a channel index; ``size=(h, w)`` resizes
    bilinearly to the image. The first item of a batch is shown.
    """
    t = t.detach().float()
    if t.dim() == 4:
        t = t[0]
    if t.dim() != 3:
        raise ProbeError(f"an activation map needs a C×H×W feature map, got {tuple(t.shape)}")
    if mode == "mean":
        m = t.mean(0)
    elif mode == "max":
        m = t.amax(0)
    elif isinstance(mode, int) and not isinstance(mode, bool):
        if not 0 <= mode < t.shape[0]:
            raise ProbeError(f"channel {mode} is out of range: the map has {t.shape[0]} channels")
        m = t[mode]
    else:
        raise ProbeError(f"unknown activation mode {mode!r}: use 'mean', 'max' or a channel index")
    if size is not None and tuple(m.shape) != tuple(size):
        m = F.interpolate(m[None, None], size=tuple(int(v) for v in size), mode="bilinear",
                          align_corners=False)[0, 0]
    return m.cpu().numpy().astype(np.float32, copy=False)


def _zeros_like(output):
    if isinstance(output, torch.Tensor):
        return torch.zeros_like(output)
    if isinstance(output, Mapping):
        return type(output)((k, _zeros_like(v)) for k, v in output.items())
    if isinstance(output, (tuple, list)):
        return type(output)(_zeros_like(v) for v in output)
    return output


@contextmanager
def ablate(model: nn.Module, path: str) -> Iterator[None]:
    """Inside the context the module at ``path`` outputs zeros (its shape and type kept)."""
    handle = find_module(model, path).register_forward_hook(lambda _m, _i, out: _zeros_like(out))
    try:
        yield
    finally:
        handle.remove()


def zero_branches(model: nn.Module, branches: Mapping[str, str], names) -> list:
    """Make each named branch (a key of ``branches``, e.g. ``psp.bin1``) output zeros, as the
    Branches view's ablation, until the returned hook handles are removed. An unknown name is a
    :class:`ProbeError` listing the known ones, and then nothing is changed."""
    unknown = [n for n in names if n not in branches]
    if unknown:
        raise ProbeError(f"no branch {', '.join(map(repr, unknown))}; this model's branches: "
                         f"{', '.join(branches)}")
    modules = [find_module(model, branches[n]) for n in dict.fromkeys(names)]
    return [m.register_forward_hook(lambda _m, _i, out: _zeros_like(out)) for m in modules]


@contextmanager
def ablate_branches(model: nn.Module, branches: Mapping[str, str],
                    names) -> Iterator[None]:
    """Inside the context the named branches output zeros (see :func:`zero_branches`)."""
    handles = zero_branches(model, branches, names)
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


@contextmanager
def _evaluating(model: nn.Module) -> Iterator[None]:
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


def _device_of(model: nn.Module) -> torch.device:
    param = next(model.parameters(), None)
    return param.device if param is not None else torch.device("cpu")


def predict_labels(model: nn.Module, image: torch.Tensor) -> np.ndarray:
    """Arg-max labels H×W (int64) of the model's ``out`` logits for one image."""
    with _evaluating(model), torch.no_grad():
        logits = main_output(model(as_batch(image).to(_device_of(model))))
    return logits[0].argmax(0).cpu().numpy()


def branch_effect(model: nn.Module, image: torch.Tensor,
                  path: str) -> tuple[np.ndarray, np.ndarray]:
    """Labels predicted with the branch at ``path`` and with it zeroed."""
    with_branch = predict_labels(model, image)
    with ablate(model, path):
        without = predict_labels(model, image)
    return with_branch, without


def branch_contribution(model: nn.Module, image: torch.Tensor,
                        path: str) -> tuple[np.ndarray, np.ndarray]:
    """Labels predicted with the branch at ``path`` zeroed, and the H×W mask of changed pixels."""
    with_branch, without = branch_effect(model, image, path)
    return without, without != with_branch


def label_transitions(before: np.ndarray, after: np.ndarray) -> list[tuple[int, int, int]]:
    """``(class before, class after, pixels)`` for every pair of classes a pixel changed
    between, most pixels first: what the changed pixels became, not only where they are."""
    before, after = np.asarray(before, np.int64), np.asarray(after, np.int64)
    moved = before != after
    codes, counts = np.unique(before[moved] * 256 + after[moved], return_counts=True)
    pairs = [(int(c) // 256, int(c) % 256, int(n)) for c, n in zip(codes, counts)]
    return sorted(pairs, key=lambda t: (-t[2], t[0], t[1]))
