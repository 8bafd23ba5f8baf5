import numpy as np
from PIL import Image

from helpers import drag
from segstudio.ui.launchers import export_voc_dialog


def test_export_dialog_writes_a_tree_torchvision_reads(window, image_folder, qtbot, tmp_path):
    from torchvision.datasets import VOCSegmentation

    window.open_paths([image_folder])
    window.legend.select_class(2)
    drag(window.canvas, [(10, 10), (60, 40)])
    window.save_current()
    window.show_row(1)
    window.legend.select_class(1)
    drag(window.canvas, [(20, 20), (80, 50)])
    # Unsaved edits are saved before the export (non-interactive windows save without asking).
    window.discard_changes_on_close = False
    window.save_current()
    dialog = export_voc_dialog(window)
    qtbot.addWidget(dialog)
    dialog.out_edit.setText(str(tmp_path / "export"))
    dialog.val_spin.setValue(0.5)
    dialog.start()
    qtbot.waitUntil(lambda: dialog.task is None, timeout=60_000)
    assert dialog.result is not None and dialog.result.count == 2, dialog.message.text()
    ds = VOCSegmentation(str(tmp_path / "export"), year="2012", image_set="trainval", download=False)
    assert len(ds) == 2
    ws = window.workspace
    got = {}
    for i in range(len(ds)):
        img, target = ds[i]
        got[Image.open(ds.images[i]).size] = np.array(target)
    for item in ws.items[:2]:
        labels = ws.load_labels(item)
        np.testing.assert_array_equal(got[(labels.shape[1], labels.shape[0])], labels)


def test_cancelled_export_leaves_nothing_that_looks_complete(window, tmp_path, qtbot):
    folder = tmp_path / "many"
    folder.mkdir()
    rng = np.random.default_rng(1)
    for i in range(60):
        Image.fromarray(rng.integers(0, 255, (200, 200, 3), dtype=np.uint8)).save(folder / f"{i:03d}.png")
    window.open_paths([folder])
    ws = window.workspace
    for item in ws.items:
        ws.save_labels(item, rng.integers(0, 4, (200, 200)).astype(np.uint8))
    dialog = export_voc_dialog(window)
    qtbot.addWidget(dialog)
    out = tmp_path / "export"
    dialog.out_edit.setText(str(out))
    dialog.start()
    qtbot.waitUntil(lambda: dialog.progress.value() >= 2, timeout=60_000)
    dialog.cancel_button.click()
    assert not dialog.is_running()
    qtbot.waitUntil(lambda: "cancelled" in dialog.message.text(), timeout=10_000)
    assert not (out / "VOCdevkit" / "VOC2012").exists()
    assert not any(p.name == "VOC2012" for p in out.rglob("*"))
