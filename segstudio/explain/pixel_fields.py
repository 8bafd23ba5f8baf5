"""Receptive fields unit by unit: which input pixels can reach each output unit.

The recursion of :mod:`segstudio.explain.receptive_field` gives every unit of a map the same
size. That holds for convolutions and pools, but not through a transposed convolution, max
unpooling or bilinear upsampling: there neighbouring output pixels read different numbers of
input units (FCN-8s' output pixels see 436 or 468 pixels, not one "460"). This module traces, for
every unit of a map and per axis, the first and last input pixel that can influence it, through
the same forward pass on the meta device.

The network is read as if the image went on forever: padding reads the pixels beyond the border
(so that a box says how far a unit's window reaches), but resampling reads only the real map, as
PyTorch clamps its source indices to it; max unpooling may put a unit's value anywhere in its
window (SegNet's decoder), and a pooled map (image-level pooling, a PSP bin)
sees the whole real map. A box is therefore unclipped (it may start at -200); clipped to the
image it equals the support of the input gradient of a network with positive weights, at the
borders too, and contains it where max unpooling's choice varies from image to image
(``tests/explain/test_pixel_fields.py``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable

import numpy as np
import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from segstudio.explain.receptive_field import (
    _REDUCTIONS, ReceptiveFieldError, _arg, _pair, _spatial, _tensors, receptive_fields)

__all__ = ["PixelFields", "pixel_fields", "MARGIN"]

MARGIN = 4096
"""Pixels traced beyond each border of the input, so that unclipped boxes are known."""


class _Axis:
    """Spans along one axis: unit ``first + k`` sees input pixels ``lo[k]`` … ``hi[k]``.

    NaN marks units beyond the traced margin; ``lo > hi`` a unit that sees nothing. A ``const``
    axis (pooled over, or broadcast from one unit) has one span that every unit shares.
    """

    __slots__ = ("lo", "hi", "first", "const")

    def __init__(self, lo, hi, first: int, const: bool = False) -> None:
        self.lo, self.hi, self.first, self.const = lo, hi, int(first), const

    @classmethod
    def pixels(cls, n: int, margin: int) -> "_Axis":
        idx = np.arange(-margin, n + margin, dtype=np.float64)
        return cls(idx, idx.copy(), -margin)

    @classmethod
    def single(cls, lo: float, hi: float) -> "_Axis":
        return cls(np.array([lo]), np.array([hi]), 0, const=True)

    @property
    def last(self) -> int:
        return self.first + len(self.lo) - 1

    def take(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Spans of units ``idx`` (NaN beyond the traced range)."""
        if self.const:
            return np.full(idx.shape, self.lo[0]), np.full(idx.shape, self.hi[0])
        k = idx - self.first
        inside = (k >= 0) & (k < len(self.lo))
        kk = np.where(inside, k, 0).astype(np.int64)
        lo, hi = np.where(inside, self.lo[kk], np.nan), np.where(inside, self.hi[kk], np.nan)
        return lo, hi

    def hull(self, start: int, stop: int) -> tuple[float, float]:
        """One span covering units ``start`` … ``stop - 1``."""
        lo, hi = self.take(np.arange(start, stop))
        return float(np.min(lo)), float(np.max(hi))


def _gather(axis: _Axis, out_idx: np.ndarray, taps: list[tuple[np.ndarray, np.ndarray]]) -> _Axis:
    """Output unit ``out_idx[i]`` sees the hull of input units ``src[i]`` where ``use[i]``, for
    each ``(src, use)`` in ``taps``; units that reach past the traced range are cut off."""
    lo = np.full(out_idx.shape, np.inf)
    hi = np.full(out_idx.shape, -np.inf)
    for src, use in taps:
        t_lo, t_hi = axis.take(src)
        lo = np.where(use, np.minimum(lo, t_lo), lo)   # NaN spreads: unknown stays unknown
        hi = np.where(use, np.maximum(hi, t_hi), hi)
    known = ~(np.isnan(lo) | np.isnan(hi))
    if not known.any():
        raise ReceptiveFieldError("the traced margin is too small for this network")
    a, b = np.argmax(known), len(known) - np.argmax(known[::-1])
    return _Axis(lo[a:b], hi[a:b], out_idx[a])


def _window(axis: _Axis, k: int, s: int, p: int, d: int = 1) -> _Axis:
    """Convolution or pooling: unit ``o`` reads ``o*s - p + j*d`` for ``j < k``."""
    if axis.const:
        return axis
    out = np.arange(math.floor((axis.first + p) / s), math.floor((axis.last + p) / s) + 1)
    return _gather(axis, out, [(out * s - p + j * d, True) for j in range(k)])


def _transposed(axis: _Axis, k: int, s: int, p: int, d: int = 1) -> _Axis:
    """Transposed convolution: input ``i`` adds into ``i*s - p + j*d``."""
    if axis.const:
        return axis
    out = np.arange(axis.first * s - p, axis.last * s - p + (k - 1) * d + 1)
    taps = []
    for j in range(k):
        num = out + p - j * d
        taps.append((np.floor_divide(num, s), num % s == 0))
    return _gather(axis, out, taps)


def _unpool(axis: _Axis, k: int, s: int, p: int) -> _Axis:
    """Max unpooling: output ``o`` holds the value of any unit whose window covers it (the
    pooling indices say which, image by image)."""
    if axis.const:
        return axis
    out = np.arange(axis.first * s - p, axis.last * s - p + k)
    taps = []
    for j in range(k):
        num = out + p - j
        taps.append((np.floor_divide(num, s), num % s == 0))
    return _gather(axis, out, taps)


def _resample(axis: _Axis, n_in: int, n_out: int, mode: str, align: bool,
              scale_factor) -> _Axis:
    """``F.interpolate`` along one axis, as PyTorch computes it: every source index is clamped
    to the real map (``0 … n_in - 1``), and with ``align_corners=False`` a negative linear source
    coordinate is first clamped to 0. A border output unit therefore reads only the border unit,
    never a unit beyond the map (which would stand for pixels beyond the image)."""
    if axis.const:
        return axis
    if n_in == 1:
        return _Axis.single(*axis.hull(0, 1))
    if align and n_out > 1:
        scale = (n_in - 1) / (n_out - 1)
    elif scale_factor is not None:
        scale = 1.0 / scale_factor
    else:
        scale = n_in / n_out
    out = np.arange(math.floor(axis.first / scale) - 2, math.ceil((axis.last + 1) / scale) + 2)

    def bounded(src: np.ndarray) -> np.ndarray:
        return np.clip(src, 0, n_in - 1).astype(np.int64)

    if mode in ("nearest", "nearest-exact"):
        src = np.floor((out + (0.5 if mode == "nearest-exact" else 0.0)) * scale)
        return _gather(axis, out, [(bounded(src), True)])
    if mode == "area":
        return _adaptive(axis, n_in, n_out)
    centre = out * scale if align else (out + 0.5) * scale - 0.5
    if mode == "linear" and not align:
        centre = np.maximum(centre, 0.0)  # PyTorch clamps the linear source, not the cubic one
    base = np.floor(centre)
    exact = centre == base              # on a sample: the neighbours get weight zero
    reach = (-1, 0, 1, 2) if "cubic" in mode else (0, 1)
    return _gather(axis, out, [(bounded(base + r), (r == 0) | ~exact) for r in reach])


def _adaptive(axis: _Axis, n_in: int, n_out: int) -> _Axis:
    """Adaptive pooling: bin ``b`` pools units ``floor(b n_in / n_out)`` up to
    ``ceil((b + 1) n_in / n_out)``; one bin pools the whole real map."""
    if axis.const:
        return axis
    if n_out == 1:
        return _Axis.single(*axis.hull(0, n_in))
    out = np.arange(math.floor(axis.first * n_out / n_in) - 1,
                    math.ceil((axis.last + 1) * n_out / n_in) + 1)
    starts = np.floor(out * n_in / n_out).astype(np.int64)
    ends = np.ceil((out + 1) * n_in / n_out).astype(np.int64)
    width = int(np.max(ends - starts))
    return _gather(axis, out, [(starts + j, starts + j < ends) for j in range(width)])


def _shift(axis: _Axis, offset: int, step: int = 1) -> _Axis:
    """Unit ``o`` of the result is unit ``offset + o * step`` of the input (crop or pad)."""
    if axis.const:
        return axis
    out = np.arange(math.ceil((axis.first - offset) / step),
                    math.floor((axis.last - offset) / step) + 1)
    return _gather(axis, out, [(offset + out * step, True)])


Field = tuple  # (_Axis, _Axis): rows, columns


def _spatial_field(t: torch.Tensor, field: Field, out_shape) -> Field:
    """The field of an input as it broadcasts against a map of ``out_shape``: an axis of one
    unit (a pooled vector) is seen by every unit."""
    size = _spatial(t)
    axes = []
    for a in (0, 1):
        axis = field[a]
        if (size is None or size[a] == 1) and not axis.const:
            axis = _Axis.single(*axis.hull(0, 1))
        axes.append(axis)
    return tuple(axes)


def _combined(fields: list[Field], inputs: list[torch.Tensor], out: torch.Tensor) -> Field:
    shape = _spatial(out)
    fields = [_spatial_field(t, f, shape) for f, t in zip(fields, inputs)]
    axes = []
    for a in (0, 1):
        moving = [f[a] for f in fields if not f[a].const]
        const = [f[a] for f in fields if f[a].const]
        if not moving:
            axes.append(_Axis.single(min(c.lo[0] for c in const), max(c.hi[0] for c in const)))
            continue
        first = max(m.first for m in moving)
        out_idx = np.arange(first, min(m.last for m in moving) + 1)
        lo, hi = np.full(out_idx.shape, np.inf), np.full(out_idx.shape, -np.inf)
        for axis in moving + const:
            t_lo, t_hi = axis.take(out_idx)
            lo, hi = np.minimum(lo, t_lo), np.maximum(hi, t_hi)
        axes.append(_Axis(lo, hi, first))
    return tuple(axes)


def _reduced(field: Field, t: torch.Tensor, args, kwargs) -> Field:
    dim = _arg(args, kwargs, 1, "dim")
    dims = range(t.dim()) if dim is None else (dim if isinstance(dim, (tuple, list)) else (dim,))
    dims = {d % t.dim() for d in dims if isinstance(d, int)}
    size = _spatial(t)
    return tuple(_Axis.single(*field[a].hull(0, size[a])) if (t.dim() - 2 + a) in dims
                 else field[a] for a in (0, 1))


def _slices(field: Field, t: torch.Tensor, index) -> Field:
    index = index if isinstance(index, tuple) else (index,)
    if any(i is None or isinstance(i, torch.Tensor) for i in index):
        return field
    if Ellipsis in index:
        at = index.index(Ellipsis)
        index = index[:at] + (slice(None),) * (t.dim() - len(index) + 1) + index[at + 1:]
    index = index + (slice(None),) * (t.dim() - len(index))
    axes = []
    for a, sl in enumerate(index[-2:]):
        if isinstance(sl, slice):
            first, _, step = sl.indices(int(t.shape[a - 2]))
            axes.append(_shift(field[a], first, step))
        else:
            axes.append(field[a])
    return tuple(axes)


def _propagate(name: str, args, kwargs, fields: list[Field], inputs: list[torch.Tensor],
               out: torch.Tensor) -> Field:
    field, first = fields[0], inputs[0]
    spatial = first.dim() >= 3 and out.dim() >= 3
    if name in ("conv2d", "convolution") and spatial:
        weight = _arg(args, kwargs, 1, "weight")
        k, s = tuple(weight.shape[-2:]), _pair(_arg(args, kwargs, 3, "stride", 1))
        d = _pair(_arg(args, kwargs, 5, "dilation", 1))
        padding = _arg(args, kwargs, 4, "padding", 0)
        if padding == "valid":
            padding = 0
        elif padding == "same":
            padding = tuple(d[a] * (k[a] - 1) // 2 for a in (0, 1))
        p = _pair(padding)
        return tuple(_window(field[a], k[a], s[a], p[a], d[a]) for a in (0, 1))
    if name == "conv_transpose2d" and spatial:
        weight = _arg(args, kwargs, 1, "weight")
        k, s = tuple(weight.shape[-2:]), _pair(_arg(args, kwargs, 3, "stride", 1))
        p, d = _pair(_arg(args, kwargs, 4, "padding", 0)), _pair(_arg(args, kwargs, 7,
                                                                     "dilation", 1))
        return tuple(_transposed(field[a], k[a], s[a], p[a], d[a]) for a in (0, 1))
    if name in ("max_pool2d", "max_pool2d_with_indices", "avg_pool2d") and spatial:
        k = _pair(_arg(args, kwargs, 1, "kernel_size"))
        s = _pair(_arg(args, kwargs, 2, "stride") or k)
        p = _pair(_arg(args, kwargs, 3, "padding", 0))
        d = _pair(_arg(args, kwargs, 4, "dilation", 1) if "max" in name else 1)
        return tuple(_window(field[a], k[a], s[a], p[a], d[a]) for a in (0, 1))
    if name == "max_unpool2d" and spatial:
        k = _pair(_arg(args, kwargs, 2, "kernel_size"))
        s = _pair(_arg(args, kwargs, 3, "stride") or k)
        p = _pair(_arg(args, kwargs, 4, "padding", 0))
        return tuple(_unpool(field[a], k[a], s[a], p[a]) for a in (0, 1))
    if name.startswith("adaptive_") and spatial:
        n_in, n_out = _spatial(first), _spatial(out)
        return tuple(_adaptive(field[a], n_in[a], n_out[a]) for a in (0, 1))
    if (name == "interpolate" or name.startswith("upsample")) and spatial:
        mode = _arg(args, kwargs, 3, "mode", "nearest") if name == "interpolate" else name
        mode = "bicubic" if "cubic" in mode else "area" if "area" in mode else \
            "linear" if "linear" in mode else mode if mode == "nearest-exact" else "nearest"
        align = bool(_arg(args, kwargs, 4, "align_corners", False))
        factor = _arg(args, kwargs, 2, "scale_factor") if name == "interpolate" else None
        recompute = _arg(args, kwargs, 5, "recompute_scale_factor")
        factors = (None, None) if factor is None or recompute else _pair(factor)
        n_in, n_out = _spatial(first), _spatial(out)
        return tuple(_resample(field[a], n_in[a], n_out[a], mode, align, factors[a])
                     for a in (0, 1))
    if name == "pad" and spatial:
        pad = list(_arg(args, kwargs, 1, "pad"))
        left, top = pad[0], (pad[2] if len(pad) >= 4 else 0)
        return _shift(field[0], -top), _shift(field[1], -left)
    if name == "__getitem__" and first.dim() >= 3:
        return _slices(field, first, args[1])
    if name in _REDUCTIONS and first.dim() >= 3:
        return _reduced(field, first, args, kwargs)
    if len(fields) > 1:
        return _combined(fields, inputs, out)
    if spatial and _spatial(out) != _spatial(first):
        n_in, n_out = _spatial(first), _spatial(out)
        return tuple(_resample(field[a], n_in[a], n_out[a], "nearest", False, None)
                     for a in (0, 1))
    return field


@dataclass(frozen=True)
class PixelFields:
    """The field of every unit of one feature map, per axis.

    ``rows[i]`` is the first and last input row (inclusive, unclipped) that can influence units
    of row ``i``; ``cols`` likewise for columns. A unit that sees nothing has ``lo > hi``.
    ``image_size`` is the traced input's size, ``input_map`` the spatial size of the map the
    layer read (for atrous tap counts).
    """

    rows: np.ndarray
    cols: np.ndarray
    image_size: tuple[int, int]
    input_map: tuple[int, int] | None = None

    @property
    def feature_size(self) -> tuple[int, int]:
        return len(self.rows), len(self.cols)

    def sizes(self, axis: int) -> np.ndarray:
        spans = self.rows if axis == 0 else self.cols
        return np.maximum(spans[:, 1] - spans[:, 0] + 1, 0).astype(np.int64)

    def size_range(self) -> tuple[tuple[int, int], tuple[int, int]]:
        """((min, max) over rows, (min, max) over columns) of the field size in pixels."""
        return tuple((int(self.sizes(a).min()), int(self.sizes(a).max())) for a in (0, 1))

    def box(self, fy: int, fx: int) -> tuple[int, int, int, int]:
        """``(x0, y0, x1, y1)``, inclusive and unclipped, of unit (``fy``, ``fx``)."""
        return (int(self.cols[fx, 0]), int(self.rows[fy, 0]), int(self.cols[fx, 1]),
                int(self.rows[fy, 1]))

    def unit_at(self, y: int, x: int) -> tuple[int, int]:
        """The unit under image pixel (``y``, ``x``): the pixel itself on a map as large as the
        image (the prediction shown there), else the unit whose field is centred nearest."""
        if self.feature_size == tuple(self.image_size):
            return int(y), int(x)
        return (int(np.argmin(np.abs(self.rows.sum(1) / 2 - y))),
                int(np.argmin(np.abs(self.cols.sum(1) / 2 - x))))


class _PixelTracker(TorchFunctionMode):
    """Carries per-unit spans along with every tensor computed from the input."""

    def __init__(self, source: torch.Tensor, margin: int = MARGIN):
        super().__init__()
        h, w = _spatial(source)
        self.image_size = (h, w)
        self.fields: dict[int, Field] = {id(source): (_Axis.pixels(h, margin),
                                                      _Axis.pixels(w, margin))}
        self._alive: list[torch.Tensor] = [source]
        self.taken_from: dict[int, tuple] = {}    # pooling indices -> (pre-pool field, size)

    def field_of(self, obj, inputs=None) -> PixelFields | None:
        for t in _tensors(obj):
            if id(t) in self.fields and t.dim() >= 3:
                size = _spatial(t)
                spans = []
                for a in (0, 1):
                    lo, hi = self.fields[id(t)][a].take(np.arange(size[a]))
                    if np.isnan(lo).any() or np.isnan(hi).any():
                        raise ReceptiveFieldError(
                            "a field reaches beyond the traced margin; trace a smaller input")
                    spans.append(np.stack([lo, hi], 1))
                source = next((s for s in _tensors(inputs) if s.dim() >= 3), None)
                return PixelFields(spans[0], spans[1], self.image_size,
                                   _spatial(source) if source is not None else None)
        return None

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        inputs = [t for t in _tensors((args, kwargs)) if id(t) in self.fields]
        outputs = _tensors(out)
        if not inputs or not outputs:
            return out
        fields = [self.fields[id(t)] for t in inputs]
        name = getattr(func, "__name__", "")
        indices = _arg(args, kwargs, 1, "indices") if name == "max_unpool2d" else None
        taken = self.taken_from.get(id(indices))
        if taken is not None and taken[1] == _spatial(outputs[0]) and taken[2] == id(args[0]):
            # The very maxima put back where they were taken: an unpooled pixel carries what
            # the pre-pooling pixel at the same place saw. (Which pixel of a window wins
            # depends on the whole window, but that choice has no gradient.)
            field = taken[0]
        else:
            field = _propagate(name, args, kwargs, fields, inputs, outputs[0])
        for t in outputs:
            self.fields[id(t)] = field
            self._alive.append(t)
        if "max_pool" in name and len(outputs) == 2:
            self.taken_from[id(outputs[1])] = (fields[0], _spatial(inputs[0]), id(outputs[0]))
        return out


def pixel_fields(model: nn.Module, layers: Iterable[str], input_size=(512, 512), *,
                 in_channels: int | None = None,
                 skip_missing: bool = False) -> dict[str, PixelFields]:
    """The field of every unit of each layer (dotted module paths; ``""`` = the output), from
    one pass of a meta-device copy of ``model`` on an input of ``input_size``."""
    return receptive_fields(model, layers, input_size, in_channels=in_channels,
                            skip_missing=skip_missing, tracker_type=_PixelTracker)
