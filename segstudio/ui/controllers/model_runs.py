"""Running models from the window: the model panel, the worker thread, and applying results.

A prediction replaces the labels of an item only while nobody has corrected them; corrected and
reviewed items keep their labels and get the prediction beside them (for scores and comparison).
An instance model's objects follow the same rule: they replace the item's object map with its
labels, or not at all.

A model's class names are the truth for its predictions. Before a run, names the workspace
lacks are asked about (use the model's set while nothing is labelled, add them and map by name,
or cancel); predictions are then mapped by name, never relabelled by index.
"""

from __future__ import annotations

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QMessageBox

from segstudio.core.class_mapping import ClassMapping, remap_prediction, same_names
from segstudio.core.classes import ClassSet, chest_xray
from segstudio.core.objectmap import objects_from_instances, take_prediction
from segstudio.io.object_store import save_objects
from segstudio.io.workspace import ItemStatus
from segstudio.paths import user_data_dir, weights_dir
from segstudio.ui.canvas import domain_notice
from segstudio.ui.notice import Level
from segstudio.ui.panels.model import ModelPanel
from segstudio.ui.background.workers import Job, ModelChoice, ModelRunner

PROTECTED = (ItemStatus.CORRECTED, ItemStatus.REVIEWED)


class ModelRuns(QObject):
    def __init__(self, window) -> None:
        super().__init__(window)
        self.window = window
        self.panel = ModelPanel(window)
        self.runner = ModelRunner(self)
        self.model_info: dict | None = None
        self._overwrite: set[int] = set()      # rows whose corrected labels the user lets go
        self._queue_total = 0
        self._failures = 0
        self.run_when_ready = False
        self.prefer_checkpoint = "chest_xray_unet_lite.pt"   # the demo's bundled model
        self._catalog_loaded = False
        self._full_list_due = False        # only the model to run at once is listed so far
        self._workspace_seen = None        # the workspace a model was last preselected for
        self._loading_file = None          # the ModelChoice of a model file being checked
        self.mapping: ClassMapping | None = None   # model → workspace classes for this run
        window.documentShown.connect(self._document_shown)
        p, r = self.panel, self.runner
        p.runCurrent.connect(self.run_current)
        p.runAll.connect(self.run_all)
        p.runSelected.connect(self.run_selected)
        p.cancel.connect(r.cancel)
        p.pause.connect(self._pause)
        p.modelFileChosen.connect(self.load_model_file)
        r.started.connect(self._started)
        r.catalogReady.connect(self._catalog_ready)
        r.modelReady.connect(self.model_ready)
        r.precisionSettled.connect(self._precision_measured)
        r.result.connect(self.apply)
        r.progress.connect(p.show_progress)
        r.progress.connect(self._status_progress)
        r.failed.connect(self._failed)
        r.finished.connect(self._finished)
        domain_notice.install(window)

    def start(self) -> None:
        """List bundled and user checkpoints in the worker (it imports torch, not the GUI).

        When a bundled model is to run at once (the demo), its file alone is listed first, so
        that it runs as soon as torch is in; the full list is read after that run is queued."""
        self.window.begin_busy()
        first = weights_dir() / self.prefer_checkpoint
        if self.run_when_ready and first.is_file():
            self._full_list_due = True
            self.runner.list_models(self._model_folders(), only=first)
        else:
            self.runner.list_models(self._model_folders())

    @staticmethod
    def _model_folders():
        # The user's own fine-tuned models first (newest first), then the bundled ones.
        return [user_data_dir() / "models", weights_dir()]

    def shutdown(self) -> None:
        self.runner.shutdown()

    def load_model_file(self, path) -> None:
        """Load a model file or folder of any format in the worker; it joins the model list
        once it loaded and its outputs fit its classes, else the reason is shown."""
        p = self.panel
        choice = ModelChoice("file", model_file=path, device=p.device_combo.currentText(),
                             precision=p.precision_combo.currentText())
        self._loading_file = choice
        self._queue_total = 0
        self.window.begin_busy()
        self.window.statusBar().showMessage(f"Loading {path.name}…", 4000)
        self.runner.load(choice)

    # -- which model fits --------------------------------------------------------------------
    def model_classes(self, entry) -> ClassSet:
        """The class set ``entry``'s model predicts, with the file's colours where it has them."""
        if getattr(entry, "class_set", None) is not None:
            return entry.class_set
        return ClassSet(entry.classes, title=entry.title) if entry.classes else chest_xray()

    def prepare_classes(self) -> bool:
        """Settle, before anything runs, how the chosen model's class names meet the
        workspace's; False if the user cancelled.

        The same names: run as is. Names the workspace has, at other indices: map by name.
        Names it lacks: ask (:meth:`ask_classes`). A prediction is never relabelled by index.
        """
        self.mapping = None
        entry, ws, current = self.panel.current_entry(), self.window.workspace, self.window.classes
        if entry is None or ws is None:
            return True
        model = self.model_classes(entry)
        if same_names(model, current):
            return True
        mapping = ClassMapping.by_name(model, current)
        if mapping.added:
            labelled = any(i.status is not ItemStatus.UNLABELLED for i in ws.items)
            choice = self.ask_classes(entry.title, model, mapping, labelled)
            if choice is None:
                self.window.statusBar().showMessage("Model run cancelled: the classes were "
                                                    "left as they are", 5000)
                return False
            if choice == "model":
                self.window.set_classes(model)
                return True
            self.window.set_classes(mapping.target)
            self.window.statusBar().showMessage(
                f"Added the model's classes {', '.join(mapping.added)}; its predictions are "
                "mapped by name", 6000)
        self.mapping = mapping
        return True

    def ask_classes(self, title: str, model: ClassSet, mapping: ClassMapping,
                    labelled: bool) -> str | None:
        """``"model"`` (use the model's class set), ``"map"`` (add the names the workspace
        lacks, map by name) or None (cancel). Replacing the set is offered only while nothing
        is labelled. A window that cannot ask takes the model's set while nothing is labelled,
        else maps by name: neither reinterprets a label."""
        if not self.window.interactive:
            return "map" if labelled else "model"
        current = self.window.classes
        text = (f"{title} predicts: {', '.join(model.names)}.\n"
                f"This workspace's classes ({current.title}): {', '.join(current.names)}.\n\n"
                "Labels are never relabelled by number: a prediction keeps its class names.")
        if labelled:
            text += ("\n\nThe workspace has labels, so its class set stays; the model's "
                     f"classes {', '.join(mapping.added)} can be added to it.")
        box = QMessageBox(QMessageBox.Icon.Question, "The model's classes", text,
                          QMessageBox.StandardButton.NoButton, self.window)
        use = None if labelled else box.addButton(
            f"Use the model's classes ({len(model)})", QMessageBox.ButtonRole.AcceptRole)
        add = box.addButton(f"Add {', '.join(mapping.added)} and map by name",
                            QMessageBox.ButtonRole.AcceptRole)
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(use or add)
        box.exec()
        clicked = box.clickedButton()
        return "model" if use is not None and clicked is use else "map" if clicked is add \
            else None

    def preselect_for(self, classes) -> bool:
        """Choose a trained model that predicts ``classes`` (by name) unless the chosen one
        does. False if none does; a model of other classes is never chosen for its count."""
        current = self.panel.current_entry()
        if current is not None and same_names(self.model_classes(current), classes):
            return True
        for i, e in enumerate(self.panel.entries):
            if e.trained and not e.broken and same_names(self.model_classes(e), classes):
                if e is not current:
                    self.panel.select_entry(i)
                return True
        return False

    def _document_shown(self, _doc) -> None:
        ws = self.window.workspace
        if ws is not None and ws is not self._workspace_seen and self._catalog_loaded:
            self._workspace_seen = ws
            self.preselect_for(ws.classes)

    # -- running -----------------------------------------------------------------------------
    def run_current(self) -> bool:
        doc, choice = self.window.doc, self.panel.current_choice()
        if doc is None or choice is None or not self.prepare_classes():
            return False
        # The model sees the image through its default window, not the one the user is
        # dragging for display: a defined conversion, the same as in `segstudio predict`.
        rgb = doc.image.to_rgb8()
        self._start([self._job(doc.row, lambda: rgb)], choice)
        return True

    def run_selected(self) -> bool:
        """The items selected in the file list (the shown one if none is)."""
        ws, choice = self.window.workspace, self.panel.current_choice()
        rows = self.window.files.selected_rows()
        if ws is None or choice is None or not rows:
            return self.run_current()
        if not self.prepare_classes():
            return False
        overwrite = self.panel.overwrite_box.isChecked()
        jobs = [self._job(row, lambda item=ws.items[row]: ws.read_image(item).to_rgb8(), overwrite)
                for row in rows if overwrite or ws.items[row].status not in PROTECTED]
        if not jobs:
            self.window.statusBar().showMessage("The selected items have corrected labels", 4000)
            return False
        self._start(jobs, choice)
        return True

    def run_all(self) -> bool:
        ws, choice = self.window.workspace, self.panel.current_choice()
        if ws is None or choice is None or not self.prepare_classes():
            return False
        overwrite = self.panel.overwrite_box.isChecked()
        jobs = [self._job(row, lambda item=item: ws.read_image(item).to_rgb8(), overwrite)
                for row, item in enumerate(ws.items)
                if overwrite or item.status not in PROTECTED]
        if not jobs:
            self.window.statusBar().showMessage("Every item has corrected labels already", 4000)
            return False
        self._start(jobs, choice)
        return True

    def _job(self, row: int, load_rgb, overwrite: bool = False) -> Job:
        """A job whose files (the raw prediction always; the labels of an item nobody has
        corrected) are written in the worker thread, so no PNG is encoded on the GUI thread."""
        ws = self.window.workspace
        item = ws.items[row]
        write_labels = overwrite or item.status not in PROTECTED
        mapping = self.mapping
        self._overwrite.discard(row)
        if overwrite:
            self._overwrite.add(row)

        def store(prediction) -> None:
            if mapping is not None:             # the model's names → the workspace's indices
                remap_prediction(prediction, mapping)
            if prediction.probabilities.shape[0] != len(ws.classes):
                return                     # the GUI thread decides about a class mismatch
            ws.save_prediction(item, prediction.labels)
            save_objects(ws, item, _objects(prediction), predicted=True)
            if write_labels:
                save_objects(ws, item, _objects(prediction))
                ws.write_label_file(item, prediction.labels)

        return Job(row, load_rgb, store)

    def _status_progress(self, done: int, total: int) -> None:
        # Also in the status bar: the Model panel may sit behind another tab.
        if total > 1 and done < total:
            self.window.statusBar().showMessage(f"Running the model: {done} of {total} items "
                                                "done…", 5000)

    def _pause(self, paused: bool) -> None:
        self.runner.set_paused(paused)
        self.panel.queue_label.setText("Paused after the current item" if paused else "")

    def _started(self, row: int) -> None:
        ws = self.window.workspace
        if ws is not None and 0 <= row < len(ws.items) and not self.runner.paused:
            done = self.panel.progress.value()
            self.panel.queue_label.setText(f"Now: {ws.items[row].id} · "
                                           f"{self._queue_total - done} left in the queue")

    def _start(self, jobs: list[Job], choice) -> None:
        self._queue_total = len(jobs)
        self._failures = 0
        self.window.begin_busy()
        self.panel.set_running(True)
        self.panel.show_progress(0, len(jobs))
        self.runner.run(choice, jobs)

    # -- results -----------------------------------------------------------------------------
    def apply(self, row: int, prediction) -> None:
        win = self.window
        self._precision_settled(prediction)
        ws = win.workspace
        if ws is None or not 0 <= row < len(ws.items):
            return
        item = ws.items[row]
        if prediction.probabilities.shape[0] != len(win.classes):
            # Settled before the run (prepare_classes); the workspace's set changed since.
            win.show_error(f"The model predicts {prediction.probabilities.shape[0]} classes but "
                           f"this workspace now has {len(win.classes)}; its result was not "
                           "applied.")
            return
        doc = win.document_for(row)
        by = self.model_info["label"] if self.model_info else "model"
        replace = item.status not in PROTECTED or row in self._overwrite
        self._overwrite.discard(row)
        if doc is not None:
            doc.prediction = prediction
            if replace and not doc.dirty:
                with doc.labels.step("prediction"):      # classes and objects: one undo step
                    doc.labels.replace(prediction.labels, name="prediction")
                    take_prediction(doc.labels, getattr(prediction, "instances", None))
                if ws.label_path(item).exists():        # written by the worker
                    doc.mark_saved()
                    win.autosave.saved(item)
                    ws.set_status(item, ItemStatus.PREDICTED, by=by)
                else:
                    win.save_document(doc, status=ItemStatus.PREDICTED, by=by)
            else:
                win.statusBar().showMessage(
                    f"{item.id}: your corrected labels were kept; the prediction is shown for "
                    "comparison only", 6000)
        elif replace:
            if ws.label_path(item).exists():         # written by the worker
                ws.set_status(item, ItemStatus.PREDICTED, by=by)
            else:
                save_objects(ws, item, _objects(prediction))
                ws.save_labels(item, prediction.labels, status=ItemStatus.PREDICTED, by=by)
        win.files.model.item_changed(row)
        if doc is win.doc:
            win.prediction_shown(prediction)
            win.metrics.labels_changed()        # re-scored on the panel's timer, not here

    def _catalog_ready(self, entries) -> None:
        self.panel.set_catalog(entries)
        self._catalog_loaded = True
        for i, e in enumerate(entries):
            ckpt = e.choice.checkpoint
            if ckpt is not None and ckpt.name == self.prefer_checkpoint and not e.broken:
                self.panel.select_entry(i)
                break
        ws = self.window.workspace
        if ws is not None:
            self._workspace_seen = ws
            self.preselect_for(ws.classes)

    def model_ready(self, info: dict) -> None:
        """A model is loaded (here or by the video pipeline): show what it is and runs with."""
        pending, self._loading_file = self._loading_file, None
        if pending is not None and info.get("label") == pending.label:
            self.panel.add_model_file(pending, info)
        self._show_model(info)

    def _show_model(self, info: dict) -> None:
        """The Model panel and the status bar's device label show ``info``."""
        self.model_info = info
        self.panel.show_model(info)
        self.window.device_label.setText(f"{info['device']} · {info['precision']}")
        self.window.device_label.setToolTip(info.get("precision_note", ""))

    def _precision_settled(self, prediction) -> None:
        """``auto`` precision is measured on the model's first image: show what it chose."""
        info = self.model_info
        note = getattr(prediction, "precision_note", "")
        if info is not None and note and note != info.get("precision_note"):
            self._show_model({**info, "precision": prediction.precision,
                              "precision_note": note})

    def _precision_measured(self, info: dict) -> None:
        """``auto`` was measured after the first result was shown: say what it chose, and that
        it applies from the next image."""
        note = info.get("precision_note", "")
        if info["precision"] != "fp32":
            note += ("; in use from the next image (the first was predicted in fp32 while this "
                     "was measured)")
        self._show_model({**info, "precision_note": note})
        self.window.statusBar().showMessage(
            f"Precision measured: {info['precision']} from the next image on"
            if info["precision"] != "fp32" else "Precision measured: fp32 kept", 8000)

    def _failed(self, row: int, message: str) -> None:
        self._failures += 1
        ws = self.window.workspace
        name = ws.items[row].id if ws is not None and 0 <= row < len(ws.items) else ""
        self.window.show_error(f"{name + ': ' if name else ''}{message}")

    def _finished(self, cancelled: bool) -> None:
        self._loading_file = None                # loaded (and listed) or failed (and said)
        self.panel.set_running(False)
        if cancelled:
            self.window.statusBar().showMessage("Model run cancelled", 4000)
        elif self._queue_total > 1:
            failed = f"; {self._failures} failed (see above)" if self._failures else ""
            self.window.notice.show_notice(
                f"Model run finished: {self._queue_total - self._failures} of "
                f"{self._queue_total} items segmented{failed}",
                Level.WARNING if self._failures else Level.DONE)
        if self.run_when_ready and self._catalog_loaded and self.window.doc is not None:
            self.run_when_ready = False
            if self.panel.current_entry() is not None and self.panel.current_entry().trained:
                self.run_current()
        if self._full_list_due and self._catalog_loaded:
            self._full_list_due = False
            self.window.begin_busy()
            self.runner.list_models(self._model_folders())
        self.window.end_busy()


def _objects(prediction):
    """The prediction's object map (None for a model without instances)."""
    instances = getattr(prediction, "instances", None)
    return None if instances is None else objects_from_instances(instances)
