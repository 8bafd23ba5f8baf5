"""The readers' limits: the app's own pixel limit for images and labels alike, Pillow's limit
left in force for everything else, memory checked before decoding, peaks near 2× the array."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import cv2
import numpy as np
import pytest
from PIL import Image, ImageOps, PngImagePlugin

from segstudio.core.classes import chest_xray
from segstudio.io.workspace import Workspace
from segstudio.io import decode_memory
from segstudio.io.images import DEFAULT_MAX_PIXELS, ImageReadError, read_image
from segstudio.io.voc import VocError, load_label_png, save_label_png


def _tiny_pillow_limit(monkeypatch, limit: int = 1000) -> None:
    """Pillow refuses anything over 2 × ``limit`` pixels from here on."""
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", limit)


def test_labels_of_every_image_the_app_opens_read_back_past_pillows_limit(tmp_path, monkeypatch):
    _tiny_pillow_limit(monkeypatch)              # as a 19,000² image is to the real limit
    rgb = np.random.default_rng(1).integers(0, 256, (50, 60, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "big.png")
    ws = Workspace.open(tmp_path, classes=chest_xray())
    item = ws.items[0]
    image = ws.read_image(item)
    labels = np.random.default_rng(2).integers(0, 4, (image.height, image.width), dtype=np.uint8)
    ws.save_labels(item, labels)
    np.testing.assert_array_equal(Workspace.open(tmp_path).load_labels(item), labels)
    ws.save_prediction(item, labels)
    np.testing.assert_array_equal(ws.load_prediction(item), labels)
    # Pillow's own protection still holds for code that relies on it.
    with pytest.raises(Image.DecompressionBombError):
        Image.open(ws.label_path(item))


def test_a_label_png_over_the_apps_limit_is_refused_before_decoding(tmp_path, monkeypatch):
    save_label_png(tmp_path / "a.png", np.zeros((20, 30), np.uint8), chest_xray())
    monkeypatch.setattr(PngImagePlugin.PngImageFile, "load",
                        lambda self: pytest.fail("decoded a picture over the limit"))
    with pytest.raises(VocError, match="20 pixels, more than the limit of 599"):
        load_label_png(tmp_path / "a.png", max_pixels=599)


def test_pillows_limit_is_never_lifted_while_a_large_picture_is_read(tmp_path, monkeypatch):
    # Another thread opening an untrusted file at the same moment keeps Pillow's check.
    _tiny_pillow_limit(monkeypatch)
    Image.fromarray(np.zeros((50, 60, 3), np.uint8)).save(tmp_path / "a.png")
    save_label_png(tmp_path / "l.png", np.zeros((50, 60), np.uint8), chest_xray())
    seen = []
    real_open = PngImagePlugin.PngImageFile._open

    def watched(self):
        seen.append(Image.MAX_IMAGE_PIXELS)
        real_open(self)

    monkeypatch.setattr(PngImagePlugin.PngImageFile, "_open", watched)
    read_image(tmp_path / "a.png")
    load_label_png(tmp_path / "l.png")
    assert seen == [1000, 1000]


def test_a_decode_that_cannot_fit_in_free_memory_is_refused_with_a_message(tmp_path, monkeypatch):
    Image.fromarray(np.zeros((1000, 1200, 3), np.uint8)).save(tmp_path / "a.png")
    save_label_png(tmp_path / "l.png", np.zeros((1000, 1200), np.uint8), chest_xray())
    monkeypatch.setattr(decode_memory, "available_memory", lambda: 2_000_000)
    with pytest.raises(ImageReadError, match=r"needs about .* MB of memory but only 2.0 MB"):
        read_image(tmp_path / "a.png")
    with pytest.raises(VocError, match="of memory but only"):
        load_label_png(tmp_path / "l.png")
    monkeypatch.setattr(decode_memory, "available_memory", lambda: None)   # unknown: try
    assert read_image(tmp_path / "a.png").width == 1200


def test_free_memory_is_found_out_on_this_machine():
    free = decode_memory.available_memory()
    assert free is None or free > 0


def test_no_orientation_tag_means_no_note_and_no_turned_copy(tmp_path, monkeypatch):
    monkeypatch.setattr(ImageOps, "exif_transpose",
                        lambda *a, **k: pytest.fail("turned a picture without an orientation"))
    Image.fromarray(np.zeros((6, 8, 3), np.uint8)).save(tmp_path / "a.png")
    exif = Image.Exif()
    exif[0x0112] = 1
    Image.fromarray(np.zeros((6, 8, 3), np.uint8)).save(tmp_path / "b.jpg", exif=exif)
    for name in ("a.png", "b.jpg"):
        notes = read_image(tmp_path / name).notes
        assert not any("orientation" in n for n in notes), notes


_PEAK = textwrap.dedent("""
    import json, sys
    from segstudio.io.images import read_image
    from segstudio.io.voc import load_label_png

    def status(key):
        with open("/proc/self/status") as f:
            return next(int(l.split()[1]) * 1024 for l in f if l.startswith(key + ":"))

    read = load_label_png if sys.argv[2] == "label" else read_image
    read(sys.argv[3])                 # warm up: plugins and OpenCV loaded, small file
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")                  # the peak (VmHWM) starts again from the present size
    base = status("VmRSS")
    result = read(sys.argv[1])
    pixels = result.pixels if hasattr(result, "pixels") else result
    print(json.dumps({"growth": status("VmHWM") - base, "array": pixels.nbytes}))
""")


def _peak(path, kind, small) -> dict:
    out = subprocess.run([sys.executable, "-c", _PEAK, str(path), kind, str(small)],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


@pytest.mark.skipif(sys.platform != "linux", reason="peak RSS is read from Linux's /proc")
def test_sixteen_bit_rgba_decodes_within_twice_its_decoded_size(tmp_path):
    side = 3000
    rgba = np.zeros((side, side, 4), np.uint16)
    rgba[..., 0] = (np.arange(side) // 100 * 2000)[None, :]
    rgba[..., 3] = 65535
    rgba[side // 2:, :, 3] = 30000
    assert cv2.imwrite(str(tmp_path / "big.png"), rgba)
    assert cv2.imwrite(str(tmp_path / "small.png"), rgba[:8, :8])
    decoded = rgba.nbytes                             # what the decoder itself must produce
    result = _peak(tmp_path / "big.png", "image", tmp_path / "small.png")
    assert result["array"] == side * side * 3 * 2
    # OpenCV's decoder alone peaks near 2× its output; the reader adds one strip (before: 14×).
    assert decoded < result["growth"] < 2.25 * decoded, result


@pytest.mark.skipif(sys.platform != "linux", reason="peak RSS is read from Linux's /proc")
def test_grey_and_label_pictures_decode_within_twice_their_array(tmp_path):
    side = 6000
    im = Image.new("L", (side, side), 0)
    im.paste(200, (0, 0, side, side // 3))
    im.save(tmp_path / "grey.png")
    im.putpalette(chest_xray().palette())
    im.save(tmp_path / "label.png")
    Image.new("L", (8, 8)).save(tmp_path / "small.png")
    for name, kind in (("grey.png", "image"), ("label.png", "label")):
        result = _peak(tmp_path / name, kind, tmp_path / "small.png")
        assert result["array"] == side * side
        assert result["array"] < result["growth"] < 2 * result["array"] + 24e6, (name, result)


@pytest.mark.slow
def test_a_19000_square_label_png_reads_back_under_pillows_default_limit(tmp_path):
    side = 19_000                                # 361 M pixels: Pillow's default refuses it
    assert side * side > 2 * Image.MAX_IMAGE_PIXELS and side * side <= DEFAULT_MAX_PIXELS
    im = Image.new("P", (side, side), 0)
    im.paste(3, (0, side - 10, 20, side))
    im.putpalette(chest_xray().palette())
    im.save(tmp_path / "big.png")
    del im
    labels = load_label_png(tmp_path / "big.png")
    assert labels.shape == (side, side)
    assert labels[-1, 0] == 3 and labels[-11, 0] == 0 and labels[0, -1] == 0


def test_windowing_in_bands_equals_windowing_at_once():
    from segstudio.io.images import apply_window

    values = np.random.default_rng(3).integers(0, 65536, (1500, 1200, 3), dtype=np.uint16)
    at_once = np.rint(np.clip((values.astype(np.float32) - np.float32(1000.0))
                              * np.float32(255.0 / 30000.0), 0, 255)).astype(np.uint8)
    np.testing.assert_array_equal(apply_window(values, 16000.0, 30000.0), at_once)
    assert apply_window(np.float32(16000.0), 16000.0, 30000.0) == 128
