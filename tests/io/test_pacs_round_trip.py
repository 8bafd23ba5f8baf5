"""The radiology round trip against a real Orthanc PACS with DICOMweb (see orthanc_server.py):
store a DICOM, find it with ``segstudio dicomweb studies``, pull it into a workspace, label it,
push a DICOM SEG made from those labels, and read the SEG back from the PACS pixel for pixel.
Then the PACS's refusals: wrong credentials, an unknown study, a file in the way."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file

from orthanc_server import orthanc
from segstudio.cli import main
from segstudio.core.classes import chest_xray
from segstudio.io.workspace import ItemStatus, Workspace

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


def _client(pacs):
    import requests
    from dicomweb_client.api import DICOMwebClient

    session = requests.Session()
    session.auth = (pacs.user, pacs.password)
    return DICOMwebClient(pacs.url, session=session)


def _source(name: str) -> pydicom.Dataset:
    path = get_testdata_file(name, download=False)
    if path is None:
        pytest.skip(f"pydicom does not ship {name} here")
    return pydicom.dcmread(path)


def _seg_from_labels(source: pydicom.Dataset, labels: np.ndarray, classes) -> pydicom.Dataset:
    """A DICOM SEG with one segment per class present in ``labels`` (highdicom)."""
    hd = pytest.importorskip("highdicom", reason="highdicom builds the test's SEG")
    present = [int(v) for v in np.unique(labels) if 0 < v < 255]
    descriptions = [hd.seg.SegmentDescription(
        segment_number=n + 1, segment_label=classes[v].name,
        segmented_property_category=hd.sr.CodedConcept("91723000", "SCT", "Anatomical Structure"),
        segmented_property_type=hd.sr.CodedConcept("39607008", "SCT", "Lung"),
        algorithm_type=hd.seg.SegmentAlgorithmTypeValues.MANUAL) for n, v in enumerate(present)]
    numbered = np.zeros(labels.shape, np.uint8)
    for n, v in enumerate(present):
        numbered[labels == v] = n + 1
    return hd.seg.Segmentation(
        source_images=[source], pixel_array=numbered,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions, series_instance_uid=hd.UID(), series_number=300,
        sop_instance_uid=hd.UID(), instance_number=1, manufacturer="segstudio",
        manufacturer_model_name="segstudio", software_versions="0.1",
        device_serial_number="1")


def _seg_masks(seg: pydicom.Dataset) -> dict[str, np.ndarray]:
    """Segment label → its mask, decoded from the SEG's frames without highdicom."""
    frames = seg.pixel_array.reshape(-1, seg.Rows, seg.Columns)
    names = {int(s.SegmentNumber): str(s.SegmentLabel) for s in seg.SegmentSequence}
    masks = {}
    shared = seg.SharedFunctionalGroupsSequence[0]
    for frame, groups in zip(frames, seg.PerFrameFunctionalGroupsSequence):
        ident = groups if "SegmentIdentificationSequence" in groups else shared  # one segment
        number = int(ident.SegmentIdentificationSequence[0].ReferencedSegmentNumber)
        masks[names[number]] = frame.astype(bool)
    return masks



def _contents(folder) -> list[str]:
    """The names in ``folder`` a user sees, after checking that no pull's staging folder is
    left; the workspace lock's own hidden files are not the pull's doing."""
    names = sorted(p.name for p in folder.iterdir())
    assert not [n for n in names if n.startswith(".segstudio-pull-")], names
    return [n for n in names if not n.startswith(".")]

def test_a_study_goes_from_the_pacs_into_a_workspace_and_its_seg_comes_back(
        signed_in, tmp_path, capsys):
    pacs = signed_in
    source = _source("CT_small.dcm")
    _client(pacs).store_instances([source])

    assert main(["dicomweb", "studies", pacs.url, "--patient-id", source.PatientID]) == 0
    listing = capsys.readouterr().out.splitlines()
    assert listing[0].startswith("STUDY UID\tDATE")
    row = next(line.split("\t") for line in listing[1:] if line.startswith(source.StudyInstanceUID))
    assert row[1] == source.StudyDate and row[2] == source.PatientID and "CT" in row[5]
    assert main(["dicomweb", "studies", pacs.url, "--patient-id", source.PatientID,
                 "--modality", "MR"]) == 0
    assert source.StudyInstanceUID not in capsys.readouterr().out

    ws_dir = tmp_path / "ws"
    assert main(["dicomweb", "pull", pacs.url, "--study", source.StudyInstanceUID,
                 "--into", str(ws_dir)]) == 0
    assert "wrote 1 new instance(s)" in capsys.readouterr().out
    pulled = ws_dir / f"{source.SOPInstanceUID}.dcm"
    assert _contents(ws_dir) == [pulled.name]
    np.testing.assert_array_equal(pydicom.dcmread(pulled).pixel_array, source.pixel_array)

    ws = Workspace.open(ws_dir, classes=chest_xray())
    (item,) = ws.items
    labels = np.zeros((source.Rows, source.Columns), np.uint8)
    labels[10:60, 20:90] = 1
    labels[70:100, 30:50] = 2
    ws.save_labels(item, labels, status=ItemStatus.CORRECTED)
    saved = ws.load_labels(item)
    ws.close()

    seg = _seg_from_labels(pydicom.dcmread(pulled), saved, chest_xray())
    seg_file = tmp_path / "labels-seg.dcm"
    seg.save_as(seg_file)
    assert main(["dicomweb", "push", str(ws_dir), pacs.url, "--seg", str(seg_file)]) == 0
    assert "stored 1 segmentation(s)" in capsys.readouterr().out

    client = _client(pacs)
    found = client.search_for_instances(study_instance_uid=source.StudyInstanceUID,
                                        search_filters={"Modality": "SEG"})
    assert len(found) == 1
    sop = found[0]["00080018"]["Value"][0]
    series = found[0]["0020000E"]["Value"][0]
    back = client.retrieve_instance(source.StudyInstanceUID, series, sop)
    masks = _seg_masks(back)
    classes = chest_xray()
    assert set(masks) == {classes[1].name, classes[2].name}
    for value in (1, 2):
        np.testing.assert_array_equal(masks[classes[value].name], saved == value)


def test_pulling_again_keeps_identical_files_and_refuses_a_different_one(
        signed_in, tmp_path, capsys):
    pacs = signed_in
    source = _source("MR_small.dcm")
    _client(pacs).store_instances([source])
    ws_dir = tmp_path / "ws"
    args = ["dicomweb", "pull", pacs.url, "--study", source.StudyInstanceUID,
            "--into", str(ws_dir)]
    assert main(args) == 0
    target = ws_dir / f"{source.SOPInstanceUID}.dcm"
    first = target.read_bytes()
    assert main(args) == 0
    assert "1 were already there" in capsys.readouterr().out
    target.write_bytes(b"someone else's file")
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "segstudio dicomweb: error:" in err and "other content" in err
    assert "Traceback" not in err
    assert target.read_bytes() == b"someone else's file"
    assert _contents(ws_dir) == [target.name]   # no staging left
    assert first != target.read_bytes()


def test_wrong_credentials_and_an_unknown_study_are_one_line_each(
        signed_in, tmp_path, capsys, monkeypatch):
    pacs = signed_in
    ws_dir = tmp_path / "ws"
    assert main(["dicomweb", "pull", pacs.url, "--study", "1.2.3.4.5.6.7.8.9",
                 "--into", str(ws_dir)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "1.2.3.4.5.6.7.8.9" in err
    assert not ws_dir.exists()

    monkeypatch.setenv("SEGSTUDIO_DICOMWEB_PASSWORD", "wrong")
    assert main(["dicomweb", "studies", pacs.url]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "401" in err and "SEGSTUDIO_DICOMWEB_USER" in err
    assert "wrong" not in err


def test_the_pacs_server_listens_only_for_this_machine(pacs):
    assert pacs.url.startswith("http://127.0.0.1:")
    text = pacs.log.read_text(errors="replace")
    assert "remote access is not allowed" in text


def test_a_pull_adds_only_the_instances_beside_the_files_already_there(signed_in, tmp_path):
    """No hidden staging folder survives a pull, and the files already there stay."""
    pacs = signed_in
    source = _source("CT_small.dcm")
    _client(pacs).store_instances([source])
    ws_dir = tmp_path / "ws"
    ws_dir.mkdir()
    shutil.copy(get_testdata_file("MR_small.dcm", download=False), ws_dir / "mine.dcm")
    assert main(["dicomweb", "pull", pacs.url, "--study", source.StudyInstanceUID,
                 "--into", str(ws_dir)]) == 0
    assert _contents(ws_dir) == sorted(
        ["mine.dcm", f"{source.SOPInstanceUID}.dcm"])


def test_push_without_files_sends_what_export_dicom_seg_writes(signed_in, tmp_path, capsys,
                                                             monkeypatch):
    """push WORKSPACE URL runs the export-dicom-seg command module as `WORKSPACE --out DIR` and
    stores every DICOM file it wrote (here a stand-in module of that name, built on highdicom,
    proves the wiring; the real command replaces it)."""
    import importlib.machinery
    import sys
    import types

    pacs = signed_in
    source = _source("MR_small.dcm")
    client = _client(pacs)
    client.store_instances([source])
    ws_dir = tmp_path / "ws"
    assert main(["dicomweb", "pull", pacs.url, "--study", source.StudyInstanceUID,
                 "--into", str(ws_dir)]) == 0
    ws = Workspace.open(ws_dir, classes=chest_xray())
    (item,) = ws.items
    labels = np.zeros((source.Rows, source.Columns), np.uint8)
    labels[8:40, 4:30] = 3
    ws.save_labels(item, labels)
    ws.close()
    calls = []

    def add_arguments(parser):
        parser.add_argument("workspace")
        parser.add_argument("--out", required=True)

    def run(args):
        calls.append((args.workspace, args.out))
        opened = Workspace.open(args.workspace)
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        for it in opened.items:
            seg = _seg_from_labels(pydicom.dcmread(opened.source_path(it)),
                                   opened.load_labels(it), opened.classes)
            seg.save_as(out / f"{it.id}-seg.dcm")
        return 0

    name = "segstudio.commands.export_dicom_seg"
    module = types.ModuleType(name)
    module.__spec__ = importlib.machinery.ModuleSpec(name, None)
    module.add_arguments, module.run = add_arguments, run
    monkeypatch.setitem(sys.modules, name, module)
    capsys.readouterr()
    assert main(["dicomweb", "push", str(ws_dir), pacs.url]) == 0
    assert "stored 1 segmentation(s)" in capsys.readouterr().out
    assert calls and calls[0][0] == str(ws_dir)
    found = client.search_for_instances(study_instance_uid=source.StudyInstanceUID,
                                        search_filters={"Modality": "SEG"})
    assert len(found) == 1
    back = client.retrieve_instance(source.StudyInstanceUID, found[0]["0020000E"]["Value"][0],
                                    found[0]["00080018"]["Value"][0])
    masks = _seg_masks(back)
    np.testing.assert_array_equal(masks[chest_xray()[3].name], labels == 3)
