"""DICOM SEG export and import with real DICOMs shipped in pydicom: segments named, coloured and
coded by class, typed by where the labels came from, referencing their images, read back to
exactly the labels; the files pass dciodvfy; import matches images by SOP Instance UID."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file

highdicom = pytest.importorskip("highdicom")

from segstudio.cli import main  # noqa: E402
from segstudio.core.classes import ClassCode, ClassSet, ClassSetError, chest_xray  # noqa: E402
from segstudio.io.dicom_seg import read_segmentation  # noqa: E402
from segstudio.io.dicom_seg_export import export_dicom_seg  # noqa: E402
from segstudio.io.workspace import ItemStatus, Workspace  # noqa: E402

SOURCES = {"ct": "CT_small.dcm", "mr": "MR_small.dcm", "sc": "image_dfl.dcm"}
ALL = [ItemStatus.CORRECTED, ItemStatus.REVIEWED, ItemStatus.PREDICTED]


def _dicom(name):
    path = get_testdata_file(name, download=False)
    if path is None:
        pytest.skip(f"pydicom does not ship {name} here")
    return path


def _labels(height, width, seed):
    """Blocks of lungs, heart and clavicles at places that differ per image."""
    rng = np.random.default_rng(seed)
    labels = np.zeros((height, width), np.uint8)
    for value in (1, 2, 3):
        y, x = rng.integers(0, height // 2), rng.integers(0, width // 2)
        labels[y:y + height // 3, x:x + width // 4] = value
    return labels


def make_workspace(root, classes=None, statuses=("corrected", "reviewed", "predicted")):
    """The pydicom CT, MR and secondary-capture images, labelled, one status each."""
    root.mkdir()
    for stem, name in SOURCES.items():
        shutil.copy(_dicom(name), root / f"{stem}.dcm")
    ws = Workspace.open(root, classes=classes or chest_xray())
    for n, (item, status) in enumerate(zip(ws.items, statuses)):
        image = ws.read_image(item)
        by = "chest U-Net (bundled)" if status == "predicted" else ""
        ws.save_labels(item, _labels(image.height, image.width, n), status=ItemStatus(status),
                       by=by)
    return ws


def test_binary_segs_read_back_to_exactly_the_labels_named_coloured_and_coded(tmp_path):
    ws = make_workspace(tmp_path / "ws")
    result = export_dicom_seg(ws, tmp_path / "out", ALL)
    assert not result.left_out
    for item in ws.items:
        path = tmp_path / "out" / f"{item.id}_seg.dcm"
        source = pydicom.dcmread(ws.source_path(item))
        seg = highdicom.seg.segread(path)
        assert seg.segmentation_type.value == "BINARY"
        labels = ws.load_labels(item)
        contents = read_segmentation(path)
        assert list(contents.images) == [source.SOPInstanceUID]
        numbers = contents.images[source.SOPInstanceUID]
        names = {n: contents.labels[n] for n in contents.labels}
        back = np.zeros_like(labels)
        for number, name in names.items():
            back[numbers == number] = ws.classes.index_of(name)
        assert np.array_equal(back, labels)
        # Segments: classes present only, coded in SNOMED CT, in the class colour.
        assert sorted(names.values()) == ["clavicles", "heart", "lungs"]
        for number in seg.segment_numbers:
            desc = seg.get_segment_description(number)
            expected = {"lungs": "39607008", "heart": "80891009", "clavicles": "51299004"}
            assert desc.segmented_property_type.value == expected[desc.segment_label]
            assert desc.segmented_property_type.scheme_designator == "SCT"
            assert desc.segmented_property_category.value == "91723000"
            colour = ws.classes[ws.classes.index_of(desc.segment_label)].color
            assert np.allclose(contents.colors[number], colour, atol=2)
        # The image it references, and its geometry.
        assert seg.StudyInstanceUID == source.StudyInstanceUID
        ref = seg.ReferencedSeriesSequence[0]
        assert ref.SeriesInstanceUID == source.SeriesInstanceUID
        assert ref.ReferencedInstanceSequence[0].ReferencedSOPInstanceUID == source.SOPInstanceUID
        if "FrameOfReferenceUID" in source:
            assert seg.FrameOfReferenceUID == source.FrameOfReferenceUID
        if "PixelSpacing" in source:
            measures = seg.SharedFunctionalGroupsSequence[0].PixelMeasuresSequence[0]
            assert [float(v) for v in measures.PixelSpacing] == \
                [float(v) for v in source.PixelSpacing]


def test_algorithm_type_is_manual_for_a_person_and_automatic_with_the_model_for_a_prediction(
        tmp_path):
    ws = make_workspace(tmp_path / "ws")
    export_dicom_seg(ws, tmp_path / "out", ALL)
    seen = {}
    for item in ws.items:
        seg = pydicom.dcmread(tmp_path / "out" / f"{item.id}_seg.dcm")
        kinds = {s.SegmentAlgorithmType for s in seg.SegmentSequence}
        assert len(kinds) == 1
        seen[item.status.value] = (kinds.pop(), seg.SegmentSequence[0])
    assert seen["corrected"][0] == seen["reviewed"][0] == "MANUAL"
    kind, segment = seen["predicted"]
    assert kind == "AUTOMATIC"
    assert segment.SegmentationAlgorithmIdentificationSequence[0].AlgorithmName == \
        "chest U-Net (bundled)"


def test_labelmap_segs_read_back_to_exactly_the_labels(tmp_path):
    ws = make_workspace(tmp_path / "ws")
    export_dicom_seg(ws, tmp_path / "out", ALL, labelmap=True)
    for item in ws.items:
        path = tmp_path / "out" / f"{item.id}_seg.dcm"
        assert highdicom.seg.segread(path).segmentation_type.value == "LABELMAP"
        contents = read_segmentation(path)
        (numbers,) = contents.images.values()
        back = np.zeros(numbers.shape, np.uint8)
        for number, name in contents.labels.items():
            back[numbers == number] = ws.classes.index_of(name)
        assert np.array_equal(back, ws.load_labels(item))


def test_other_class_sets_say_tissue_and_a_code_in_the_class_set_file_wins(tmp_path):
    classes = ClassSet.from_dict({"title": "liver study", "classes": [
        {"index": 0, "name": "background", "color": [0, 0, 0]},
        {"index": 1, "name": "tumour", "color": [250, 0, 0]},
        {"index": 2, "name": "liver", "color": [0, 250, 0],
         "code": {"scheme": "SCT", "value": "10200004", "meaning": "Liver",
                  "category": {"scheme": "SCT", "value": "91723000",
                               "meaning": "Anatomical Structure"}}},
        {"index": 3, "name": "vessel", "color": [0, 0, 250]}]})
    ws = make_workspace(tmp_path / "ws", classes=classes)
    export_dicom_seg(ws, tmp_path / "out", ALL)
    seg = pydicom.dcmread(tmp_path / "out" / "ct_seg.dcm")
    by_label = {s.SegmentLabel: s for s in seg.SegmentSequence}
    tumour = by_label["tumour"]
    assert tumour.SegmentedPropertyCategoryCodeSequence[0].CodeMeaning == "Tissue"
    assert tumour.SegmentedPropertyTypeCodeSequence[0].CodeMeaning == "tumour"
    assert tumour.SegmentedPropertyTypeCodeSequence[0].CodingSchemeDesignator.startswith("99")
    liver = by_label["liver"].SegmentedPropertyTypeCodeSequence[0]
    assert (liver.CodeValue, liver.CodingSchemeDesignator) == ("10200004", "SCT")
    assert by_label["liver"].SegmentedPropertyCategoryCodeSequence[0].CodeValue == "91723000"


@pytest.mark.parametrize("code", [
    "SCT", ["SCT", "1", "x"], {"scheme": "SCT", "value": "1"},
    {"scheme": "S C T", "value": "1", "meaning": "x"},
    {"scheme": "SCT", "value": "1\\2", "meaning": "x"},
    {"scheme": "SCT", "value": "1", "meaning": "x\ny"},
    {"scheme": "SCT", "value": "1", "meaning": "m" * 65},
    {"scheme": "SCT", "value": float("nan"), "meaning": "x"},
    {"scheme": "SCT", "value": "1", "meaning": "x", "colour": 3},
    {"scheme": "SCT", "value": "1", "meaning": "x", "category": {"scheme": "SCT"}},
])
def test_a_class_code_from_a_file_is_checked_like_any_untrusted_value(code):
    data = {"classes": [{"index": 0, "name": "background", "color": [0, 0, 0]},
                        {"index": 1, "name": "organ", "color": [1, 2, 3], "code": code}]}
    with pytest.raises(ClassSetError):
        ClassSet.from_dict(data)


def test_class_codes_survive_the_class_set_file_and_the_derived_sets():
    code = ClassCode("SCT", "10200004", "Liver", ClassCode("SCT", "91723000", "Anatomy"))
    classes = ClassSet(["background", "liver"], codes=[None, code])
    back = ClassSet.from_dict(classes.to_dict())
    assert back.codes == (None, code)
    assert back.renamed(1, "hepar").codes == (None, code)
    assert back.with_class("x").codes == (None, code, None)
    assert "code" not in ClassSet(["a", "b"]).to_dict()["classes"][0]


def _dciodvfy(path):
    out = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True, timeout=60)
    return [line for line in (out.stdout + out.stderr).splitlines() if line.startswith("Error")]


@pytest.mark.skipif(shutil.which("dciodvfy") is None, reason="dciodvfy (dicom3tools) not installed")
@pytest.mark.parametrize("deidentify", [False, True])
def test_binary_segs_pass_dciodvfy_without_errors(tmp_path, deidentify):
    ws = make_workspace(tmp_path / "ws")
    export_dicom_seg(ws, tmp_path / "out", ALL, deidentify=deidentify)
    for item in ws.items:
        assert _dciodvfy(tmp_path / "out" / f"{item.id}_seg.dcm") == []


def test_export_then_import_into_a_fresh_copy_gives_identical_labels(tmp_path, capsys):
    ws = make_workspace(tmp_path / "ws")
    assert main(["export-dicom-seg", str(ws.root), "--out", str(tmp_path / "segs"),
                 "--include-predicted"]) == 0
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    for stem in SOURCES:
        shutil.copy(ws.root / f"{stem}.dcm", fresh / f"{stem}.dcm")
    Workspace.open(fresh, classes=chest_xray()).save()
    assert main(["import-labels", str(fresh), str(tmp_path / "segs")]) == 0
    assert "imported the labels of 3 item(s)" in capsys.readouterr().out
    copy = Workspace.open(fresh)
    for item, original in zip(copy.items, ws.items):
        assert np.array_equal(copy.load_labels(item), ws.load_labels(original))
        assert item.status is ItemStatus.CORRECTED
    # Into a workspace of other classes, the segments' labels become new classes.
    other = tmp_path / "other"
    other.mkdir()
    shutil.copy(ws.root / "mr.dcm", other / "mr.dcm")
    assert main(["import-labels", str(other), str(tmp_path / "segs" / "mr_seg.dcm")]) == 0
    voc = Workspace.open(other)
    assert voc.classes.names[-3:] == ("lungs", "heart", "clavicles")
    assert voc.classes[voc.classes.index_of("heart")].color == pytest.approx((220, 0, 0), abs=2)
    labels = voc.load_labels(voc.items[0])
    for name in ("lungs", "heart", "clavicles"):
        assert np.array_equal(labels == voc.classes.index_of(name),
                              ws.load_labels(ws.items[1]) == ws.classes.index_of(name))


def test_person_made_labels_are_kept_unless_replace(tmp_path, capsys):
    ws = make_workspace(tmp_path / "ws")
    export_dicom_seg(ws, tmp_path / "segs", ALL)
    target = make_workspace(tmp_path / "target", statuses=("corrected", "corrected", "predicted"))
    before = [target.load_labels(it).copy() for it in target.items]
    blank = np.zeros_like(before[0])
    target.save_labels(target.items[0], blank, status=ItemStatus.CORRECTED)
    assert main(["import-labels", str(target.root), str(tmp_path / "segs")]) == 0
    out = capsys.readouterr().out
    assert "kept 2 item(s)" in out
    reopened = Workspace.open(target.root)
    assert not reopened.load_labels(reopened.items[0]).any()
    assert main(["import-labels", str(target.root), str(tmp_path / "segs"), "--replace"]) == 0
    reopened = Workspace.open(target.root)
    assert np.array_equal(reopened.load_labels(reopened.items[0]), ws.load_labels(ws.items[0]))


def test_a_seg_of_an_image_not_in_the_workspace_is_refused_naming_the_image(tmp_path, capsys):
    ws = make_workspace(tmp_path / "ws")
    export_dicom_seg(ws, tmp_path / "segs", ALL)
    other = tmp_path / "other"
    other.mkdir()
    shutil.copy(ws.root / "mr.dcm", other / "mr.dcm")
    uid = pydicom.dcmread(ws.root / "ct.dcm").SOPInstanceUID
    assert main(["import-labels", str(other), str(tmp_path / "segs" / "ct_seg.dcm")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "ct_seg.dcm" in err[0] and uid in err[0]
    assert "not in the workspace" in err[0] and "Traceback" not in err[0]
    assert Workspace.open(other).load_labels(Workspace.open(other).items[0]) is None


@pytest.mark.parametrize("cut", [200, 1500, -40])
def test_a_damaged_seg_is_one_line_naming_it(tmp_path, capsys, cut):
    ws = make_workspace(tmp_path / "ws")
    export_dicom_seg(ws, tmp_path / "segs", ALL)
    data = (tmp_path / "segs" / "mr_seg.dcm").read_bytes()
    broken = tmp_path / "broken_seg.dcm"
    broken.write_bytes(data[:cut])
    assert main(["import-labels", str(ws.root), str(broken), "--replace"]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and "broken_seg.dcm" in lines[0]
    assert lines[0].startswith("segstudio import-labels: error:")


def test_outputs_never_land_in_the_workspace_nor_replace_a_file_they_did_not_write(tmp_path,
                                                                                   capsys):
    ws = make_workspace(tmp_path / "ws")
    root = str(ws.root)
    assert main(["export-dicom-seg", root, "--out", str(ws.root / "segs")]) == 2
    assert "inside the workspace" in capsys.readouterr().err
    assert not (ws.root / "segs").exists()
    out = tmp_path / "out"
    out.mkdir()
    (out / "ct_seg.dcm").write_bytes(b"the user's own file")
    assert main(["export-dicom-seg", root, "--out", str(out)]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert (out / "ct_seg.dcm").read_bytes() == b"the user's own file"
    assert not (out / "mr_seg.dcm").exists()             # nothing written before the check
    assert main(["export-dicom-seg", root, "--out", str(out), "--overwrite"]) == 0
    assert main(["export-dicom-seg", root, "--out", str(out)]) == 0   # its own files: replaced
    capsys.readouterr()


def test_predictions_are_left_out_unless_asked(tmp_path, capsys):
    ws = make_workspace(tmp_path / "ws")
    assert main(["export-dicom-seg", str(ws.root), "--out", str(tmp_path / "a")]) == 0
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["ct_seg.dcm", "mr_seg.dcm"]
    assert "--include-predicted" in capsys.readouterr().out


@pytest.mark.parametrize("keyword", ["ImagerPixelSpacing", "PixelSpacing"])
def test_a_radiograph_keeps_its_pixel_spacing_and_passes_dciodvfy(tmp_path, keyword):
    """A projection image (no plane orientation) as a chest radiograph records its spacing."""
    root = tmp_path / "ws"
    root.mkdir()
    ds = pydicom.dcmread(_dicom("CT_small.dcm"))
    for name in ("ImageOrientationPatient", "ImagePositionPatient", "PixelSpacing",
                 "FrameOfReferenceUID", "SliceThickness", "SliceLocation"):
        if name in ds:
            delattr(ds, name)
    setattr(ds, keyword, [0.143, 0.139])
    ds.Modality, ds.PatientOrientation = "DX", ["A", "F"]
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.1.1"
    ds.save_as(root / "chest.dcm")
    ws = Workspace.open(root, classes=chest_xray())
    ws.save_labels(ws.items[0], _labels(128, 128, 7), status=ItemStatus.CORRECTED)
    export_dicom_seg(ws, tmp_path / "out", ALL)
    seg = pydicom.dcmread(tmp_path / "out" / "chest_seg.dcm")
    measures = seg.SharedFunctionalGroupsSequence[0].PixelMeasuresSequence[0]
    assert [float(v) for v in measures.PixelSpacing] == [0.143, 0.139]
    assert list(seg.PatientOrientation) == ["A", "F"]
    if shutil.which("dciodvfy"):
        assert _dciodvfy(tmp_path / "out" / "chest_seg.dcm") == []


def test_the_items_a_seg_folder_would_replace_are_named_from_headers_alone(tmp_path):
    from segstudio.io.seg_import import kept_by_seg_import

    ws = make_workspace(tmp_path / "ws")
    export_dicom_seg(ws, tmp_path / "segs", ALL)
    (tmp_path / "segs" / "notes.txt").write_text("not a segmentation")
    assert kept_by_seg_import(tmp_path / "segs", ws) == ["ct", "mr"]   # corrected, reviewed


def test_an_output_that_is_a_link_to_an_input_is_refused_even_with_overwrite(tmp_path, capsys):
    import os

    ws = make_workspace(tmp_path / "ws")
    out = tmp_path / "out"
    out.mkdir()
    os.link(ws.root / "ct.dcm", out / "ct_seg.dcm")            # a hard link to the CT itself
    os.symlink(ws.root / "mr.dcm", out / "mr_seg.dcm")
    before = (ws.root / "ct.dcm").read_bytes()
    assert main(["export-dicom-seg", str(ws.root), "--out", str(out), "--overwrite"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is the same file as the image" in err[0]
    assert (ws.root / "ct.dcm").read_bytes() == before
    assert pydicom.dcmread(ws.root / "mr.dcm").Modality == "MR"
    for name in ("ct_seg.dcm", "mr_seg.dcm"):
        (out / name).unlink()
    label = ws.label_path(ws.items[0])
    os.link(label, out / "ct_seg.dcm")                          # a hard link to its labels
    labels = label.read_bytes()
    assert main(["export-dicom-seg", str(ws.root), "--out", str(out), "--overwrite"]) == 2
    assert "is the same file as the labels" in capsys.readouterr().err
    assert label.read_bytes() == labels


def test_no_dicom_item_or_no_highdicom_is_one_line(tmp_path, capsys, monkeypatch):
    from PIL import Image

    root = tmp_path / "pngs"
    root.mkdir()
    Image.new("L", (20, 10)).save(root / "a.png")
    ws = Workspace.open(root, classes=chest_xray())
    ws.save_labels(ws.items[0], np.ones((10, 20), np.uint8))
    assert main(["export-dicom-seg", str(root), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no labelled single-frame DICOM item" in err[0]
    dicoms = make_workspace(tmp_path / "ws")
    monkeypatch.setitem(__import__("sys").modules, "highdicom", None)   # as if not installed
    assert main(["export-dicom-seg", str(dicoms.root), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pip install 'segstudio[dicom]'" in err[0]
    assert not (tmp_path / "o").exists()


def test_a_full_disk_leaves_no_part_of_a_seg_and_is_one_line_per_file(tmp_path, capsys,
                                                                      monkeypatch):
    import errno

    import segstudio.io.atomic as atomic

    ws = make_workspace(tmp_path / "ws")
    real = atomic.atomic_open

    def full(path):
        handle = real(path)

        class Full:
            def __enter__(self):
                stream = handle.__enter__()

                def write(_data):
                    raise OSError(errno.ENOSPC, "No space left on device")
                stream.write = write
                return stream

            def __exit__(self, *exc):
                return handle.__exit__(*exc)
        return Full()

    monkeypatch.setattr(atomic, "atomic_open", full)
    assert main(["export-dicom-seg", str(ws.root), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "No space left on device" in err and "Traceback" not in err
    assert err.strip().splitlines()[-1] == "segstudio export-dicom-seg: error: nothing was exported"
    assert list((tmp_path / "out").iterdir()) == []           # no half file, no temporary file


def test_a_seg_too_large_for_memory_is_refused_before_its_pixels_are_read(tmp_path,
                                                                           monkeypatch):
    import segstudio.io.decode_memory as decode_memory
    from segstudio.io.dicom_seg import DicomSegError

    ws = make_workspace(tmp_path / "ws")
    export_dicom_seg(ws, tmp_path / "segs", ALL)
    path = tmp_path / "segs" / "sc_seg.dcm"                  # 512×512, three segments
    assert read_segmentation(path).images
    monkeypatch.setattr(decode_memory, "available_memory", lambda: 512 * 512)
    with pytest.raises(DicomSegError, match=r"sc_seg\.dcm: not enough memory for decoding the "
                                            r"segmentation: needs about"):
        read_segmentation(path)
    with pytest.raises(DicomSegError, match=r"more than the limit of 1,000"):
        read_segmentation(tmp_path / "segs" / "ct_seg.dcm", max_pixels=1000)


def test_an_export_that_would_not_fit_in_memory_names_the_item_and_writes_nothing(
        tmp_path, capsys, monkeypatch):
    import segstudio.io.decode_memory as decode_memory

    ws = make_workspace(tmp_path / "ws")

    def refuse(needed, what):
        raise decode_memory.NotEnoughMemory(f"not enough memory for {what}: needs about "
                                            f"{needed} bytes")

    monkeypatch.setattr(decode_memory, "require_memory", refuse)
    assert main(["export-dicom-seg", str(ws.root), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "left out: ct: not enough memory for building the segmentation" in err
    assert "Traceback" not in err and list((tmp_path / "out").iterdir()) == []
    monkeypatch.undo()
    monkeypatch.setattr(decode_memory, "available_memory", lambda: 1000)   # labels too
    assert main(["export-dicom-seg", str(ws.root), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "left out: ct: " in err and "left out: mr: " in err and "Traceback" not in err


def test_hostile_class_names_make_valid_segments_and_come_back_as_classes(tmp_path):
    names = ["background", "lung\nleft", "a\\b", "Lunge rechts ü", "\u202eevil", "x" * 300,
             "肺"]
    classes = ClassSet(names)
    root = tmp_path / "ws"
    root.mkdir()
    shutil.copy(_dicom("MR_small.dcm"), root / "mr.dcm")
    ws = Workspace.open(root, classes=classes)
    labels = np.zeros((64, 64), np.uint8)
    for value in range(1, len(names)):
        labels[value * 8:value * 8 + 6, 4:60] = value
    ws.save_labels(ws.items[0], labels)
    export_dicom_seg(ws, tmp_path / "out", ALL)
    path = tmp_path / "out" / "mr_seg.dcm"
    if shutil.which("dciodvfy"):
        assert _dciodvfy(path) == []
    contents = read_segmentation(path)
    shown = list(contents.labels.values())
    assert shown[:4] == ["lung left", "a/b", "Lunge rechts ü", "\u202eevil"]
    assert shown[4] == "x" * 64 and shown[5] == "肺"
    (numbers,) = contents.images.values()
    for number in contents.labels:                     # each segment where its class was
        assert np.array_equal(numbers == number, labels == number)
    seg = pydicom.dcmread(path)
    codes = {s.SegmentedPropertyTypeCodeSequence[0].CodeValue for s in seg.SegmentSequence}
    assert len(codes) == len(names) - 1                # one private code per name
