"""Skips lab: FCN-32s, 16s and 8s on the same scenes, and the skip branches zeroed live.

Each skip adds class scores predicted from a finer pool (pool4, then pool3) to the upsampled
coarse scores (Long et al. §4.2). What it buys is boundary: the band within a few pixels of the
true edges, measured by :mod:`segstudio.explain.lessons.boundary`. Zeroing a trained net's skip
branch (:func:`segstudio.explain.probes.ablate`) shows how much of its answer that branch holds.
"""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from segstudio.explain.lessons.boundary import BANDS, full_miou, trimap_miou
from segstudio.explain.lessons.common import Loaded, heldout, load_bundled, logits
from segstudio.explain.probes import ablate

FCNS = ("fcn32s", "fcn16s", "fcn8s")
# (network, skip branches zeroed): the live ablations of the lab.
ABLATIONS = (("fcn16s", ("score_pool4",)), ("fcn8s", ("score_pool3",)),
             ("fcn8s", ("score_pool4", "score_pool3")))


@dataclass
class Variant:
    """One network, or one network with skip branches zeroed, on the lab's scenes."""

    label: str
    arch: str
    zeroed: tuple[str, ...]
    miou: float                          # whole image, 0..1
    trimap: dict[int, float]             # band width → mean IoU in the band, 0..1
    example: np.ndarray                  # labels predicted on the first scene


@dataclass
class SkipsLab:
    kind: str
    images: int
    class_names: tuple[str, ...]
    example_rgb: np.ndarray
    example_gt: np.ndarray
    variants: list[Variant] = field(default_factory=list)

    def variant(self, label: str) -> Variant:
        return next(v for v in self.variants if v.label == label)


def predict_all(net: Loaded, samples, zeroed: tuple[str, ...] = ()) -> list[np.ndarray]:
    """Arg-max labels of ``net`` on each sample, with the ``zeroed`` modules outputting zeros."""
    with ExitStack() as stack:
        for path in zeroed:
            stack.enter_context(ablate(net.model, path))
        return [logits(net, s.image).argmax(0).astype(np.uint8) for s in samples]


def measure(net: Loaded, samples, zeroed: tuple[str, ...] = (), bands=BANDS,
            label: str | None = None) -> Variant:
    preds = predict_all(net, samples, zeroed)
    pairs = [(s.labels, p) for s, p in zip(samples, preds)]
    n = len(net.class_names)
    name = label or (net.arch if not zeroed else f"{net.arch} − " + " − ".join(zeroed))
    return Variant(name, net.arch, tuple(zeroed), full_miou(pairs, n),
                   trimap_miou(pairs, n, bands), preds[0])


def run_skips_lab(kind: str = "chest", n: int = 8, *, bands=BANDS,
                  progress: Callable[[int, int], None] | None = None,
                  cancelled: Callable[[], bool] | None = None) -> SkipsLab:
    """FCN-32s/16s/8s and the skip ablations on the first ``n`` held-out scenes of ``kind``."""
    samples = heldout(kind, n)
    nets = {arch: load_bundled(kind, arch) for arch in FCNS}
    lab = SkipsLab(kind, n, nets["fcn8s"].class_names, samples[0].image, samples[0].labels)
    steps = [(arch, ()) for arch in FCNS] + list(ABLATIONS)
    for i, (arch, zeroed) in enumerate(steps):
        if cancelled is not None and cancelled():
            break
        lab.variants.append(measure(nets[arch], samples, zeroed, bands))
        if progress is not None:
            progress(i + 1, len(steps))
    return lab
