"""The item on screen: its image, its editable label map and the overlay that shows it."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
from PySide6.QtGui import QImage

from segstudio.core.classes import ClassSet
from segstudio.core.labelmap import LabelMap
from segstudio.core.objectmap import ObjectMap
from segstudio.io.images import ImageData
from segstudio.ui.canvas.render import OverlayRenderer, rgb8_to_qimage


@dataclass
class Document:
    row: int                         # index of the item in the workspace
    item: object                     # segstudio.io.workspace.Item
    image: ImageData
    labels: LabelMap
    overlay: OverlayRenderer
    window: tuple[float, float] | None = None   # display window (centre, width) for 16-bit/DICOM
    saved_revision: int = 0
    failed_revision: int | None = None          # the revision whose save last failed
    prediction: object | None = None            # the model's last Prediction for this item
    notes: list[str] = field(default_factory=list)

    @classmethod
    def create(cls, row: int, item, image: ImageData, labels: np.ndarray | None,
               classes: ClassSet, hidden: set[int],
               objects: np.ndarray | None = None) -> "Document":
        if labels is None:
            labels = np.zeros((image.height, image.width), np.uint8)
        lm = LabelMap(labels)
        if objects is not None and objects.shape != lm.shape:
            # Refused rather than dropped: saving without them would delete the file.
            raise ValueError(f"{item.id}: its object map is {objects.shape[1]}×"
                             f"{objects.shape[0]} but its labels {lm.width}×{lm.height}; "
                             "correct or remove the file under objects/ to open the item")
        ObjectMap.attach(lm, objects)
        doc = cls(row, item, image, lm, OverlayRenderer(lm.array, classes, hidden=hidden),
                  window=image.window)
        doc.saved_revision = lm.revision
        return doc

    @property
    def dirty(self) -> bool:
        return self.labels.revision != self.saved_revision

    def mark_saved(self) -> None:
        self.saved_revision = self.labels.revision
        self.failed_revision = None

    @property
    def save_failed(self) -> bool:
        """The labels as they are now could not be saved (a read-only or full disk)."""
        return self.dirty and self.failed_revision == self.labels.revision

    def display_rgb8(self) -> np.ndarray:
        return self.image.to_rgb8(self.window)

    def display_qimage(self) -> QImage:
        """The picture as the canvas shows it; a grey one stays one byte per pixel (a third of
        an RGB copy, which matters for a 19,000² scan)."""
        if self.image.is_grey:
            return rgb8_to_qimage(self.image.to_grey8(self.window))
        return rgb8_to_qimage(self.display_rgb8())


class KeptDocuments:
    """Documents of recently shown items, least recently shown first, so going back to an item
    finds its labels and undo history as they were. Beyond ``limit`` the oldest is handed to
    ``evict`` (which saves it if it has unsaved edits) and dropped, unless ``evict`` returns
    False: a document whose edits could not be saved stays, however many that makes."""

    def __init__(self, limit: int, evict: Callable[[Document], bool]) -> None:
        self.limit = limit
        self._evict = evict
        self._docs: OrderedDict[int, Document] = OrderedDict()

    def take(self, row: int) -> Document | None:
        """The kept document of ``row``, removed from the cache (it is going on screen)."""
        return self._docs.pop(row, None)

    def get(self, row: int) -> Document | None:
        return self._docs.get(row)

    def keep(self, doc: Document) -> None:
        self._docs[doc.row] = doc
        for old in list(self._docs.values())[:-1]:      # oldest first, never the one just kept
            if len(self._docs) <= self.limit:
                break
            if self._evict(old):
                del self._docs[old.row]

    def clear(self) -> list[Document]:
        """Forget every kept document (without saving) and return them."""
        docs = list(self._docs.values())
        self._docs.clear()
        return docs

    def __iter__(self) -> Iterator[Document]:
        return iter(list(self._docs.values()))

    def __len__(self) -> int:
        return len(self._docs)
