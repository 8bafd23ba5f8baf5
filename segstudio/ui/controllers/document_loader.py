"""Opening a large picture in a background task, so the window never freezes while it decodes.

A picture over :data:`BACKGROUND_PIXELS` (known from its header, nothing decoded) is read,
given its labels and overlay, and turned into the QImage the canvas shows, all off the GUI
thread; the window stays busy, not frozen, meanwhile and keeps the previous item on screen.
Before anything is read, the memory the whole document will take (the picture, its labels,
the overlay and the display copies) is compared with what the machine has free, and a
document that cannot fit is refused with a message. Smaller pictures open at once.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject

from segstudio.io.workspace import WorkspaceError
from segstudio.io.decode_memory import format_bytes, memory_problem
from segstudio.io.images import ImageReadError, picture_size
from segstudio.io.object_store import load_objects
from segstudio.ui.background.tasks import BackgroundTask
from segstudio.ui.canvas.document import Document

BACKGROUND_PIXELS = 12_000_000   # about 0.2 s of decoding and more: off the GUI thread
# Beside the picture itself: labels 1, overlay 4, display RGB array 3 and its QImage 3, the
# decoder's own copy of the picture up to 4 bytes per pixel (a grey picture needs less).
_DOCUMENT_BYTES_PER_PIXEL = 15
_EXPECTED = (ImageReadError, WorkspaceError, OSError, ValueError)


class DocumentLoader(QObject):
    """Loads one document at a time for ``window``; a newer request supersedes an older one."""

    def __init__(self, window) -> None:
        super().__init__(window)
        self.window = window
        self.task: BackgroundTask | None = None
        self.pending_row: int | None = None
        self._queued_row: int | None = None   # asked for while another picture decodes
        self._generation = 0

    @property
    def busy(self) -> bool:
        return self.task is not None

    def wants_background(self, item) -> bool:
        """True for an image item whose header claims more than BACKGROUND_PIXELS."""
        if item.frame is not None or self.window.workspace is None:
            return False
        size = picture_size(self.window.workspace.source_path(item))
        return size is not None and size[0] * size[1] > BACKGROUND_PIXELS

    def forget(self) -> None:
        """Whatever is loading now will not be shown (another item or workspace was chosen)."""
        self._generation += 1
        self.pending_row = self._queued_row = None

    def load(self, row: int) -> bool:
        """Start loading workspace row ``row``; True when a load of it is under way."""
        win, ws = self.window, self.window.workspace
        if self.pending_row == row and self.task is not None:
            return True
        item = ws.items[row]
        path = ws.source_path(item)
        size = picture_size(path)
        if size is not None:
            problem = memory_problem(size[0] * size[1] * _DOCUMENT_BYTES_PER_PIXEL)
            if problem is not None:
                win.show_error(f"{Path(item.source).name} ({size[0]}×{size[1]}): cannot be "
                               f"opened: {problem}")
                return False
        self.forget()
        if self.task is not None:
            # One decode at a time (two large pictures at once would need twice the memory):
            # this one starts when the running one ends, which will not be shown.
            self._queued_row = self.pending_row = row
            return True
        generation, self.pending_row = self._generation, row
        classes, hidden = win.classes, set(win.hidden)

        def job(_progress, _cancelled):
            try:
                image = ws.read_image(item)
                labels = ws.load_labels(item)
                doc = Document.create(row, item, image, labels, classes, hidden,
                                       objects=load_objects(ws, item))
                return doc, doc.display_qimage()
            except MemoryError:
                raise WorkspaceError(f"{Path(item.source).name}: not enough memory to open this "
                                     "picture; close other programs or items first") from None

        task = BackgroundTask(job, _EXPECTED, self)
        task.succeeded.connect(lambda result: self._loaded(generation, ws, result))
        task.failed.connect(lambda message: self._failed(generation, message))
        task.finished.connect(lambda: self._finished(task))
        self.task = task
        win.begin_busy()
        need = format_bytes(size[0] * size[1] * _DOCUMENT_BYTES_PER_PIXEL) if size else "?"
        win.statusBar().showMessage(f"Opening {Path(item.source).name} ({size[0]}×{size[1]} "
                                    f"pixels, up to about {need} of memory)…" if size else
                                    f"Opening {Path(item.source).name}…")
        task.start()
        return True

    def _loaded(self, generation: int, ws, result) -> None:
        if generation != self._generation or ws is not self.window.workspace:
            return                                   # superseded while it loaded
        self.pending_row = None
        doc, display = result
        self.window.show_document(doc, display)

    def _failed(self, generation: int, message: str) -> None:
        if generation == self._generation:
            self.pending_row = None
            self.window.show_error(message)

    def _finished(self, task: BackgroundTask) -> None:
        if self.task is task:
            self.task = None
        self.window.end_busy()
        task.deleteLater()
        row, self._queued_row = self._queued_row, None
        if row is not None and self.window.workspace is not None \
                and row < len(self.window.workspace.items):
            self.pending_row = None
            self.load(row)

    def shutdown(self) -> None:
        """Forget pending results and wait for the running read (closing the window)."""
        self.forget()
        if self.task is not None:
            self.task.wait()
