"""File ▸ Export VOC… keeps the full-depth originals unless its checkbox is cleared."""

import shutil

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.data import get_testdata_file

from helpers import drag
from segstudio.ui.launchers import export_voc_dialog


@pytest.mark.parametrize("keep", [True, False])
def test_export_dialog_keeps_the_dicom_and_its_stored_values(window, qtbot, tmp_path, keep):
    path = get_testdata_file("CT_small.dcm", download=False)
    if path is None:
        pytest.skip("pydicom does not ship CT_small.dcm here")
    folder = tmp_path / "ct"
    folder.mkdir()
    shutil.copy(path, folder / "ct.dcm")
    assert window.open_paths([folder])
    qtbot.waitUntil(lambda: window.doc is not None)
    window.legend.select_class(1)
    drag(window.canvas, [(20, 20), (80, 60)])
    window.discard_changes_on_close = False
    window.save_current()
    dialog = export_voc_dialog(window)
    qtbot.addWidget(dialog)
    assert dialog.originals.isChecked()                 # kept unless the user says otherwise
    dialog.originals.setChecked(keep)
    for box in dialog.status_boxes.values():
        box.setChecked(True)
    dialog.out_edit.setText(str(tmp_path / "export"))
    dialog.start()
    qtbot.waitUntil(lambda: dialog.task is None, timeout=60_000)
    assert dialog.result is not None and dialog.result.count == 1, dialog.message.text()
    voc = tmp_path / "export" / "VOCdevkit" / "VOC2012"
    assert (voc / "JPEGImages" / "ct.jpg").is_file()
    if not keep:
        assert not (voc / "Originals").exists() and not (voc / "manifest.json").exists()
        return
    written = np.asarray(Image.open(voc / "Originals" / "ct.png"))
    np.testing.assert_array_equal(written, pydicom.dcmread(path).pixel_array)
    assert (voc / "Originals" / "ct.dcm").read_bytes() == (folder / "ct.dcm").read_bytes()
    assert (voc / "manifest.json").is_file()
