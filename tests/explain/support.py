"""The exact answer the field tracers are held against: the support of the input gradient of a
network whose weights are all positive (so no path can cancel another) and whose max-pools are
average pools of the same geometry (so every pixel of a window counts, not just the largest)."""

import copy

import numpy as np
import torch
from torch import nn


def positive_copy(model: nn.Module) -> nn.Module:
    """``model`` with positive weights, zero biases, identity batch norm and average pools."""
    model = copy.deepcopy(model).double().eval()
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.MaxPool2d) and not child.return_indices:
                assert child.dilation in (1, (1, 1))
                setattr(parent, name, nn.AvgPool2d(child.kernel_size, child.stride,
                                                   child.padding, child.ceil_mode))
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                m.weight.fill_(1.0 / m.weight[0].numel())
                if m.bias is not None:
                    m.bias.zero_()
            elif isinstance(m, nn.BatchNorm2d):
                m.reset_parameters()
                m.reset_running_stats()
    return model


def support_grad(model: nn.Module, size, y: int, x: int, layer: str = "") -> np.ndarray:
    """|d unit (y, x) / d input| summed over channels, for an all-ones input of ``size``; the
    unit is of the model's output, or of module ``layer`` (read with a forward hook)."""
    seen = {}
    handle = model.get_submodule(layer).register_forward_hook(
        lambda _m, _i, out: seen.setdefault("out", out)) if layer else None
    image = torch.ones(1, 3, *size, dtype=torch.float64, requires_grad=True)
    try:
        out = model(image)
    finally:
        if handle is not None:
            handle.remove()
    out = seen["out"] if layer else (out["out"] if isinstance(out, dict) else out)
    (grad,) = torch.autograd.grad(out[0, :, y, x].sum(), image)
    return grad[0].abs().sum(0).numpy()


def support_extent(model, size, y, x, axis, layer: str = ""):
    """First and last input row (axis 0) or column (axis 1) whose gradient at unit (y, x) is
    not zero."""
    hit = np.flatnonzero((support_grad(model, size, y, x, layer) > 0).any(axis=1 - axis))
    return int(hit[0]), int(hit[-1])
