"""De-identification on the way out: no attribute of the basic confidentiality profile keeps its
original value, UIDs are replaced consistently across one export, and each SEG still references
its de-identified image."""

from __future__ import annotations

import shutil

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.datadict import tag_for_keyword
from pydicom.sequence import Sequence

pytest.importorskip("highdicom")

from segstudio.cli import main  # noqa: E402
from segstudio.core.classes import chest_xray  # noqa: E402
from segstudio.io.confidentiality_profile import ACTIONS, profile_actions  # noqa: E402
from segstudio.io.deidentify import Deidentifier, profile_tags  # noqa: E402
from segstudio.io.workspace import ItemStatus, Workspace  # noqa: E402


def _identified(name, sop_uid=None):
    """A pydicom sample with identifying values added wherever the profile looks."""
    path = get_testdata_file(name, download=False)
    if path is None:
        pytest.skip(f"pydicom does not ship {name} here")
    ds = pydicom.dcmread(path)
    ds.PatientName = "Doe^Jane"
    ds.PatientID = "MRN-0042"
    ds.PatientBirthDate = "19610203"
    ds.PatientAddress = "1 Main Street"
    ds.OtherPatientNames = "Roe^Jane"
    ds.InstitutionName = "St Elsewhere"
    ds.OperatorsName = "Tech^Tom"
    ds.ReferringPhysicianName = "Dr^Who"
    ds.AccessionNumber = "ACC123"
    ds.StudyDescription = "chest for Jane Doe"
    ds.DeviceSerialNumber = "SN-998877"
    ds.StationName = "CT-ROOM-3"
    request = Dataset()
    request.RequestedProcedureID = "RP-55"
    request.ScheduledProcedureStepID = "SPS-1"
    ds.RequestAttributesSequence = Sequence([request])
    ref = Dataset()
    ref.ReferencedSOPClassUID = "1.2.840.10008.3.1.2.3.1"
    ref.ReferencedSOPInstanceUID = "1.2.3.4.5.6.7.8.9"
    ds.ReferencedStudySequence = Sequence([ref])
    ds.add_new(0x00091001, "LO", "private note on Jane Doe")
    if sop_uid is not None:
        ds.SOPInstanceUID = sop_uid
        ds.file_meta.MediaStorageSOPInstanceUID = sop_uid
    return ds


def _profile_values(ds):
    """(tag, value) of every profile attribute in ``ds`` and its sequences, non-empty only."""
    table = profile_tags()
    found = []
    for elem in ds.iterall():
        if elem.tag in table and elem.VR != "SQ" and elem.value not in (None, "", b""):
            found.append((elem.tag, str(elem.value)))
    return found


def _all_values(ds):
    return {(elem.tag, str(elem.value)) for elem in ds.iterall() if elem.VR != "SQ"}


def _uids(ds):
    return {str(elem.value) for elem in ds.iterall() if elem.VR == "UI"}


@pytest.fixture
def exported(tmp_path):
    """Two CT slices of one series and an MR, labelled, exported with --deidentify."""
    root = tmp_path / "ws"
    root.mkdir()
    originals = {"ct1": _identified("CT_small.dcm"),
                 "ct2": _identified("CT_small.dcm", sop_uid=pydicom.uid.generate_uid()),
                 "mr": _identified("MR_small.dcm")}
    for stem, ds in originals.items():
        ds.save_as(root / f"{stem}.dcm")
    ws = Workspace.open(root, classes=chest_xray())
    for item in ws.items:
        labels = np.zeros((ws.read_image(item).height, ws.read_image(item).width), np.uint8)
        labels[4:20, 6:30], labels[30:40, 10:20] = 1, 2
        ws.save_labels(item, labels, status=ItemStatus.CORRECTED)
    out = tmp_path / "out"
    assert main(["export-dicom-seg", str(root), "--out", str(out), "--deidentify"]) == 0
    files = {stem: (pydicom.dcmread(out / f"{stem}_image.dcm"),
                    pydicom.dcmread(out / f"{stem}_seg.dcm")) for stem in originals}
    return originals, files, ws


def test_no_attribute_of_the_profile_keeps_its_original_value(exported):
    originals, files, _ = exported
    for stem, original in originals.items():
        before = _profile_values(original)
        assert len(before) >= 15                  # the check has something to check
        old_uids = {
            str(e.value) for e in original.iterall()
            if e.tag in profile_tags() and e.VR == "UI"}
        for ds in files[stem]:
            after = _all_values(ds)
            survivors = [(t, v) for t, v in before if (t, v) in after]
            assert survivors == [], f"{stem}: {survivors}"
            assert not old_uids & _uids(ds)
            assert not any(elem.tag.is_private for elem in ds.iterall())
            assert ds.PatientIdentityRemoved == "YES"
            assert ds.DeidentificationMethod
            assert ds.DeidentificationMethodCodeSequence[0].CodeValue == "113100"


def test_each_seg_references_its_deidentified_image_and_the_series_stays_grouped(exported):
    originals, files, _ = exported
    for stem, (image, seg) in files.items():
        ref = seg.ReferencedSeriesSequence[0]
        assert ref.ReferencedInstanceSequence[0].ReferencedSOPInstanceUID == image.SOPInstanceUID
        assert ref.SeriesInstanceUID == image.SeriesInstanceUID
        assert seg.StudyInstanceUID == image.StudyInstanceUID
        assert seg.FrameOfReferenceUID == image.FrameOfReferenceUID
        assert image.file_meta.MediaStorageSOPInstanceUID == image.SOPInstanceUID
        assert np.array_equal(image.pixel_array, originals[stem].pixel_array)
    (ct1, seg1), (ct2, seg2), (mr, _) = files["ct1"], files["ct2"], files["mr"]
    assert ct1.SOPInstanceUID != ct2.SOPInstanceUID
    assert ct1.SeriesInstanceUID == ct2.SeriesInstanceUID          # one series, still one
    assert ct1.StudyInstanceUID == ct2.StudyInstanceUID
    assert seg1.SeriesInstanceUID == seg2.SeriesInstanceUID        # and their SEGs too
    assert mr.StudyInstanceUID != ct1.StudyInstanceUID


def test_a_deidentified_seg_imports_into_a_workspace_of_the_deidentified_images(exported,
                                                                                tmp_path):
    _, _, ws = exported
    target = tmp_path / "shared"
    target.mkdir()
    for path in (tmp_path / "out").glob("*_image.dcm"):
        shutil.copy(path, target / path.name)
    Workspace.open(target, classes=chest_xray()).save()
    assert main(["import-labels", str(target), str(tmp_path / "out")]) == 0
    shared = Workspace.open(target)
    for item in shared.items:
        stem = item.id.removesuffix("_image")
        original = next(it for it in ws.items if it.id == stem)
        assert np.array_equal(shared.load_labels(item), ws.load_labels(original))


def test_one_deidentifier_replaces_a_uid_the_same_way_every_time():
    deid = Deidentifier()
    a, b = Dataset(), Dataset()
    a.StudyInstanceUID = b.StudyInstanceUID = "1.2.3"
    a.SOPInstanceUID, b.SOPInstanceUID = "1.2.3.1", "1.2.3.2"
    deid.apply(a)
    deid.apply(b)
    assert a.StudyInstanceUID == b.StudyInstanceUID != "1.2.3"
    assert a.SOPInstanceUID != b.SOPInstanceUID
    assert Deidentifier().new_uid("1.2.3") != a.StudyInstanceUID      # a new export, new UIDs


def test_the_profile_table_names_known_attributes_with_known_actions():
    table = profile_actions()
    assert len(table) > 250
    for keyword, action in table.items():
        assert tag_for_keyword(keyword) is not None, keyword
        assert action in ACTIONS, (keyword, action)
    for keyword in ("PatientName", "PatientID", "PatientBirthDate", "StudyInstanceUID",
                    "InstitutionName", "OperatorsName", "AccessionNumber"):
        assert keyword in table


def test_a_voc_export_asked_to_deidentify_keeps_no_identifying_value_in_originals(tmp_path):
    import json

    root = tmp_path / "ws"
    root.mkdir()
    original = _identified("CT_small.dcm")
    original.save_as(root / "chest.dcm")
    ws = Workspace.open(root, classes=chest_xray())
    labels = np.zeros((128, 128), np.uint8)
    labels[10:50, 10:60] = 1
    ws.save_labels(ws.items[0], labels, status=ItemStatus.CORRECTED)
    out = tmp_path / "voc"
    assert main(["export-voc", str(root), "--out", str(out), "--deidentify",
                 "--val-fraction", "0"]) == 0
    voc = out / "VOCdevkit" / "VOC2012"
    (copy_path,) = (voc / "Originals").glob("*.dcm")
    copy = pydicom.dcmread(copy_path)
    after = _all_values(copy)
    assert [(t, v) for t, v in _profile_values(original) if (t, v) in after] == []
    assert not any(elem.tag.is_private for elem in copy.iterall())
    assert copy.PatientIdentityRemoved == "YES"
    assert np.array_equal(copy.pixel_array, original.pixel_array)
    (entry,) = json.loads((voc / "manifest.json").read_text())["items"].values()
    assert entry["deidentified"] is True and "source" not in entry
