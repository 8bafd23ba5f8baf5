"""Effective receptive field: which input pixels actually move one output unit.

Luo et al., "Understanding the Effective Receptive Field in Deep Convolutional Neural Networks"
(NIPS 2016, §2): the gradient of one output unit with respect to the input image, averaged over
images. Its magnitude, summed over the input channels, is a heat map that is usually far more
concentrated (roughly Gaussian) than the theoretical field that bounds it.

:func:`prediction_erf` is the field of what the app shows at a pixel: the logit (the score
before the softmax) of the class predicted at that very pixel of the full-resolution output,
averaged over one or more images, measured against the unclipped theoretical field of that pixel
(:mod:`segstudio.explain.pixel_fields`). :func:`effective_rf` differentiates any unit of any
layer, for the branch views.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from segstudio.explain.probes import (
    ProbeError, as_batch, feature_tensor, find_module, main_output)
from segstudio.explain.receptive_field import (
    MODEL_OUTPUT, ReceptiveField, ReceptiveFieldError, box_at, receptive_field, unit_at)

__all__ = ["ERF", "EffectiveFieldError", "effective_rf", "mass_share", "mass_pixels",
           "peak_pixels", "PEAK_FRACTION", "region_share", "PredictionERF", "prediction_erf"]

#: Luo et al. read an effective field against its peak, as a Gaussian: an isotropic Gaussian
#: falls to e⁻² of its peak at 2σ, so the pixels above that hold its 2σ disc, π(2σ)².
PEAK_FRACTION = math.exp(-2)


class EffectiveFieldError(ValueError):
    """The effective field cannot be computed for this unit, target or layer."""


@dataclass(frozen=True)
class ERF:
    """Effective field of one unit.

    ``heat`` is |d unit / d input| summed over channels (H×W float32); ``unit`` is the feature unit
    (row, column) that was differentiated; ``box`` its theoretical field (top, left, bottom, right),
    clipped to the image; ``mass95_share`` the fewest pixels holding 95 % of the gradient mass, as
    a share of the whole, unclipped field's area (1.0 would be a field as wide as theory allows;
    a field larger than the image can never be filled), and ``mass95_in_image_share`` the same
    pixels as a share of the part of the field inside the image.
    """

    heat: np.ndarray
    mass95_share: float
    unit: tuple[int, int]
    box: tuple[int, int, int, int]
    field: ReceptiveField
    mass95_in_image_share: float = 0.0


def mass_pixels(heat: np.ndarray, fraction: float = 0.95) -> int:
    """The fewest pixels of ``heat`` holding ``fraction`` of its total (0 for no gradient)."""
    total = float(heat.sum())
    if total <= 0:
        return 0
    ordered = np.sort(heat, axis=None)[::-1].astype(np.float64)
    needed = int(np.searchsorted(np.cumsum(ordered), fraction * total * (1 - 1e-9))) + 1
    return min(needed, ordered.size)


def peak_pixels(heat: np.ndarray, fraction: float = PEAK_FRACTION) -> int:
    """The pixels of ``heat`` at ``fraction`` of its peak or more (0 for no gradient).

    Unlike the 95 % mass it ignores a faint, diffuse tail however wide: a field with a sharp
    peak counts few pixels by it even when most of its mass lies far out.
    """
    peak = float(np.max(heat)) if np.size(heat) else 0.0
    if peak <= 0:
        return 0
    return int(np.count_nonzero(heat >= fraction * peak))


def region_share(heat: np.ndarray, region: np.ndarray) -> float:
    """The share of ``heat``'s total inside the boolean map ``region`` of the same size."""
    region = np.asarray(region, bool)
    if region.shape != heat.shape:
        raise EffectiveFieldError(f"the region is {region.shape[1]}×{region.shape[0]} but the "
                                  f"field is {heat.shape[1]}×{heat.shape[0]}")
    total = float(np.sum(heat, dtype=np.float64))
    return float(np.sum(heat[region], dtype=np.float64)) / total if total > 0 else 0.0


def mass_share(heat: np.ndarray, area: int, fraction: float = 0.95) -> float:
    """The fewest pixels of ``heat`` holding ``fraction`` of its total, divided by ``area``."""
    if area <= 0:
        return 0.0
    return mass_pixels(heat, fraction) / area


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
    whole = box_at(field, fy, fx)
    area = (whole[2] - whole[0]) * (whole[3] - whole[1])
    inside = (box[2] - box[0]) * (box[3] - box[1])
    return ERF(heat=heat, mass95_share=mass_share(heat, area), unit=(fy, fx), box=box, field=field,
               mass95_in_image_share=mass_share(heat, inside))


@dataclass(frozen=True)
class PredictionERF:
    """Effective field of the prediction at one pixel, averaged over ``images`` images.

    ``heat`` is the mean over images of |d logit / d input| summed over channels, where the logit
    is that of the class each image predicts at ``pixel`` (``classes``). ``center`` is the heat's
    centre of mass (y, x); ``box`` the pixel's theoretical field ``(x0, y0, x1, y1)``, inclusive
    and unclipped; ``theoretical_px`` its area and ``inside_image_px`` the part inside the image;
    ``peak_px`` the pixels at e⁻² of the heat's peak or more (:func:`peak_pixels`).
    """

    heat: np.ndarray
    pixel: tuple[int, int]
    classes: tuple[int, ...]
    center: tuple[float, float]
    mass95_px: int
    box: tuple[int, int, int, int]
    theoretical_px: int
    inside_image_px: int
    peak_px: int = 0

    @property
    def images(self) -> int:
        return len(self.classes)

    @property
    def offset(self) -> tuple[float, float]:
        """Centre of mass minus the clicked pixel (dy, dx)."""
        return self.center[0] - self.pixel[0], self.center[1] - self.pixel[1]

    @property
    def mass95_share(self) -> float:
        """Pixels holding 95 % of the gradient, as a share of the unclipped field (mostly padding
        when the field is larger than the image: it can never approach 1 there)."""
        return self.mass95_px / self.theoretical_px if self.theoretical_px else 0.0

    @property
    def mass95_in_image_share(self) -> float:
        """Pixels holding 95 % of the gradient, as a share of the part of the field inside the
        image: the pixels the prediction could use at all."""
        return self.mass95_px / self.inside_image_px if self.inside_image_px else 0.0

    def shares_text(self) -> str:
        """Both shares in words, the one inside the image first."""
        x0, y0, x1, y1 = self.box
        return (f"{self.mass95_in_image_share:.1%} of the {self.inside_image_px} px of the "
                f"field inside the image ({self.mass95_share:.1%} of the whole "
                f"{x1 - x0 + 1}×{y1 - y0 + 1} px theoretical field, padding included)")

    @property
    def inside_share(self) -> float:
        """The share of the unclipped field that lies inside the image."""
        return self.inside_image_px / self.theoretical_px if self.theoretical_px else 0.0

    def region_share(self, region: np.ndarray) -> float:
        """The share of the gradient mass that falls inside ``region`` (a boolean H×W map):
        how much of what moves the prediction comes from there (0 for no gradient at all)."""
        return region_share(self.heat, region)

    def to_dict(self) -> dict:
        (cy, cx), (dy, dx) = self.center, self.offset
        return {"pixel": [self.pixel[1], self.pixel[0]], "images": self.images,
                "classes": list(self.classes), "center": [round(cx, 2), round(cy, 2)],
                "offset": [round(dx, 2), round(dy, 2)], "mass95_px": self.mass95_px,
                "theoretical_px": self.theoretical_px, "inside_image_px": self.inside_image_px,
                "box": list(self.box), "mass95_share": round(self.mass95_share, 4),
                "mass95_in_image_share": round(self.mass95_in_image_share, 4),
                "inside_share": round(self.inside_share, 4), "peak_px": self.peak_px}


def prediction_erf(model: nn.Module, images, y: int, x: int, *, field=None,
                   cancelled=lambda: False) -> PredictionERF:
    """Effective field of the prediction at pixel (``y``, ``x``) over ``images`` (C×H×W tensors
    of one size, or an N×C×H×W batch): per image, the gradient of the predicted class's logit at
    that pixel of the full-resolution output; the magnitudes are averaged (Luo et al. average
    over inputs). ``field`` is the output's :class:`PixelFields` if already traced."""
    from segstudio.explain.pixel_fields import pixel_fields

    batch = [as_batch(im) for im in (images if isinstance(images, (list, tuple)) else [images])]
    batch = [b[i:i + 1] for b in batch for i in range(b.shape[0])]
    if not batch:
        raise EffectiveFieldError("no image to average over")
    size = tuple(batch[0].shape[-2:])
    if any(tuple(b.shape[-2:]) != size for b in batch):
        raise EffectiveFieldError("the images differ in size; an average needs one size (got "
                                  + ", ".join(sorted({f"{b.shape[-1]}×{b.shape[-2]}"
                                                      for b in batch})) + ")")
    h, w = size
    if not (0 <= y < h and 0 <= x < w):
        raise EffectiveFieldError(f"pixel x {x}, y {y} is outside the {w}×{h} image")
    if field is None:
        try:
            field = pixel_fields(model, [MODEL_OUTPUT], size,
                                 in_channels=int(batch[0].shape[1]))[MODEL_OUTPUT]
        except ReceptiveFieldError as exc:
            raise EffectiveFieldError(str(exc)) from None
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    heat = np.zeros((h, w), np.float64)
    classes = []
    was_training = model.training
    model.eval()
    try:
        for image in batch:
            if cancelled():
                break
            pixels = image.detach().to(device=device, dtype=torch.float32).requires_grad_(True)
            with torch.enable_grad():
                try:
                    logits = main_output(model(pixels))
                except ProbeError as exc:
                    raise EffectiveFieldError(str(exc)) from None
                if tuple(logits.shape[-2:]) != size:
                    raise EffectiveFieldError(
                        f"the output is {logits.shape[-1]}×{logits.shape[-2]}, not the image's "
                        f"{w}×{h}: no pixel-aligned prediction to differentiate")
                cls = int(logits[0, :, y, x].argmax())
                (grad,) = torch.autograd.grad(logits[0, cls, y, x], pixels)
            heat += grad[0].abs().sum(0).double().cpu().numpy()
            classes.append(cls)
    finally:
        model.train(was_training)
    if not classes:
        raise EffectiveFieldError("cancelled")
    heat /= len(classes)
    total = heat.sum()
    if total > 0:
        ys, xs = np.indices(heat.shape)
        center = (float((ys * heat).sum() / total), float((xs * heat).sum() / total))
    else:
        center = (float(y), float(x))
    fy, fx = field.unit_at(y, x)
    box = field.box(fy, fx)
    x0, y0, x1, y1 = box
    inside = max(0, min(x1, w - 1) - max(x0, 0) + 1) * max(0, min(y1, h - 1) - max(y0, 0) + 1)
    return PredictionERF(heat=heat.astype(np.float32), pixel=(int(y), int(x)),
                         classes=tuple(classes), center=center, mass95_px=mass_pixels(heat),
                         box=box, theoretical_px=(x1 - x0 + 1) * (y1 - y0 + 1),
                         inside_image_px=inside, peak_px=peak_pixels(heat))
