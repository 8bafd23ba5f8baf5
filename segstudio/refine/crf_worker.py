"""The process side of :class:`segstudio.refine.crf_process.CrfProcess`.

A job's arrays (image, probabilities or labels, and room for the result) live in shared memory
blocks created by the parent; only their names, shapes and the options travel through the pipe,
so sending never waits on the worker. The worker answers with small messages: ``("step", id,
done, total)`` after each mean-field iteration, then ``("done", id)`` or ``("error", id, text)``.

This module imports nothing heavy at load time, so the parent pays nothing for it; the worker
loads the CRF as soon as it starts, so that :meth:`CrfProcess.start` warms it up ahead of a job.
"""

from __future__ import annotations

import multiprocessing as mp
import os
from multiprocessing import connection
from multiprocessing.shared_memory import SharedMemory
from typing import Any

import numpy as np

Descriptor = tuple[str, tuple[int, ...], str]   # shared memory name, shape, dtype string


class SharedArray:
    """A NumPy array's bytes in a named shared memory block that the parent owns and unlinks."""

    def __init__(self, shape: tuple[int, ...], dtype: Any) -> None:
        self.shape = tuple(int(s) for s in shape)
        self.dtype = np.dtype(dtype)
        nbytes = max(int(np.prod(self.shape)) * self.dtype.itemsize, 1)
        self._shm: SharedMemory | None = SharedMemory(create=True, size=nbytes)
        # Reserve the pages now: a shared memory folder too small for the block (Docker's
        # default is 64 MB) then fails here with ENOSPC, not later with SIGBUS on first write.
        fd = getattr(self._shm, "_fd", -1)
        if fd >= 0 and hasattr(os, "posix_fallocate"):
            try:
                os.posix_fallocate(fd, 0, nbytes)
            except OSError:
                self.release()
                raise

    def fits(self, shape: tuple[int, ...], dtype: Any) -> bool:
        return self._shm is not None and self.shape == tuple(shape) and self.dtype == dtype

    @property
    def descriptor(self) -> Descriptor:
        return self._shm.name, self.shape, self.dtype.str

    def fill(self, array: np.ndarray) -> None:
        view = np.ndarray(self.shape, self.dtype, buffer=self._shm.buf)
        view[...] = array
        del view   # the buffer must have no exports left when the block is closed

    def copy_out(self) -> np.ndarray:
        view = np.ndarray(self.shape, self.dtype, buffer=self._shm.buf)
        result = view.copy()
        del view
        return result

    def release(self) -> None:
        if self._shm is not None:
            self._shm.close()
            try:
                self._shm.unlink()
            except FileNotFoundError:
                pass
            self._shm = None


class BlockPool:
    """The parent's shared blocks, one per role ("image", "data", "out"), kept between jobs.

    A GUI refines one image again and again; reusing its blocks skips allocating and
    page-faulting fresh shared memory, which costs several times a plain copy.
    """

    def __init__(self) -> None:
        self._blocks: dict[str, SharedArray] = {}

    def block(self, role: str, shape: tuple[int, ...], dtype: Any) -> SharedArray:
        current = self._blocks.get(role)
        if current is not None and current.fits(shape, np.dtype(dtype)):
            return current
        if current is not None:
            current.release()
            del self._blocks[role]
        self._blocks[role] = SharedArray(shape, dtype)
        return self._blocks[role]

    def release(self) -> None:
        for shared in self._blocks.values():
            shared.release()
        self._blocks.clear()


class Job:
    """One submitted CRF run as the parent sees it: its shared arrays, progress and outcome."""

    def __init__(self, job_id: int, arrays: dict[str, SharedArray],
                 options: dict[str, Any]) -> None:
        self.id = job_id
        self.options = options
        self.progress = (0, options["params"].iterations)
        self.state = "running"
        self._result: np.ndarray | None = None
        self._error = ""
        self._arrays = arrays

    @property
    def running(self) -> bool:
        return self.state == "running"

    def spec(self) -> dict[str, Any]:
        return {**self.options, **{k: a.descriptor for k, a in self._arrays.items()}}

    def finish(self) -> None:
        self._result = self._arrays["out"].copy_out()
        self.state = "done"
        self.release()

    def fail(self, message: str) -> None:
        self._error = message
        self.state = "failed"
        self.release()

    def cancel(self) -> None:
        self.state = "cancelled"
        self.release()

    def release(self) -> None:
        """Forget the shared blocks (the pool owns them); they may now serve another job."""
        self._arrays = {}

    def outcome(self) -> np.ndarray | None:
        from segstudio.refine.crf import CrfCancelled, CrfError

        if self.state == "done":
            return self._result
        if self.state == "cancelled":
            raise CrfCancelled("the CRF job was cancelled")
        if self.state == "failed":
            raise CrfError(self._error)
        return None


class Worker:
    """The parent's handle on one worker process and its pipe."""

    def __init__(self) -> None:
        ctx = mp.get_context("spawn")
        self._conn, child_end = ctx.Pipe()
        self._process = ctx.Process(target=serve, args=(child_end,), name="segstudio-crf",
                                    daemon=True)
        self._process.start()
        child_end.close()

    @property
    def pid(self) -> int | None:
        return self._process.pid

    @property
    def alive(self) -> bool:
        return self._process.is_alive()

    def send(self, job: Job) -> None:
        self._conn.send((job.id, job.spec()))

    def collect(self, job: Job) -> None:
        """Read every message waiting from the worker and update ``job`` from those about it."""
        self._drain(job)
        if job.running and not self._process.is_alive():
            self._drain(job)   # anything it sent before it ended
            if job.running:
                code = self._process.exitcode
                if code is not None and code < 0:
                    how = (f"killed by signal {-code}; if the system ran out of memory, try a "
                           "smaller image or fewer classes")
                else:
                    how = f"exit code {code}; its error output says why"
                job.fail(f"the CRF worker process stopped unexpectedly ({how})")

    def _drain(self, job: Job) -> None:
        try:
            while job.running and self._conn.poll():
                message = self._conn.recv()
                if message[1] != job.id:
                    continue   # from an abandoned job
                if message[0] == "step":
                    job.progress = (message[2], message[3])
                elif message[0] == "done":
                    job.finish()
                elif message[0] == "error":
                    job.fail(message[2])
        except (EOFError, OSError):
            pass   # the worker is gone; collect() reports it

    def wait(self, timeout: float) -> None:
        """Sleep until the worker sends something or ends, at most ``timeout`` seconds."""
        try:
            connection.wait([self._conn, self._process.sentinel], timeout)
        except (OSError, ValueError):
            pass   # closed by a concurrent stop(); the caller looks at the job's state

    def stop(self) -> None:
        """End the process now (SIGTERM, then SIGKILL after a second) and close the pipe."""
        if self._process.is_alive():
            self._process.terminate()
            self._process.join(1.0)
            if self._process.is_alive():
                self._process.kill()
                self._process.join(1.0)
        self._conn.close()


class _Attached:
    """The worker's open mappings of the parent's blocks, kept while their names stay the same
    (the parent reuses its blocks, so usually for the worker's whole life)."""

    def __init__(self) -> None:
        self._open: dict[str, SharedMemory] = {}

    def view(self, descriptor: Descriptor) -> np.ndarray:
        name, shape, dtype = descriptor
        if name not in self._open:
            self._open[name] = SharedMemory(name=name)
        return np.ndarray(shape, np.dtype(dtype), buffer=self._open[name].buf)

    def keep_only(self, names: set[str]) -> None:
        for name in set(self._open) - names:
            try:
                self._open.pop(name).close()
            except BufferError:
                pass   # a view from a failed job is still alive; the mapping goes with it


def _run(conn: connection.Connection, job_id: int, spec: dict[str, Any],
         attached: _Attached) -> None:
    from segstudio.refine import crf

    attached.keep_only({spec[role][0] for role in ("image", "data", "out")})
    image, data = attached.view(spec["image"]), attached.view(spec["data"])

    def progress(done: int, total: int) -> None:
        conn.send(("step", job_id, done, total))

    if spec["kind"] == "probs":
        result = crf.refine_probabilities(image, data, spec["params"], progress=progress)
    else:
        result = crf.refine_labels(image, data, spec["num_classes"], spec["params"],
                                   confidence=spec["confidence"], fill_void=spec["fill_void"],
                                   progress=progress)
    del image, data
    out = attached.view(spec["out"])
    out[...] = result
    del out


def serve(conn: connection.Connection) -> None:
    """The worker's loop: run each job that arrives until ``None`` or the parent goes away."""
    # Load the CRF now, while the parent has nothing to wait for, not at the first job.
    import pydensecrf.densecrf  # noqa: F401

    from segstudio.refine import crf  # noqa: F401

    attached = _Attached()
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        job_id, spec = message
        try:
            _run(conn, job_id, spec, attached)
        except Exception as exc:  # reported to the parent, which raises CrfError
            text = str(exc) if type(exc).__name__ == "CrfError" else f"{type(exc).__name__}: {exc}"
            try:
                conn.send(("error", job_id, f"CRF failed: {text}"))
            except OSError:
                return
            continue
        try:
            conn.send(("done", job_id))
        except OSError:
            return
