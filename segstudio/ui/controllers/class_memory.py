"""The class set a person last chose for each kind of data (DICOM, video, grey pictures,
colour photos), kept in the settings, so a new folder of photos does not start with the chest
X-ray classes because the last folder was radiographs."""

from __future__ import annotations

import base64
import binascii
import json

from PySide6.QtWidgets import QInputDialog

from segstudio.core.classes import ClassSet, ClassSetError, chest_xray, voc21
from segstudio.io.data_kind import DESCRIBED

_KEY = "classes/{}"


class ClassMemory:
    def __init__(self, window) -> None:
        self.window = window

    def recall(self, kind: str) -> ClassSet | None:
        raw = self.window.settings.value(_KEY.format(kind))
        if not isinstance(raw, str):
            return None
        try:
            return ClassSet.from_dict(json.loads(base64.b64decode(raw, validate=True)))
        except (ValueError, TypeError, RecursionError, ClassSetError, binascii.Error):
            return None                 # a damaged setting is forgotten, never fatal

    def remember(self, kind: str, classes: ClassSet) -> None:
        # base64: an INI settings file would read a JSON text with commas back as a list
        data = json.dumps(classes.to_dict()).encode()
        self.window.settings.setValue(_KEY.format(kind), base64.b64encode(data).decode("ascii"))

    def starting_set(self, kind: str, current: ClassSet) -> ClassSet:
        """The set a new workspace of ``kind`` starts with: the one last chosen for that kind;
        else the radiology preset for DICOM and grey pictures, and for photos and videos the
        person is asked (a window that cannot ask keeps ``current``). The window says which."""
        remembered = self.recall(kind)
        if remembered is not None:
            return remembered
        if kind in ("dicom", "grey"):
            return chest_xray()
        if self.window.interactive:
            return self.ask(kind, current) or current
        return current

    def ask(self, kind: str, current: ClassSet) -> ClassSet | None:
        options = {f"{s.title} ({len(s)} classes: {', '.join(s.names[:4])} …)": s
                   for s in (voc21(), chest_xray(), current)}
        labels = list(options)
        choice, ok = QInputDialog.getItem(
            self.window, "Classes for this folder",
            f"This is a new folder of {DESCRIBED[kind]}. Which classes will you label?\n"
            "(Another set can be loaded later with the legend's Class set button.)",
            labels, 0, False)
        if not ok:
            return None
        chosen = options[choice]
        self.remember(kind, chosen)
        return chosen
