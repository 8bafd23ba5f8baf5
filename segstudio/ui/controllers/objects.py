"""Editing objects (instances) on the canvas: selection, the Objects menu and panel, outlines.

The selected object is outlined (thick, with its id and class); with View ▸ Instance outlines on,
every object of the item is outlined and tagged (objects just as the model gave them are drawn
by the prediction layer, with the model's scores). The Objects panel lists the objects under their
class with pixel counts; clicking one selects it. Every edit is one undo step of the item's
label map, which carries the object map as a second plane (:mod:`segstudio.core.objectmap`).
"""

from __future__ import annotations

import cv2
import numpy as np
from PySide6.QtCore import QObject, QPointF, QRectF, Qt, QTimer
from PySide6.QtGui import QColor, QPainter, QPen, QPolygonF
from PySide6.QtWidgets import QTreeWidget, QTreeWidgetItem, QVBoxLayout, QWidget

from segstudio.core.geometry import Rect
from segstudio.core.objectmap import ObjectMap, ObjectMapError
from segstudio.ui.panels.object_scores import ObjectScores
from segstudio.ui.tools.object_tools import (ObjectBrushTool, ObjectEraserTool, ObjectPolygonTool,
                                             ObjectSelectTool, ObjectSplitTool)

SELECTED = QColor(255, 230, 0)
OUTLINE = QColor(255, 255, 255, 200)


class ObjectsPanel(QWidget):
    """The objects of the item on screen, grouped by class, with pixel counts."""

    def __init__(self, editing: "ObjectEditing") -> None:
        super().__init__()
        self.editing = editing
        self.tree = QTreeWidget(self)
        self.tree.setHeaderLabels(["Object", "Pixels"])
        self.tree.itemClicked.connect(self._clicked)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.tree)

    def show_objects(self, objects: ObjectMap | None, names) -> None:
        self.tree.clear()
        if objects is None:
            return
        counts, classes = objects.counts(), objects.classes()
        groups: dict[int, QTreeWidgetItem] = {}
        for k in sorted(classes, key=lambda k: (classes[k], k)):
            cls = classes[k]
            if cls not in groups:
                name = names[cls] if cls < len(names) else f"class {cls}"
                groups[cls] = QTreeWidgetItem(self.tree, [name, ""])
                groups[cls].setData(0, Qt.ItemDataRole.UserRole, None)
            row = QTreeWidgetItem(groups[cls], [f"object {k}", f"{counts.get(k, 0):,}"])
            row.setData(0, Qt.ItemDataRole.UserRole, k)
        for cls, group in groups.items():
            group.setText(1, f"{group.childCount()} object(s)")
        self.tree.expandAll()

    def rows(self) -> list[tuple[str, int, int]]:
        """(class name, object id, pixels) of every listed object, in the panel's order."""
        out = []
        for i in range(self.tree.topLevelItemCount()):
            group = self.tree.topLevelItem(i)
            for j in range(group.childCount()):
                row = group.child(j)
                out.append((group.text(0), row.data(0, Qt.ItemDataRole.UserRole),
                            int(row.text(1).replace(",", ""))))
        return out

    def _clicked(self, row: QTreeWidgetItem, _column: int) -> None:
        k = row.data(0, Qt.ItemDataRole.UserRole)
        if k is not None:
            self.editing.select([int(k)])


class ObjectEditing(QObject):
    """Selection and object edits for the window; adds the object tools and panel."""

    def __init__(self, window) -> None:
        super().__init__(window)
        self.window = window
        self.selected: list[int] = []
        self._labels = None
        self._outlines_key = None
        self._outlines: dict[int, list[QPolygonF]] = {}
        self._anchors: dict[int, tuple[float, float]] = {}
        for tool in (ObjectSelectTool(window, self), ObjectSplitTool(window, self),
                     ObjectBrushTool(window, self), ObjectEraserTool(window, self),
                     ObjectPolygonTool(window, self)):
            window.tools[tool.name] = tool
        self.panel = ObjectsPanel(self)
        self.scores = ObjectScores(window)            # the Scores panel's object line
        self._refresh = QTimer(self, singleShot=True, interval=150)
        self._refresh.timeout.connect(self.refresh_panel)
        window.canvas.decorations.append(self.draw)
        window.documentShown.connect(self._document_shown)

    def install_panel(self) -> None:
        """Dock the Objects panel as a tab behind the class legend, so the window needs no more
        height than before (it must fit a 1280×720 screen)."""
        from PySide6.QtWidgets import QDockWidget

        dock = self.window._dock(self.panel, "Objects", Qt.DockWidgetArea.RightDockWidgetArea)
        legend = self.window.legend.parentWidget()
        if isinstance(legend, QDockWidget):
            self.window.tabifyDockWidget(legend, dock)
            legend.raise_()

    def build_menu(self, menu) -> None:
        w = self.window
        w._action("&Delete the selected object", lambda: self.delete_selected(), "Delete", menu,
                  "Its pixels become background")
        w._action("Give the selected object the &current class", lambda: self.set_class_selected(),
                  "Shift+K", menu)
        w._action("&Merge the two selected objects", lambda: self.merge_selected(), "Shift+M", menu,
                  "Shift+click a second object with the Select object tool first")
        w._action("&New object (clear the selection)", lambda: self.clear_selection(), None, menu,
                  "The object brush and polygon then start a new object")

    # -- state -------------------------------------------------------------------------------
    def objects(self) -> ObjectMap | None:
        labels = self.window.labelmap()
        return None if labels is None else labels.objects

    def _document_shown(self, doc) -> None:
        if self._labels is not None:
            self._labels.remove_listener(self._changed)
        self._labels = doc.labels if doc is not None else None
        if self._labels is not None:
            self._labels.add_listener(self._changed)
        self.selected = []
        self._outlines_key = None
        self.refresh_panel()

    def _changed(self, _rect) -> None:
        objects = self.objects()
        present = objects.classes() if objects is not None else {}
        self.selected = [k for k in self.selected if k in present]
        self._refresh.start()

    def refresh_panel(self) -> None:
        self.panel.show_objects(self.objects(), self.window.classes.names)

    def select(self, ids: list[int]) -> None:
        self.selected = list(ids)
        self._say_selected()
        self.window.canvas.update()

    def clear_selection(self) -> None:
        self.select([])

    def pick(self, x: int, y: int, *, add: bool = False) -> int:
        """Select the object at (x, y) (0 and no selection where there is none)."""
        objects = self.objects()
        k = objects.at(x, y) if objects is not None else 0
        k = k if objects is not None and k in objects.classes() else 0
        if not k:
            self.select([] if not add else self.selected)
            return 0
        if add and self.selected and k not in self.selected:
            self.select([self.selected[-1], k])
        else:
            self.select([k])
        return k

    def _say_selected(self) -> None:
        objects = self.objects()
        if objects is None or not self.selected:
            self.window.statusBar().showMessage("No object selected", 3000)
            return
        names = self.window.classes.names
        parts = [f"object {k} ({names[objects.class_of(k)]}, {objects.counts().get(k, 0):,} px)"
                 for k in self.selected]
        self.window.statusBar().showMessage("Selected " + " and ".join(parts), 6000)

    # -- edits -------------------------------------------------------------------------------
    def _edit(self, what) -> object:
        try:
            result = what()
        except ObjectMapError as e:
            self.window.show_error(str(e))
            return None
        self._after_edit()
        return result

    def _after_edit(self) -> None:
        self.window.update_modified()
        self.window.canvas.update()
        self.refresh_panel()

    def _need(self, n: int) -> ObjectMap | None:
        objects = self.objects()
        if objects is None or len(self.selected) < n:       # a hint, not an error dialog
            self.window.statusBar().showMessage(
                "Select an object first (Select object tool, J)" if n == 1 else
                "Select two objects: click one, Shift+click the other", 5000)
            return None
        return objects

    def delete_selected(self) -> None:
        objects = self._need(1)
        if objects is None:
            return
        ids, self.selected = list(self.selected), []
        with objects.labels.step("delete object"):
            for k in ids:
                self._edit(lambda k=k: objects.delete(k))
        self.window.statusBar().showMessage(f"Deleted object {', '.join(map(str, ids))}", 4000)

    def set_class_selected(self, cls: int | None = None) -> None:
        objects = self._need(1)
        if objects is None:
            return
        cls = self.window.current_class() if cls is None else int(cls)
        with objects.labels.step("object class"):
            for k in self.selected:
                self._edit(lambda k=k: objects.set_class(k, cls))
        self._say_selected()

    def merge_selected(self) -> None:
        objects = self._need(2)
        if objects is None:
            return
        keep, other = self.selected[0], self.selected[1]
        if self._edit(lambda: objects.merge(keep, other)) is not None:
            self.select([keep])

    def split(self, line: list[tuple[float, float]]) -> list[int]:
        objects = self.objects()
        if objects is None:
            self.window.show_error("This item has no objects to split")
            return []
        k = self.selected[0] if self.selected else 0
        if not k:                               # the object the line crosses most
            hits = [objects.at(int(x), int(y)) for x, y in line]
            hits = [h for h in hits if h in objects.classes()]
            k = max(set(hits), key=hits.count) if hits else 0
        if not k:
            self.window.show_error("Draw the line across an object to split it")
            return []
        width = max(1, round(1 / max(self.window.canvas.scale, 1e-6)))
        pieces = self._edit(lambda: objects.split(k, line, width)) or []
        if pieces:
            self.select(pieces)
            self.window.statusBar().showMessage(
                f"Split object {k} into {', '.join(map(str, pieces))}", 5000)
        return pieces

    def paint(self, mask: np.ndarray, box: Rect, cls: int, *, erase: bool) -> Rect:
        """One brush segment or polygon of the object tools (see their module)."""
        labels = self.window.labelmap()
        if labels is None:
            return Rect.empty()
        objects = ObjectMap.of(labels)
        k = self.selected[0] if self.selected else 0
        try:
            if erase:
                if not k:
                    self.window.statusBar().showMessage(
                        "Select an object to shrink it with the object eraser", 4000)
                    return Rect.empty()
                rect = objects.shrink(k, mask, box)
            elif not k:
                k = objects.paint_new(mask, box, cls)
                self.selected = [k]
                rect = box
            else:
                rect = objects.grow(k, mask, box)
        except ObjectMapError as e:
            self.window.statusBar().showMessage(str(e), 4000)
            return Rect.empty()
        self._after_edit()
        return rect

    # -- drawing -----------------------------------------------------------------------------
    def _outline(self, objects: ObjectMap, shown: list[int]) -> None:
        """Outlines and tag anchors of the ``shown`` objects, made once per edit: one pass over
        the map finds the object pixels, then each object is traced inside its own box."""
        key = (id(objects), objects.labels.revision, tuple(shown))
        if key == self._outlines_key:
            return
        self._outlines_key, self._outlines, self._anchors = key, {}, {}
        ids = objects.array
        ys, xs = np.nonzero(np.isin(ids, shown))
        values = ids[ys, xs]
        for k in shown:
            at = values == k
            if not at.any():
                continue
            x0, y0 = int(xs[at].min()), int(ys[at].min())
            box = Rect(x0, y0, int(xs[at].max()) + 1, int(ys[at].max()) + 1)
            mine = (ids[box.slices] == k).astype(np.uint8)
            contours, _ = cv2.findContours(mine, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
            self._outlines[k] = [QPolygonF([QPointF(x0 + x, y0 + y) for x, y in c[:, 0]])
                                 for c in contours if len(c) >= 2]
            self._anchors[k] = (x0, y0)

    def draw(self, painter: QPainter, canvas) -> None:
        objects = self.objects()
        if objects is None or not objects.has_objects():
            return
        # Objects as the model gave them are outlined by the prediction layer (with scores).
        every = bool(getattr(self.window.layers, "instances", False)) and not objects.as_predicted
        if not every and not self.selected:
            return
        classes = objects.classes()
        shown = sorted(classes) if every else [k for k in self.selected if k in classes]
        self._outline(objects, shown)
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        names = self.window.classes.names
        for k in [k for k in shown if k in self._outlines]:
            chosen = k in self.selected
            painter.setPen(QPen(SELECTED if chosen else OUTLINE, 3 if chosen else 1.2))
            for poly in self._outlines[k]:
                painter.drawPolygon(QPolygonF([canvas.to_widget(p) for p in poly]))
            cls = classes.get(k, 0)
            text = f"{k} {names[cls] if cls < len(names) else cls}"
            at = canvas.to_widget(QPointF(*self._anchors[k]))
            box = QRectF(at.x(), at.y() - 15, painter.fontMetrics().horizontalAdvance(text) + 6, 14)
            painter.fillRect(box, SELECTED if chosen else QColor(0, 0, 0, 160))
            painter.setPen(QColor(0, 0, 0) if chosen else QColor(255, 255, 255))
            painter.drawText(box, int(Qt.AlignmentFlag.AlignCenter), text)
        painter.restore()
