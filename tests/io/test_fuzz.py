"""Property tests: whatever the bytes, the readers raise only their own error classes."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from segstudio.core.classes import ClassSet
from segstudio.io.images import ImageReadError, read_image
from segstudio.io.labels import LabelImportError, read_labelme_json
from segstudio.io.voc import VocError, load_label_png

CLASSES = ClassSet(["background", "a", "b"])
FAST = settings(max_examples=40, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

SIGNATURES = [b"", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"II*\x00", b"MM\x00*", b"BM",
              b"\x00" * 128 + b"DICM", b"\x08\x00\x05\x00"]
SUFFIXES = [".png", ".jpg", ".tif", ".bmp", ".dcm"]


_SCRATCH: list[Path] = []


@pytest.fixture(scope="module", autouse=True)
def _scratch(tmp_path_factory):
    _SCRATCH[:] = [tmp_path_factory.mktemp("fuzz")]
    yield


def _write(data: bytes, suffix: str) -> Path:
    path = _SCRATCH[0] / f"f{suffix}"
    path.write_bytes(data)
    return path


def _valid_png_bytes(seed: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 3, (5, 6), dtype=np.uint8)).save(
        buf, format="PNG")
    return buf.getvalue()


@FAST
@given(st.sampled_from(SIGNATURES), st.binary(max_size=400), st.sampled_from(SUFFIXES))
def test_read_image_on_random_bytes_raises_only_image_read_error(prefix, body, suffix):
    path = _write(prefix + body, suffix)
    try:
        img = read_image(path, max_pixels=10_000)
    except ImageReadError as e:
        assert str(e).startswith(f"{path.name}: ")
    else:
        assert img.pixels.ndim in (2, 3) and img.to_rgb8().dtype == np.uint8


@FAST
@given(st.integers(0, 10**6), st.integers(0, 200), st.binary(min_size=1, max_size=8))
def test_read_image_on_damaged_valid_png_raises_only_image_read_error(seed, at, junk):
    data = bytearray(_valid_png_bytes(seed))
    at = at % len(data)
    data[at:at + len(junk)] = junk
    path = _write(bytes(data), ".png")
    try:
        read_image(path)
    except ImageReadError:
        pass


@FAST
@given(st.integers(1, 9), st.integers(1, 9),
       st.sampled_from(["L", "RGB", "RGBA", "I;16", "P"]),
       st.sampled_from(["PNG", "TIFF", "BMP"]), st.integers(0, 2**32 - 1))
def test_random_valid_images_round_trip(h, w, mode, fmt, seed):
    rng = np.random.default_rng(seed)
    if mode == "I;16":
        if fmt == "BMP":
            return
        arr = rng.integers(0, 65536, (h, w), dtype=np.uint16)
        im = Image.fromarray(arr)
    elif mode == "P":
        arr = rng.integers(0, 4, (h, w), dtype=np.uint8)
        im = Image.fromarray(arr)
        im.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255] + [0] * 756)
    else:
        channels = {"L": (), "RGB": (3,), "RGBA": (4,)}[mode]
        arr = rng.integers(0, 256, (h, w, *channels), dtype=np.uint8)
        if mode == "RGBA":
            arr[..., 3] = 255
            if fmt == "BMP":
                return
        im = Image.fromarray(arr)
    buf = io.BytesIO()
    im.save(buf, format=fmt)
    path = _write(buf.getvalue(), "." + fmt.lower())
    img = read_image(path)
    assert (img.height, img.width) == (h, w)
    if mode in ("L", "RGB", "I;16"):
        np.testing.assert_array_equal(img.pixels, arr)
    elif mode == "RGBA":
        np.testing.assert_array_equal(img.pixels, arr[..., :3])
    else:
        lut = np.array([[0, 0, 0], [255, 0, 0], [0, 255, 0], [0, 0, 255]], np.uint8)
        np.testing.assert_array_equal(img.pixels, lut[arr])
    assert img.to_rgb8().shape == (h, w, 3)


@FAST
@given(st.sampled_from([b"", b"\x89PNG\r\n\x1a\n"]), st.binary(max_size=300))
def test_load_label_png_on_random_bytes_raises_only_voc_error(prefix, body):
    path = _write(prefix + body, ".png")
    try:
        labels = load_label_png(path)
    except VocError as e:
        assert str(e).startswith("f.png: ")
    else:
        assert labels.dtype == np.uint8 and labels.ndim == 2


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=True)
    | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8),
                                                                      children, max_size=4),
    max_leaves=12,
)
SHAPES = st.fixed_dictionaries({
    "label": st.sampled_from(["a", "b", "new", "", "__ignore__", "_background_"]) | JSON_VALUES,
    "points": st.lists(st.lists(st.floats(-50, 50) | st.integers(-50, 50) | JSON_VALUES,
                                min_size=0, max_size=3), max_size=5) | JSON_VALUES,
    "shape_type": st.sampled_from(["polygon", "rectangle", "circle", "line", "linestrip",
                                   "point", "mask", None, "blob"]),
})


@FAST
@given(st.lists(SHAPES, max_size=4), st.integers(-2, 40) | JSON_VALUES,
       st.integers(-2, 40) | JSON_VALUES)
def test_read_labelme_json_on_random_documents_raises_only_label_import_error(shapes, h, w):
    path = _write(json.dumps({"shapes": shapes, "imageHeight": h, "imageWidth": w}).encode(),
                  ".json")
    try:
        labels, new = read_labelme_json(path, CLASSES)
    except LabelImportError as e:
        assert str(e).startswith("f.json: ")
    else:
        assert labels.shape == (h, w) and labels.dtype == np.uint8
        assert all(isinstance(n, str) for n in new)


@FAST
@given(st.binary(max_size=300))
def test_read_labelme_json_on_random_bytes_raises_only_label_import_error(data):
    path = _write(data, ".json")
    try:
        read_labelme_json(path, CLASSES)
    except LabelImportError:
        pass
