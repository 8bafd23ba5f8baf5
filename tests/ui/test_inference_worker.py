"""The inference worker's queue: read-ahead of the next image and per-item errors."""

from __future__ import annotations

import numpy as np

from segstudio.io.images import ImageReadError
from segstudio.paths import weights_dir
from segstudio.ui.background.workers import Job, ModelChoice, _InferenceWorker


def _run(jobs, order=None):
    worker = _InferenceWorker()
    events: list[tuple] = []
    worker.result.connect(lambda row, p: events.append(("result", row, p)))
    if order is not None:
        worker.result.connect(lambda row, p: order.append(f"result {row}"))
    worker.failed.connect(lambda row, msg: events.append(("failed", row, msg)))
    worker.finished.connect(lambda cancelled: events.append(("finished", cancelled)))
    # Direct call: the worker's slots run on this thread, so the signals arrive in order.
    worker.run(ModelChoice("unet", weights_dir() / "chest_xray_unet_lite.pt"), jobs)
    return events


def test_next_image_is_read_before_the_result_is_announced():
    order: list[str] = []
    rng = np.random.default_rng(0)

    def loader(row):
        def load():
            order.append(f"load {row}")
            return rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)
        return load

    events = _run([Job(row, loader(row)) for row in range(3)], order)
    results = [e for e in events if e[0] == "result"]
    assert [e[1] for e in results] == [0, 1, 2]
    assert all(e[2].labels.shape == (64, 64) for e in results)
    assert order == ["load 0", "load 1", "result 0", "load 2", "result 1", "result 2"]
    assert events[-1] == ("finished", False)


def test_an_unreadable_image_fails_alone_and_the_queue_goes_on():
    good = np.full((48, 48, 3), 128, np.uint8)

    def broken():
        raise ImageReadError("scan.png", "the file is truncated")

    events = _run([Job(0, lambda: good), Job(1, broken), Job(2, lambda: good)])
    assert [e[:2] for e in events] == [("result", 0), ("failed", 1), ("result", 2),
                                       ("finished", False)]
    assert "scan.png: the file is truncated" in events[1][2]


def test_a_dialog_closed_while_its_background_task_runs_waits_for_it_instead_of_aborting(qtbot):
    """Qt aborts the program when a thread object is destroyed while its thread still runs; a
    task's parent deleted mid-job first stops the job and waits."""
    import threading
    import time

    from PySide6.QtWidgets import QDialog

    from segstudio.ui.background.tasks import BackgroundTask

    dialog = QDialog()
    started, ended = threading.Event(), threading.Event()

    def job(progress, cancelled):
        started.set()
        while not cancelled():
            time.sleep(0.01)
        ended.set()

    task = BackgroundTask(job, (), dialog)
    task.start()
    assert started.wait(5)
    dialog.deleteLater()
    qtbot.waitUntil(ended.is_set, timeout=5000)          # the program is still here
    del task
