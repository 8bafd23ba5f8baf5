"""Writes the workspace file from a background thread, newest snapshot wins.

Status changes happen on the GUI thread many times a second during a batch run; each one asks
for a save. The snapshot is taken at once (cheap), the lock, the merge with what another
segstudio wrote, the JSON encoding, fsync and rename happen here, and snapshots that a newer
one has overtaken are skipped. What the merge brought from the other side is taken into the
workspace back on the GUI thread, the thread that changes it; a lock held too long or a class
set changed on both sides is reported through ``failed``.
"""

from __future__ import annotations

import threading
from typing import Callable

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal


class WorkspaceWriter(QObject):
    failed = Signal(str)
    merged = Signal(object, object)         # workspace, Merge (from the pool thread)
    adopted = Signal(object, object)        # workspace, Adoption (from any thread)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(1)
        self._lock = threading.Lock()
        self._pending: tuple | None = None
        self._on_adopted: Callable | None = None
        self.merged.connect(self._adopt)     # queued: runs on the GUI thread
        self.adopted.connect(self._tell)

    def attach(self, workspace, on_adopted: Callable | None = None) -> None:
        """Write ``workspace``'s saves here; ``on_adopted(workspace, adoption)`` runs on the GUI
        thread whenever it takes in changes another segstudio made to the file."""
        self._on_adopted = on_adopted
        workspace.deferred_save = lambda data, ws=workspace: self.submit(ws, data)
        workspace.adopted = lambda adoption, ws=workspace: self.adopted.emit(ws, adoption)

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

    def _adopt(self, workspace, merge) -> None:
        try:
            workspace.adopt(merge)
        except Exception as exc:   # noqa: BLE001 - reported like a failed write
            self.failed.emit(str(exc))

    def _tell(self, workspace, adoption) -> None:
        if self._on_adopted is not None:
            self._on_adopted(workspace, adoption)


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
            merge = workspace.write_file(data)
        except Exception as exc:   # noqa: BLE001 - reported in the status bar
            self.writer.failed.emit(str(exc))
            return
        if merge is not None:
            self.writer.merged.emit(workspace, merge)
