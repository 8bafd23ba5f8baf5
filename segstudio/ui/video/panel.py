"""The video panel: timeline, playback, frame steps, a model run over a frame range, and the
overlay video export.

A video is one workspace item per frame, so moving along the timeline is showing another row:
the frame's labels and overlay follow by themselves. The model run and the export go through
``segstudio.models.video_pipeline`` in a background thread (decode, work and writing overlapped);
predictions come back to the GUI thread by queued signal and are applied like any other.
"""

from __future__ import annotations

import time
from pathlib import Path

from PySide6.QtCore import QEvent, Qt, QTimer, Signal
from PySide6.QtGui import QValidator
from PySide6.QtWidgets import (QFileDialog, QHBoxLayout, QLabel, QMenu,
                               QProgressBar, QPushButton, QSlider, QSpinBox, QToolButton,
                               QVBoxLayout, QWidget)

from segstudio.io.workspace import WorkspaceError, frame_phrase
from segstudio.io.video import VideoError, VideoSource, is_video_path
from segstudio.models.video_pipeline import VideoPipelineError
from segstudio.ui.controllers.model_runs import PROTECTED
from segstudio.ui.notice import Level
from segstudio.ui.background.tasks import BackgroundTask
from segstudio.ui.background.workers import model_info

EXPECTED = (VideoPipelineError, VideoError, WorkspaceError)   # errors shown as their message


class FrameRun(BackgroundTask):
    """Loads the chosen model (the panel keeps it for the next run) and predicts frames through
    the pipeline, which writes their files; succeeds with the run's PipelineStats.

    ``result(row, prediction)`` reaches the GUI thread queued, where the window applies it.
    """

    modelReady = Signal(object)        # dict, as the window's model runner reports it
    result = Signal(int, object)       # workspace row, Prediction

    def __init__(self, panel: VideoPanel, choice, ws, frames: list[int],
                 write_labels: list[int], mapping=None) -> None:
        super().__init__(self._predict, EXPECTED, panel)
        self.panel, self.choice, self.workspace, self.source = panel, choice, ws, panel.source
        self.frames, self.write_labels, self.mapping = frames, write_labels, mapping

    def _predict(self, progress, cancelled):
        from segstudio.models.video_pipeline import predict_workspace_frames

        predictor = self.panel.predictor_for(self.choice)
        self.modelReady.emit(model_info(predictor, self.choice.label))
        done = [0]

        def on_result(row: int, prediction) -> None:
            done[0] += 1
            self.result.emit(row, prediction)
            progress(done[0], len(self.frames))

        return predict_workspace_frames(self.workspace, self.source, predictor, self.frames,
                                        on_result, cancelled, write_labels=self.write_labels,
                                        mapping=self.mapping)


def _button(kind, parent, text: str, tip: str, slot):
    button = kind(parent)
    button.setText(text)
    button.setToolTip(tip)
    if slot is not None:
        button.clicked.connect(slot)
    return button


def _quietly(widgets, change) -> None:
    """Apply ``change`` to each widget without its signals (the window moved, not the user)."""
    for w in widgets:
        w.blockSignals(True)
        change(w)
        w.blockSignals(False)


def _row(*parts) -> QHBoxLayout:
    """A row of widgets; an int in ``parts`` is a stretch of that factor."""
    row = QHBoxLayout()
    for part in parts:
        row.addStretch(part) if isinstance(part, int) else row.addWidget(part)
    return row


class FrameSpinBox(QSpinBox):
    """A frame number: its value is the frame's index (from 0), its text the frame as people
    count it (from 1, as the status bar and the DICOM rows say it). It keeps Enter for itself
    (the window binds Enter to closing a polygon)."""

    def textFromValue(self, value: int) -> str:  # noqa: N802
        return str(value + 1)

    def valueFromText(self, text: str) -> int:  # noqa: N802
        return int(text) - 1 if text.strip().isdigit() else self.value()

    def validate(self, text: str, pos: int):
        if text == "":
            return QValidator.State.Intermediate, text, pos
        if not text.isdigit():
            return QValidator.State.Invalid, text, pos
        index = int(text) - 1
        state = (QValidator.State.Acceptable if self.minimum() <= index <= self.maximum()
                 else QValidator.State.Intermediate)
        return state, text, pos

    def event(self, event) -> bool:
        if (event.type() == QEvent.Type.ShortcutOverride
                and event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter)):
            event.accept()
            return True
        return super().event(event)


class VideoPanel(QWidget):
    """Timeline and controls for the video whose frame is on screen."""

    def __init__(self, window) -> None:
        super().__init__(window)
        self.window = window
        self.dock = None
        self.source: Path | None = None        # the video's path relative to the workspace root
        self.rows: dict[int, int] = {}         # frame -> workspace row
        self.frame_count = 0
        self.fps = 25.0
        self.frame = 0
        self.skipped = 0                       # frames passed over to keep up with the clock
        self.task: BackgroundTask | None = None
        self.last_run = None                   # PipelineStats of the last model run
        self._workspace = None
        self._predictor = None
        self._predictor_choice = None
        self._play_origin = (0.0, 0)            # (clock, frame) when playback started
        self._ticking = False

        self.title = QLabel("", self)
        self.slider = QSlider(Qt.Orientation.Horizontal, self)
        self.slider.valueChanged.connect(self._slider_moved)
        self.play_button = _button(QToolButton, self, "Play", "Play at the video's rate", None)
        self.play_button.setCheckable(True)
        self.play_button.toggled.connect(self._play_toggled)
        self.prev_button = _button(QToolButton, self, "◀ frame", "Previous frame (,)",
                                   lambda: self.step(-1))
        self.next_button = _button(QToolButton, self, "frame ▶", "Next frame (.)",
                                   lambda: self.step(1))
        self.frame_spin = FrameSpinBox(self)
        self.frame_spin.setToolTip("Jump to this frame (Enter). Frames count from 1; item names "
                                   "and label files count from 0 (clip_000003 is frame 4)")
        self.frame_spin.setKeyboardTracking(False)
        self.frame_spin.editingFinished.connect(lambda: self.go_to(self.frame_spin.value()))
        self.first_spin, self.last_spin = FrameSpinBox(self), FrameSpinBox(self)
        self.run_button = _button(QPushButton, self, "Run model on frames",
                                  "Segment these frames with the model picked in the Model "
                                  "panel; corrected frames keep their labels", self.run_frames)
        self.cancel_button = _button(QPushButton, self, "Cancel", "", self.cancel)
        self.cancel_button.setEnabled(False)
        self.progress = QProgressBar(self)
        self.progress.setValue(0)
        self.message = QLabel("", self)
        for label in (self.title, self.message):
            label.setWordWrap(True)
        self.timer = QTimer(self)
        self.timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.timer.timeout.connect(self._tick)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.title)
        layout.addWidget(self.slider)
        layout.addLayout(_row(self.prev_button, self.play_button, self.next_button, 1,
                              QLabel("Frame", self), self.frame_spin))
        layout.addLayout(_row(QLabel("Frames", self), self.first_spin, QLabel("to", self),
                              self.last_spin, 1, self.run_button, self.cancel_button))
        layout.addWidget(self.progress)
        layout.addWidget(self.message)

    # -- following the window ----------------------------------------------------------------
    def document_shown(self, doc) -> None:
        """Show the timeline of the frame's video, or hide the dock for a still image (and for
        a frame of a multi-frame DICOM, which the file list steps through)."""
        frame = getattr(doc.item, "frame", None)
        if frame is None or not is_video_path(doc.item.source):
            self.pause()
            self.source = None
            self.dock.hide() if self.dock is not None else None
            return
        ws = self.window.workspace
        if ws is not self._workspace or doc.item.source != self.source:
            self._load_video(ws, doc.item.source)
        self.frame = frame
        if self.playing and not self._ticking:
            self._play_origin = (time.monotonic(), frame)   # the user moved: play on from here
        _quietly((self.slider, self.frame_spin), lambda w: w.setValue(frame))
        self.title.setText(f"{Path(self.source).name}: {frame_phrase(frame, self.frame_count)}"
                           f", {self.fps:g} frames/s")
        if self.dock is not None and not self.dock.isVisible():
            self.dock.show()

    def _load_video(self, ws, source: Path) -> None:
        self.pause()
        self._workspace, self.source = ws, source
        self.rows = {it.frame: row for row, it in enumerate(ws.items)
                     if it.frame is not None and it.source == source}
        self.frame_count = max(self.rows) + 1
        try:
            with VideoSource(ws.root / source, cache_frames=1) as video:
                self.fps = video.fps if video.fps > 0 else 25.0
        except VideoError:
            self.fps = 25.0     # the frame on screen was readable; only the rate is unknown
        last = self.frame_count - 1
        _quietly((self.slider, self.frame_spin, self.first_spin, self.last_spin),
                 lambda w: w.setRange(0, last))
        self.first_spin.setValue(0)
        self.last_spin.setValue(last)

    # -- moving along the timeline -----------------------------------------------------------
    def go_to(self, frame: int) -> bool:
        """Show frame ``frame`` of this video (clamped to the video)."""
        if self.source is None:
            return False
        frame = max(0, min(self.frame_count - 1, int(frame)))
        row = self.rows.get(frame)
        return row is not None and self.window.show_row(row)

    def step(self, delta: int) -> None:
        self.pause()
        self.go_to(self.frame + delta)

    def _slider_moved(self, value: int) -> None:
        if value != self.frame:
            self.go_to(value)

    # -- playback ----------------------------------------------------------------------------
    def play(self) -> None:
        if not self.play_button.isChecked():
            self.play_button.setChecked(True)

    def pause(self) -> None:
        if self.play_button.isChecked():
            self.play_button.setChecked(False)

    @property
    def playing(self) -> bool:
        return self.timer.isActive()

    def _play_toggled(self, on: bool) -> None:
        self.play_button.setText("Pause" if on else "Play")
        if not on:
            self.timer.stop()
            return
        if self.source is None:
            self.play_button.setChecked(False)
            return
        start = 0 if self.frame >= self.frame_count - 1 else self.frame
        if start != self.frame:
            self.go_to(start)
        self._play_origin = (time.monotonic(), start)
        self.skipped = 0
        self.timer.start(max(5, round(1000.0 / self.fps)))

    def _tick(self) -> None:
        # The frame is taken from the clock, not counted in ticks: when showing a frame takes
        # longer than a frame's time, playback skips frames instead of falling behind.
        if self._ticking:           # the message about a frame that failed is still open
            return
        t0, f0 = self._play_origin
        target = f0 + int((time.monotonic() - t0) * self.fps)
        if target >= self.frame_count - 1:
            target = self.frame_count - 1
            self.pause()
        if target > self.frame:
            self.skipped += target - self.frame - 1
            self._ticking = True
            try:
                shown = self.go_to(target)
            finally:
                self._ticking = False
            if not shown:
                self.pause()        # stop at the frame that cannot be decoded, once

    # -- running the model on a frame range --------------------------------------------------
    def predictor_for(self, choice):
        """The Predictor for ``choice``, built once and kept (called in the run's thread)."""
        if self._predictor is None or self._predictor_choice != choice:
            self._predictor, self._predictor_choice = choice.build_predictor(), choice
        return self._predictor

    def run_frames(self) -> bool:
        """Segment frames first–last with the model picked in the Model panel."""
        win, ws = self.window, self.window.workspace
        if self.source is None or ws is None or self.task is not None:
            return False
        choice = win.models.panel.current_choice()
        if choice is None:
            win.show_error("Pick a model in the Model panel first.")
            return False
        if not win.models.prepare_classes():
            return False
        first, last = self.first_spin.value(), self.last_spin.value()
        if first > last:
            win.show_error(f"Frames {first + 1}–{last + 1}: the first frame comes after the "
                           "last.")
            return False
        frames = [f for f in range(first, last + 1) if f in self.rows]
        # As in the window's own runs: the labels of a frame nobody has corrected are written
        # by the worker, so no PNG is encoded on the GUI thread; corrected frames keep theirs.
        writable = [f for f in frames if ws.items[self.rows[f]].status not in PROTECTED]
        task = FrameRun(self, choice, ws, frames, writable, win.models.mapping)
        task.modelReady.connect(self.window.models.model_ready)
        task.result.connect(lambda row, p: self._apply(ws, row, p))
        task.succeeded.connect(lambda stats: self._ran(stats, first, last))
        task.failed.connect(lambda m: win.show_error(f"{Path(self.source).name}: {m}"))
        self._start(task, f"Running the model on frames {first + 1}–{last + 1}…", len(frames))
        return True

    def _apply(self, ws, row: int, prediction) -> None:
        if self.window.workspace is ws:         # another folder may have been opened since
            self.window.models.apply(row, prediction)

    def _ran(self, stats, first: int, last: int) -> None:
        self.last_run = stats
        what = "cancelled after" if stats.cancelled else "done:"
        self.message.setText(f"Frames {first + 1}–{last + 1} {what} {stats.frames} frame(s) in "
                             f"{stats.seconds:.1f} s ({stats.fps:.1f} frames/s)")
        self.window.notice.show_notice(f"Model run on the video {self.message.text()}",
                                       Level.DONE)

    # -- exporting the overlay video ---------------------------------------------------------
    def export_overlay(self, out_path: str | Path | None = None) -> bool:
        """Write this video with its labels blended over it (mp4), in the background."""
        win, ws = self.window, self.window.workspace
        if self.source is None or ws is None:
            win.show_error("Show a frame of a video first: the export writes that video.")
            return False
        if self.task is not None:
            return False
        video = ws.root / self.source
        if out_path is None:
            # Beside the workspace, not in it: a new video there would become new items.
            default = str(ws.root.parent / f"{video.stem}-overlay.mp4")
            if not win.interactive:
                out_path = default
            else:
                out_path, _ = QFileDialog.getSaveFileName(win, "Export overlay video", default,
                                                          "MP4 video (*.mp4)")
                if not out_path:
                    return False
        out_path = Path(out_path)
        if out_path.suffix.lower() != ".mp4":
            out_path = out_path.with_name(out_path.name + ".mp4")
        # Labels on screen are taken as they are now; the rest from their files. A frame that was
        # only looked at has no labels (as in `segstudio overlay-video`), not an empty map.
        now = {f: doc.labels.array.copy() for f, row in self.rows.items()
               if (doc := win.document_for(row)) is not None
               and (doc.dirty or ws.label_path(doc.item).is_file())}
        source, hidden, opacity = self.source, set(win.hidden), win.canvas.opacity

        def job(progress, cancelled):
            from segstudio.models.video_pipeline import workspace_overlay_video

            return workspace_overlay_video(ws, source, out_path, opacity, hidden=hidden,
                                           labels_now=now, progress=progress, cancel=cancelled)

        task = BackgroundTask(job, EXPECTED, self)
        task.succeeded.connect(self._exported)
        task.failed.connect(lambda m: win.show_error(f"Overlay video not written: {m}"))
        self._start(task, f"Writing {out_path.name}…", self.frame_count)
        return True

    def _exported(self, result) -> None:
        if result is None:
            self.message.setText("Export cancelled; no video was written.")
        else:
            from segstudio.io.video_out import describe

            self.message.setText(f"Wrote {result.path.name}: {result.frames} frames, "
                                 f"{result.labelled} with labels, in {describe(result.codec)}")
            self.window.notice.show_notice(self.message.text(), Level.DONE)
        self.window.statusBar().showMessage(self.message.text(), 6000)

    # -- the running task --------------------------------------------------------------------
    def _start(self, task: BackgroundTask, message: str, total: int) -> None:
        self.task = task
        task.progressed.connect(self._progress)
        task.finished.connect(self._finish)
        self.window.begin_busy()
        self.run_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.progress.setRange(0, max(1, total))
        self.progress.setValue(0)
        self.message.setText(message)
        task.start()

    def _progress(self, done: int, total: int) -> None:
        self.progress.setRange(0, max(1, total))
        self.progress.setValue(done)

    def cancel(self) -> None:
        if self.task is not None:
            self.task.cancel()

    def _finish(self) -> None:
        if self.task is None:
            return
        self.task = None
        self.run_button.setEnabled(True)
        self.cancel_button.setEnabled(False)
        self.window.end_busy()

    def shutdown(self) -> None:
        """Stop playback and any run, waiting for its thread (the window is closing)."""
        self.pause()
        task = self.task
        if task is not None:
            self.cancel()
            task.wait(30000)


def install_video(window) -> VideoPanel:
    """Add the Video dock (shown while a video frame is on screen), the Video menu with its
    frame-step keys (, and .), and File ▸ Export overlay video…"""
    panel = VideoPanel(window)
    panel.dock = window._dock(panel, "Video", Qt.DockWidgetArea.BottomDockWidgetArea)
    panel.dock.hide()
    # The side columns keep the full height: the Video dock sits under the canvas only, so
    # opening it does not squeeze the class legend.
    window.setCorner(Qt.Corner.BottomLeftCorner, Qt.DockWidgetArea.LeftDockWidgetArea)
    window.setCorner(Qt.Corner.BottomRightCorner, Qt.DockWidgetArea.RightDockWidgetArea)
    window.documentShown.connect(panel.document_shown)

    menu = QMenu("&Video", window)
    window.menuBar().insertMenu(window.help_menu.menuAction(), menu)
    panel.play_action = window._action("&Play / pause", panel.play_button.toggle, None, menu)
    window._action("Pre&vious frame", lambda: panel.step(-1), ",", menu)
    window._action("&Next frame", lambda: panel.step(1), ".", menu)
    window._action("&Run model on frames", panel.run_frames, None, menu)
    window._action("&Cancel", panel.cancel, None, menu)
    panel.export_action = window._action("Export overlay &video…", lambda: panel.export_overlay(),
                                         None, None)
    file_menu = window.menuBar().actions()[0].menu()
    after_voc = _action_after(file_menu, "Export VOC")
    file_menu.insertAction(after_voc, panel.export_action)
    menu.addAction(panel.export_action)
    from segstudio.ui.video.tracking import install_tracking

    panel.tracking = install_tracking(window, panel)
    return panel


def _action_after(menu: QMenu, text: str):
    """The action that follows the one whose text contains ``text`` (None: the end)."""
    actions = menu.actions()
    for i, act in enumerate(actions):
        if text in act.text().replace("&", ""):
            return actions[i + 1] if i + 1 < len(actions) else None
    return None
