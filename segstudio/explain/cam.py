"""Grad-CAM for segmentation: where a layer's features argue for one class.

Selvaraju et al., "Grad-CAM" (ICCV 2017, §3), with the segmentation target of Vinogradova et
al. (AAAI 2020): the class score is the class logit summed over a region (the pixels predicted as
that class, or the whole image). Each feature channel is weighted by the spatial mean of the
score's gradient, the weighted sum is rectified, resized to the image and scaled to 0..1.
The layer is read through :mod:`segstudio.explain.taps`, so TorchScript networks have a
Grad-CAM too.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from segstudio.explain.probes import ProbeError, as_batch, main_output
from segstudio.explain.taps import tapped_forward

__all__ = ["CamError", "grad_cam"]


class CamError(ValueError):
    """Grad-CAM cannot be computed for this layer, class or region."""


def _region_mask(region, logits: torch.Tensor, class_index: int) -> torch.Tensor:
    """The pixels whose logits make up the class score, as a float mask the size of the logits."""
    h, w = logits.shape[-2:]
    if isinstance(region, str):
        if region == "image":
            return torch.ones(h, w, device=logits.device)
        if region == "predicted":
            mask = (logits[0].argmax(0) == class_index).float()
            # A class predicted nowhere still has a score over the image worth explaining.
            return mask if mask.any() else torch.ones_like(mask)
        raise CamError(f"unknown region {region!r}: use 'predicted', 'image' or a mask")
    mask = torch.as_tensor(np.asarray(region), device=logits.device).float()
    if mask.dim() != 2:
        raise CamError(f"a region mask must be H×W, got shape {tuple(mask.shape)}")
    if tuple(mask.shape) != (h, w):
        mask = F.interpolate(mask[None, None], size=(h, w), mode="nearest")[0, 0]
    if not mask.any():
        raise CamError("the region mask is empty")
    return mask


def grad_cam(model: nn.Module, image: torch.Tensor, layer: str, class_index: int, *,
             region="predicted") -> np.ndarray:
    """Grad-CAM heat map (H×W float32, 0..1, image size) of ``class_index`` at ``layer``.

    ``region`` is ``"predicted"`` (pixels predicted as the class; the whole image if there are
    none), ``"image"``, or an H×W boolean mask. All zeros when no channel of the layer supports
    the class.
    """
    batch = as_batch(image)
    if batch.shape[0] != 1:
        raise CamError(f"expected one image, got a batch of {batch.shape[0]}")
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    was_training = model.training
    model.eval()
    try:
        with torch.enable_grad():
            # The input takes part in the graph, so the layer's features carry a gradient
            # even when every weight is frozen.
            x = batch.to(device=device, dtype=torch.float32).requires_grad_(True)
            try:
                out, found = tapped_forward(model, {"layer": layer}, x, keep_grad=True)
                logits = main_output(out)
            except ProbeError as exc:
                message = str(exc)
                if "did not run" in message and "(" + layer + ")" in message:
                    message = f"layer '{layer}' did not run during the forward pass"
                raise CamError(message) from None
            features = found["layer"]
            if features.dim() != 4:
                raise CamError(f"layer '{layer}' has no spatial map (shape "
                               f"{tuple(features.shape)})")
            if not 0 <= class_index < logits.shape[1]:
                raise CamError(f"class {class_index} is out of range: the model predicts "
                               f"{logits.shape[1]} classes")
            mask = _region_mask(region, logits.detach(), class_index)
            score = (logits[0, class_index] * mask).sum()
            (grads,) = torch.autograd.grad(score, features)
    finally:
        model.train(was_training)
    weights = grads[0].mean(dim=(1, 2))
    cam = F.relu((weights[:, None, None] * features[0].detach()).sum(0))
    cam = F.interpolate(cam[None, None], size=tuple(batch.shape[-2:]), mode="bilinear",
                        align_corners=False)[0, 0].clamp_(min=0)
    peak = float(cam.max())
    if peak > 0:
        cam = cam / peak
    return cam.cpu().numpy().astype(np.float32)
