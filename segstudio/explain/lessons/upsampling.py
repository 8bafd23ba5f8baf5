"""Upsampling lab: FCN's learned transposed convolutions, their checkerboard, SegNet's indices.

FCN initialises each upsampling layer to bilinear interpolation and lets training change it
(Long et al. §3.3); a transposed convolution whose kernel is not a smooth interpolant leaves a
pattern of period ``stride`` in its output (the checkerboard), which shows in the logits'
spectrum on the lattice of frequencies k/stride. SegNet learns nothing in its upsampling: each
unpooling puts a value back where its max-pool found the maximum (Badrinarayanan et al. §3).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from segstudio.explain.lessons.common import LessonError, Loaded, heldout, load_bundled, logits
from segstudio.models.fcn import bilinear_kernel

UPSAMPLERS = ("upscore2", "upscore_pool4", "upscore")


@dataclass
class KernelView:
    """One upsampling layer: its learned ``(C, C, K, K)`` weight and the bilinear start."""

    layer: str
    stride: int
    learned: np.ndarray
    bilinear: np.ndarray

    @property
    def change(self) -> float:
        """‖learned − bilinear‖ / ‖bilinear‖: how far training moved the kernel."""
        return float(np.linalg.norm(self.learned - self.bilinear) / np.linalg.norm(self.bilinear))

    @property
    def cross_share(self) -> float:
        """Share of the kernel's squared weight that mixes classes (off the diagonal c → c);
        zero for the bilinear start, which upsamples each class on its own."""
        c = self.learned.shape[0]
        diag = self.learned[np.arange(c), np.arange(c)]
        total = float((self.learned ** 2).sum())
        return float(1.0 - (diag ** 2).sum() / total) if total > 0 else 0.0


def upsampling_kernels(model: nn.Module) -> list[KernelView]:
    """Every transposed-convolution upsampler of an FCN, coarsest first."""
    views = []
    for name in UPSAMPLERS:
        layer = getattr(model, name, None)
        if isinstance(layer, nn.ConvTranspose2d):
            w = layer.weight.detach().float().cpu().numpy().copy()
            views.append(KernelView(name, int(layer.stride[0]), w,
                                    bilinear_kernel(w.shape[0], w.shape[-1]).numpy()))
    if not views:
        raise LessonError("this network has no transposed-convolution upsampling (not an FCN)")
    return views


def bilinear_variant(model: nn.Module) -> nn.Module:
    """A copy of an FCN whose upsamplers are put back to their bilinear start; the rest of the
    network keeps its trained weights."""
    twin = copy.deepcopy(model)
    for view in upsampling_kernels(twin):
        layer = getattr(twin, view.layer)
        with torch.no_grad():
            layer.weight.copy_(torch.from_numpy(view.bilinear))
    return twin.eval()


def stride_lattice_share(maps: np.ndarray, stride: int) -> float:
    """Share of the spectral power of ``maps`` (H×W or C×H×W, each map's mean removed) at the
    frequencies (ky/stride, kx/stride), (ky, kx) ≠ (0, 0): where any pattern repeating every
    ``stride`` pixels puts all its power. Maps are cropped to a multiple of ``stride``."""
    maps = np.asarray(maps, dtype=np.float64)
    if maps.ndim == 2:
        maps = maps[None]
    if maps.ndim != 3 or stride < 2:
        raise LessonError("the lattice share needs H×W or C×H×W maps and a stride of at least 2")
    h, w = (maps.shape[1] // stride) * stride, (maps.shape[2] // stride) * stride
    if h == 0 or w == 0:
        raise LessonError(f"maps of {maps.shape[1]}×{maps.shape[2]} are smaller than the stride")
    m = maps[:, :h, :w]
    m = m - m.mean(axis=(1, 2), keepdims=True)
    power = np.abs(np.fft.fft2(m)) ** 2
    total = power.sum()
    if total <= 0:
        return 0.0
    on = (np.arange(h) % (h // stride) == 0)[:, None] & (np.arange(w) % (w // stride) == 0)[None]
    on[0, 0] = False
    return float(power[:, on].sum() / total)


def log_spectrum(values: np.ndarray, stride: int) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """log10 of the power spectrum of one map (its mean removed), zero frequency at the centre,
    and the (row, column) of every stride-lattice frequency in that picture, for drawing."""
    v = np.asarray(values, np.float64)
    h, w = (v.shape[0] // stride) * stride, (v.shape[1] // stride) * stride
    v = v[:h, :w] - v[:h, :w].mean()
    power = np.fft.fftshift(np.abs(np.fft.fft2(v)) ** 2)
    spectrum = np.log10(power + power.max() * 1e-12 + 1e-30)
    points = [((h // 2 + i * h // stride) % h, (w // 2 + j * w // stride) % w)
              for i in range(stride) for j in range(stride) if (i, j) != (0, 0)]
    return spectrum, points


@dataclass
class Checkerboard:
    """The stride-lattice share of the logits, mean over ``images`` held-out scenes, for the
    learned upsamplers, the bilinear variant and (for scale) the one-hot ground truth."""

    stride: int
    images: int
    learned: float
    bilinear: float
    ground_truth: float
    example_learned: np.ndarray      # first scene: one class's logits, learned
    example_bilinear: np.ndarray     # the same, bilinear variant
    example_rgb: np.ndarray


def checkerboard(net: Loaded, kind: str, n: int = 8, *, cls: int = 1) -> Checkerboard:
    """Measure the checkerboard of an FCN's output logits on ``n`` held-out scenes."""
    stride = int(getattr(net.model, "stride", 0))
    if stride < 2:
        raise LessonError(f"{net.name} is not an FCN with an output stride")
    twin = bilinear_variant(net.model)
    scores = []
    first = None
    for sample in heldout(kind, n):
        a, b = logits(net, sample.image), logits(net, sample.image, twin)
        onehot = np.stack([(sample.labels == c).astype(np.float64) for c in range(a.shape[0])])
        scores.append((stride_lattice_share(a, stride), stride_lattice_share(b, stride),
                       stride_lattice_share(onehot, stride)))
        if first is None:
            first = (a[cls], b[cls], sample.image)
    mean = np.mean(scores, axis=0)
    return Checkerboard(stride, n, float(mean[0]), float(mean[1]), float(mean[2]), *first)


@dataclass
class PoolIndices:
    """What SegNet's first max-pool remembered on one picture."""

    pool_input: np.ndarray        # C×H×W, what the pool saw
    indices: np.ndarray           # C×H/2×W/2, flat argmax positions in the input map (int64)
    winners: np.ndarray           # C×H/2×W/2, which cell of the 2×2 won: 0 ↖, 1 ↗, 2 ↙, 3 ↘
    shares: tuple[float, ...]     # share of each position over all channels and cells
    tied: float                   # share of cells whose maximum is not unique (a zero ReLU
                                  # output everywhere in the cell): the first position wins those
    untied_shares: tuple[float, ...]   # each position's share among the other cells
    rgb: np.ndarray


def winning_position(indices: np.ndarray, width: int) -> np.ndarray:
    """Which cell of its 2×2 window each flat index points to: 2·(row odd) + (column odd)."""
    indices = np.asarray(indices, dtype=np.int64)
    return (2 * ((indices // width) % 2) + (indices % width) % 2).astype(np.uint8)


def segnet_indices(net: Loaded, rgb: np.ndarray, pool: int = 0) -> PoolIndices:
    """Capture SegNet's ``pool``-th MaxPool (input and indices) with a forward hook."""
    from segstudio.explain.lessons.common import to_input

    encoder = getattr(net.model, "encoder", None)
    if encoder is None or not getattr(encoder, "return_indices", False):
        raise LessonError(f"{net.name} has no max-pool indices (not a SegNet)")
    layer = encoder.features[encoder.pool_positions[pool]]
    seen = {}

    def hook(_module, inputs, output):
        seen["input"] = inputs[0].detach().clone()
        seen["indices"] = output[1].detach().clone()

    handle = layer.register_forward_hook(hook)
    try:
        with torch.no_grad():
            net.model(to_input(net, rgb))
    finally:
        handle.remove()
    pool_in = seen["input"][0].numpy()
    idx = seen["indices"][0].numpy()
    win = winning_position(idx, pool_in.shape[-1])
    counts = np.bincount(win.ravel(), minlength=4)
    ties = tied_cells(pool_in)[:, :win.shape[1], :win.shape[2]]
    untied = np.bincount(win[~ties], minlength=4)
    return PoolIndices(pool_in, idx, win, tuple(float(c) / win.size for c in counts),
                       float(ties.mean()),
                       tuple(float(c) / max(1, untied.sum()) for c in untied), rgb)


def tied_cells(pool_input: np.ndarray) -> np.ndarray:
    """C×H/2×W/2: whether each 2×2 cell's maximum occurs more than once in the cell."""
    c, h, w = pool_input.shape
    cells = pool_input[:, :h - h % 2, :w - w % 2].reshape(c, h // 2, 2, w // 2, 2)
    cells = cells.transpose(0, 1, 3, 2, 4).reshape(c, h // 2, w // 2, 4)
    return (cells == cells.max(-1, keepdims=True)).sum(-1) > 1


def tied_share(pool_input: np.ndarray) -> float:
    """Share of the 2×2 cells of ``pool_input`` (C×H×W) whose maximum occurs more than once."""
    return float(tied_cells(pool_input).mean())


def recomputed_indices(pool_input: np.ndarray) -> np.ndarray:
    """The 2×2 max-pool indices of ``pool_input`` (C×H×W) computed afresh, for checking."""
    _, idx = F.max_pool2d(torch.from_numpy(pool_input)[None], 2, 2, return_indices=True)
    return idx[0].numpy()


@dataclass
class UpsamplingLab:
    kind: str
    fcn_name: str
    kernels: list[KernelView]
    board: Checkerboard
    segnet_name: str
    pools: PoolIndices


def run_upsampling_lab(kind: str = "chest", arch: str = "fcn8s", n: int = 8) -> UpsamplingLab:
    """The whole lab: the FCN's kernels, its checkerboard on ``n`` scenes, SegNet's indices on
    the first scene."""
    fcn = load_bundled(kind, arch)
    kernels = upsampling_kernels(fcn.model)
    board = checkerboard(fcn, kind, n)
    segnet = load_bundled(kind, "segnet")
    pools = segnet_indices(segnet, heldout(kind, 1)[0].image)
    return UpsamplingLab(kind, fcn.name, kernels, board, segnet.name, pools)
