"""File ▸ Export ▸ DICOM SEG…: the labels drawn in the window, as a SEG of the image, with its
de-identify checkbox; an export into the workspace is a message, never a traceback. File ▸
Import labels ▸ DICOM SEG folder… brings a SEG back, and File ▸ Export VOC… de-identifies the
DICOM files it keeps when asked."""

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


def test_file_import_labels_dicom_seg_brings_a_seg_onto_the_canvas(window, qtbot, tmp_path):
    """File ▸ Import labels ▸ DICOM SEG folder…: the SEG's segments land on the image it
    references, with their class names."""
    from segstudio.core.classes import chest_xray
    from segstudio.io.dicom_seg_export import export_dicom_seg
    from segstudio.io.workspace import ItemStatus, Workspace
    from segstudio.ui.dialogs.label_import import import_labels

    path = get_testdata_file("MR_small.dcm", download=False)
    if path is None:
        pytest.skip("pydicom does not ship MR_small.dcm here")
    source = tmp_path / "source"
    source.mkdir()
    shutil.copy(path, source / "mr.dcm")
    ws = Workspace.open(source, classes=chest_xray())
    labels = np.zeros((64, 64), np.uint8)
    labels[10:30, 5:40], labels[40:60, 20:30] = 2, 3
    ws.save_labels(ws.items[0], labels, status=ItemStatus.CORRECTED)
    export_dicom_seg(ws, tmp_path / "segs", [ItemStatus.CORRECTED])
    target = tmp_path / "target"
    target.mkdir()
    shutil.copy(path, target / "scan.dcm")          # another name: matched by UID, not name
    assert window.open_paths([target])
    qtbot.waitUntil(lambda: window.doc is not None)
    task = import_labels(window, "dicom-seg", tmp_path / "segs")
    qtbot.waitUntil(lambda: task.result is not None or task.isFinished(), timeout=30_000)
    qtbot.waitUntil(window.is_idle, timeout=30_000)
    assert task.result.imported == ["scan"], task.result.problems
    array = window.doc.labels.array
    assert (array[labels == 2] == window.classes.index_of("heart")).all()
    assert (array[labels == 3] == window.classes.index_of("clavicles")).all()
    assert (array[labels == 0] == 0).all()


def test_the_voc_export_dialog_deidentifies_the_kept_dicom_when_asked(window, qtbot, tmp_path):
    from segstudio.ui.launchers import export_voc_dialog

    folder = _labelled_ct(window, qtbot, tmp_path)
    dialog = export_voc_dialog(window)
    qtbot.addWidget(dialog)
    assert not dialog.deidentify.isChecked()             # the file as it was, unless asked
    dialog.deidentify.setChecked(True)
    dialog.out_edit.setText(str(tmp_path / "export"))
    dialog.start()
    qtbot.waitUntil(lambda: dialog.task is None, timeout=60_000)
    assert dialog.result is not None, dialog.message.text()
    kept = pydicom.dcmread(tmp_path / "export" / "VOCdevkit" / "VOC2012" / "Originals" / "ct.dcm")
    original = pydicom.dcmread(folder / "ct.dcm")
    assert kept.PatientIdentityRemoved == "YES"
    assert kept.SOPInstanceUID != original.SOPInstanceUID and kept.PatientName == ""
    dialog.originals.setChecked(False)
    assert not dialog.deidentify.isEnabled()
