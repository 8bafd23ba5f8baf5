"""Window presets and the pixel readout on the real DICOMs that ship inside pydicom."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file

from segstudio.io import windowing
from segstudio.io.images import apply_window, read_image


def _file(name: str) -> str:
    path = get_testdata_file(name, download=False)
    if path is None:
        pytest.skip(f"pydicom does not ship {name} here")
    return path


def test_every_window_of_the_file_is_offered_with_its_explanation():
    path = _file("examples_overlay.dcm")       # MR with WINDOW1 450/790 and WINDOW2 200/443
    image = read_image(path)
    found = windowing.presets(image)
    files = [p for p in found if p.kind == "file"]
    assert [(p.centre, p.width) for p in files] == [(450.0, 790.0), (200.0, 443.0)]
    assert "WINDOW1" in files[0].label and "WINDOW2" in files[1].label
    assert image.window == (450.0, 790.0)              # the first one is the default
    kinds = [p.kind for p in found]
    assert kinds == ["file", "file", "full", "auto"]


def test_full_range_and_automatic_window_follow_the_pixels():
    image = read_image(_file("CT_small.dcm"))
    by_kind = {p.kind: p for p in windowing.presets(image)}
    lo, hi = image.value_range
    assert by_kind["full"].window == ((lo + hi) / 2, hi - lo)
    values = image.pixels.astype(np.float64)
    a, b = np.percentile(values, windowing.AUTO_PERCENTILES)
    auto = by_kind["auto"]
    assert auto.centre == pytest.approx((a + b) / 2)
    assert auto.width == pytest.approx(b - a)
    assert lo <= auto.centre - auto.width / 2 and auto.centre + auto.width / 2 <= hi
    assert "file" not in by_kind                        # CT_small names no window


def test_readout_gives_stored_modality_and_shown_values_of_a_ct():
    path = _file("CT_small.dcm")
    ds = pydicom.dcmread(path)
    image = read_image(path)
    stored = ds.pixel_array
    slope, intercept = float(ds.RescaleSlope), float(ds.RescaleIntercept)
    for y, x in ((10, 10), (64, 64), (100, 30)):
        text = windowing.readout(image, x, y, image.window)
        modality = stored[y, x] * slope + intercept
        shown = int(apply_window(np.array([[modality]], np.float32), *image.window)[0, 0])
        assert f"stored {stored[y, x]}" in text
        assert f"modality {modality:g} HU" in text
        assert f"shown {shown}" in text


def test_monochrome1_readout_shows_the_stored_value_not_the_inverted_one(tmp_path):
    ds = pydicom.dcmread(_file("MR_small.dcm"))
    ds.PhotometricInterpretation = "MONOCHROME1"
    path = tmp_path / "mono1.dcm"
    ds.save_as(path)
    stored = ds.pixel_array
    image = read_image(path)
    y, x = 20, 30
    assert image.pixels[y, x] != stored[y, x]           # the reader inverted it for display
    text = windowing.readout(image, x, y, image.window)
    assert f"stored {stored[y, x]}" in text and f"modality {stored[y, x]}" in text
    assert "MONOCHROME1" not in text                    # said once, in the notes
    assert sum("MONOCHROME1" in n for n in image.notes) == 1
    # The file's window (600/1600) covers the same values after the inversion: the stored value
    # at the window's centre is shown mid-grey, larger stored values darker.
    (preset,) = [p for p in windowing.presets(image) if p.kind == "file"]
    assert "centre 600" in preset.label
    mid = image.mapping.to_pixel(600.0)
    assert apply_window(np.array([[mid]], np.float32), *preset.window)[0, 0] in (127, 128)
    brighter = apply_window(np.array([[image.mapping.to_pixel(500.0)]], np.float32),
                            *preset.window)[0, 0]
    assert brighter > 128


def test_plain_images_read_out_their_value_and_what_is_shown():
    from segstudio.io.images import ImageData

    px = np.array([[0, 1000], [30000, 65535]], np.uint16)
    image = ImageData(px, None, "PNG", 16, (32767.5, 65535.0), (0.0, 65535.0))
    assert windowing.readout(image, 1, 1, image.window) == "value 65535   shown 255"
    assert "stored" not in windowing.readout(image, 0, 1, image.window)
