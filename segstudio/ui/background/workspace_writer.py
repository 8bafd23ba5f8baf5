"""Writes the workspace file from a background thread, newest snapshot wins.

Status changes happen on the GUI thread many times a second during a batch run; each one asks
for a save. The snapshot is taken at once (cheap), the JSON encoding, fsync and rename happen
here, and snapshots that a newer one has overtaken are skipped.
"""

from __future__ import annotations

import threading

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal


class WorkspaceWriter(QObject):
    failed = Signal(str)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(1)
        self._lock = threading.Lock()
        self._pending: tuple | None = None

    def attach(self, workspace) -> None:
        workspace.deferred_save = lambda data, ws=workspace: self.submit(ws, data)

    def submit(self, workspace, data: dict) -> None:
        with self._lock:
            start = self._pending is None
            self._pending = (workspace, data)
        if start:
            self.pool.start(_Drain(self))

    def _take(self):
        with self._lock:
            job, self._pending = self._pending, None
            return job

    def flush(self, msecs: int = 30000) -> bool:
        return self.pool.waitForDone(msecs)


class _Drain(QRunnable):
    def __init__(self, writer: WorkspaceWriter) -> None:
        super().__init__()
        self.writer = writer

    def run(self) -> None:
        job = self.writer._take()
        if job is None:
            return
        workspace, data = job
        try:
            workspace.write_file(data)
        except Exception as exc:   # noqa: BLE001 - reported in the status bar
            self.writer.failed.emit(str(exc))
