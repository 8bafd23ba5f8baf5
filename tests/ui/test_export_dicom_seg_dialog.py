"""File ▸ Export ▸ DICOM SEG…: the labels drawn in the window, as a SEG of the image, with its
de-identify checkbox; an export into the workspace is a message, never a traceback."""

import shutil

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file

from helpers import drag
from segstudio.ui.launchers import export_dicom_seg_dialog

pytest.importorskip("highdicom")


def _labelled_ct(window, qtbot, tmp_path):
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
    return folder


def _run(dialog, qtbot):
    dialog.start()
    qtbot.waitUntil(lambda: dialog.task is None, timeout=60_000)


@pytest.mark.parametrize("deidentify", [False, True])
def test_the_dialog_writes_the_labels_drawn_as_a_seg_of_the_image(window, qtbot, tmp_path,
                                                                  deidentify):
    from segstudio.io.dicom_seg import read_segmentation

    folder = _labelled_ct(window, qtbot, tmp_path)
    labels = window.workspace.load_labels(window.workspace.items[0])
    assert (labels == 1).any()
    dialog = export_dicom_seg_dialog(window)
    qtbot.addWidget(dialog)
    dialog.out_edit.setText(str(tmp_path / "segs"))
    dialog.deidentify.setChecked(deidentify)
    _run(dialog, qtbot)
    assert dialog.result is not None, dialog.message.text()
    seg_file = tmp_path / "segs" / "ct_seg.dcm"
    contents = read_segmentation(seg_file)
    (uid, numbers), = contents.images.items()
    name = window.workspace.classes.names[1]
    assert contents.labels == {1: name}
    assert np.array_equal(numbers == 1, labels == 1)
    original = pydicom.dcmread(folder / "ct.dcm")
    if deidentify:
        image = pydicom.dcmread(tmp_path / "segs" / "ct_image.dcm")
        assert uid == image.SOPInstanceUID != original.SOPInstanceUID
        assert image.PatientIdentityRemoved == "YES" and image.PatientName == ""
    else:
        assert uid == original.SOPInstanceUID
        assert not (tmp_path / "segs" / "ct_image.dcm").exists()


def test_an_export_into_the_workspace_is_a_message(window, qtbot, tmp_path):
    folder = _labelled_ct(window, qtbot, tmp_path)
    dialog = export_dicom_seg_dialog(window)
    qtbot.addWidget(dialog)
    dialog.out_edit.setText(str(folder / "segs"))
    _run(dialog, qtbot)
    assert dialog.result is None
    assert "inside the workspace" in dialog.message.text()
    assert "Traceback" not in dialog.message.text()
    assert not (folder / "segs").exists()
