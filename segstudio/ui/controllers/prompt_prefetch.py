"""Embeddings of the next items, made while the person works on the one on screen.

Once the image on screen has its embedding, the Prompt tool's encoder would sit idle while the
person clicks, corrects and keeps masks. :class:`EmbeddingPrefetch` uses that time: it embeds the
next :data:`AHEAD` items of the workspace, in order, into the session's :class:`EmbeddingCache`
(the same entries, keys, checks and precision as an embedding made on demand), so that moving on
shows a mask on the first click instead of a progress bar.

- Bounded: :data:`AHEAD` items (fewer than the cache keeps in memory), each after the memory
  estimate says it fits; large pictures (those the window decodes off-thread) are left alone.
- Out of the way: the workers' thread count, which leaves the GUI thread's decoder a core;
  paused at the encoder's next block while the person is clicking (:class:`QuietGate`: it goes
  on once the clicks have paused for :data:`QUIET_S`), so a click competes with at most the
  block under way; and cancelled (at the next block) whenever the person needs the encoder for
  something else: another image, other weights, closing the window.
- Never wrong: it only fills the cache. Each embedding is keyed on the exact pixels the network
  sees, so one made from a display window the person has since changed is simply not used.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Callable

from PySide6.QtCore import QObject, Signal

from segstudio.io.decode_memory import require_memory
from segstudio.ui.background.tasks import BackgroundTask

# Errors shown as their message (PromptedError and Sam2Error are ValueErrors, NotEnoughMemory a
# MemoryError; naming them here would import torch on the GUI thread).
EXPECTED = (ValueError, OSError, MemoryError)
AHEAD = 2          # items embedded in advance, after the one on screen
QUIET_S = 0.6      # the advance work waits until the person's clicks have paused this long


class QuietGate:
    """Holds background work at its next step while the person is interacting."""

    def __init__(self, quiet_s: float = QUIET_S) -> None:
        self.quiet_s = quiet_s
        self._last = float("-inf")

    def touch(self) -> None:
        """The person did something that needs the CPU now (a click)."""
        self._last = time.monotonic()

    def wait(self, cancelled: Callable[[], bool]) -> bool:
        """Return once the person has been quiet for ``quiet_s`` (at once if they have), or
        when ``cancelled()``; returns ``cancelled()`` — the encoder's per-block question."""
        while not cancelled() and time.monotonic() - self._last < self.quiet_s:
            time.sleep(0.02)
        return cancelled()


class EmbeddingPrefetch(QObject):
    """Embeds the items after the one on screen, in the background (see the module)."""

    ready = Signal(int)          # a row's embedding is in the cache
    stopped = Signal()           # the task ended (done, cancelled or failed)

    def __init__(self, session, ahead: int = AHEAD) -> None:
        super().__init__(session)
        self.session = session
        self.ahead = ahead
        self.task: BackgroundTask | None = None
        self.done: list[int] = []             # rows embedded in advance (for the status line)
        self._busy = -1                       # the row being embedded now (-1: none)
        self._next: tuple | None = None       # a start asked for while a task was running
        self.gate = QuietGate()
        self._lock = threading.Lock()

    @property
    def busy_row(self) -> int:
        with self._lock:
            return self._busy

    def _set_busy(self, row: int) -> None:
        with self._lock:
            self._busy = row

    def rows_after(self, row: int) -> list[int]:
        """The rows to embed after ``row``: the next :attr:`ahead` items of the workspace that
        the window decodes on its own thread (a large picture is left to be opened)."""
        window = self.session.window
        ws = window.workspace
        if ws is None:
            return []
        rows = range(row + 1, min(row + 1 + self.ahead, len(ws.items)))
        return [r for r in rows if not window.loader.wants_background(ws.items[r])]

    def start(self, row: int, segmenter, weights: str, key: str) -> bool:
        """Embed the items after ``row`` with ``segmenter`` (of ``weights``, cache key ``key``);
        False when there is nothing to do. While a task runs (its rows are likely among these:
        the person moved on by one), this one waits for it rather than cancel its work."""
        if self.task is not None:
            self._next = (row, segmenter, weights, key)
            return True
        rows = self.rows_after(row)
        session = self.session
        cache, ws = session.cache, session.window.workspace
        if not rows or cache is None or ws is None:
            return False
        items = [(r, ws.items[r]) for r in rows]
        gate = self.gate

        def job(progress, cancelled):
            import torch

            from segstudio.models.device import default_num_threads
            from segstudio.models.prompt_memory import embed_bytes

            # This thread's own count (OpenMP's is per thread), one core short of the machine:
            # the GUI thread keeps its own.
            torch.set_num_threads(default_num_threads())
            done = []

            def stop() -> bool:          # asked before each encoder block
                return gate.wait(cancelled)

            try:
                for n, (r, item) in enumerate(items):
                    if cancelled():
                        break
                    self._set_busy(r)
                    image = ws.read_image(item)
                    rgb = image.to_rgb8(image.window)       # as the window first shows it
                    height, width = rgb.shape[:2]
                    require_memory(embed_bytes(segmenter.network, height, width),
                                   f"the image embedding of {width}×{height} pixels")
                    cache.get_or_compute(key, rgb, lambda: segmenter.embed(rgb, None, stop),
                                         segmenter.check_embedding, segmenter.precision)
                    done.append(r)
                    self.ready.emit(r)
                    progress(n + 1, len(items))
            finally:
                self._set_busy(-1)
            return done

        # EmbeddingCancelled is not among the expected errors: a cancel is no failure to show.
        self.task = task = BackgroundTask(job, EXPECTED, self)
        task.succeeded.connect(self._succeeded)
        task.failed.connect(lambda _message: None)     # the on-demand path says it, if needed
        task.finished.connect(lambda t=task: self._finished(t))
        task.start()
        return True

    def _succeeded(self, rows) -> None:
        self.done = list(rows)

    def _finished(self, task) -> None:
        if self.task is task:
            self.task = None
        queued, self._next = self._next, None
        if queued is not None and self.task is None:
            self.start(*queued)
        if self.task is None:
            self.stopped.emit()

    def running(self) -> bool:
        return self.task is not None

    def click_threads(self) -> int | None:
        """The torch threads a click's decoder on the GUI thread should use while this work
        runs (the cores the workers leave; more would make the two wait on each other), or
        None when nothing runs."""
        if self.task is None:
            return None
        from segstudio.models.device import default_num_threads

        return max(1, (os.cpu_count() or 1) - default_num_threads())

    def cancel(self) -> None:
        """Stop at the encoder's next block (the cache keeps what was finished)."""
        self._next = None
        if self.task is not None:
            self.task.cancel()

    def shutdown(self) -> None:
        self._next = None
        if self.task is not None:
            self.task.cancel()
            self.task.wait()
            self.task = None
