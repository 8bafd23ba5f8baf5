import numpy as np
import pytest
from PIL import Image

from segstudio.models.checkpoint import read_meta
from segstudio.train import synth
from segstudio.train.finetune_defaults import FINE_TUNE, FROM_SCRATCH
from segstudio.ui.launchers import finetune_dialog


def test_finetune_trains_on_corrected_labels_and_offers_the_model(window, tmp_path, qtbot):
    folder = tmp_path / "ws"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(6):
        img = np.full((48, 48, 3), 30, np.uint8)
        img[10:30, 12:36] = (200, 60, 60)
        img = np.clip(img + rng.integers(0, 20, img.shape), 0, 255).astype(np.uint8)
        Image.fromarray(img).save(folder / f"{i}.png")
    window.open_paths([folder])
    ws = window.workspace
    for item in ws.items:
        labels = np.zeros((48, 48), np.uint8)
        labels[10:30, 12:36] = 2
        ws.save_labels(item, labels)
    dialog = finetune_dialog(window)
    qtbot.addWidget(dialog)
    dialog.arch.setCurrentIndex(dialog.arch.findData("unet"))
    dialog.epochs.setValue(2)
    dialog.crop.setValue(32)
    dialog.start_from.setCurrentIndex(dialog.start_from.count() - 1)
    assert dialog.start_from.currentText().startswith("random weights")
    assert "6 corrected" in dialog.count.text()
    dialog.start_button.click()
    qtbot.waitUntil(lambda: not dialog.is_running(), timeout=300_000)
    assert dialog.result is not None, dialog.status.text()
    out = dialog.result.out
    assert out.exists() and out.with_suffix(".labels.json").exists()
    assert len(dialog.plot.miou) == 2 and dialog.plot.loss
    qtbot.waitUntil(lambda: window.is_idle() and window.models.panel.entries and
                    window.models.panel.entries[0].choice.checkpoint == out, timeout=60_000)
    assert window.models.panel.entries[0].trained


def test_finetune_starts_from_the_picked_trained_model_by_default(window, tmp_path, qtbot):
    folder = tmp_path / "chest"
    folder.mkdir()
    samples = list(synth.generate("xray", 6, size=128, seed=11))
    for s in samples:
        Image.fromarray(s.image).save(folder / f"{s.id}.png")
    window.open_paths([folder])
    window.models.start()
    qtbot.waitUntil(lambda: window.is_idle() and bool(window.models.panel.entries), timeout=60_000)
    ws = window.workspace
    for item, s in zip(ws.items, sorted(samples, key=lambda s: s.id)):
        ws.save_labels(item, s.labels)               # the "corrected" labels: the true ones
    dialog = finetune_dialog(window)
    qtbot.addWidget(dialog)
    assert window.models.panel.current_choice().checkpoint.name == "chest_xray_unet_lite.pt"
    assert dialog.arch.currentData() == "unet"
    assert dialog.start_from.currentData().name == "chest_xray_unet_lite.pt"
    assert "same classes" in dialog.start_from.currentText()
    dialog.arch.setCurrentIndex(dialog.arch.findData("fcn8s"))     # other architectures: theirs
    assert all(dialog.start_from.itemData(i) is None or "fcn8s" in dialog.start_from.itemText(i)
               for i in range(dialog.start_from.count()))
    dialog.arch.setCurrentIndex(dialog.arch.findData("unet"))
    # The measured defaults of a fine-tune run (bench/bench_adapt.py), from their one constant.
    assert dialog.lr.value() == pytest.approx(FINE_TUNE.lr)
    assert (dialog.epochs.value(), dialog.batch.value(), dialog.crop.value()) == \
        (FINE_TUNE.epochs, FINE_TUNE.batch_size, FINE_TUNE.crop)
    messages = []
    dialog.epochs.setValue(1)
    dialog.crop.setValue(96)
    dialog.start_button.click()
    dialog.thread.message.connect(messages.append)
    qtbot.waitUntil(lambda: not dialog.is_running(), timeout=300_000)
    assert dialog.result is not None, dialog.status.text()
    meta = read_meta(dialog.result.out)
    assert meta.training["started_from"] == "chest_xray_unet_lite.pt"
    assert "--init" in meta.training["command"]
    assert meta.training["lr"] == pytest.approx(FINE_TUNE.lr)
    assert meta.training["batch_size"] == FINE_TUNE.batch_size
    assert dialog.result.best_miou > 0.5              # it kept what the bundled model knew


def test_finetune_trains_mask_rcnn_on_the_items_with_objects(window, tmp_path, qtbot):
    from segstudio.io.object_store import save_objects
    from segstudio.train.synth_shapes import shapes_classes

    folder = tmp_path / "shapes"
    folder.mkdir()
    samples = [synth.make_sample("shapes", i, size=64, seed=3) for i in range(5)]
    for s in samples:
        Image.fromarray(s.image).save(folder / f"{s.id}.png")
    window.open_paths([folder], classes=shapes_classes())
    ws = window.workspace
    for item, s in zip(ws.items, samples):
        if item is not ws.items[-1]:                   # the last one: classes only
            save_objects(ws, item, s.instances)
        ws.save_labels(item, s.labels)
    window.models.start()
    qtbot.waitUntil(lambda: window.models._catalog_loaded, timeout=120_000)
    qtbot.waitUntil(window.is_idle, timeout=60_000)
    dialog = finetune_dialog(window)
    qtbot.addWidget(dialog)
    dialog.arch.setCurrentIndex(dialog.arch.findData("unet"))
    assert "5 corrected or reviewed item(s) to learn" in dialog.count.text()
    dialog.arch.setCurrentIndex(dialog.arch.findData("maskrcnn"))
    assert "4 corrected or reviewed item(s) with objects" in dialog.count.text()
    dialog.epochs.setValue(1)
    dialog.crop.setValue(64)
    dialog.start_from.setCurrentIndex(0)               # the bundled shapes Mask R-CNN
    assert "shapes_maskrcnn" in dialog.start_from.currentText()
    dialog.start_button.click()
    qtbot.waitUntil(lambda: not dialog.is_running(), timeout=300_000)
    assert dialog.result is not None, dialog.status.text()
    assert read_meta(dialog.result.out).arch == "maskrcnn"
    from segstudio.paths import user_data_dir

    trees = list((user_data_dir() / "finetune").glob("shapes-*/VOCdevkit/VOC2012"))
    assert len(trees) == 1
    assert len(list((trees[0] / "SegmentationObject").glob("*.png"))) == 4
    assert len(list((trees[0] / "SegmentationClass").glob("*.png"))) == 4


def test_the_learning_rate_follows_the_start_and_typed_settings_stay(window, tmp_path, qtbot):
    folder = tmp_path / "chest"
    folder.mkdir()
    for s in synth.generate("xray", 2, size=64, seed=11):
        Image.fromarray(s.image).save(folder / f"{s.id}.png")
    window.open_paths([folder])
    window.models.start()
    qtbot.waitUntil(lambda: window.is_idle() and bool(window.models.panel.entries), timeout=60_000)
    dialog = finetune_dialog(window)
    qtbot.addWidget(dialog)
    assert dialog.start_from.currentData() is not None
    assert dialog.lr.value() == pytest.approx(FINE_TUNE.lr)
    dialog.epochs.setValue(3)
    dialog.start_from.setCurrentIndex(dialog.start_from.count() - 1)     # random weights
    assert dialog.lr.value() == pytest.approx(FROM_SCRATCH.lr)
    assert dialog.epochs.value() == 3
    dialog.start_from.setCurrentIndex(0)
    assert dialog.lr.value() == pytest.approx(FINE_TUNE.lr)


def test_an_smp_folder_picked_in_the_model_panel_fine_tunes_into_a_folder_in_the_list(
        window, tmp_path, qtbot, monkeypatch):
    pytest.importorskip("segmentation_models_pytorch")
    from PySide6.QtWidgets import QFileDialog

    from foreign_models import NAMES, save_smp_unet
    from segstudio.core.classes import from_names
    from segstudio.io.workspace import Workspace
    from segstudio.models.formats import load_any

    model = tmp_path / "my-unet"
    save_smp_unet(model)
    folder = tmp_path / "streets"
    folder.mkdir()
    rng = np.random.default_rng(1)
    for i in range(6):
        img = np.clip(rng.integers(0, 60, (64, 64, 3)), 0, 255).astype(np.uint8)
        img[20:40] = (200, 60, 200)
        Image.fromarray(img).save(folder / f"{i}.png")
    Workspace.open(folder, classes=from_names(list(NAMES))).save()
    window.open_paths([folder])
    ws = window.workspace
    for item in ws.items:
        labels = np.zeros((64, 64), np.uint8)
        labels[20:40] = 1
        ws.save_labels(item, labels)
    window.models.start()
    qtbot.waitUntil(lambda: window.models._catalog_loaded, timeout=120_000)
    qtbot.waitUntil(window.is_idle, timeout=60_000)
    monkeypatch.setattr(QFileDialog, "getExistingDirectory",
                        staticmethod(lambda *a, **k: str(model)))
    action = next(a for a in window.findChildren(type(window.menuBar().actions()[0]))
                  if a.text() == "Load model &folder…")
    action.trigger()
    qtbot.waitUntil(window.is_idle, timeout=120_000)
    assert window.models.panel.current_choice().model_file == model

    dialog = finetune_dialog(window)
    qtbot.addWidget(dialog)
    assert dialog.arch.currentText() == "my-unet (its model folder)"
    assert dialog.start_from.currentText() == "its own weights (my-unet)"
    assert not dialog.config.isEnabled()
    dialog.epochs.setValue(1)
    dialog.batch.setValue(2)
    dialog.crop.setValue(64)
    dialog.start_button.click()
    qtbot.waitUntil(lambda: not dialog.is_running(), timeout=300_000)
    assert dialog.result is not None, dialog.status.text()
    out = dialog.result.out
    assert out.is_dir() and out.with_name(out.name + ".labels.json").is_file()
    tuned = load_any(out)
    assert tuned.format == "smp" and tuned.meta.classes.names == NAMES
    qtbot.waitUntil(lambda: window.is_idle() and any(
        e.choice.model_file == out for e in window.models.panel.entries), timeout=120_000)


def test_training_that_cannot_fit_is_refused_in_the_dialog_before_it_starts(window, tmp_path,
                                                                            qtbot, monkeypatch):
    from segstudio.io import decode_memory
    from segstudio.train import loop

    folder = tmp_path / "ws"
    folder.mkdir()
    for i in range(4):
        Image.fromarray(np.full((48, 48, 3), 40 * i, np.uint8)).save(folder / f"{i}.png")
    window.open_paths([folder])
    for item in window.workspace.items:
        window.workspace.save_labels(item, np.ones((48, 48), np.uint8))
    started = []
    monkeypatch.setattr(loop, "train", lambda *a, **k: started.append(1))
    monkeypatch.setattr(decode_memory, "available_memory", lambda: 1_000_000)
    dialog = finetune_dialog(window)
    qtbot.addWidget(dialog)
    dialog.arch.setCurrentIndex(dialog.arch.findData("unet"))
    dialog.start_from.setCurrentIndex(dialog.start_from.count() - 1)
    dialog.start_button.click()
    qtbot.waitUntil(lambda: not dialog.is_running(), timeout=60_000)
    assert dialog.result is None and not started
    assert "not enough memory for training unet" in dialog.status.text()
    assert "lower the batch size or the crop" in dialog.status.text()
