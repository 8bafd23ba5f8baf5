"""Effective receptive field: which input pixels actually move one output unit.

Luo et al., "Understanding the Effective Receptive Field in Deep Convolutional Neural Networks"
(NIPS 2016, §2): the gradient of one output unit with respect to the input image. Its magnitude,
summed over the input channels, is a heat map that is usually far more concentrated (roughly
Gaussian) than the theoretical field that bounds it; ``mass95_share`` measures by how much.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from segstudio.explain.probes import (
    ProbeError, as_batch, feature_tensor, find_module, main_output)
from segstudio.explain.receptive_field import (
    MODEL_OUTPUT, ReceptiveField, ReceptiveFieldError, box_at, receptive_field, unit_at)

__all__ = ["ERF", "EffectiveFieldError", "effective_rf", "mass_share"]


class EffectiveFieldError(ValueError):
    """The effective field cannot be computed for this unit, target or layer."""


@dataclass(frozen=True)
class ERF:
    """Effective field of one unit.

    ``heat`` is |d unit / d input| summed over channels (H×W float32); ``unit`` is the feature unit
    (row, column) that was differentiated; ``box`` its theoretical field (top, left, bottom, right),
    clipped to the image; ``mass95_share`` the fewest pixels holding 95 % of the gradient mass, as
    a share of the box area (1.0 would be a field as wide as theory allows).
    """

    heat: np.ndarray
    mass95_share: float
    unit: tuple[int, int]
    box: tuple[int, int, int, int]
    field: ReceptiveField


def mass_share(heat: np.ndarray, area: int, fraction: float = 0.95) -> float:
    """The fewest pixels of ``heat`` holding ``fraction`` of its total, divided by ``area``."""
    total = float(heat.sum())
    if total <= 0 or area <= 0:
        return 0.0
    ordered = np.sort(heat, axis=None)[::-1].astype(np.float64)
    needed = int(np.searchsorted(np.cumsum(ordered), fraction * total * (1 - 1e-9))) + 1
    return min(needed, ordered.size) / area


def effective_rf(model: nn.Module, image: torch.Tensor, y: int, x: int, *,
                 target: str | int = "sum", output: str = "out") -> ERF:
    """Effective receptive field of the unit under image pixel (``y``, ``x``).

    ``output="out"`` differentiates the model's logits; a dotted module path differentiates that
    layer's feature map, at the unit whose field is centred nearest to the pixel. ``target`` is
    ``"sum"`` (all channels of the unit) or one channel (a class index for the logits). Works the
    same on trained and random-weight models; parameters receive no gradient.
    """
    batch = as_batch(image)
    if batch.shape[0] != 1:
        raise EffectiveFieldError(f"expected one image, got a batch of {batch.shape[0]}")
    h, w = int(batch.shape[-2]), int(batch.shape[-1])
    if not (0 <= y < h and 0 <= x < w):
        raise EffectiveFieldError(f"pixel ({y}, {x}) is outside the {h}×{w} image")
    layer = MODEL_OUTPUT if output == "out" else output
    try:
        module = None if layer == MODEL_OUTPUT else find_module(model, layer)
        field = receptive_field(model, layer, (h, w), in_channels=int(batch.shape[1]))
    except (ProbeError, ReceptiveFieldError) as exc:
        raise EffectiveFieldError(str(exc)) from None

    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    pixels = batch.detach().to(device=device, dtype=torch.float32).clone().requires_grad_(True)
    captured = {}
    handle = None
    if module is not None:
        def keep(_m, _i, out):
            captured["features"] = feature_tensor(out)
        handle = module.register_forward_hook(keep)
    was_training = model.training
    model.eval()
    try:
        with torch.enable_grad():
            out = model(pixels)
            try:
                features = captured["features"] if module is not None else main_output(out)
            except ProbeError as exc:
                raise EffectiveFieldError(str(exc)) from None
            if features.dim() != 4:
                raise EffectiveFieldError(f"'{output}' has no spatial map "
                                          f"(shape {tuple(features.shape)})")
            fh, fw = int(features.shape[-2]), int(features.shape[-1])
            fy, fx = unit_at(field, y, x, feature_size=(fh, fw))
            if target == "sum":
                value = features[0, :, fy, fx].sum()
            elif isinstance(target, int) and not isinstance(target, bool):
                if not 0 <= target < features.shape[1]:
                    raise EffectiveFieldError(f"channel {target} is out of range: '{output}' has "
                                              f"{features.shape[1]} channels")
                value = features[0, target, fy, fx]
            else:
                raise EffectiveFieldError(f"unknown target {target!r}: use 'sum' or a channel "
                                          "index")
            (grad,) = torch.autograd.grad(value, pixels)
    finally:
        if handle is not None:
            handle.remove()
        model.train(was_training)
    heat = grad[0].abs().sum(0).detach().cpu().numpy().astype(np.float32)
    box = box_at(field, fy, fx, image_size=(h, w))
    area = (box[2] - box[0]) * (box[3] - box[1])
    return ERF(heat=heat, mass95_share=mass_share(heat, area), unit=(fy, fx), box=box, field=field)
