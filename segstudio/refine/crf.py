"""Dense CRF refinement (Krähenbühl & Koltun, "Efficient Inference in Fully Connected CRFs with
Gaussian Edge Potentials", NIPS 2011), through pydensecrf2.

Every pixel is linked to every other by two Gaussian kernels (§2, eq. 3): an *appearance*
(bilateral) kernel over position and colour, which pulls pixels of similar colour nearby to the
same label, and a *smoothness* kernel over position only, which removes isolated pixels. Mean-field
inference with high-dimensional (permutohedral lattice) filtering (§3) makes the cost of one
iteration linear in the pixel count.

pydensecrf2 holds the GIL for its whole run, so a GUI must not call these functions on any of
its threads: :class:`CrfProcess` runs them in a worker process instead.
"""

from __future__ import annotations

import threading
import time
import weakref
from dataclasses import dataclass
from typing import Callable

import numpy as np

from segstudio.refine import crf_worker

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


class CrfProcess:
    """Runs one CRF job at a time in a worker process, so the caller's threads keep running.

    The worker is started with the ``spawn`` method (safe beside Qt's threads) on first use, or
    ahead of time by :meth:`start`, and serves jobs until closed. Arrays travel through shared
    memory, so :meth:`submit` and :meth:`poll` return at once whatever the image size. A submit
    while a job runs abandons that job. :meth:`cancel` kills the worker (pydensecrf2 cannot be
    interrupted); the next submit starts a fresh one.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._worker: crf_worker.Worker | None = None
        self._job: crf_worker.Job | None = None
        self._pool = crf_worker.BlockPool()
        self._next_id = 0
        # Free the shared memory even when the owner forgets close(): at collection or exit.
        weakref.finalize(self, self._pool.release)

    def start(self) -> None:
        """Start the worker now, so that the first job does not pay for its start-up."""
        with self._lock:
            self._ensure_worker()

    def submit(self, image: np.ndarray, probs_or_labels: np.ndarray,
               params: CrfParams = CrfParams(), *, kind: str = "probs",
               num_classes: int | None = None, confidence: float = 0.7,
               fill_void: bool = False) -> None:
        """Queue a :func:`refine_probabilities` (``kind="probs"``) or :func:`refine_labels`
        (``kind="labels"``, needs ``num_classes``) run; bad inputs raise :class:`CrfError` here."""
        image = check_image(image)
        check_params(params)
        if kind == "probs":
            data = check_probabilities(image, probs_or_labels)
            out_shape, out_dtype = data.shape, np.float32
        elif kind == "labels":
            if num_classes is None:
                raise CrfError("a CRF run on labels needs num_classes")
            data = check_labels(image, probs_or_labels, num_classes)
            if not 1.0 / num_classes < confidence < 1.0:
                raise CrfError(f"CRF confidence must lie between 1/{num_classes} and 1, "
                               f"got {confidence!r}")
            out_shape, out_dtype = data.shape, np.uint8
        else:
            raise CrfError(f"CRF job kind must be 'probs' or 'labels', got {kind!r}")
        options = {"kind": kind, "params": params, "num_classes": num_classes,
                   "confidence": confidence, "fill_void": fill_void}
        with self._lock:
            if self._job is not None and self._job.running:
                self._job.cancel()   # abandoned: a result() waiting on it raises CrfCancelled
                self._stop_worker()
            self._drop_job()
            self._ensure_worker()
            self._next_id += 1
            job = crf_worker.Job(self._next_id, self._share(image, data, out_shape, out_dtype),
                                 options)
            try:
                self._worker.send(job)
            except OSError:
                # The worker died between jobs (killed from outside): one fresh try.
                self._stop_worker()
                self._ensure_worker()
                self._worker.send(job)
            self._job = job

    @property
    def busy(self) -> bool:
        """Whether a job has been submitted and has not finished, failed or been cancelled."""
        with self._lock:
            if self._job is not None and self._job.running:
                self._worker.collect(self._job)
            return self._job is not None and self._job.running

    @property
    def progress(self) -> tuple[int, int] | None:
        """(iterations done, iterations in all) of the current job, or None when there is none."""
        with self._lock:
            if self._job is None:
                return None
            if self._job.running:
                self._worker.collect(self._job)
            return self._job.progress

    @property
    def pid(self) -> int | None:
        """The worker's process id while it runs (None before start and after cancel/close)."""
        with self._lock:
            return self._worker.pid if self._worker is not None else None

    def poll(self) -> np.ndarray | None:
        """The finished job's result, or None while it runs; never blocks.

        Raises :class:`CrfCancelled` for a cancelled job, :class:`CrfError` for a failed one or
        when nothing was submitted.
        """
        with self._lock:
            job = self._job
            if job is None:
                raise CrfError("no CRF job has been submitted")
            if job.running:
                self._worker.collect(job)
            return job.outcome()

    def result(self, timeout: float | None = None) -> np.ndarray:
        """Wait for the current job and return its result (see :meth:`poll` for the errors).

        Raises :class:`TimeoutError` after ``timeout`` seconds; the job keeps running.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            job, worker = self._job, self._worker
        if job is None:
            raise CrfError("no CRF job has been submitted")
        while True:
            with self._lock:
                if job.running and self._worker is worker:
                    worker.collect(job)
                if not job.running:
                    return job.outcome()
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise TimeoutError(f"the CRF job did not finish within {timeout} s")
            # Short waits so that a cancel() from another thread is noticed promptly.
            worker.wait(0.05 if left is None else min(0.05, left))

    def cancel(self) -> None:
        """Stop the current job at once by ending the worker process (it waits at most ~1 s)."""
        with self._lock:
            if self._job is not None and self._job.running:
                self._job.cancel()
                self._stop_worker()

    def close(self) -> None:
        """Cancel any job, end the worker and free the shared memory."""
        with self._lock:
            if self._job is not None and self._job.running:
                self._job.cancel()
            self._stop_worker()
            self._drop_job()
            self._pool.release()

    def __enter__(self) -> CrfProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _share(self, image: np.ndarray, data: np.ndarray, out_shape: tuple[int, ...],
               out_dtype: type) -> dict[str, crf_worker.SharedArray]:
        try:
            arrays = {"image": self._pool.block("image", image.shape, image.dtype),
                      "data": self._pool.block("data", data.shape, data.dtype),
                      "out": self._pool.block("out", out_shape, out_dtype)}
        except OSError as exc:
            mb = (image.nbytes + 2 * data.nbytes) / 2 ** 20
            raise CrfError(f"could not set aside {mb:.0f} MB of shared memory for the CRF "
                           f"worker: {exc}") from None
        arrays["image"].fill(image)
        arrays["data"].fill(data)
        return arrays

    def _ensure_worker(self) -> None:
        if self._worker is None or not self._worker.alive:
            if self._worker is not None:
                self._worker.stop()
            self._worker = crf_worker.Worker()

    def _stop_worker(self) -> None:
        if self._worker is not None:
            self._worker.stop()
            self._worker = None

    def _drop_job(self) -> None:
        if self._job is not None:
            self._job.release()
