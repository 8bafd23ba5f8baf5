"""File ▸ Open from PACS… and File ▸ Send SEG to PACS… against a real Orthanc (see
orthanc_server.py); File ▸ Export ▸ Label volumes… read back with nibabel. Each runs in a
background task: the window stays responsive while the PACS answers."""

from __future__ import annotations

import shutil

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file

from helpers import drag
from orthanc_server import orthanc
from segstudio.ui.launchers import export_volumes_dialog, open_from_pacs_dialog, send_seg_dialog

pytest.importorskip("dicomweb_client", reason="the [pacs] extra (dicomweb-client) is missing")


@pytest.fixture(scope="module")
def pacs(tmp_path_factory):
    with orthanc(tmp_path_factory.mktemp("orthanc")) as server:
        yield server


@pytest.fixture
def signed_in(pacs, monkeypatch, tmp_path):
    monkeypatch.setenv("SEGSTUDIO_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("SEGSTUDIO_DICOMWEB_USER", pacs.user)
    monkeypatch.setenv("SEGSTUDIO_DICOMWEB_PASSWORD", pacs.password)
    return pacs


def _ct():
    path = get_testdata_file("CT_small.dcm", download=False)
    if path is None:
        pytest.skip("pydicom does not ship CT_small.dcm here")
    return path


def _store(pacs, ds):
    import requests
    from dicomweb_client.api import DICOMwebClient

    session = requests.Session()
    session.auth = (pacs.user, pacs.password)
    client = DICOMwebClient(pacs.url, session=session)
    client.store_instances([ds])
    return client


def test_open_from_pacs_finds_the_study_pulls_it_and_opens_it_as_the_workspace(
        window, qtbot, signed_in, tmp_path):
    source = pydicom.dcmread(_ct())
    _store(signed_in, source)
    dialog = open_from_pacs_dialog(window)
    qtbot.addWidget(dialog)
    dialog.url_edit.setText(signed_in.url)
    dialog.patient_edit.setText(source.PatientID)
    dialog.modality_edit.setText("ct")
    dialog.search()
    assert dialog.task is not None                      # the search runs off the GUI thread
    qtbot.waitUntil(lambda: dialog.task is None, timeout=30_000)
    assert [s.uid for s in dialog.studies] == [source.StudyInstanceUID], dialog.message.text()
    assert dialog.table.rowCount() == 1 and dialog.open_button.isEnabled()
    folder = tmp_path / "from-pacs"
    dialog.folder_edit.setText(str(folder))
    dialog.open_study()
    qtbot.waitUntil(lambda: dialog.task is None, timeout=30_000)
    assert dialog.pulled is not None, dialog.message.text()
    assert window.workspace is not None and window.workspace.root == folder
    assert [str(it.source) for it in window.workspace.items] == [f"{source.SOPInstanceUID}.dcm"]
    qtbot.waitUntil(lambda: window.doc is not None)
    assert window.settings.value("pacs/url") == signed_in.url


def test_open_from_pacs_shows_a_failed_search_as_one_line(window, qtbot, signed_in,
                                                          monkeypatch):
    monkeypatch.setenv("SEGSTUDIO_DICOMWEB_PASSWORD", "wrong")
    dialog = open_from_pacs_dialog(window)
    qtbot.addWidget(dialog)
    dialog.url_edit.setText(signed_in.url)
    dialog.search()
    qtbot.waitUntil(lambda: dialog.task is None, timeout=30_000)
    text = dialog.message.text()
    assert "401" in text and "\n" not in text and "Traceback" not in text
    assert dialog.table.rowCount() == 0


def test_send_seg_stores_the_segmentation_on_the_pacs(window, qtbot, signed_in, tmp_path):
    hd = pytest.importorskip("highdicom", reason="highdicom builds the test's SEG")
    source = pydicom.dcmread(_ct())
    client = _store(signed_in, source)
    mask = np.zeros((source.Rows, source.Columns), np.uint8)
    mask[5:50, 40:100] = 1
    seg = hd.seg.Segmentation(
        source_images=[source], pixel_array=mask,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=[hd.seg.SegmentDescription(
            segment_number=1, segment_label="lesion",
            segmented_property_category=hd.sr.CodedConcept("49755003", "SCT",
                                                           "Morphologically Altered Structure"),
            segmented_property_type=hd.sr.CodedConcept("52988006", "SCT", "Lesion"),
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.MANUAL)],
        series_instance_uid=hd.UID(), series_number=301, sop_instance_uid=hd.UID(),
        instance_number=1, manufacturer="segstudio", manufacturer_model_name="segstudio",
        software_versions="0.1", device_serial_number="1")
    path = tmp_path / "lesion-seg.dcm"
    seg.save_as(path)
    dialog = send_seg_dialog(window)
    qtbot.addWidget(dialog)
    dialog.url_edit.setText(signed_in.url)
    dialog.add_files([path])
    dialog.send()
    qtbot.waitUntil(lambda: dialog.task is None, timeout=30_000)
    assert dialog.result is not None, dialog.message.text()
    assert dialog.result.stored == [seg.SOPInstanceUID]
    back = client.retrieve_instance(source.StudyInstanceUID, seg.SeriesInstanceUID,
                                    seg.SOPInstanceUID)
    np.testing.assert_array_equal(back.pixel_array.reshape(source.Rows, source.Columns), mask)


def test_export_label_volumes_from_the_window_writes_what_nibabel_reads(window, qtbot,
                                                                       tmp_path):
    nib = pytest.importorskip("nibabel", reason="the [nifti] extra is not installed")
    folder = tmp_path / "ct"
    folder.mkdir()
    shutil.copy(_ct(), folder / "ct.dcm")
    assert window.open_paths([folder])
    qtbot.waitUntil(lambda: window.doc is not None)
    window.legend.select_class(1)
    drag(window.canvas, [(20, 20), (80, 60)])
    window.discard_changes_on_close = False
    window.save_current()
    dialog = export_volumes_dialog(window)
    qtbot.addWidget(dialog)
    dialog.out_edit.setText(str(tmp_path / "volumes"))
    dialog.start()
    assert dialog.task is not None
    qtbot.waitUntil(lambda: dialog.task is None, timeout=60_000)
    assert dialog.result is not None and dialog.result.count == 1, dialog.message.text()
    saved = window.workspace.load_labels(window.workspace.items[0])
    img = nib.load(tmp_path / "volumes" / "ct_label.nii.gz")
    np.testing.assert_array_equal(np.asanyarray(img.dataobj)[:, :, 0].T, saved)
    assert (saved == 1).any()
