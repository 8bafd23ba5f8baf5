"""Tracking an object through the video with SAM 2, from the Prompt tool's clicks.

On a frame of a video, click the object with the Prompt tool (Q; right-click for background,
drag for a box), then Track in the Video panel: the clicks go to SAM 2 (a Hugging Face model
folder chosen with Model ▸ SAM 2 tracking model…, remembered in the settings) and the object is
followed from this frame to the panel's "to" frame, or back to its first frame with
"backwards". It runs as a background task with the panel's progress and Cancel; each frame's
result is written as that frame's prediction, labels and object map, like a model run, except
on frames a person corrected or reviewed, which keep theirs. Each object's pixels get the class
chosen in the legend when it was clicked.

Correct anywhere: go to a frame where the mask went wrong, click again, Track again. The clicks
of every earlier Track on this video stay in SAM 2's memory, and tracking starts again at the
corrected frame; the frames before it keep what they have. The clicks, with each object's class
name, are kept in the workspace (:mod:`segstudio.io.track_prompts`), so a correction after
reopening it still builds on them.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import (QCheckBox, QFileDialog, QHBoxLayout, QLabel, QMessageBox,
                               QPushButton, QSpinBox)

from segstudio.io.decode_memory import require_memory
from segstudio.io.video import VideoError, VideoSource
from segstudio.io.workspace import ItemStatus, WorkspaceError
from segstudio.ui.background.tasks import BackgroundTask
from segstudio.ui.controllers.model_runs import PROTECTED

FOLDER_KEY = "sam2/folder"
WHERE_TO_GET = (
    "Tracking needs a SAM 2 or SAM 2.1 model folder in Hugging Face format (config.json and "
    "model.safetensors), which segstudio never downloads. Copy one in yourself: the folders "
    "facebook/sam2.1-hiera-tiny, -small, -base-plus or -large on the Hugging Face Hub (tiny and "
    "small suit a laptop CPU). Then choose the folder with Model ▸ SAM 2 tracking model…; "
    'segstudio remembers it. The network code comes from transformers: pip install '
    '"segstudio[sam2]".')
# Errors shown as their message (Sam2Error and NotEnoughMemory are a ValueError and a
# MemoryError; naming them here would import torch on the GUI thread).
EXPECTED = (ValueError, MemoryError, OSError, VideoError, WorkspaceError)


class TrackRun(BackgroundTask):
    """Loads the tracker (kept for the next run), streams the video's frames through it and
    writes each frame's files; ``result(row, labels, objects)`` reaches the GUI thread queued.
    Succeeds with (frames done, cancelled)."""

    result = Signal(int, object, object)
    warning = Signal(str)

    def __init__(self, tracking: "VideoTracking", ws, source: Path, rows: dict[int, int],
                 prompts: list, first: int, last: int, reverse: bool,
                 classes: dict[int, int], writable: set[int],
                 names: dict[int, str] | None = None) -> None:
        super().__init__(self._track, EXPECTED, tracking.panel)
        self.tracking, self.workspace, self.source, self.rows = tracking, ws, source, rows
        self.prompts, self.first, self.last, self.reverse = prompts, first, last, reverse
        # object id → class index, as a look-up table over the object map (0 stays background)
        self.lut = np.zeros(256, np.uint8)
        for obj, cls in classes.items():
            self.lut[obj] = cls
        self.writable = writable
        self.names = names or {}

    def _keep_clicks(self) -> None:
        """Write this video's clicks to the workspace for next time (a failure is said, and
        tracking goes on)."""
        from segstudio.io.track_prompts import TrackPromptsError, save_video

        try:
            save_video(self.workspace.root, Path(self.source).as_posix(),
                       [dataclasses.asdict(p) for p in self.prompts], self.names)
        except (TrackPromptsError, WorkspaceError, OSError) as exc:
            self.warning.emit(f"the clicks were not kept for next time: {exc}")

    def _track(self, progress, cancelled):
        from segstudio.io.object_store import save_objects
        from segstudio.models.sam2_video import TrackingCancelled

        self._keep_clicks()
        ws = self.workspace
        tracker = self.tracking.tracker_for(self.tracking.folder())
        done = 0
        with VideoSource(ws.root / self.source, cache_frames=4) as video:
            height, width = video.read(self.first).shape[:2]
            require_memory(tracker.session_bytes(len({p.obj_id for p in self.prompts}),
                                                 len({p.frame for p in self.prompts}),
                                                 height, width),
                           f"tracking {width}×{height} frames")
            total = self.last - self.first + 1
            try:
                for r in tracker.track(video.read, video.frame_count, self.prompts, self.first,
                                       self.last, self.reverse, cancelled):
                    row = self.rows.get(r.index)
                    if row is None:
                        continue
                    objects = r.object_map()
                    labels = self.lut[objects]
                    item = ws.items[row]
                    ws.save_prediction(item, labels)
                    save_objects(ws, item, objects, predicted=True)
                    if r.index in self.writable:
                        save_objects(ws, item, objects)
                        ws.write_label_file(item, labels)
                    done += 1
                    self.result.emit(row, labels, objects)
                    progress(done, total)
            except TrackingCancelled:
                return done, True
        return done, False


class VideoTracking(QObject):
    """The Track controls under the video panel and the SAM 2 folder setting."""

    def __init__(self, window, panel) -> None:
        super().__init__(panel)
        self.window, self.panel = window, panel
        self.prompts: dict[Path, list] = {}       # video → the clicks given so far
        self.classes: dict[Path, dict[int, int]] = {}     # video → object id → class
        self._tracker = None
        self._tracker_folder: str | None = None
        self.obj_spin = QSpinBox(panel)
        self.obj_spin.setRange(1, 254)
        self.obj_spin.setToolTip("The object the clicks are of: its id in the object map")
        self.backwards = QCheckBox("backwards", panel)
        self.backwards.setToolTip("Track from this frame back to the first frame of the range")
        self.track_button = QPushButton("Track with SAM 2", panel)
        self.track_button.setToolTip("Follow the object clicked with the Prompt tool (Q) from "
                                     "this frame to the range's end; corrected frames keep "
                                     "their labels")
        self.track_button.clicked.connect(self.track)
        row = QHBoxLayout()
        for w in (QLabel("Object", panel), self.obj_spin, self.backwards):
            row.addWidget(w)
        row.addStretch(1)
        row.addWidget(self.track_button)
        panel.layout().insertLayout(panel.layout().count() - 2, row)

    # -- the clicks kept in the workspace ----------------------------------------------------
    def prompts_of(self, source: Path) -> list:
        """The clicks given on ``source`` so far: in this window, or kept from before."""
        if source not in self.prompts:
            self.prompts[source], kept_classes = self._kept(source)
            self.classes.setdefault(source, {}).update(kept_classes)
        return self.prompts[source]

    def _kept(self, source: Path) -> tuple[list, dict[int, int]]:
        """The clicks kept for ``source`` that still fit the video, and each object's class
        (by name; a name the workspace lacks now is left out)."""
        from segstudio.io.track_prompts import TrackPromptsError, load_video
        from segstudio.models.sam2_prompts import Sam2Error, TrackPrompt, check_prompts

        win, ws = self.window, self.window.workspace
        try:
            stored, names = load_video(ws.root, Path(source).as_posix())
        except TrackPromptsError as exc:
            win.statusBar().showMessage(f"SAM 2: {exc}", 10000)
            return [], {}
        prompts, dropped = [], 0
        size = (win.doc.image.width, win.doc.image.height) if win.doc is not None else None
        for p in stored:
            prompt = TrackPrompt(p["frame"], p["obj_id"], list(p["points"]), list(p["labels"]),
                                 p["box"])
            try:
                if size is None:
                    raise Sam2Error("no frame to hold it against")
                check_prompts([prompt], *size, self.panel.frame_count)
            except Sam2Error:
                dropped += 1
                continue
            prompts.append(prompt)
        if dropped:
            win.statusBar().showMessage(f"SAM 2: {dropped} kept click group(s) no longer fit "
                                        f"{Path(source).name} and were left out", 10000)
        index = {name: i for i, name in enumerate(win.classes.names)}
        classes = {obj: index[name] for obj, name in names.items() if index.get(name, 0) > 0}
        return prompts, classes

    # -- the model folder --------------------------------------------------------------------
    def folder(self) -> str | None:
        value = self.window.settings.value(FOLDER_KEY, "")
        return str(value) if value else None

    def choose_folder(self) -> None:
        current = self.folder()
        path = QFileDialog.getExistingDirectory(
            self.window, "SAM 2 model folder (config.json and model.safetensors)",
            current or str(Path.home()))
        if path:
            self.set_folder(path)

    def set_folder(self, path: str | Path) -> None:
        """Remember ``path``; it is checked now (one line naming what is wrong) and loaded by
        the first Track."""
        from segstudio.models.sam2_prompts import Sam2Error, check_folder

        try:
            check_folder(path)
        except Sam2Error as exc:
            self.window.show_error(f"SAM 2: {exc}")
            return
        self.window.settings.setValue(FOLDER_KEY, str(path))
        self.window.statusBar().showMessage(f"SAM 2 tracking model: {Path(path).name}", 5000)

    def tracker_for(self, folder: str):
        """The tracker of ``folder``, loaded once and kept (called in the run's thread)."""
        if self._tracker is None or self._tracker_folder != folder:
            from segstudio.models.device import choose_device
            from segstudio.models.sam2_prompts import load_bytes
            from segstudio.models.sam2_video import Sam2VideoTracker

            require_memory(load_bytes(folder), f"loading {Path(folder).name}")
            self._tracker = Sam2VideoTracker.from_folder(folder, choose_device("auto"))
            self._tracker_folder = folder
        return self._tracker

    # -- tracking ----------------------------------------------------------------------------
    def track(self) -> bool:
        """Track the object clicked on the frame shown (see the module's docstring)."""
        win, panel, ws = self.window, self.panel, self.window.workspace
        if panel.source is None or ws is None or win.doc is None or panel.task is not None:
            return False
        folder = self.folder()
        if folder is None:
            self._explain_missing()
            return False
        tool = win.prompt.tool
        if not tool.points and tool.box is None:
            win.show_error("Track: click the object with the Prompt tool (Q) first; right-click "
                           "marks background, a drag draws a box.")
            return False
        from segstudio.models.sam2_prompts import TrackPrompt

        frame, obj = panel.frame, self.obj_spin.value()
        prompt = TrackPrompt(frame=frame, obj_id=obj,
                             points=[(float(x), float(y)) for x, y, _ in tool.points],
                             labels=[int(label) for _, _, label in tool.points],
                             box=tuple(float(v) for v in tool.box) if tool.box else None)
        kept = [p for p in self.prompts_of(panel.source)
                if (p.frame, p.obj_id) != (frame, obj)]
        prompts = kept + [prompt]           # the new one last: tracking starts at its frame
        reverse = self.backwards.isChecked()
        first, last = (panel.first_spin.value(), frame) if reverse else \
            (frame, panel.last_spin.value())
        if first > last:
            win.show_error(f"Track: the range ends at frame {panel.last_spin.value()}, before "
                           f"this frame ({frame}); tick \"backwards\" or widen the range.")
            return False
        cls = win.current_class()
        if cls <= 0:
            win.show_error("Track: choose the object's class in the legend first (not the "
                           "background).")
            return False
        self.prompts[panel.source] = prompts
        classes = self.classes.setdefault(panel.source, {})
        classes[obj] = cls
        tool.clear()
        # The range starts (or, backwards, ends) at the clicked frame: the frames beyond it keep
        # what they have, and earlier clicks stay in SAM 2's memory.
        writable = {f for f, row in panel.rows.items()
                    if ws.items[row].status not in PROTECTED}
        names = {o: win.classes.names[c] for o, c in classes.items()
                 if 0 <= c < len(win.classes.names)}
        task = TrackRun(self, ws, panel.source, dict(panel.rows), prompts, first, last,
                        reverse, dict(classes), writable, names)
        task.warning.connect(lambda m: win.statusBar().showMessage(f"SAM 2: {m}", 10000))
        task.result.connect(lambda row, labels, objects: self._apply(ws, row, labels, objects,
                                                                     writable))
        task.succeeded.connect(lambda outcome: self._tracked(outcome, frame))
        task.failed.connect(lambda m: win.show_error(f"Tracking {Path(panel.source).name}: {m}"))
        span = f"{frame}–{first}" if reverse else f"{frame}–{last}"
        panel._start(task, f"Tracking object {obj} with SAM 2 over frames {span}…",
                     last - first + 1)
        return True

    def _apply(self, ws, row: int, labels, objects, writable: set[int]) -> None:
        """One tracked frame on the GUI thread: its open document follows, its status becomes
        predicted; a frame a person corrected keeps their labels."""
        from segstudio.core.objectmap import take_prediction

        win = self.window
        if win.workspace is not ws:
            return
        item = ws.items[row]
        if item.frame not in writable:
            if win.doc is not None and win.doc.item is item:
                win.statusBar().showMessage(f"{item.id}: your corrected labels were kept", 4000)
            return
        doc = win.document_for(row)
        if doc is not None and not doc.dirty:
            with doc.labels.step("tracking"):            # classes and objects: one undo step
                doc.labels.replace(labels, name="tracking")
                take_prediction(doc.labels, objects)
            doc.mark_saved()
            win.autosave.saved(item)
        ws.set_status(item, ItemStatus.PREDICTED, by=self._by())
        win.files.model.item_changed(row)
        if doc is not None and doc is win.doc:
            win.canvas.update()

    def _by(self) -> str:
        folder = self.folder()
        return f"SAM 2 ({Path(folder).name})" if folder else "SAM 2"

    def _tracked(self, outcome, frame: int) -> None:
        done, cancelled = outcome
        what = "cancelled after" if cancelled else "done:"
        self.panel.message.setText(f"Tracking from frame {frame} {what} {done} frame(s)")
        self.window.statusBar().showMessage(self.panel.message.text(), 6000)

    def _explain_missing(self) -> None:
        self.window.statusBar().showMessage("Track: no SAM 2 model folder yet — Model ▸ SAM 2 "
                                            "tracking model…", 10000)
        if not self.window.interactive:
            return
        box = QMessageBox(QMessageBox.Icon.Information, "SAM 2 tracking", WHERE_TO_GET,
                          QMessageBox.StandardButton.Close, self.window)
        choose = box.addButton("Choose model folder…", QMessageBox.ButtonRole.AcceptRole)
        box.exec()
        if box.clickedButton() is choose:
            self.choose_folder()


def install_tracking(window, panel) -> VideoTracking:
    """The Track row under the video panel, Video ▸ Track with SAM 2, and Model ▸ SAM 2
    tracking model… beside Model ▸ Prompted segmenter…"""
    tracking = VideoTracking(window, panel)
    for action in window.menuBar().actions():
        menu = action.menu()
        if menu is None:
            continue
        names = [a.text().replace("&", "") for a in menu.actions()]
        if any(n.startswith("Prompted segmenter") for n in names):
            window._action("SAM 2 &tracking model…", tracking.choose_folder, None, menu,
                           tip="Choose a SAM 2 model folder (Hugging Face format) for tracking "
                               "objects through videos")
        if any(n.startswith("Run model on frames") for n in names):
            window._action("&Track with SAM 2", tracking.track, None, menu)
    return tracking
