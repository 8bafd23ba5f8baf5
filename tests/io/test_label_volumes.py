"""export-nifti: label volumes for 3D Slicer and ITK-SNAP, read back with nibabel and pynrrd.

Geometry is checked against the DICOM attributes directly: the pixel at row j, column i lies at
IPP + i·PixelSpacing[1]·X + j·PixelSpacing[0]·Y in LPS, which NIfTI states in RAS (x and y
negated). The DICOMs are pydicom's own CT and MR, one cropped to a non-square size and given an
oblique orientation and unequal spacings, so that swapped axes or spacings cannot pass.
"""

from __future__ import annotations

import json
import shutil
import sys

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.data import get_testdata_file

from segstudio.cli import main
from segstudio.core.classes import chest_xray
from segstudio.io.workspace import ItemStatus, Workspace

nib = pytest.importorskip("nibabel", reason="the [nifti] extra (nibabel) is not installed")
nrrd = pytest.importorskip("nrrd", reason="the [nifti] extra (pynrrd) is not installed")

X_DIR = np.array([0.8, 0.6, 0.0])
Y_DIR = np.array([0.0, 0.0, -1.0])


def _dicom(name):
    path = get_testdata_file(name, download=False)
    if path is None:
        pytest.skip(f"pydicom does not ship {name} here")
    return path


@pytest.fixture
def workspace(tmp_path):
    """The CT as shipped, the MR cropped to 64×40 with an oblique orientation and unequal
    spacings, and a grey PNG; every item labelled with a pattern that shows any transposition."""
    root = tmp_path / "ws"
    root.mkdir()
    shutil.copy(_dicom("CT_small.dcm"), root / "ct.dcm")
    ds = pydicom.dcmread(_dicom("MR_small.dcm"))
    arr = ds.pixel_array[:, :40].copy()
    ds.PixelData = arr.tobytes()
    ds.Columns = 40
    ds.PixelSpacing = [0.5, 0.8]                 # between rows, between columns
    ds.ImageOrientationPatient = [*X_DIR, *Y_DIR]
    ds.ImagePositionPatient = [10.0, -20.0, 30.0]
    ds.save_as(root / "oblique.dcm")
    yy, xx = np.mgrid[0:20, 0:30]
    Image.fromarray((xx * 8 + yy).astype(np.uint8)).save(root / "plain.png")
    ws = Workspace.open(root, classes=chest_xray())
    rng = np.random.default_rng(0)
    for item in ws.items:
        image = ws.read_image(item)
        labels = rng.integers(0, len(ws.classes), (image.height, image.width)).astype(np.uint8)
        labels[0, :3] = 255
        ws.save_labels(item, labels, status=ItemStatus.CORRECTED)
    ws.close()
    return root


def _labels(root, stem):
    ws = Workspace.open(root)
    item = next(it for it in ws.items if it.id == stem)
    return ws.load_labels(item)


def _expected_ras(ds, i, j):
    ps = [float(v) for v in ds.PixelSpacing]
    iop = np.array([float(v) for v in ds.ImageOrientationPatient])
    lps = (np.array([float(v) for v in ds.ImagePositionPatient])
           + i * ps[1] * iop[:3] + j * ps[0] * iop[3:])
    return np.array([-lps[0], -lps[1], lps[2]])


def _export(root, out, *extra):
    return main(["export-nifti", str(root), "--out", str(out), *extra])


def test_nifti_holds_the_exact_labels_and_stored_values_with_the_dicom_geometry(
        workspace, tmp_path):
    out = tmp_path / "vol"
    assert _export(workspace, out) == 0
    for stem in ("ct", "oblique"):
        ds = pydicom.dcmread(workspace / f"{stem}.dcm")
        labels = nib.load(out / f"{stem}_label.nii.gz")
        image = nib.load(out / f"{stem}_image.nii.gz")
        assert labels.shape == (ds.Columns, ds.Rows, 1)
        assert labels.get_data_dtype() == np.uint8
        np.testing.assert_array_equal(np.asanyarray(labels.dataobj)[:, :, 0].T,
                                      _labels(workspace, stem))
        np.testing.assert_array_equal(image.dataobj.get_unscaled()[:, :, 0].T, ds.pixel_array)
        for img in (labels, image):
            assert int(img.header["qform_code"]) == 1 and int(img.header["sform_code"]) == 1
            np.testing.assert_allclose(img.affine, img.get_qform(), atol=1e-4)
            for i, j in ((0, 0), (ds.Columns - 1, 0), (0, ds.Rows - 1), (7, 5)):
                np.testing.assert_allclose((img.affine @ [i, j, 0, 1])[:3],
                                           _expected_ras(ds, i, j), atol=1e-4)
    ct = pydicom.dcmread(workspace / "ct.dcm")
    ct_image = nib.load(out / "ct_image.nii.gz")
    # The CT's rescale goes into scl_slope/scl_inter: viewers show Hounsfield units.
    np.testing.assert_allclose(ct_image.get_fdata()[:, :, 0].T,
                               ct.pixel_array * float(ct.RescaleSlope) + float(ct.RescaleIntercept))
    assert ct_image.header.get_zooms() == pytest.approx((0.661468, 0.661468, 5.0))
    oblique = nib.load(out / "oblique_label.nii.gz")
    assert oblique.header.get_zooms() == pytest.approx((0.8, 0.5, 0.8))   # col, row, thickness


def test_nrrd_holds_the_same_volumes_in_lps(workspace, tmp_path):
    out = tmp_path / "vol"
    assert _export(workspace, out, "--format", "nrrd") == 0
    ds = pydicom.dcmread(workspace / "oblique.dcm")
    labels, header = nrrd.read(str(out / "oblique_label.nrrd"), index_order="F")
    image, _ = nrrd.read(str(out / "oblique_image.nrrd"), index_order="F")
    np.testing.assert_array_equal(labels[:, :, 0].T, _labels(workspace, "oblique"))
    np.testing.assert_array_equal(image[:, :, 0].T, ds.pixel_array)
    assert header["space"] == "left-posterior-superior"
    np.testing.assert_allclose(header["space origin"], [10.0, -20.0, 30.0])
    np.testing.assert_allclose(header["space directions"][0], 0.8 * X_DIR, atol=1e-6)
    np.testing.assert_allclose(header["space directions"][1], 0.5 * Y_DIR, atol=1e-6)
    np.testing.assert_allclose(header["space directions"][2],
                               0.8 * np.cross(X_DIR, Y_DIR), atol=1e-6)


def test_an_image_without_dicom_geometry_gets_1mm_identity_and_the_manifest_says_so(
        workspace, tmp_path, capsys):
    out = tmp_path / "vol"
    assert _export(workspace, out) == 0
    assert "1 item(s) have no DICOM geometry" in capsys.readouterr().out
    img = nib.load(out / "plain_image.nii.gz")
    np.testing.assert_allclose(img.affine, np.diag([-1.0, -1.0, 1.0, 1.0]))
    pixels = np.asarray(Image.open(workspace / "plain.png"))
    np.testing.assert_array_equal(np.asanyarray(img.dataobj)[:, :, 0].T, pixels)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["items"]["plain"]["geometry"]["assumed"] == [
        "pixel spacing 1 mm", "orientation identity (LPS)", "origin 0"]
    ct = manifest["items"]["ct"]["geometry"]
    assert ct["from_file"] == ["PixelSpacing", "ImageOrientationPatient",
                               "ImagePositionPatient", "SpacingBetweenSlices"]
    assert ct["assumed"] == []


def test_colour_tables_list_every_class_and_void_for_slicer_and_itksnap(workspace, tmp_path):
    out = tmp_path / "vol"
    assert _export(workspace, out) == 0
    classes = chest_xray()
    rows = [line.split() for line in (out / "segstudio-labels.ctbl").read_text().splitlines()
            if line and not line.startswith("#")]
    assert [int(r[0]) for r in rows] == [*range(len(classes)), 255]
    for row, cls in zip(rows, classes):
        assert row[1] == cls.name.replace(" ", "_")
        assert tuple(int(v) for v in row[2:5]) == tuple(cls.color)
        assert int(row[5]) == (0 if cls.index == 0 else 255)
    snap = [line for line in (out / "itksnap-labels.txt").read_text().splitlines()
            if line and not line.startswith("#")]
    assert len(snap) == len(classes) + 1
    first = snap[1].split()
    assert int(first[0]) == 1 and tuple(int(v) for v in first[1:4]) == tuple(classes[1].color)
    assert snap[1].endswith(f'"{classes[1].name}"')


def test_a_folder_of_other_files_is_refused_and_an_earlier_export_needs_overwrite(
        workspace, tmp_path, capsys):
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    assert _export(workspace, busy) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "holds other files" in err
    assert sorted(p.name for p in busy.iterdir()) == ["notes.txt"]

    out = tmp_path / "vol"
    assert _export(workspace, out) == 0
    before = (out / "ct_label.nii.gz").read_bytes()
    assert _export(workspace, out, "--format", "nrrd") == 2
    assert "--overwrite" in capsys.readouterr().err
    assert (out / "ct_label.nii.gz").read_bytes() == before
    assert _export(workspace, out, "--format", "nrrd", "--overwrite") == 0
    assert (out / "ct_label.nrrd").is_file() and not (out / "ct_label.nii.gz").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_an_export_folder_holding_the_workspace_is_refused(workspace, tmp_path, capsys):
    assert _export(workspace, tmp_path) == 2
    err = capsys.readouterr().err
    assert err.startswith("segstudio export-nifti: error:") and "lies inside it" in err
    assert (workspace / "ct.dcm").is_file()


def test_without_nibabel_the_export_says_what_to_install(workspace, tmp_path, capsys,
                                                         monkeypatch):
    monkeypatch.setitem(sys.modules, "nibabel", None)
    assert _export(workspace, tmp_path / "vol") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "segstudio[nifti]" in err
    assert not (tmp_path / "vol").exists()


def test_a_colour_image_keeps_its_channels_in_both_formats(tmp_path):
    root = tmp_path / "ws"
    root.mkdir()
    yy, xx = np.mgrid[0:12, 0:18]
    rgb = np.stack([xx * 10, yy * 20, 255 - xx * 10], axis=-1).astype(np.uint8)
    Image.fromarray(rgb).save(root / "colour.png")
    ws = Workspace.open(root, classes=chest_xray())
    labels = (xx % 3).astype(np.uint8)
    ws.save_labels(ws.items[0], labels)
    ws.close()
    assert _export(root, tmp_path / "nii") == 0
    img = nib.load(tmp_path / "nii" / "colour_image.nii.gz")
    assert img.shape == (18, 12, 1, 3)
    np.testing.assert_array_equal(np.asanyarray(img.dataobj)[:, :, 0, :].transpose(1, 0, 2), rgb)
    assert _export(root, tmp_path / "nrrd", "--format", "nrrd") == 0
    data, header = nrrd.read(str(tmp_path / "nrrd" / "colour_image.nrrd"), index_order="F")
    assert header["kinds"][0] == "RGB-color" and data.shape == (3, 18, 12, 1)
    np.testing.assert_array_equal(data[:, :, :, 0].transpose(2, 1, 0), rgb)
    labels_back, _ = nrrd.read(str(tmp_path / "nrrd" / "colour_label.nrrd"), index_order="F")
    np.testing.assert_array_equal(labels_back[:, :, 0].T, labels)


def test_a_cancelled_export_leaves_nothing_and_keeps_the_earlier_one(workspace, tmp_path):
    from segstudio.io.label_volumes import VolumeExportCancelled, write_label_volumes

    out = tmp_path / "vol"
    assert _export(workspace, out) == 0
    before = sorted(p.name for p in out.iterdir())
    ws = Workspace.open(workspace)
    seen = []

    def cancel():
        seen.append(1)
        return len(seen) > 1                       # after the first item

    with pytest.raises(VolumeExportCancelled):
        write_label_volumes(out, ws.samples([ItemStatus.CORRECTED]), ws.classes, fmt="nrrd",
                            overwrite=True, cancel=cancel)
    ws.close()
    assert sorted(p.name for p in out.iterdir()) == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_a_radiograph_uses_imager_pixel_spacing_and_a_broken_orientation_is_assumed(tmp_path):
    from segstudio.io.image_geometry import geometry_of

    ds = pydicom.dcmread(_dicom("CT_small.dcm"))
    del ds.PixelSpacing, ds.ImagePositionPatient, ds.SliceThickness, ds.SpacingBetweenSlices
    ds.ImagerPixelSpacing = [0.2, 0.3]                 # between rows, between columns
    ds.ImageOrientationPatient = [1, 0, 0, 1, 0, 0]    # not at right angles: unusable
    path = tmp_path / "dx.dcm"
    ds.save_as(path)
    geo = geometry_of(path, "DICOM")
    assert geo.spacing == (0.3, 0.2, 1.0)
    assert geo.sources == ["ImagerPixelSpacing"]
    assert geo.assumed == ["orientation identity (LPS)", "origin 0", "slice thickness 1 mm"]
    np.testing.assert_allclose(geo.ras_affine(), np.diag([-0.3, -0.2, 1.0, 1.0]))


def test_each_frame_of_a_dose_grid_lies_at_its_own_offset_along_the_normal(tmp_path):
    """pydicom's RT dose grid: 15 frames of 10×10, 5 mm apart by GridFrameOffsetVector."""
    root = tmp_path / "ws"
    root.mkdir()
    shutil.copy(_dicom("rtdose.dcm"), root / "dose.dcm")
    ds = pydicom.dcmread(root / "dose.dcm")
    ws = Workspace.open(root, classes=chest_xray())
    for item in (ws.items[0], ws.items[3]):
        ws.save_labels(item, np.full((10, 10), 1 + item.frame % 2, np.uint8))
    ws.close()
    assert _export(root, tmp_path / "vol") == 0
    ipp = np.array([float(v) for v in ds.ImagePositionPatient])
    for frame in (0, 3):
        img = nib.load(tmp_path / "vol" / f"dose_{frame:06d}_image.nii.gz")
        np.testing.assert_array_equal(img.dataobj.get_unscaled()[:, :, 0].T,
                                      ds.pixel_array[frame])
        lps = ipp + np.array([0.0, 0.0, float(ds.GridFrameOffsetVector[frame])])
        np.testing.assert_allclose(img.affine[:3, 3], [-lps[0], -lps[1], lps[2]], atol=1e-4)


def test_an_enhanced_frame_takes_its_geometry_from_its_functional_groups(tmp_path):
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    from segstudio.io.image_geometry import geometry_of

    ds = pydicom.dcmread(_dicom("CT_small.dcm"))
    for tag in ("PixelSpacing", "ImageOrientationPatient", "ImagePositionPatient",
                "SliceThickness", "SpacingBetweenSlices"):
        delattr(ds, tag)
    measures, orientation = Dataset(), Dataset()
    measures.PixelSpacing, measures.SliceThickness = [0.4, 0.6], 2.5
    orientation.ImageOrientationPatient = [*X_DIR, *Y_DIR]
    shared = Dataset()
    shared.PixelMeasuresSequence = Sequence([measures])
    shared.PlaneOrientationSequence = Sequence([orientation])
    frames = []
    for z in (7.0, 9.5):
        position, group = Dataset(), Dataset()
        position.ImagePositionPatient = [1.0, 2.0, z]
        group.PlanePositionSequence = Sequence([position])
        frames.append(group)
    ds.SharedFunctionalGroupsSequence = Sequence([shared])
    ds.PerFrameFunctionalGroupsSequence = Sequence(frames)
    path = tmp_path / "enhanced.dcm"
    ds.save_as(path)
    geo = geometry_of(path, "DICOM", 1)
    assert geo.assumed == []
    assert geo.spacing == (0.6, 0.4, 2.5)
    np.testing.assert_allclose(geo.origin, [1.0, 2.0, 9.5])
    np.testing.assert_allclose(geo.axes[:, 0], X_DIR)
    np.testing.assert_allclose(geo.axes[:, 1], Y_DIR)
