import numpy as np
import pytest
from PIL import Image

from segstudio.io.workspace import ItemStatus


def _start(window, qtbot):
    window.models.start()
    qtbot.waitUntil(lambda: window.models._catalog_loaded, timeout=120_000)
    qtbot.waitUntil(window.is_idle, timeout=60_000)


def _pick(window, arch, trained=False):
    panel = window.models.panel
    for i, e in enumerate(panel.entries):
        if e.choice.arch == arch and e.trained == trained:
            panel.select_entry(i)
            return e
    pytest.fail(f"{arch} is not in the model picker")


def test_untrained_model_runs_in_the_background_and_says_it_is_noise(window, image_folder, qtbot):
    window.open_paths([image_folder])
    _start(window, qtbot)
    _pick(window, "unet")
    assert window.models.panel.warning_label.isVisibleTo(window.models.panel)
    assert "noise" in window.models.panel.warning_label.text()
    assert window.models.run_current()
    assert not window.is_idle()
    qtbot.waitUntil(window.is_idle, timeout=120_000)
    doc = window.doc
    assert doc.prediction is not None and doc.prediction.trained is False
    assert doc.prediction.labels.shape == doc.labels.shape
    np.testing.assert_array_equal(doc.labels.array, doc.prediction.labels)
    assert doc.item.status == ItemStatus.PREDICTED
    assert "cpu" in window.device_label.text()
    assert "UNTRAINED" in window.statusBar().currentMessage()


def _corrected_item_and_model(window, image_folder, qtbot):
    """The first item painted and saved (corrected), and an untrained U-Net picked."""
    from helpers import drag

    window.open_paths([image_folder])
    window.legend.select_class(3)
    drag(window.canvas, [(10, 10), (60, 10)])
    window.save_current()
    _start(window, qtbot)
    _pick(window, "unet")
    return window.doc.labels.array.copy()


def test_a_prediction_never_overwrites_corrected_labels(window, image_folder, qtbot):
    corrected = _corrected_item_and_model(window, image_folder, qtbot)
    window.models.run_current()
    qtbot.waitUntil(window.is_idle, timeout=120_000)
    np.testing.assert_array_equal(window.doc.labels.array, corrected)
    assert window.doc.prediction is not None
    assert window.doc.item.status == ItemStatus.CORRECTED


def test_cancel_stops_a_workspace_run_within_one_item(window, tmp_path, qtbot):
    folder = tmp_path / "many"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(30):
        Image.fromarray(rng.integers(0, 255, (96, 96), dtype=np.uint8)).save(folder / f"{i:03d}.png")
    window.open_paths([folder])
    _start(window, qtbot)
    _pick(window, "unet")
    done = []
    window.models.runner.result.connect(lambda row, _: done.append(row))
    assert window.models.run_all()
    qtbot.waitUntil(lambda: len(done) >= 1, timeout=120_000)
    window.models.panel.cancel_button.click()
    qtbot.waitUntil(window.is_idle, timeout=60_000)
    assert 1 <= len(done) < 30
    statuses = [item.status for item in window.workspace.items]
    assert statuses.count(ItemStatus.PREDICTED) == len(done)
    assert "cancelled" in window.statusBar().currentMessage()


def test_pause_holds_the_queue_and_resume_finishes_it(window, tmp_path, qtbot):
    folder = tmp_path / "many"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(8):
        Image.fromarray(rng.integers(0, 255, (64, 64), dtype=np.uint8)).save(folder / f"{i:03d}.png")
    window.open_paths([folder])
    _start(window, qtbot)
    _pick(window, "unet")
    done = []
    window.models.runner.result.connect(lambda row, _: done.append(row))
    window.models.run_all()
    qtbot.waitUntil(lambda: len(done) >= 1, timeout=120_000)
    window.models.panel.pause_button.click()
    assert "Paused" in window.models.panel.queue_label.text()
    qtbot.wait(300)
    held = len(done)
    qtbot.wait(1500)
    assert len(done) <= held + 1 and len(done) < 8      # at most the item in progress finishes
    window.models.panel.pause_button.click()
    qtbot.waitUntil(window.is_idle, timeout=120_000)
    assert sorted(done) == list(range(8))


def test_run_all_replaces_corrected_labels_only_when_asked(window, image_folder, qtbot):
    corrected = _corrected_item_and_model(window, image_folder, qtbot)
    window.models.run_all()
    qtbot.waitUntil(window.is_idle, timeout=120_000)
    np.testing.assert_array_equal(window.doc.labels.array, corrected)
    window.models.panel.overwrite_box.setChecked(True)
    window.models.run_all()
    qtbot.waitUntil(window.is_idle, timeout=120_000)
    np.testing.assert_array_equal(window.doc.labels.array, window.doc.prediction.labels)
    assert window.doc.item.status == ItemStatus.PREDICTED


def test_run_on_the_items_selected_in_the_file_list(window, tmp_path, qtbot):
    from PySide6.QtCore import QItemSelectionModel

    folder = tmp_path / "sel"
    folder.mkdir()
    rng = np.random.default_rng(3)
    for i in range(5):
        Image.fromarray(rng.integers(0, 255, (48, 48), dtype=np.uint8)).save(folder / f"{i}.png")
    window.open_paths([folder])
    _start(window, qtbot)
    _pick(window, "unet")
    view = window.files.view
    sel = view.selectionModel()
    sel.clearSelection()
    for row in (1, 3):
        sel.select(window.files.proxy.index(row, 0), QItemSelectionModel.SelectionFlag.Select)
    done = []
    window.models.runner.result.connect(lambda row, _: done.append(row))
    window.models.panel.run_selected_button.click()
    qtbot.waitUntil(window.is_idle, timeout=120_000)
    assert sorted(done) == [1, 3]
    statuses = [i.status for i in window.workspace.items]
    assert statuses[1] == statuses[3] == ItemStatus.PREDICTED
    assert statuses[0] == statuses[2] == statuses[4] == ItemStatus.UNLABELLED


def test_the_picker_groups_models_under_headings_by_what_they_find(window, qtbot):
    from segstudio.paths import weights_dir
    from segstudio.ui.background.workers import UNTRAINED_GROUP

    _start(window, qtbot)
    panel, combo = window.models.panel, window.models.panel.model_combo
    headings = [combo.itemText(r) for r in range(combo.count()) if combo.itemData(r) == -1]
    assert headings[0] == "Chest X-ray (lungs, heart, clavicles)"
    assert any(h.startswith("Context: boat vs car (") for h in headings)
    assert headings[-1] == UNTRAINED_GROUP and len(set(headings)) == len(headings)
    bundled = len(list(weights_dir().glob("*.pt")))
    assert combo.count() == len(panel.entries) + len(headings) and len(panel.entries) > bundled
    for r in range(combo.count()):                 # a heading cannot be chosen
        item = combo.model().item(r)
        assert item.isEnabled() == (combo.itemData(r) != -1)
    # Every row under a heading belongs to its group, and the choice follows the row.
    group = None
    for r in range(combo.count()):
        if combo.itemData(r) == -1:
            group = combo.itemText(r)
            continue
        combo.setCurrentIndex(r)
        entry = panel.current_entry()
        assert entry.group == group and combo.itemText(r) == entry.title
    untrained_unet = next(i for i, e in enumerate(panel.entries)
                          if e.choice.arch == "unet" and not e.trained)
    panel.select_entry(untrained_unet)
    assert panel.current_choice().checkpoint is None and panel.warning_label.isVisibleTo(panel)
    # A checkpoint loaded from a file goes first and is chosen; the other rows keep their entry.
    before = {combo.itemText(r): panel.entries[combo.itemData(r)]
              for r in range(combo.count()) if combo.itemData(r) != -1}
    window.models.load_model_file(weights_dir() / "context_unet_lite.pt")
    qtbot.waitUntil(window.is_idle, timeout=60_000)
    assert panel.current_entry().title == "context_unet_lite.pt — from file"
    assert combo.currentIndex() == 0
    after = {combo.itemText(r): panel.entries[combo.itemData(r)]
             for r in range(1, combo.count()) if combo.itemData(r) != -1}
    assert after == before


def test_the_model_panel_says_which_precision_auto_settled_on_and_why(window, image_folder,
                                                                      qtbot, monkeypatch):
    # A CPU with native bf16 units: "auto" shows the first image in fp32, then measures bf16
    # against fp32 on it; the panel and the status bar say what it chose.
    from segstudio.models import device

    monkeypatch.setattr(device, "cpu_flags", lambda: frozenset({"avx512f", "avx512_bf16"}))
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    window.open_paths([image_folder])
    _start(window, qtbot)
    _pick(window, "unet", trained=True)
    measured = []
    window.models.runner.precisionSettled.connect(measured.append)
    assert window.models.run_current()
    qtbot.waitUntil(window.is_idle, timeout=120_000)
    assert window.doc.prediction.precision == "fp32"
    (info,) = measured
    note = info["precision_note"]
    assert note.startswith(f"{info['precision']}: ") and "on this machine" in note
    assert f"Precision {note}" in window.models.panel.state_label.text()
    assert window.device_label.text() == f"cpu · {info['precision']}"
    assert window.device_label.toolTip().startswith(note)
    assert window.statusBar().currentMessage().startswith("Precision measured: ")


def _reopened_context_workspace(window, tmp_path, qtbot):
    """A 5-class workspace with one corrected item, opened afresh as a user would reopen it."""
    from segstudio.io.workspace import Workspace
    from segstudio.train.synth_context import context_classes

    folder = tmp_path / "ctx"
    folder.mkdir()
    for i in range(2):
        Image.fromarray(np.full((48, 64, 3), 60 * i, np.uint8)).save(folder / f"s{i}.png")
    ws = Workspace.open(folder, classes=context_classes())
    ws.save_labels(ws.items[0], np.full((48, 64), 3, np.uint8), status=ItemStatus.CORRECTED)
    assert window.open_paths([folder])
    assert len(window.classes) == 5
    _start(window, qtbot)


def test_a_reopened_workspace_gets_a_model_that_predicts_its_classes(window, tmp_path, qtbot):
    _reopened_context_workspace(window, tmp_path, qtbot)
    entry = window.models.panel.current_entry()
    assert entry.trained and entry.classes == window.classes.names
    assert window.models.prepare_classes() and window.models.mapping is None


def _answer(button_text: str, seen: list[str]) -> None:
    """Click the button whose text starts with ``button_text`` in the next modal box."""
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication, QMessageBox

    def poll() -> None:
        box = QApplication.activeModalWidget()
        if isinstance(box, QMessageBox):
            seen.append(box.text())
            for b in box.buttons():
                if b.text().startswith(button_text):
                    b.click()
                    return
        QTimer.singleShot(20, poll)

    QTimer.singleShot(0, poll)


def _select_checkpoint(window, name):
    panel = window.models.panel
    panel.select_entry(next(i for i, e in enumerate(panel.entries)
                            if e.choice.checkpoint is not None and e.choice.checkpoint.name == name))


def test_a_model_of_other_classes_asks_first_and_cancel_runs_nothing(window, tmp_path, qtbot):
    _reopened_context_workspace(window, tmp_path, qtbot)
    _select_checkpoint(window, "chest_xray_unet_lite.pt")
    window.interactive = True
    before = window.classes
    started = []
    window.models.runner.started.connect(started.append)
    for run in (window.models.run_current, window.models.run_all, window.models.run_selected):
        seen: list[str] = []
        _answer("Cancel", seen)
        assert run() is False
        assert "lungs" in seen[0] and "boat" in seen[0]       # both sets, by name
        assert window.is_idle() and not window.models.runner.busy
    qtbot.wait(200)
    assert started == [] and window.doc.prediction is None
    assert window.classes == before
    assert window.workspace.items[0].status is ItemStatus.CORRECTED


def test_mapping_by_name_adds_the_models_classes_and_keeps_the_labels_meaning(window, tmp_path,
                                                                          qtbot):
    from segstudio.io.workspace import Workspace

    _reopened_context_workspace(window, tmp_path, qtbot)
    _select_checkpoint(window, "chest_xray_unet_lite.pt")
    window.interactive = True
    old = window.classes
    corrected = window.workspace.load_labels(window.workspace.items[0]).copy()
    window.show_row(1)
    seen: list[str] = []
    _answer("Add", seen)
    assert window.models.run_current()
    qtbot.waitUntil(window.is_idle, timeout=120_000)
    classes = window.classes
    # the context classes keep their indices; the chest classes come after them
    assert classes.names[:len(old)] == old.names
    assert set(classes.names[len(old):]) == {"lungs", "heart", "clavicles"}
    prediction = window.doc.prediction
    assert prediction.probabilities.shape[0] == len(classes)
    used = {classes[int(v)].name for v in np.unique(prediction.labels) if v != 255}
    assert used <= {"background", "lungs", "heart", "clavicles"}
    # what is on disk says the same, and the corrected item was not touched
    ws = Workspace.open(window.workspace.root)
    assert ws.classes.names == classes.names
    np.testing.assert_array_equal(ws.load_prediction(ws.items[1]), prediction.labels)
    np.testing.assert_array_equal(ws.load_labels(ws.items[0]), corrected)
    # the next run of the same model maps by name without asking again
    seen.clear()
    assert window.models.run_current()
    qtbot.waitUntil(window.is_idle, timeout=120_000)
    assert seen == []


def test_a_shapes_model_on_a_chest_workspace_never_writes_chest_names(window, image_folder,
                                                                     qtbot):
    """The count is the same (4 and 4), the names are not: the window asks, and taking the
    model's classes labels the outlines circle/square/triangle, never lungs/heart."""
    window.open_paths([image_folder])
    assert window.classes.names == ("background", "lungs", "heart", "clavicles")
    _start(window, qtbot)
    _select_checkpoint(window, "shapes_maskrcnn_lite.pt")
    window.interactive = True
    seen: list[str] = []
    _answer("Use the model", seen)
    assert window.models.run_current()
    qtbot.waitUntil(window.is_idle, timeout=120_000)
    assert seen and "circle" in seen[0]
    assert window.classes.names == ("background", "circle", "square", "triangle")
    assert window.workspace.classes.names == window.classes.names
    for cls, _score in window.doc.prediction.objects or []:
        assert window.classes[cls].name in ("circle", "square", "triangle")


def test_a_window_that_cannot_ask_maps_by_name_and_never_relabels(window, tmp_path, qtbot):
    _reopened_context_workspace(window, tmp_path, qtbot)
    _select_checkpoint(window, "chest_xray_unet_lite.pt")
    assert window.interactive is False
    old = window.classes
    assert window.models.run_current()
    qtbot.waitUntil(window.is_idle, timeout=120_000)
    assert window.classes.names[:len(old)] == old.names and "lungs" in window.classes.names
