import numpy as np
from PIL import Image

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
