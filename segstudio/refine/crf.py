"""Dense CRF refinement (Krähenbühl & Koltun, "Efficient Inference in Fully Connected CRFs with
Gaussian Edge Potentials", NIPS 2011), through pydensecrf2.

Every pixel is linked to every other by two Gaussian kernels (§2, eq. 3): an *appearance*
(bilateral) kernel over position and colour, which pulls pixels of similar colour nearby to the
same label, and a *smoothness* kernel over position only, which removes isolated pixels. Mean-field
inference with high-dimensional (permutohedral lattice) filtering (§3) makes the cost of one
iteration linear in the pixel count.

pydensecrf2 holds the GIL for its whole run, so a GUI must not call these functions on any of
its threads: :class:`segstudio.refine.crf_process.CrfProcess` runs them in a worker process
instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

VOID = 255
_EPS = 1e-8


class CrfError(ValueError):
    """The inputs do not fit a CRF run, or the worker process failed."""


class CrfCancelled(Exception):
    """The job was cancelled before it finished."""


@dataclass(frozen=True)
class CrfParams:
    """Kernel widths and weights of the fully connected CRF (Krähenbühl & Koltun §2, eq. 3).

    ``bilateral_*`` is the appearance kernel: w(1) = ``bilateral_compat``, θα = ``bilateral_sxy``
    (pixels), θβ = ``bilateral_srgb`` (colour levels). ``gaussian_*`` is the smoothness kernel:
    w(2) = ``gaussian_compat``, θγ = ``gaussian_sxy``. DeepLab (Chen et al., ICLR 2015, and the
    TPAMI 2018 version) keeps w(2) = θγ = 3 and cross-validates the appearance kernel; its released
    Pascal VOC settings lie at w(1) ≈ 3–5, θα ≈ 50–121, θβ ≈ 3–5, with 10 mean-field iterations.
    The defaults here keep that smoothness kernel and a w(1) inside that range, with a wider
    colour tolerance (θβ = 13, the value of the original densecrf example) so that photographs
    with noise or JPEG artefacts still snap to their edges, and 5 iterations: mean field has
    nearly converged by then (K&K's own measurements), and interactive use wants half the time.
    """

    iterations: int = 5
    gaussian_sxy: float = 3.0
    gaussian_compat: float = 3.0
    bilateral_sxy: float = 80.0
    bilateral_srgb: float = 13.0
    bilateral_compat: float = 5.0

    @classmethod
    def deeplab(cls) -> CrfParams:
        """DeepLab's Pascal VOC setting: w(1) = 4, θα = 121, θβ = 5, w(2) = θγ = 3, 10
        iterations. Stricter about colour than the defaults: best on clean photographs."""
        return cls(iterations=10, gaussian_sxy=3.0, gaussian_compat=3.0, bilateral_sxy=121.0,
                   bilateral_srgb=5.0, bilateral_compat=4.0)

    def __post_init__(self) -> None:
        if int(self.iterations) != self.iterations or self.iterations < 1:
            raise CrfError(f"CRF iterations must be a whole number ≥ 1, got {self.iterations!r}")
        for name in ("gaussian_sxy", "bilateral_sxy", "bilateral_srgb"):
            value = getattr(self, name)
            if not np.isfinite(value) or value <= 0:
                raise CrfError(f"CRF {name} must be a positive width, got {value!r}")
        for name in ("gaussian_compat", "bilateral_compat"):
            value = getattr(self, name)
            if not np.isfinite(value) or value < 0:
                raise CrfError(f"CRF {name} must be a weight ≥ 0, got {value!r}")


Progress = Callable[[int, int], None]


def check_image(image: np.ndarray) -> np.ndarray:
    """The image as a C-contiguous H×W×3 uint8 array (a grey H×W image is repeated thrice)."""
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise CrfError(f"CRF image must be 8-bit (uint8), got {image.dtype} {image.shape}")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] != 3 or 0 in image.shape:
        raise CrfError(f"CRF image must be H×W×3 RGB, got shape {image.shape}")
    return np.ascontiguousarray(image)


def check_probabilities(image: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """``probs`` as float32 C×H×W matching ``image`` (already checked), or :class:`CrfError`."""
    probs = np.asarray(probs)
    h, w = image.shape[:2]
    if probs.ndim != 3 or probs.shape[1:] != (h, w):
        raise CrfError(f"CRF probabilities have shape {probs.shape} but the image is "
                       f"{image.shape}: expected C×{h}×{w}")
    if probs.shape[0] < 2:
        raise CrfError(f"CRF needs at least 2 classes, probabilities have {probs.shape[0]}")
    if not np.issubdtype(probs.dtype, np.floating):
        raise CrfError(f"CRF probabilities must be floating point, got {probs.dtype}")
    if not np.isfinite(probs).all():
        raise CrfError("CRF probabilities contain NaN or infinite values")
    return probs.astype(np.float32, copy=False)


def check_labels(image: np.ndarray, labels: np.ndarray, num_classes: int) -> np.ndarray:
    """``labels`` as uint8 H×W matching ``image``, all below ``num_classes`` or void (255)."""
    labels = np.asarray(labels)
    h, w = image.shape[:2]
    if labels.ndim != 2 or labels.shape != (h, w):
        raise CrfError(f"CRF label map has shape {labels.shape} but the image is "
                       f"{image.shape}: expected {h}×{w}")
    if labels.dtype != np.uint8:
        raise CrfError(f"CRF label map must be uint8 class indices, got {labels.dtype}")
    if not 2 <= int(num_classes) <= VOID:
        raise CrfError(f"CRF needs between 2 and 255 classes, got num_classes={num_classes!r}")
    known = labels[labels != VOID]
    if known.size and int(known.max()) >= num_classes:
        raise CrfError(f"CRF label map holds class {int(known.max())} but num_classes is "
                       f"{num_classes}")
    return labels


def check_params(params: CrfParams) -> CrfParams:
    if not isinstance(params, CrfParams):
        raise CrfError(f"CRF parameters must be a CrfParams, got {type(params).__name__}")
    return params


def _infer(image: np.ndarray, unary: np.ndarray, params: CrfParams,
           progress: Progress | None) -> np.ndarray:
    """Mean-field inference from a C×N unary energy; returns Q as C×H×W float32."""
    import pydensecrf.densecrf as dcrf

    check_params(params)
    h, w = image.shape[:2]
    classes = unary.shape[0]
    crf = dcrf.DenseCRF2D(w, h, classes)
    crf.setUnaryEnergy(np.ascontiguousarray(unary, dtype=np.float32))
    crf.addPairwiseGaussian(sxy=params.gaussian_sxy, compat=params.gaussian_compat)
    crf.addPairwiseBilateral(sxy=params.bilateral_sxy, srgb=params.bilateral_srgb,
                             rgbim=image, compat=params.bilateral_compat)
    # Stepping one iteration at a time gives the same Q as crf.inference(n) and lets a caller
    # show progress.
    q, scratch1, scratch2 = crf.startInference()
    for step in range(1, params.iterations + 1):
        crf.stepInference(q, scratch1, scratch2)
        if progress is not None:
            progress(step, params.iterations)
    return np.asarray(q, dtype=np.float32).reshape(classes, h, w)


def refine_probabilities(image_rgb8: np.ndarray, probs: np.ndarray,
                         params: CrfParams = CrfParams(), *,
                         progress: Progress | None = None) -> np.ndarray:
    """Refine a network's class probabilities (C×H×W) with a dense CRF over the image.

    The unary is −log p (clipped away from zero). Returns the CRF's marginals, C×H×W float32,
    summing to one over classes; ``progress(done, total)`` is called after each iteration.
    """
    image = check_image(image_rgb8)
    probs = check_probabilities(image, probs)
    unary = -np.log(np.clip(probs.reshape(probs.shape[0], -1), _EPS, None))
    return _infer(image, unary, params, progress)


def refine_labels(image_rgb8: np.ndarray, labels: np.ndarray, num_classes: int,
                  params: CrfParams = CrfParams(), *, confidence: float = 0.7,
                  fill_void: bool = False, progress: Progress | None = None) -> np.ndarray:
    """Snap a hand-made label map to the image's edges with a dense CRF.

    Each labelled pixel believes its class with probability ``confidence`` and spreads the rest
    evenly over the other classes; void (255) pixels start uniform, so only their neighbours
    decide them. Void pixels stay 255 in the result unless ``fill_void`` is set.
    """
    image = check_image(image_rgb8)
    labels = check_labels(image, labels, num_classes)
    if not 1.0 / num_classes < confidence < 1.0:
        raise CrfError(f"CRF confidence must lie between 1/{num_classes} and 1, "
                       f"got {confidence!r}")
    flat = labels.reshape(-1)
    void = flat == VOID
    probs = np.full((num_classes, flat.size), (1.0 - confidence) / (num_classes - 1),
                    dtype=np.float32)
    index = np.flatnonzero(~void)
    probs[flat[index], index] = confidence
    probs[:, void] = 1.0 / num_classes
    q = _infer(image, -np.log(probs), params, progress)
    refined = q.argmax(axis=0).astype(np.uint8)
    if not fill_void:
        refined[labels == VOID] = VOID
    return refined
