"""read_image: each format, bit depth and mode, and every kind of bad file."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from segstudio.io.images import (
    ImageData,
    ImageReadError,
    apply_window,
    is_image_path,
    read_image,
)


def _gradient(h: int = 6, w: int = 8) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)


def test_rgb_png_round_trips_exactly(tmp_path):
    rgb = _gradient()
    Image.fromarray(rgb).save(tmp_path / "a.png")
    img = read_image(tmp_path / "a.png")
    assert img.format == "PNG" and img.bit_depth == 8 and img.window is None
    np.testing.assert_array_equal(img.pixels, rgb)
    np.testing.assert_array_equal(img.to_rgb8(), rgb)
    assert (img.height, img.width) == (6, 8) and not img.is_grey


def test_grey_png_is_two_dimensional_and_displays_as_three_equal_channels(tmp_path):
    grey = _gradient()[..., 0]
    Image.fromarray(grey).save(tmp_path / "g.png")
    img = read_image(tmp_path / "g.png")
    assert img.is_grey and img.pixels.dtype == np.uint8
    rgb = img.to_rgb8()
    assert rgb.shape == (6, 8, 3)
    for c in range(3):
        np.testing.assert_array_equal(rgb[..., c], grey)


def test_sixteen_bit_grey_png_keeps_full_precision_and_gets_a_window(tmp_path):
    grey = np.linspace(1000, 5000, 48, dtype=np.uint16).reshape(6, 8)
    Image.fromarray(grey).save(tmp_path / "g16.png")
    img = read_image(tmp_path / "g16.png")
    assert img.bit_depth == 16 and img.pixels.dtype == np.uint16
    np.testing.assert_array_equal(img.pixels, grey)
    assert img.value_range == (1000.0, 5000.0)
    assert img.window == (3000.0, 4000.0)
    rgb = img.to_rgb8()
    assert rgb[0, 0, 0] == 0 and rgb[-1, -1, 0] == 255


def test_one_by_one_image_is_valid(tmp_path):
    Image.fromarray(np.array([[7]], np.uint8)).save(tmp_path / "one.png")
    img = read_image(tmp_path / "one.png")
    assert img.pixels.shape == (1, 1) and img.pixels[0, 0] == 7


def test_zero_byte_file_is_a_clean_error(tmp_path):
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(ImageReadError, match=r"^empty\.png: .*empty"):
        read_image(tmp_path / "empty.png")


def test_text_file_named_png_is_reported_as_text(tmp_path):
    (tmp_path / "notes.png").write_text("hello, these are my notes\n")
    with pytest.raises(ImageReadError, match="text file") as info:
        read_image(tmp_path / "notes.png")
    assert info.value.path == tmp_path / "notes.png"


def test_truncated_png_is_a_clean_error(tmp_path):
    Image.fromarray(_gradient(64, 64)).save(tmp_path / "full.png")
    data = (tmp_path / "full.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageReadError, match=r"^cut\.png: "):
        read_image(tmp_path / "cut.png")


def _png_header_only(width: int, height: int) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + body))
        return struct.pack(">I", len(body)) + kind + body + crc

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def test_header_claiming_too_many_pixels_is_refused_before_decoding(tmp_path):
    (tmp_path / "bomb.png").write_bytes(_png_header_only(100_000, 100_000))
    with pytest.raises(ImageReadError, match=r"^bomb\.png: the header claims 100000×100000 "
                                             r"pixels, more than the limit of 400,000,000"):
        read_image(tmp_path / "bomb.png")


def test_max_pixels_is_respected_for_small_limits(tmp_path):
    Image.fromarray(_gradient(10, 10)).save(tmp_path / "a.png")
    with pytest.raises(ImageReadError, match="10×10"):
        read_image(tmp_path / "a.png", max_pixels=99)
    assert read_image(tmp_path / "a.png", max_pixels=100).pixels.shape == (10, 10, 3)


def test_apply_window_maps_the_window_linearly_and_clips():
    px = np.array([0, 50, 100, 150, 200], np.float32)
    out = apply_window(px, 100, 100)
    np.testing.assert_array_equal(out, [0, 0, 128, 255, 255])
    with pytest.raises(ValueError):
        apply_window(px, 0, 0)


def test_is_image_path_knows_the_suffixes():
    assert is_image_path("x/A.PNG") and is_image_path("b.tiff") and is_image_path("c.dcm")
    assert not is_image_path("d.txt") and not is_image_path("e.mp4")


def test_missing_file_is_a_clean_error(tmp_path):
    with pytest.raises(ImageReadError, match="does not exist"):
        read_image(tmp_path / "nope.png")


def test_jpeg_exif_orientation_is_honoured(tmp_path):
    # A 4×2 picture stored with orientation 6 ("rotate 90° clockwise to view") shows as 2×4.
    stored = np.zeros((2, 4, 3), np.uint8)
    stored[:, 0] = 255  # left column white in storage
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(stored).save(tmp_path / "r.jpg", exif=exif.tobytes(), quality=95)
    img = read_image(tmp_path / "r.jpg")
    assert img.format == "JPEG" and img.pixels.shape == (4, 2, 3)
    assert img.pixels[0].mean() > 200 and img.pixels[-1].mean() < 50  # white now on top
    assert any("EXIF orientation 6" in n for n in img.notes)


def test_multi_page_tiff_shows_first_page_with_a_note(tmp_path):
    pages = [Image.fromarray(np.full((3, 5), v, np.uint8)) for v in (10, 20, 30)]
    pages[0].save(tmp_path / "m.tif", save_all=True, append_images=pages[1:])
    img = read_image(tmp_path / "m.tif")
    assert img.format == "TIFF" and (img.pixels == 10).all()
    assert "multi-page TIFF: showing page 1 of 3" in img.notes


def test_sixteen_bit_tiff_grey_is_read_as_uint16(tmp_path):
    grey = (np.arange(15, dtype=np.uint16).reshape(3, 5) * 4000)
    Image.fromarray(grey).save(tmp_path / "g.tif")
    img = read_image(tmp_path / "g.tif")
    assert img.bit_depth == 16 and img.pixels.dtype == np.uint16
    np.testing.assert_array_equal(img.pixels, grey)


def test_sixteen_bit_colour_png_is_not_narrowed(tmp_path):
    import cv2

    rgb = np.random.default_rng(2).integers(0, 65536, (4, 5, 3), dtype=np.uint16)
    assert cv2.imwrite(str(tmp_path / "c16.png"), rgb[..., ::-1])
    img = read_image(tmp_path / "c16.png")
    assert img.bit_depth == 16 and img.pixels.dtype == np.uint16
    np.testing.assert_array_equal(img.pixels, rgb)
    assert img.to_rgb8().dtype == np.uint8


def test_sixteen_bit_colour_tiff_is_not_narrowed(tmp_path):
    import cv2

    rgb = np.random.default_rng(3).integers(0, 65536, (4, 5, 3), dtype=np.uint16)
    assert cv2.imwrite(str(tmp_path / "c16.tif"), rgb[..., ::-1])
    img = read_image(tmp_path / "c16.tif")
    assert img.format == "TIFF" and img.bit_depth == 16
    np.testing.assert_array_equal(img.pixels, rgb)


def test_bmp_is_read(tmp_path):
    rgb = _gradient()
    Image.fromarray(rgb).save(tmp_path / "a.bmp")
    img = read_image(tmp_path / "a.bmp")
    assert img.format == "BMP"
    np.testing.assert_array_equal(img.pixels, rgb)


def test_rgba_is_composited_on_black_and_says_so(tmp_path):
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[..., :3] = 200
    rgba[..., 3] = [[255, 0], [128, 255]]
    Image.fromarray(rgba, "RGBA").save(tmp_path / "t.png")
    img = read_image(tmp_path / "t.png")
    assert img.pixels.shape == (2, 2, 3)
    np.testing.assert_array_equal(img.pixels[..., 0], [[200, 0], [100, 200]])
    assert "alpha channel composited on black" in img.notes


def test_opaque_rgba_drops_alpha_and_says_so(tmp_path):
    rgba = np.full((2, 2, 4), 255, np.uint8)
    rgba[..., 0] = 9
    Image.fromarray(rgba, "RGBA").save(tmp_path / "o.png")
    img = read_image(tmp_path / "o.png")
    assert (img.pixels[..., 0] == 9).all()
    assert "alpha channel dropped (fully opaque)" in img.notes


def test_palette_png_is_expanded_to_its_colours(tmp_path):
    im = Image.fromarray(np.array([[0, 1], [1, 2]], np.uint8), "P")
    im.putpalette([0, 0, 0, 255, 0, 0, 0, 0, 255] + [0] * 759)
    im.save(tmp_path / "p.png")
    img = read_image(tmp_path / "p.png")
    np.testing.assert_array_equal(img.pixels[0, 1], [255, 0, 0])
    np.testing.assert_array_equal(img.pixels[1, 1], [0, 0, 255])


def test_random_bytes_with_png_signature_give_image_read_error(tmp_path):
    (tmp_path / "x.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(200)))
    with pytest.raises(ImageReadError, match=r"^x\.png: "):
        read_image(tmp_path / "x.png")


def test_folder_is_not_an_image(tmp_path):
    (tmp_path / "d.png").mkdir()
    with pytest.raises(ImageReadError, match="folder"):
        read_image(tmp_path / "d.png")


def test_image_data_to_grey8_of_colour_uses_luma():
    data = ImageData(np.array([[[255, 0, 0], [0, 0, 255]]], np.uint8), None, "PNG", 8, None,
                     (0.0, 255.0), [])
    np.testing.assert_array_equal(data.to_grey8(), [[76, 29]])
