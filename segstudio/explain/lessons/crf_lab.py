"""CRF lab: DeepLab v1 and v2 before and after the fully connected CRF, at the boundary.

DeepLab's score maps are smooth (a stride-8 network, bilinearly upsampled); the dense CRF
(Krähenbühl & Koltun 2011) pulls each pixel towards the label of pixels of similar colour
nearby (appearance kernel, widths θα in pixels and θβ in colour levels) and smooths away
isolated ones (smoothness kernel, width θγ). DeepLab's own measurement (Chen et al. 2015 §4.1,
Fig. 5) is the gain within a narrow band of the true edges, which this lab repeats.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from segstudio.explain.lessons.boundary import BANDS, full_miou, trimap_miou
from segstudio.explain.lessons.common import heldout, load_bundled, logits
from segstudio.refine.crf import CrfParams, refine_probabilities

DEEPLABS = ("deeplabv1", "deeplabv2")
# A function (rgb, probabilities C×H×W, params) → refined probabilities; the GUI passes one that
# runs the CRF in its worker process.
Refine = Callable[[np.ndarray, np.ndarray, CrfParams], np.ndarray]


def softmax(logit: np.ndarray) -> np.ndarray:
    """Class probabilities C×H×W of C×H×W logits (float32)."""
    z = logit - logit.max(axis=0, keepdims=True)
    e = np.exp(z, dtype=np.float64)
    return (e / e.sum(axis=0, keepdims=True)).astype(np.float32)


@dataclass
class CrfResult:
    """One network without and with the CRF on the lab's scenes."""

    arch: str
    miou_before: float
    miou_after: float
    trimap_before: dict[int, float]
    trimap_after: dict[int, float]
    example_before: np.ndarray
    example_after: np.ndarray


@dataclass
class CrfLab:
    kind: str
    images: int
    params: CrfParams
    class_names: tuple[str, ...]
    example_rgb: np.ndarray
    example_gt: np.ndarray
    results: list[CrfResult] = field(default_factory=list)


def _direct(rgb: np.ndarray, probs: np.ndarray, params: CrfParams) -> np.ndarray:
    return refine_probabilities(rgb, probs, params)


def run_crf_lab(kind: str = "chest", n: int = 8, params: CrfParams = CrfParams(), *,
                refine: Refine = _direct, bands=BANDS,
                progress: Callable[[int, int], None] | None = None,
                cancelled: Callable[[], bool] | None = None) -> CrfLab:
    """DeepLab v1 and v2 on the first ``n`` held-out scenes of ``kind``, each prediction also
    refined by ``refine`` (the dense CRF with ``params``)."""
    samples = heldout(kind, n)
    first = samples[0]
    lab = CrfLab(kind, n, params, (), first.image, first.labels)
    total, done = len(DEEPLABS) * n, 0
    for arch in DEEPLABS:
        net = load_bundled(kind, arch)
        lab.class_names = net.class_names
        before, after = [], []
        for sample in samples:
            if cancelled is not None and cancelled():
                return lab
            probs = softmax(logits(net, sample.image))
            before.append(probs.argmax(0).astype(np.uint8))
            after.append(refine(sample.image, probs, params).argmax(0).astype(np.uint8))
            done += 1
            if progress is not None:
                progress(done, total)
        k = len(net.class_names)
        pb = [(s.labels, p) for s, p in zip(samples, before)]
        pa = [(s.labels, p) for s, p in zip(samples, after)]
        lab.results.append(CrfResult(arch, full_miou(pb, k), full_miou(pa, k),
                                     trimap_miou(pb, k, bands), trimap_miou(pa, k, bands),
                                     before[0], after[0]))
    return lab
