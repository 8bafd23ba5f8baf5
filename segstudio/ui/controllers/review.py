"""Review mode: step through items and accept or send back each one, with no model needed.

Keys: → next, ← previous (D and A too), Y accept (the labels as they are become *reviewed*, saved at
once, then on to the next unreviewed item), X reject-and-edit (leave review mode on this item
with the brush in hand; saving marks it *corrected*). Outside review mode, N still jumps to the
next item not yet reviewed.
"""

from __future__ import annotations

from segstudio.io.workspace import ItemStatus


class Review:
    def __init__(self, window) -> None:
        self.window = window
        self.active = False
        self._saved_tool = None

    def next_unreviewed(self, start: int | None = None) -> bool:
        ws, doc = self.window.workspace, self.window.doc
        if ws is None:
            return False
        begin = (doc.row if doc is not None else -1) if start is None else start
        n = len(ws.items)
        for k in range(1, n + 1):
            row = (begin + k) % n
            if ws.items[row].status is not ItemStatus.REVIEWED:
                return self.window.show_row(row)
        self.window.statusBar().showMessage("Every item is reviewed", 4000)
        return False

    def set_active(self, on: bool) -> None:
        if on == self.active:
            return
        self.active = on
        canvas = self.window.canvas
        if on:
            self._saved_tool = canvas.tool
            if canvas.tool is not None:
                canvas.tool.cancel()
            canvas.tool = None            # looking, not painting: no stray strokes
            self.window.statusBar().showMessage(
                "Review mode: Y accept · X reject and edit · → next · ← previous · N next unreviewed", 0)
        else:
            canvas.tool = self._saved_tool
            self.window.statusBar().clearMessage()
        self.window.review_action.setChecked(on)
        for act in self.window.review_actions:
            act.setEnabled(on)
        canvas.update()

    def accept(self) -> bool:
        win = self.window
        doc = win.doc
        if not self.active or doc is None:
            return False
        if not win.save_document(doc, status=ItemStatus.REVIEWED, by="review"):
            return False
        win.files.model.item_changed(doc.row)
        self.next_unreviewed()
        return True

    def reject(self) -> bool:
        if not self.active or self.window.doc is None:
            return False
        self.set_active(False)
        self.window.set_tool("Brush")
        self.window.statusBar().showMessage("Correct the labels, then Ctrl+S (marks the item "
                                            "corrected) and N for the next one", 6000)
        return True

    def step(self, delta: int) -> None:
        if self.active:
            self.window.step_item(delta)
