"""DICOM through read_image: rescale, MONOCHROME1, windows, raw files, compressed syntaxes."""

from __future__ import annotations

import numpy as np
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    ExplicitVRLittleEndian,
    JPEGLSLossless,
    SecondaryCaptureImageStorage,
    generate_uid,
)

from segstudio.io.images import ImageReadError, read_image


def _dataset(pixels: np.ndarray, *, photometric="MONOCHROME2", syntax=ExplicitVRLittleEndian,
             **tags) -> Dataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = syntax
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "OT"
    ds.Rows, ds.Columns = pixels.shape[:2]
    ds.SamplesPerPixel = 3 if pixels.ndim == 3 else 1
    if pixels.ndim == 3:
        ds.PlanarConfiguration = 0
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated = pixels.dtype.itemsize * 8
    ds.BitsStored = tags.pop("BitsStored", ds.BitsAllocated)
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = 1 if pixels.dtype.kind == "i" else 0
    ds.PixelData = pixels.tobytes()
    for key, value in tags.items():
        setattr(ds, key, value)
    return ds


def _ct_like() -> np.ndarray:
    return np.arange(24, dtype=np.uint16).reshape(4, 6) * 100


def test_rescale_slope_and_intercept_give_float_values_in_modality_units(tmp_path):
    raw = _ct_like()
    _dataset(raw, BitsStored=12, RescaleSlope="2", RescaleIntercept="-1024").save_as(
        tmp_path / "ct.dcm", enforce_file_format=True)
    img = read_image(tmp_path / "ct.dcm")
    assert img.format == "DICOM" and img.bit_depth == 12
    assert img.pixels.dtype == np.float32
    np.testing.assert_allclose(img.pixels, raw * 2.0 - 1024.0)
    assert img.value_range == (-1024.0, 2300 * 2.0 - 1024.0)


def test_window_from_the_file_is_the_default_and_drives_to_rgb8(tmp_path):
    raw = _ct_like()
    _dataset(raw, WindowCenter=["1000", "40"], WindowWidth=["400", "80"]).save_as(
        tmp_path / "w.dcm", enforce_file_format=True)
    img = read_image(tmp_path / "w.dcm")
    assert img.window == (1000.0, 400.0)
    rgb = img.to_rgb8()
    assert rgb.shape == (4, 6, 3)
    # 800 maps to 0, 1000 to the middle, 1200 and above to 255
    assert rgb[1, 2, 0] == 0 and rgb[1, 4, 0] == 128 and rgb[3, 5, 0] == 255
    # an explicit window overrides the file's
    assert img.to_grey8((2300, 4600))[3, 5] == 128


def test_monochrome1_is_inverted(tmp_path):
    raw = _ct_like()
    _dataset(raw, photometric="MONOCHROME1").save_as(tmp_path / "m1.dcm", enforce_file_format=True)
    img = read_image(tmp_path / "m1.dcm")
    np.testing.assert_allclose(img.pixels, 2300.0 - raw)
    grey = img.to_grey8()
    assert grey[0, 0] == 255 and grey[-1, -1] == 0
    assert any("MONOCHROME1" in n for n in img.notes)


def test_file_without_preamble_is_read(tmp_path):
    raw = _ct_like()
    ds = _dataset(raw)
    del ds.file_meta
    ds.save_as(tmp_path / "raw.dcm", implicit_vr=True, little_endian=True)
    data = (tmp_path / "raw.dcm").read_bytes()
    assert data[128:132] != b"DICM"
    img = read_image(tmp_path / "raw.dcm")
    np.testing.assert_allclose(img.pixels, raw)


def test_colour_dicom_stays_rgb8(tmp_path):
    rgb = np.random.default_rng(1).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    _dataset(rgb, photometric="RGB").save_as(tmp_path / "c.dcm", enforce_file_format=True)
    img = read_image(tmp_path / "c.dcm")
    assert img.window is None and img.bit_depth == 8
    np.testing.assert_array_equal(img.to_rgb8(), rgb)


def _a_syntax_without_its_plugin():
    """A compressed transfer syntax no installed plugin decodes (the optional extras bring
    decoders for some: pyjpegls, OpenJPEG)."""
    from pydicom.pixels import get_decoder
    from pydicom.uid import HTJ2KLossless, JPEG2000Lossless, JPEGLosslessSV1

    for syntax in (JPEGLSLossless, JPEG2000Lossless, HTJ2KLossless, JPEGLosslessSV1):
        try:
            if not get_decoder(syntax).is_available:
                return syntax
        except NotImplementedError:
            return syntax
    pytest.skip("every compressed syntax tried has a decoder installed here")


def test_compressed_syntax_without_plugin_names_the_syntax(tmp_path):
    import re

    from pydicom.encaps import encapsulate

    syntax = _a_syntax_without_its_plugin()
    ds = _dataset(_ct_like(), syntax=syntax)
    ds.PixelData = encapsulate([b"\xff\xd8\xff\xf7" + b"\x00" * 20])
    ds["PixelData"].VR = "OB"
    ds.save_as(tmp_path / "packed.dcm", enforce_file_format=True)
    with pytest.raises(ImageReadError,
                       match=rf"^packed\.dcm: .*{re.escape(syntax.name)}.*plugin"):
        read_image(tmp_path / "packed.dcm")


def test_dicom_without_pixel_data_is_a_clean_error(tmp_path):
    ds = _dataset(_ct_like())
    del ds.PixelData
    ds.save_as(tmp_path / "report.dcm", enforce_file_format=True)
    with pytest.raises(ImageReadError, match="no image"):
        read_image(tmp_path / "report.dcm")


def test_dicom_claiming_too_many_pixels_is_refused(tmp_path):
    ds = _dataset(_ct_like())
    ds.save_as(tmp_path / "big.dcm", enforce_file_format=True)
    with pytest.raises(ImageReadError, match="4×6|6×4|more than"):
        read_image(tmp_path / "big.dcm", max_pixels=10)


def test_garbage_with_dcm_suffix_is_a_clean_error(tmp_path):
    (tmp_path / "junk.dcm").write_bytes(bytes(range(256)) * 3)
    with pytest.raises(ImageReadError, match=r"^junk\.dcm: "):
        read_image(tmp_path / "junk.dcm")


def test_multi_frame_dicom_shows_the_first_frame_with_a_note(tmp_path):
    frames = np.stack([np.full((4, 6), v, np.uint16) for v in (100, 200, 300)])
    ds = _dataset(frames[0])
    ds.NumberOfFrames = 3
    ds.PixelData = frames.tobytes()
    ds.save_as(tmp_path / "cine.dcm", enforce_file_format=True)
    img = read_image(tmp_path / "cine.dcm")
    assert img.pixels.shape == (4, 6) and (img.pixels == 100).all()
    assert "multi-frame DICOM: showing frame 1 of 3" in img.notes


def test_signed_ct_values_keep_their_sign(tmp_path):
    raw = np.array([[-1000, -500], [0, 1500]], np.int16)
    _dataset(raw, RescaleSlope="1", RescaleIntercept="0", WindowCenter="40",
             WindowWidth="400").save_as(tmp_path / "hu.dcm", enforce_file_format=True)
    img = read_image(tmp_path / "hu.dcm")
    np.testing.assert_array_equal(img.pixels, raw.astype(np.float32))
    assert img.value_range == (-1000.0, 1500.0)
    np.testing.assert_array_equal(img.to_grey8(), [[0, 0], [102, 255]])


def test_dicom_that_cannot_fit_in_free_memory_is_refused_before_decoding(tmp_path, monkeypatch):
    from segstudio.io import decode_memory

    raw = np.zeros((400, 500), np.uint16)
    _dataset(raw).save_as(tmp_path / "big.dcm", enforce_file_format=True)
    monkeypatch.setattr(decode_memory, "available_memory", lambda: 1_000_000)
    with pytest.raises(ImageReadError, match=r"needs about 1\.2 MB of memory but only 1\.0 MB"):
        read_image(tmp_path / "big.dcm")


def _shipped(name):
    from pydicom.data import get_testdata_file

    path = get_testdata_file(name, download=False)
    if path is None:
        pytest.skip(f"pydicom does not ship {name} here")
    return path


def test_each_frame_of_a_multi_frame_dicom_can_be_read_on_its_own(tmp_path):
    import pydicom

    path = _shipped("rtdose.dcm")                 # 15 frames of 32-bit dose values
    stored = pydicom.dcmread(path).pixel_array
    for k in (0, 7, 14):
        img = read_image(path, frame=k)
        assert img.frame == k and f"frame {k + 1} of 15" in img.notes
        np.testing.assert_array_equal(img.pixels, stored[k].astype(np.float32))
    with pytest.raises(ImageReadError, match=r"^rtdose\.dcm: frame 16 was asked for, but the "
                                             r"file holds 15 frames"):
        read_image(path, frame=15)
    from PIL import Image
    Image.fromarray(np.zeros((3, 4), np.uint8)).save(tmp_path / "still.png")
    assert read_image(tmp_path / "still.png", frame=0).frame is None
    with pytest.raises(ImageReadError, match=r"^still\.png: frame 2 was asked for"):
        read_image(tmp_path / "still.png", frame=1)


def test_frame_count_reads_the_header_only(tmp_path):
    from segstudio.io.dicom import frame_count

    assert frame_count(_shipped("rtdose.dcm")) == 15
    assert frame_count(_shipped("SC_rgb_rle_32bit_2frame.dcm")) == 2
    assert frame_count(_shipped("CT_small.dcm")) == 1
    (tmp_path / "junk.dcm").write_bytes(b"not dicom at all")
    assert frame_count(tmp_path / "junk.dcm") == 1           # reading it will say why
    # a header longer than the bytes first looked at is parsed in full
    frames = np.stack([np.full((4, 6), v, np.uint16) for v in (100, 200, 300)])
    ds = _dataset(frames[0])
    ds.add_new(0x00091010, "OB", bytes(200_000))
    ds.NumberOfFrames = 3
    ds.PixelData = frames.tobytes()
    ds.save_as(tmp_path / "long.dcm", enforce_file_format=True)
    assert frame_count(tmp_path / "long.dcm") == 3


def test_a_32_bit_rgb_dicom_is_shown_from_its_real_values_not_wrapped_ones():
    import pydicom

    path = _shipped("SC_rgb_rle_32bit.dcm")
    stored = pydicom.dcmread(path).pixel_array.astype(np.float64)
    img = read_image(path)
    assert img.value_range == (0.0, float(2**32 - 1))
    np.testing.assert_allclose(img.pixels, stored, rtol=1e-7)     # float32 of each value
    shown = img.to_rgb8().astype(np.float64)
    np.testing.assert_allclose(shown, stored * 255.0 / (2**32 - 1), atol=1.0)
