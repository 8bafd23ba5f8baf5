"""Running a long plain-Python job off the GUI thread with progress, cancel and a result."""

from __future__ import annotations

import threading
from typing import Any, Callable

from PySide6.QtCore import QThread, Signal


_RUNNING: set["BackgroundTask"] = set()      # started and not yet finished


class BackgroundTask(QThread):
    """Runs ``job(progress, cancelled)`` in its own thread.

    ``progress(done, total)`` may be called from the job; ``cancelled()`` tells it to stop.
    Exactly one of ``succeeded(result)`` or ``failed(message)`` is emitted, then ``finished``.
    Errors of the kinds in ``expected`` become their message; anything else its type and message.
    """

    progressed = Signal(int, int)
    succeeded = Signal(object)
    failed = Signal(str)

    def __init__(self, job: Callable[[Callable[[int, int], None], Callable[[], bool]], Any],
                 expected: tuple[type[BaseException], ...] = (), parent=None) -> None:
        super().__init__(parent)
        self.job = job
        self.expected = expected
        self._cancel = threading.Event()
        # Qt aborts the whole program when a thread object is destroyed while its thread runs:
        # a dialog or window closed mid-job first tells the job to stop and waits for it, and
        # a running task is kept alive (not collected) until its thread has ended.
        if parent is not None:
            parent.destroyed.connect(self._stop_and_wait)
        self.started.connect(lambda: _RUNNING.add(self))
        self.finished.connect(lambda: _RUNNING.discard(self))

    def _stop_and_wait(self, *_) -> None:
        self._cancel.set()
        self.wait()

    def cancel(self) -> None:
        self._cancel.set()

    @property
    def was_cancelled(self) -> bool:
        return self._cancel.is_set()

    def run(self) -> None:
        try:
            result = self.job(self.progressed.emit, self._cancel.is_set)
        except self.expected as exc:            # type: ignore[misc]
            self.failed.emit(str(exc))
        except Exception as exc:   # noqa: BLE001 - reported to the user, never a crash
            self.failed.emit(f"{type(exc).__name__}: {exc}")
        else:
            self.succeeded.emit(result)
