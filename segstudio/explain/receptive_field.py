"""Theoretical receptive fields, computed from a model's own forward pass.

Method: the model runs once (a meta-device copy when it can, so a paper-size network costs no
real compute) under a torch function mode that sees every tensor operation. Each tensor derived
from the input carries a receptive field (size, jump, start per axis), propagated through the
operation that made it, the recursion of Araujo et al., "Computing Receptive Fields of
Convolutional Neural Networks" (Distill, 2019):

    size_out  = size_in + (k_eff - 1) * jump_in        k_eff = dilation * (k - 1) + 1
    jump_out  = jump_in * stride
    start_out = start_in + ((k_eff - 1) / 2 - padding) * jump_in

Python control flow, functional calls and skips need no special support. Conventions:

- adaptive pooling pools real feature units, so image-level pooling sees the whole feature map
  (``size_in + (n - 1) * jump_in``), which covers the whole image;
- upsampling divides the jump; nearest keeps the size, bilinear adds one input jump (each output
  reads two neighbours), bicubic three; a transposed convolution adds ``ceil(k / s) - 1`` jumps;
- elementwise operations and concatenation keep, per axis, the largest field of their inputs;
- a module called several times (a shared ReLU) reports its last call;
- the field is not clipped to the image: a ResNet-50 unit sees 427 pixels on a 224 input.
"""

from __future__ import annotations

import copy
import itertools
import math
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

import numpy as np
import torch
from torch import nn
from torch.overrides import TorchFunctionMode

__all__ = ["ReceptiveField", "ReceptiveFieldError", "receptive_field", "receptive_fields",
           "unit_at", "box_at", "atrous_sampling_grid", "MODEL_OUTPUT"]

MODEL_OUTPUT = ""
"""Layer name that stands for the model's own output (``out`` of a dict output)."""


class ReceptiveFieldError(ValueError):
    """The field cannot be computed: unknown layer, a layer that never ran, or a failing model."""


@dataclass(frozen=True)
class ReceptiveField:
    """Receptive field of the units of one feature map, per axis (height, width).

    ``size`` is the extent in input pixels, ``jump`` the distance in input pixels between
    neighbouring units (the effective stride), ``start`` the input coordinate of the centre of
    unit (0, 0); pixel ``i`` has its centre at coordinate ``i``.
    """

    size: tuple[float, float]
    jump: tuple[float, float]
    start: tuple[float, float]

    def centre(self, feature_y: int, feature_x: int) -> tuple[float, float]:
        return (self.start[0] + feature_y * self.jump[0], self.start[1] + feature_x * self.jump[1])

    def to_dict(self) -> dict:
        return {"size": list(self.size), "jump": list(self.jump), "start": list(self.start)}


_PIXEL = ReceptiveField((1.0, 1.0), (1.0, 1.0), (0.0, 0.0))


def _pair(v) -> tuple:
    v = tuple(v) if isinstance(v, (tuple, list)) else (v,)
    return v[0], v[-1]


def _arg(args: Sequence, kwargs: Mapping, index: int, name: str, default=None):
    if name in kwargs:
        return kwargs[name]
    return args[index] if len(args) > index else default


def _tensors(obj) -> list[torch.Tensor]:
    """Tensors inside nested lists, tuples and dicts, in order."""
    if isinstance(obj, torch.Tensor):
        return [obj]
    if isinstance(obj, (list, tuple)):
        return [t for item in obj for t in _tensors(item)]
    if isinstance(obj, Mapping):
        return [t for item in obj.values() for t in _tensors(item)]
    return []


def _per_axis(rf: ReceptiveField, fn) -> ReceptiveField:
    """Apply ``fn(axis, size, jump, start) -> (size, jump, start)`` to both axes."""
    axes = [fn(a, rf.size[a], rf.jump[a], rf.start[a]) for a in (0, 1)]
    return ReceptiveField((axes[0][0], axes[1][0]), (axes[0][1], axes[1][1]),
                          (axes[0][2], axes[1][2]))


def _window(rf: ReceptiveField, kernel, stride, padding, dilation=1) -> ReceptiveField:
    k, s, p, d = _pair(kernel), _pair(stride), _pair(padding), _pair(dilation)

    def axis(a, size, jump, start):
        k_eff = d[a] * (k[a] - 1) + 1
        return (size + (k_eff - 1) * jump, jump * s[a], start + ((k_eff - 1) / 2 - p[a]) * jump)
    return _per_axis(rf, axis)


def _spatial(t: torch.Tensor) -> tuple[int, int] | None:
    return (int(t.shape[-2]), int(t.shape[-1])) if t.dim() >= 3 else None


def _combined(fields: list[ReceptiveField], inputs: list[torch.Tensor],
              out: torch.Tensor) -> ReceptiveField:
    """Elementwise ops, concatenation, broadcasts: per axis the largest size of any input, and
    the grid (jump, start) of an input laid out like the output, so that a pooled gate broadcast
    over a map (squeeze-and-excitation) widens what units see but does not move them."""
    shape = _spatial(out)
    aligned = [f for f, t in zip(fields, inputs) if shape is not None and _spatial(t) == shape]
    grid = aligned or fields

    def axis(a, *_):
        layout = max(grid, key=lambda f: (f.size[a], -f.jump[a]))
        return max(f.size[a] for f in fields), layout.jump[a], layout.start[a]
    return _per_axis(fields[0], axis)


def _resample(rf: ReceptiveField, n_in, n_out, taps, align_corners=False) -> ReceptiveField:
    """Upsampling or resizing from ``n_in`` to ``n_out`` units, each output reading ``taps``."""
    def axis(a, size, jump, start):
        if align_corners and n_out[a] > 1:
            ratio = (n_in[a] - 1) / (n_out[a] - 1)
            new_start = start
        else:
            ratio = n_in[a] / n_out[a]
            new_start = start + (ratio / 2 - 0.5) * jump
        extra = (min(taps, n_in[a]) - 1) * jump
        return size + extra, jump * ratio, new_start
    return _per_axis(rf, axis)


def _getitem(rf: ReceptiveField, t: torch.Tensor, index) -> ReceptiveField:
    """Cropping with slices on the two spatial axes moves the first unit."""
    if t.dim() < 3:
        return rf
    index = index if isinstance(index, tuple) else (index,)
    if any(i is None or isinstance(i, torch.Tensor) for i in index):
        return rf
    if Ellipsis in index:
        at = index.index(Ellipsis)
        index = index[:at] + (slice(None),) * (t.dim() - len(index) + 1) + index[at + 1:]
    index = index + (slice(None),) * (t.dim() - len(index))
    spatial = index[-2:]

    def axis(a, size, jump, start):
        sl = spatial[a]
        if not isinstance(sl, slice):
            return size, jump, start
        first, _, step = sl.indices(int(t.shape[a - 2]))
        return size, jump * step, start + first * jump
    return _per_axis(rf, axis)


_REDUCTIONS = {"mean", "sum", "amax", "amin", "max", "min", "std", "var", "logsumexp", "norm"}


def _reduction(rf: ReceptiveField, t: torch.Tensor, args, kwargs) -> ReceptiveField:
    """Reducing over spatial axes (global pooling written as ``x.mean((2, 3))``)."""
    if t.dim() < 3:
        return rf
    dim = _arg(args, kwargs, 1, "dim")
    dims = range(t.dim()) if dim is None else (dim if isinstance(dim, (tuple, list)) else (dim,))
    dims = {d % t.dim() for d in dims if isinstance(d, int)}
    shape = _spatial(t)

    def axis(a, size, jump, start):
        if (t.dim() - 2 + a) in dims:
            return size + (shape[a] - 1) * jump, jump * shape[a], start + (shape[a] - 1) / 2 * jump
        return size, jump, start
    return _per_axis(rf, axis)


def _propagate(name: str, args, kwargs, fields: list[ReceptiveField],
               inputs: list[torch.Tensor], out: torch.Tensor) -> ReceptiveField:
    """The field of ``out``, made by operation ``name`` from ``inputs`` with ``fields``."""
    rf, first = fields[0], inputs[0]
    if name in ("conv2d", "convolution") and first.dim() >= 3:
        weight = _arg(args, kwargs, 1, "weight")
        kernel = tuple(weight.shape[-2:])
        dilation = _pair(_arg(args, kwargs, 5, "dilation", 1))
        padding = _arg(args, kwargs, 4, "padding", 0)
        if padding == "valid":
            padding = 0
        elif padding == "same":
            padding = tuple(dilation[a] * (kernel[a] - 1) / 2 for a in (0, 1))
        return _window(rf, kernel, _arg(args, kwargs, 3, "stride", 1), padding, dilation)
    if name == "conv_transpose2d":
        weight = _arg(args, kwargs, 1, "weight")
        k, s = tuple(weight.shape[-2:]), _pair(_arg(args, kwargs, 3, "stride", 1))
        p = _pair(_arg(args, kwargs, 4, "padding", 0))
        d = _pair(_arg(args, kwargs, 7, "dilation", 1))

        def axis(a, size, jump, start):
            k_eff = d[a] * (k[a] - 1) + 1
            return (size + (math.ceil(k_eff / s[a]) - 1) * jump, jump / s[a],
                    start + (p[a] - (k_eff - 1) / 2) / s[a] * jump)
        return _per_axis(rf, axis)
    if name in ("max_pool2d", "max_pool2d_with_indices", "avg_pool2d"):
        kernel = _arg(args, kwargs, 1, "kernel_size")
        stride = _arg(args, kwargs, 2, "stride") or kernel  # None or [] mean "as the kernel"
        dilation = _arg(args, kwargs, 4, "dilation", 1) if "max" in name else 1
        return _window(rf, kernel, stride, _arg(args, kwargs, 3, "padding", 0), dilation)
    if name.startswith("adaptive_") and out.dim() >= 3:
        n_in, n_out = _spatial(first), _spatial(out)

        def axis(a, size, jump, start):
            k = math.ceil(n_in[a] / n_out[a])
            return size + (k - 1) * jump, jump * n_in[a] / n_out[a], start + (k - 1) / 2 * jump
        return _per_axis(rf, axis)
    if (name == "interpolate" or name.startswith("upsample")) and out.dim() >= 3:
        mode = _arg(args, kwargs, 3, "mode", "nearest") if name == "interpolate" else name
        taps = 4 if "cubic" in mode else 2 if ("linear" in mode or "area" in mode) else 1
        if "area" in mode and _spatial(out) < _spatial(first):
            taps = math.ceil(_spatial(first)[0] / _spatial(out)[0])
        align = bool(_arg(args, kwargs, 4, "align_corners", False))
        return _resample(rf, _spatial(first), _spatial(out), taps, align)
    if name == "max_unpool2d":  # the pooling indices travel along; only the values count
        return _resample(rf, _spatial(first), _spatial(out), 1)
    if name == "pad" and first.dim() >= 3:
        pad = list(_arg(args, kwargs, 1, "pad"))
        left, top = pad[0], (pad[2] if len(pad) >= 4 else 0)
        return ReceptiveField(rf.size, rf.jump,
                              (rf.start[0] - top * rf.jump[0], rf.start[1] - left * rf.jump[1]))
    if name == "__getitem__":
        return _getitem(rf, first, args[1])
    if name in _REDUCTIONS:
        return _reduction(rf, first, args, kwargs)
    if len(fields) > 1:
        return _combined(fields, inputs, out)
    if out.dim() >= 3 and first.dim() >= 3 and _spatial(out) != _spatial(first):
        # Any other change of grid (pixel shuffle, repeat, expanding a pooled vector) is
        # read as nearest resampling: the units spread out, each still seeing what it saw.
        return _resample(rf, _spatial(first), _spatial(out), 1)
    return rf


class _FieldTracker(TorchFunctionMode):
    """Carries a receptive field along with every tensor computed from the input."""

    def __init__(self, source: torch.Tensor):
        super().__init__()
        self.fields: dict[int, ReceptiveField] = {id(source): _PIXEL}
        # Strong references keep ids unique while the forward pass runs.
        self._alive: list[torch.Tensor] = [source]

    def field_of(self, obj, inputs=None) -> ReceptiveField | None:
        return next((self.fields[id(t)] for t in _tensors(obj) if id(t) in self.fields), None)

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        inputs = [t for t in _tensors((args, kwargs)) if id(t) in self.fields]
        outputs = _tensors(out)
        if not inputs or not outputs:
            return out
        fields = [self.fields[id(t)] for t in inputs]
        rf = _propagate(getattr(func, "__name__", ""), args, kwargs, fields, inputs, outputs[0])
        for t in outputs:
            self.fields[id(t)] = rf
            self._alive.append(t)
        return out


def _meta_copy(model: nn.Module) -> nn.Module:
    """The model with its parameters and buffers on the meta device and without hooks, so that
    tracing leaves the real model untouched (another thread may be running it)."""
    memo = {}
    for t in itertools.chain(model.parameters(), model.buffers()):
        meta = torch.empty_like(t, device="meta")
        memo[id(t)] = nn.Parameter(meta, t.requires_grad) if isinstance(t, nn.Parameter) else meta
    clone = copy.deepcopy(model, memo)
    for module in clone.modules():
        module._forward_hooks.clear()
        module._forward_pre_hooks.clear()
    return clone


def _trace(model: nn.Module, layers: Iterable[str], input_size, in_channels, device,
           tracker_type=None):
    conv = next((m for m in model.modules() if isinstance(m, nn.modules.conv._ConvNd)), None)
    if in_channels is None and conv is None:
        raise ReceptiveFieldError("the model has no convolution; pass in_channels")
    channels = in_channels or conv.in_channels
    if str(device) == "meta":
        model = _meta_copy(model)
    names = dict(model.named_modules())
    layers = list(layers)
    for layer in layers:
        if layer != MODEL_OUTPUT and layer not in names:
            near = [n for n in names if n and layer.split(".")[-1] in n][:5]
            hint = f" (similar: {', '.join(near)})" if near else ""
            raise ReceptiveFieldError(f"the model has no layer named '{layer}'{hint}")
    h, w = (int(v) for v in _pair(input_size))
    x = torch.zeros(1, channels, h, w, device=device)
    tracker = (tracker_type or _FieldTracker)(x)
    found: dict[str, ReceptiveField] = {}

    def recorder(layer):
        def hook(_module, inputs, output):
            rf = tracker.field_of(output, inputs)
            if rf is not None:
                found[layer] = rf
        return hook

    handles = [names[layer].register_forward_hook(recorder(layer))
               for layer in layers if layer != MODEL_OUTPUT]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), tracker:
            out = model(x)
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    if MODEL_OUTPUT in layers:
        main = out["out"] if isinstance(out, Mapping) and "out" in out else out
        rf = tracker.field_of(main)
        if rf is not None:
            found[MODEL_OUTPUT] = rf
    return found


def receptive_fields(model: nn.Module, layers: Iterable[str], input_size=(512, 512), *,
                     in_channels: int | None = None, skip_missing: bool = False,
                     tracker_type=None) -> dict[str, ReceptiveField]:
    """Theoretical receptive fields of several layers (dotted module paths; ``""`` = output).

    One forward pass of a meta-device copy (no weights copied, no arithmetic, the model itself
    untouched); if the model cannot run there, one real pass under ``no_grad`` in eval mode.
    Layers that did not run are an error, or left out with ``skip_missing``. ``tracker_type``
    swaps the per-operation rule (:mod:`segstudio.explain.pixel_fields` traces every unit).
    """
    layers, params = list(layers), next(model.parameters(), None)
    for device in ("meta", params.device if params is not None else torch.device("cpu")):
        try:
            found = _trace(model, layers, input_size, in_channels, device, tracker_type)
            break
        except ReceptiveFieldError:
            raise
        except Exception as exc:
            if str(device) != "meta" or (params is not None and params.device.type == "meta"):
                raise ReceptiveFieldError(f"the model failed on a {tuple(_pair(input_size))} "
                                          f"input on the {device} device: {exc}") from exc
    missing = [layer for layer in layers if layer not in found]
    if missing and not skip_missing:
        raise ReceptiveFieldError("these layers did not run on the input during the forward pass: "
                                  + ", ".join(repr(m) for m in missing))
    return {layer: found[layer] for layer in layers if layer in found}


def receptive_field(model: nn.Module, layer: str, input_size=(512, 512), *,
                    in_channels: int | None = None) -> ReceptiveField:
    """Theoretical receptive field of the output of ``layer`` (a dotted module path)."""
    return receptive_fields(model, [layer], input_size, in_channels=in_channels)[layer]


def unit_at(rf: ReceptiveField, y: float, x: float, feature_size=None) -> tuple[int, int]:
    """The feature unit whose field is centred nearest to image pixel (y, x)."""
    unit = [round((v - rf.start[a]) / rf.jump[a]) for a, v in enumerate((y, x))]
    if feature_size is not None:
        unit = [min(max(u, 0), int(n) - 1) for u, n in zip(unit, feature_size)]
    return unit[0], unit[1]


def box_at(rf: ReceptiveField, feature_y: int, feature_x: int,
           image_size=None) -> tuple[int, int, int, int]:
    """Image-space box ``(top, left, bottom, right)`` (bottom/right exclusive) seen by a unit.

    With ``image_size=(h, w)`` the box is clipped to the image.
    """
    spans = []
    for a, centre in enumerate(rf.centre(feature_y, feature_x)):
        half = (rf.size[a] - 1) / 2
        low, high = math.ceil(centre - half - 1e-6), math.floor(centre + half + 1e-6) + 1
        if image_size is not None:
            low, high = max(low, 0), min(high, int(image_size[a]))
        spans.append((low, high))
    return spans[0][0], spans[1][0], spans[0][1], spans[1][1]


def atrous_sampling_grid(rate: int, kernel: int = 3, centre=(0.0, 0.0),
                         jump: float | tuple | ReceptiveField = 1.0) -> np.ndarray:
    """Image positions ``(k*k, 2)`` as (y, x) of the taps of a dilated k×k convolution: ``rate``
    units apart, so ``rate * jump`` pixels (ASPP rate 12 at stride 16 samples every 192 pixels,
    DeepLab v3 §3.3)."""
    if isinstance(jump, ReceptiveField):
        jump = jump.jump
    jy, jx = _pair(jump)
    offsets = (np.arange(kernel, dtype=np.float64) - (kernel - 1) / 2) * rate
    ys, xs = np.meshgrid(centre[0] + offsets * jy, centre[1] + offsets * jx, indexing="ij")
    return np.stack([ys.ravel(), xs.ravel()], axis=1)
