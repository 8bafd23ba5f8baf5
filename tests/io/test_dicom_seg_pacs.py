"""The radiology round trip with segstudio's own DICOM SEG on both ends, against a real Orthanc
(see orthanc_server.py): pull a study, label it, ``dicomweb push`` (which runs
``export-dicom-seg``), fetch the SEGs back from the PACS, and ``import-labels`` them into a fresh
pull of the same study: identical labels."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file

from orthanc_server import orthanc
from segstudio.cli import main
from segstudio.core.classes import chest_xray
from segstudio.io.workspace import ItemStatus, Workspace

pytest.importorskip("dicomweb_client", reason="the [pacs] extra (dicomweb-client) is missing")
pytest.importorskip("highdicom", reason="the [dicom] extra (highdicom) is missing")


@pytest.fixture(scope="module")
def pacs(tmp_path_factory):
    with orthanc(tmp_path_factory.mktemp("orthanc")) as server:
        yield server


def _client(pacs):
    import requests
    from dicomweb_client.api import DICOMwebClient

    session = requests.Session()
    session.auth = (pacs.user, pacs.password)
    return DICOMwebClient(pacs.url, session=session)


def test_labels_go_to_the_pacs_as_seg_and_come_back_into_a_fresh_workspace(pacs, tmp_path,
                                                                            monkeypatch, capsys):
    monkeypatch.setenv("SEGSTUDIO_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("SEGSTUDIO_DICOMWEB_USER", pacs.user)
    monkeypatch.setenv("SEGSTUDIO_DICOMWEB_PASSWORD", pacs.password)
    path = get_testdata_file("MR_small.dcm", download=False)
    if path is None:
        pytest.skip("pydicom does not ship MR_small.dcm here")
    source = pydicom.dcmread(path)
    client = _client(pacs)
    client.store_instances([source])

    ws_dir = tmp_path / "reader"
    assert main(["dicomweb", "pull", pacs.url, "--study", source.StudyInstanceUID,
                 "--into", str(ws_dir)]) == 0
    ws = Workspace.open(ws_dir, classes=chest_xray())
    (item,) = ws.items
    labels = np.zeros((source.Rows, source.Columns), np.uint8)
    labels[5:30, 8:40], labels[35:55, 20:30], labels[58:62, 2:60] = 1, 2, 3
    ws.save_labels(item, labels, status=ItemStatus.REVIEWED)
    ws.close()
    assert main(["dicomweb", "push", str(ws_dir), pacs.url]) == 0
    assert "stored 1 segmentation(s)" in capsys.readouterr().out

    found = client.search_for_instances(study_instance_uid=source.StudyInstanceUID,
                                        search_filters={"Modality": "SEG"})
    assert len(found) == 1
    back = client.retrieve_instance(source.StudyInstanceUID, found[0]["0020000E"]["Value"][0],
                                    found[0]["00080018"]["Value"][0])
    segs = tmp_path / "from-pacs"
    segs.mkdir()
    back.save_as(segs / "from_pacs.dcm", enforce_file_format=True)

    fresh = tmp_path / "second-reader"
    assert main(["dicomweb", "pull", pacs.url, "--study", source.StudyInstanceUID,
                 "--into", str(fresh)]) == 0
    Workspace.open(fresh, classes=chest_xray()).save()
    assert main(["import-labels", str(fresh), str(segs)]) == 0
    copy = Workspace.open(fresh)
    (item,) = copy.items
    np.testing.assert_array_equal(copy.load_labels(item), labels)
    seg_segments = {s.SegmentLabel: s.SegmentAlgorithmType for s in back.SegmentSequence}
    assert seg_segments == {"lungs": "MANUAL", "heart": "MANUAL", "clavicles": "MANUAL"}
