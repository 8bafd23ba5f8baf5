"""Which taps of an atrous convolution read the feature map, and which only its zero padding.

DeepLab v3 §3.3 (Fig. 4): as the rate grows towards the feature map's size, fewer of a 3×3
filter's weights fall on the map; when the rate exceeds it, only the centre weight is applied and
the "atrous" convolution is a 1×1 convolution. That is the paper's argument for image-level
pooling. These counts use a convolution's own kernel, dilation, padding and stride.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from torch import nn

__all__ = ["valid_counts", "valid_taps", "valid_tap_map", "atrous_conv", "tap_curve", "TapCurve"]


def valid_counts(n: int, kernel: int, dilation: int, padding: int, stride: int = 1) -> np.ndarray:
    """Per output unit along one axis: how many of the ``kernel`` taps read inside the ``n``
    input units (the others read padding)."""
    n_out = (n + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1
    taps = (np.arange(max(n_out, 0))[:, None] * stride - padding
            + np.arange(kernel)[None, :] * dilation)
    return ((taps >= 0) & (taps < n)).sum(1)


def _geometry(conv: nn.Conv2d, axis: int) -> tuple[int, int, int, int]:
    padding = conv.padding
    if isinstance(padding, str):
        padding = (0, 0) if padding == "valid" else tuple(
            d * (k - 1) // 2 for d, k in zip(conv.dilation, conv.kernel_size))
    return conv.kernel_size[axis], conv.dilation[axis], padding[axis], conv.stride[axis]


def valid_tap_map(conv: nn.Conv2d, map_size) -> np.ndarray:
    """Valid taps of every output unit (an H×W integer map) of ``conv`` on a ``map_size`` input."""
    rows = valid_counts(int(map_size[0]), *_geometry(conv, 0))
    cols = valid_counts(int(map_size[1]), *_geometry(conv, 1))
    return rows[:, None] * cols[None, :]


def valid_taps(conv: nn.Conv2d, map_size, unit) -> int:
    """How many of ``conv``'s k×k taps read inside the map at output unit (row, column)."""
    return int(valid_tap_map(conv, map_size)[int(unit[0]), int(unit[1])])


def atrous_conv(module: nn.Module) -> nn.Conv2d | None:
    """The dilated convolution of a branch (the module itself or its first dilated child)."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d) and max(m.dilation) > 1:
            return m
    return None


@dataclass(frozen=True)
class TapCurve:
    """DeepLab v3's Fig. 4 for one kernel: per rate, over all units of a ``size``×``size`` map,
    the mean fraction of the k×k weights that read the map, and the share of units by how many
    weights do (``shares[n][i]``: units with exactly ``n`` valid weights at ``rates[i]``). The
    paper plots 1, 4 and 9; between a quarter and half of the map most units have 4 (a corner
    2×2 of the 3×3), and near the border 2, 3 or 6 occur too."""

    size: int
    kernel: int
    rates: tuple[int, ...]
    valid_fraction: tuple[float, ...]
    shares: dict[int, tuple[float, ...]]

    @property
    def counts(self) -> tuple[int, ...]:
        """The valid counts that occur at some rate, ascending."""
        return tuple(sorted(self.shares))

    def share(self, count: int) -> tuple[float, ...]:
        """Share of units with exactly ``count`` valid weights, per rate (zeros if it never
        occurs)."""
        return self.shares.get(count, (0.0,) * len(self.rates))

    @property
    def only_centre(self) -> tuple[float, ...]:
        return self.share(1)

    @property
    def all_valid(self) -> tuple[float, ...]:
        return self.share(self.kernel ** 2)

    def to_dict(self) -> dict:
        return {"map_size": self.size, "kernel": self.kernel, "rates": list(self.rates),
                "valid_fraction": [round(v, 4) for v in self.valid_fraction],
                "only_centre": [round(v, 4) for v in self.only_centre],
                "all_valid": [round(v, 4) for v in self.all_valid],
                "valid_count_shares": {str(n): [round(v, 4) for v in self.shares[n]]
                                       for n in self.counts}}


def tap_curve(conv: nn.Conv2d, size: int = 65, rates=None) -> TapCurve:
    """The curve for ``conv``'s kernel with its padding rule (padding per unit of rate), at the
    given rates (default 1 … ``size + 5``), on a ``size``×``size`` feature map at stride 1."""
    kernel = conv.kernel_size[0]
    _, dilation, padding, _ = _geometry(conv, 0)
    pad_per_rate = padding / dilation
    rates = tuple(range(1, size + 6)) if rates is None else tuple(int(r) for r in rates)
    fractions, per_rate = [], []
    for rate in rates:
        per_axis = valid_counts(size, kernel, rate, int(round(pad_per_rate * rate)))
        counts = per_axis[:, None] * per_axis[None, :]
        fractions.append(float(counts.mean()) / kernel ** 2)
        values, numbers = np.unique(counts, return_counts=True)
        per_rate.append({int(v): n / counts.size for v, n in zip(values, numbers)})
    occurring = sorted({n for shares in per_rate for n in shares})
    shares = {n: tuple(float(shares.get(n, 0.0)) for shares in per_rate) for n in occurring}
    return TapCurve(size, kernel, rates, tuple(fractions), shares)
