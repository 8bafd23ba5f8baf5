"""Labels across video frames: carry the previous frame's labels forward, or propagate them
with optical flow over the next frames.

Propagated frames are saved as *predicted* with "propagated from frame N" as their author, so
the file list shows them for review; frames a person corrected or reviewed are left alone unless
the user ticks the box. Re-running from a corrected frame re-propagates from there.
"""

from __future__ import annotations

from PySide6.QtWidgets import (QCheckBox, QComboBox, QDialog, QDialogButtonBox, QFormLayout,
                               QSpinBox)

from segstudio.io.workspace import ItemStatus
from segstudio.ui.notice import Level
from segstudio.ui.background.tasks import BackgroundTask

PROTECTED = (ItemStatus.CORRECTED, ItemStatus.REVIEWED)


def install_frame_labels(window) -> "FrameLabels":
    tool = FrameLabels(window)
    menu = next(a.menu() for a in window.menuBar().actions()
                if a.menu() is not None and a.text().replace("&", "") == "Edit")
    menu.addSeparator()
    window._action("Carry labels forward from the previous frame", tool.carry_forward,
                   "Ctrl+Shift+F", menu)
    window._action("Propagate labels to the next frames…", tool.ask_propagate, None, menu)
    return tool


class FrameLabels:
    def __init__(self, window) -> None:
        self.window = window
        self.task: BackgroundTask | None = None

    def _neighbour(self, row: int, delta: int) -> int | None:
        """The row of the frame ``delta`` away in the same video, if there is one."""
        ws = self.window.workspace
        item = ws.items[row]
        target = row + delta
        if item.frame is None or not 0 <= target < len(ws.items):
            return None
        other = ws.items[target]
        if other.source != item.source or other.frame != item.frame + delta:
            return None
        return target

    def carry_forward(self) -> bool:
        """Copy the previous frame's labels onto this frame (one undo step)."""
        win, doc = self.window, self.window.doc
        if doc is None or win.workspace is None:
            return False
        prev = self._neighbour(doc.row, -1)
        if prev is None:
            win.statusBar().showMessage("Carry forward works on a video frame that has a "
                                        "previous frame", 4000)
            return False
        kept = win.document_for(prev)
        labels = (kept.labels.array if kept is not None
                  else win.workspace.load_labels(win.workspace.items[prev]))
        if labels is None:
            win.statusBar().showMessage("The previous frame has no labels yet", 4000)
            return False
        doc.labels.replace(labels, name="carry forward")
        win.statusBar().showMessage(f"Labels of frame {doc.item.frame} carried forward "  # from 1
                                    "(Ctrl+Z undoes it)", 4000)
        return True

    def ask_propagate(self) -> None:
        doc = self.window.doc
        if doc is None or doc.item.frame is None:
            self.window.statusBar().showMessage("Open a video frame with labels first", 4000)
            return
        dialog = QDialog(self.window)
        dialog.setWindowTitle("Propagate labels")
        form = QFormLayout(dialog)
        count = QSpinBox(dialog)
        count.setRange(1, 100000)
        count.setValue(10)
        method = QComboBox(dialog)
        method.addItems(["dis", "farneback"])
        overwrite = QCheckBox("Also replace frames a person corrected or reviewed", dialog)
        form.addRow("Frames after this one", count)
        form.addRow("Optical flow", method)
        form.addRow(overwrite)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                                   | QDialogButtonBox.StandardButton.Cancel, dialog)
        buttons.accepted.connect(dialog.accept)
        buttons.rejected.connect(dialog.reject)
        form.addRow(buttons)
        if dialog.exec():
            self.propagate(count.value(), method.currentText(), overwrite.isChecked())

    def propagate(self, count: int, method: str = "dis", overwrite: bool = False) -> bool:
        """Warp the shown frame's labels over the next ``count`` frames in a background thread."""
        from segstudio.refine.flow import FlowError, warp_labels

        win, ws, doc = self.window, self.window.workspace, self.window.doc
        if doc is None or ws is None or doc.item.frame is None or self.task is not None:
            return False
        rows = []
        row = doc.row
        for _ in range(count):
            row = self._neighbour(row, 1)
            if row is None:
                break
            rows.append(row)
        if not rows:
            win.statusBar().showMessage("No later frame to propagate to", 4000)
            return False
        if not win.maybe_save():
            return False
        start_rgb = doc.image.to_rgb8()
        start_labels = doc.labels.array.copy()
        source_frame = doc.item.frame

        def job(progress, cancelled):
            prev_rgb, labels, done = start_rgb, start_labels, 0
            for k, r in enumerate(rows):
                if cancelled():
                    break
                item = ws.items[r]
                rgb = ws.read_image(item).to_rgb8()
                labels = warp_labels(prev_rgb, rgb, labels, method)
                prev_rgb = rgb
                if overwrite or item.status not in PROTECTED:
                    ws.save_labels(item, labels, status=ItemStatus.PREDICTED,
                                   by=f"propagated from frame {source_frame}")
                    done += 1
                progress(k + 1, len(rows))
            return done

        self.task = BackgroundTask(job, (FlowError, ValueError, OSError), win)
        self.task.result = None

        def finished(done) -> None:
            self.task.result = done
            win.reload_workspace_view()
            what = "cancelled" if self.task.was_cancelled else "finished"
            win.notice.show_notice(
                f"Propagation {what}: labels carried to {done} of {len(rows)} frame(s), marked "
                "predicted for review; frames a person corrected keep their labels", Level.DONE)

        self.task.progressed.connect(lambda k, n: win.statusBar().showMessage(
            f"Propagating labels: frame {k} of {n}…", 3000))
        self.task.succeeded.connect(finished)
        self.task.failed.connect(win.show_error)
        self.task.finished.connect(self._finished)
        win.begin_busy()
        self.task.start()
        return True

    def _finished(self) -> None:
        self.task = None
        self.window.end_busy()
