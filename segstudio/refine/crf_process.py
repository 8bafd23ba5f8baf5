"""Dense CRF runs in a worker process, so that the caller's threads keep running.

pydensecrf2 holds the GIL for its whole run; :class:`CrfProcess` sends the job's arrays through
shared memory to :mod:`segstudio.refine.crf_worker`, which runs :mod:`segstudio.refine.crf`.
"""

from __future__ import annotations

import threading
import time
import weakref

import numpy as np

from segstudio.refine import crf_worker
from segstudio.refine.crf import (CrfError, CrfParams, check_image, check_labels, check_params,
                                  check_probabilities)


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
