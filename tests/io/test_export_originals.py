"""Full-depth originals in VOC exports: real DICOMs from pydicom keep their stored values and
their files; 8-bit and RGB sources stay as they were; VOC readers see the same tree."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.data import get_testdata_file

from segstudio.cli import main
from segstudio.core.classes import chest_xray
from segstudio.io.workspace import ItemStatus, Workspace
from segstudio.io.voc import read_voc


def _dicom(name):
    path = get_testdata_file(name, download=False)
    if path is None:
        pytest.skip(f"pydicom does not ship {name} here")
    return path


@pytest.fixture
def workspace(tmp_path):
    """Real CT and MR DICOMs, one made MONOCHROME1, an 8-bit grey PNG and an RGB PNG."""
    root = tmp_path / "ws"
    root.mkdir()
    shutil.copy(_dicom("CT_small.dcm"), root / "ct.dcm")
    shutil.copy(_dicom("MR_small.dcm"), root / "mr.dcm")
    ds = pydicom.dcmread(_dicom("MR_small.dcm"))
    ds.PhotometricInterpretation = "MONOCHROME1"
    ds.save_as(root / "mono1.dcm")
    yy, xx = np.mgrid[0:20, 0:30]
    Image.fromarray((xx * 8).astype(np.uint8)).save(root / "grey8.png")
    rgb = np.stack([xx * 8, yy * 12, 255 - xx * 8], axis=-1).astype(np.uint8)
    Image.fromarray(rgb).save(root / "colour.png")
    ws = Workspace.open(root, classes=chest_xray())
    for item in ws.items:
        image = ws.read_image(item)
        ws.save_labels(item, np.full((image.height, image.width), 1, np.uint8),
                       status=ItemStatus.CORRECTED)
    ws.close()
    return root


def _export(workspace, out, *extra):
    return main(["export-voc", str(workspace), "--out", str(out), "--val-fraction", "0.2", *extra])


def test_dicom_originals_hold_the_stored_values_and_the_file_itself(workspace, tmp_path, capsys):
    assert _export(workspace, tmp_path / "out") == 0
    assert "with full-depth originals" in capsys.readouterr().out
    voc = tmp_path / "out" / "VOCdevkit" / "VOC2012"
    manifest = json.loads((voc / "manifest.json").read_text())
    for ident in ("ct", "mr", "mono1"):
        png = voc / "Originals" / f"{ident}.png"
        with Image.open(png) as im:
            assert im.mode == "I;16"                   # a 16-bit grey PNG
            written = np.asarray(im)
        stored = pydicom.dcmread(workspace / f"{ident}.dcm").pixel_array
        np.testing.assert_array_equal(written, stored)
        assert written.dtype == np.uint16
        dcm = voc / "Originals" / f"{ident}.dcm"
        assert dcm.read_bytes() == (workspace / f"{ident}.dcm").read_bytes()
        entry = manifest["items"][ident]
        assert entry["original"] == f"Originals/{ident}.png"
        assert entry["dicom"] == f"Originals/{ident}.dcm"
        assert entry["source"] == f"{ident}.dcm"
        assert entry["values"].startswith("stored")
        assert entry["image"] == f"JPEGImages/{ident}.jpg"
    assert manifest["items"]["ct"]["rescale_intercept"] == -1024.0
    assert manifest["items"]["mono1"]["photometric"] == "MONOCHROME1"


def test_eight_bit_and_colour_sources_stay_eight_bit_and_colour(workspace, tmp_path):
    assert _export(workspace, tmp_path / "out") == 0
    originals = tmp_path / "out" / "VOCdevkit" / "VOC2012" / "Originals"
    with Image.open(originals / "grey8.png") as im:
        assert im.mode == "L"
        np.testing.assert_array_equal(np.asarray(im), np.asarray(Image.open(workspace /
                                                                            "grey8.png")))
    with Image.open(originals / "colour.png") as im:
        assert im.mode == "RGB"
        np.testing.assert_array_equal(np.asarray(im), np.asarray(Image.open(workspace /
                                                                            "colour.png")))
    assert not (originals / "grey8.dcm").exists()


def test_no_originals_leaves_them_and_the_manifest_out(workspace, tmp_path):
    assert _export(workspace, tmp_path / "out", "--no-originals") == 0
    voc = tmp_path / "out" / "VOCdevkit" / "VOC2012"
    assert not (voc / "Originals").exists() and not (voc / "manifest.json").exists()
    assert len(read_voc(tmp_path / "out", "trainval")) == 5


def test_voc_readers_load_the_tree_with_originals_unchanged(workspace, tmp_path):
    torchvision = pytest.importorskip("torchvision")
    assert _export(workspace, tmp_path / "with") == 0
    assert _export(workspace, tmp_path / "without", "--no-originals") == 0
    a = torchvision.datasets.VOCSegmentation(str(tmp_path / "with"), year="2012",
                                             image_set="trainval", download=False)
    b = torchvision.datasets.VOCSegmentation(str(tmp_path / "without"), year="2012",
                                             image_set="trainval", download=False)
    assert len(a) == len(b) == 5
    for i in range(5):
        (ia, la), (ib, lb) = a[i], b[i]
        assert ia.mode == "RGB" and ia.size == ib.size
        np.testing.assert_array_equal(np.asarray(la), np.asarray(lb))
    # Nothing is left of the partial folder the export was built in.
    assert sorted(p.name for p in (tmp_path / "with" / "VOCdevkit").iterdir()) == ["VOC2012"]
    assert not list((tmp_path / "with").rglob(".pending-*"))


def test_signed_values_with_negatives_are_shifted_and_the_manifest_says_so(tmp_path):
    from segstudio.io.images import read_image
    from segstudio.io.originals import SIGNED_OFFSET, write_original

    ds = pydicom.dcmread(_dicom("CT_small.dcm"))
    arr = ds.pixel_array.astype(np.int16) - 1500        # now partly negative, still int16
    ds.PixelData = arr.tobytes()
    path = tmp_path / "neg.dcm"
    ds.save_as(path)
    entry = write_original(tmp_path / "o", "neg", read_image(path))
    assert entry["value_offset"] == -SIGNED_OFFSET
    written = np.asarray(Image.open(tmp_path / "o" / "neg.png")).astype(np.int32)
    np.testing.assert_array_equal(written - SIGNED_OFFSET, arr)


def test_cancelled_export_leaves_nothing_behind(workspace, tmp_path):
    from segstudio.io.voc import VocExportCancelled, write_voc

    ws = Workspace.open(workspace)
    seen = []

    def cancel():
        seen.append(1)
        return len(seen) > 4

    with pytest.raises(VocExportCancelled):
        write_voc(tmp_path / "out", ws.samples(), ws.classes, cancel=cancel, originals=True)
    ws.close()
    assert not (tmp_path / "out").exists()


# -- deeper than 16 bits, and multi-frame files ------------------------------------------------
_TIFF_TYPES = {(1, 8): "u1", (1, 16): "u2", (1, 32): "u4", (2, 8): "i1", (2, 16): "i2",
               (2, 32): "i4", (3, 32): "f4", (3, 64): "f8"}


def _read_tiff(path) -> tuple[np.ndarray, int]:
    """(pixels, photometric) of an uncompressed little-endian TIFF, read by the TIFF 6.0 spec
    with nothing but struct and NumPy: an independent check of what other programs will see."""
    import struct

    data = path.read_bytes()
    assert data[:4] == b"II*\x00", "little-endian TIFF"
    (ifd,) = struct.unpack_from("<I", data, 4)
    (count,) = struct.unpack_from("<H", data, ifd)
    sizes = {3: 2, 4: 4}
    tags = {}
    for i in range(count):
        tag, kind, n, value = struct.unpack_from("<HHII", data, ifd + 2 + 12 * i)
        if kind not in sizes:
            continue
        code = "<" + ("H" if kind == 3 else "I") * n
        where = ifd + 10 + 12 * i if n * sizes[kind] <= 4 else value
        tags[tag] = struct.unpack_from(code, data, where)
    assert tags.get(259, (1,)) == (1,), "uncompressed"
    width, height, spp = tags[256][0], tags[257][0], tags.get(277, (1,))[0]
    bits, fmt = tags[258][0], tags.get(339, (1,))[0]
    assert set(tags[258]) == {bits} and tags.get(284, (1,)) == (1,)   # one depth, interleaved
    raw = b"".join(data[o:o + n] for o, n in zip(tags[273], tags[279]))
    pixels = np.frombuffer(raw, "<" + _TIFF_TYPES[(fmt, bits)]).reshape(height, width, spp)
    return (pixels[..., 0] if spp == 1 else pixels), tags[262][0]


def _labelled_workspace(root, files: dict[str, str]):
    root.mkdir()
    for name, source in files.items():
        shutil.copy(_dicom(source), root / name)
    ws = Workspace.open(root, classes=chest_xray())
    for item in ws.items:
        image = ws.read_image(item)
        ws.save_labels(item, np.full((image.height, image.width), 1, np.uint8),
                       status=ItemStatus.CORRECTED)
    ws.close()
    return root


def test_a_32_bit_rgb_dicom_original_is_a_tiff_of_exactly_the_stored_values(tmp_path):
    root = _labelled_workspace(tmp_path / "ws", {"rgb32.dcm": "SC_rgb_rle_32bit.dcm"})
    assert _export(root, tmp_path / "out") == 0
    voc = tmp_path / "out" / "VOCdevkit" / "VOC2012"
    stored = pydicom.dcmread(root / "rgb32.dcm").pixel_array
    assert stored.dtype == np.uint32 and stored.max() > 65535       # truly past 16 bits
    assert not (voc / "Originals" / "rgb32.png").exists()
    written, photometric = _read_tiff(voc / "Originals" / "rgb32.tiff")
    assert photometric == 2 and written.dtype == np.uint32            # RGB, unsigned 32 bits
    np.testing.assert_array_equal(written, stored)
    import cv2
    again = cv2.imread(str(voc / "Originals" / "rgb32.tiff"), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(again[..., ::-1], stored)           # OpenCV reads the same
    entry = json.loads((voc / "manifest.json").read_text())["items"]["rgb32"]
    assert entry["original"] == "Originals/rgb32.tiff" and entry["file_type"] == "TIFF"
    assert (entry["dtype"], entry["channels"], entry["bits_stored"]) == ("uint32", 3, 32)
    assert entry["values"] == "stored" and "value_offset" not in entry


def test_grey_values_past_16_bits_and_floats_are_kept_exactly_in_tiffs(tmp_path):
    from segstudio.io.image_data import ImageData
    from segstudio.io.originals import write_original

    wide = np.array([[0, 1, 65536, 2**31], [2**32 - 1, 7, 123456789, 40000]], np.uint32)
    signed = np.array([[-(2**31), -40000, 0, 2**31 - 1]], np.int32)
    floats = np.array([[0.5, -1e-7, 3.4e38, 1e-30]], np.float32)
    for name, arr in (("wide", wide), ("signed", signed), ("floats", floats)):
        image = ImageData(arr, None, "TIFF", arr.dtype.itemsize * 8, None, (0.0, 1.0))
        entry = write_original(tmp_path, name, image)
        assert entry["original"] == f"{name}.tiff" and entry["dtype"] == str(arr.dtype)
        written, photometric = _read_tiff(tmp_path / f"{name}.tiff")
        assert photometric == 1 and written.dtype == arr.dtype
        np.testing.assert_array_equal(written, arr)
    with Image.open(tmp_path / "floats.tiff") as im:                  # Pillow reads floats
        assert im.mode == "F"
        np.testing.assert_array_equal(np.asarray(im), floats)


def test_each_frame_of_a_multi_frame_dicom_is_exported_with_its_own_stored_values(tmp_path):
    root = _labelled_workspace(tmp_path / "ws", {"dose.dcm": "rtdose.dcm",
                                                 "rgb2.dcm": "SC_rgb_rle_32bit_2frame.dcm"})
    assert _export(root, tmp_path / "out") == 0
    voc = tmp_path / "out" / "VOCdevkit" / "VOC2012"
    items = json.loads((voc / "manifest.json").read_text())["items"]
    for stem, frames in (("dose", 15), ("rgb2", 2)):
        stored = pydicom.dcmread(root / f"{stem}.dcm").pixel_array
        assert stored.shape[0] == frames
        for k in range(frames):
            ident = f"{stem}_{k:06d}"
            written, _ = _read_tiff(voc / "Originals" / f"{ident}.tiff")
            np.testing.assert_array_equal(written, stored[k])
            entry = items[ident]
            assert (entry["frame"], entry["frames"]) == (k, frames)
            assert entry["dicom"] == f"Originals/{stem}_000000.dcm"   # one copy for all frames
        assert not np.array_equal(stored[0], stored[1])                # frames really differ
    copies = sorted(p.name for p in (voc / "Originals").glob("*.dcm"))
    assert copies == ["dose_000000.dcm", "rgb2_000000.dcm"]
    assert (voc / "Originals" / "dose_000000.dcm").read_bytes() == (root / "dose.dcm").read_bytes()
