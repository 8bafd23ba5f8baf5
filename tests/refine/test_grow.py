"""Grow from seeds: a synthetic scene with known regions, a real CT slice, and bad input."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from segstudio.refine.grow import NO_SEED, GrowError, grow_from_seeds, seed_classes


def _two_discs(size: int = 256, noise: float = 20.0, seed: int = 0):
    """Background 80, a disc of 150 and a disc of 200, Gaussian noise; the true labels 0/1/2."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    first = (xx - 0.3 * size) ** 2 + (yy - 0.35 * size) ** 2 < (0.17 * size) ** 2
    second = (xx - 0.68 * size) ** 2 + (yy - 0.65 * size) ** 2 < (0.22 * size) ** 2
    truth = np.where(first, 1, np.where(second, 2, 0)).astype(np.uint8)
    image = np.choose(truth, [80.0, 150.0, 200.0]) + rng.normal(0, noise, truth.shape)
    return np.clip(image, 0, 255).astype(np.uint8), truth


def _strokes(size: int) -> np.ndarray:
    """A short stroke inside each disc and one in a corner of the background."""
    seeds = np.full((size, size), NO_SEED, np.uint8)
    s = size / 256
    cv2.line(seeds, (int(70 * s), int(90 * s)), (int(85 * s), int(92 * s)), 1, 3)
    cv2.line(seeds, (int(170 * s), int(165 * s)), (int(180 * s), int(170 * s)), 2, 3)
    cv2.line(seeds, (int(5 * s), int(240 * s)), (int(40 * s), int(250 * s)), 0, 3)
    return seeds


@pytest.mark.parametrize("noise", [5.0, 20.0])
def test_two_noisy_discs_are_found_from_a_stroke_each(noise):
    image, truth = _two_discs(noise=noise)
    seeds = _strokes(256)
    labels = grow_from_seeds(image, seeds)
    assert labels.dtype == np.uint8 and labels.shape == truth.shape
    assert (labels == truth).mean() >= 0.99
    # Seeds keep their class, and every pixel has one of the seeded classes.
    assert (labels[seeds != NO_SEED] == seeds[seeds != NO_SEED]).all()
    assert set(np.unique(labels)) == {0, 1, 2}


def test_colour_image_and_seed_class_numbers_are_kept():
    image, truth = _two_discs(noise=10.0, seed=3)
    rgb = np.stack([image, 255 - image, image // 2], axis=2)
    seeds = _strokes(256)
    seeds[seeds == 2] = 7                        # any class index 0–254 is a seed
    labels = grow_from_seeds(rgb, seeds)
    assert (labels == np.where(truth == 2, 7, truth)).mean() >= 0.99


def test_border_pixels_and_watershed_lines_get_a_class():
    image = np.zeros((40, 60), np.uint8)
    image[:, 30:] = 200                            # a sharp vertical edge
    seeds = np.full(image.shape, NO_SEED, np.uint8)
    seeds[20, 2], seeds[20, 57] = 3, 4
    labels = grow_from_seeds(image, seeds, smoothing=0)
    expected = np.where(np.arange(60) < 30, 3, 4)[None, :].repeat(40, 0)
    assert (labels == expected).all()


def test_real_ct_slice_body_and_air_agree_with_the_density_threshold():
    """pydicom's CT_small: seeds in the body and in the air of the two top corners (separate
    dark regions); the grown body must match the tissue mask given by the Hounsfield scale
    (> −400 HU) almost everywhere."""
    from pydicom.data import get_testdata_file

    from segstudio.io.images import read_image

    ct = read_image(get_testdata_file("CT_small.dcm"))
    tissue = (ct.pixels > -400).astype(np.uint8)
    count, ids, stats, _ = cv2.connectedComponentsWithStats(tissue)
    body = ids == 1 + np.argmax(stats[1:, cv2.CC_STAT_AREA])
    depth = cv2.distanceTransform(body.astype(np.uint8), cv2.DIST_L2, 5)
    y, x = np.unravel_index(depth.argmax(), depth.shape)
    seeds = np.full(body.shape, NO_SEED, np.uint8)
    cv2.circle(seeds, (int(x), int(y)), 6, 1, -1)
    seeds[:3, :12] = seeds[:3, -12:] = 0
    assert not body[:3, :12].any() and not body[:3, -12:].any()    # those corners are air
    labels = grow_from_seeds(ct.to_rgb8(), seeds)   # through the file's window, as displayed
    assert ((labels == 1) == body).mean() >= 0.98


def test_seed_classes_lists_the_seeded_classes():
    seeds = np.array([[255, 3, 0], [3, 255, 254]], np.uint8)
    assert seed_classes(seeds) == [0, 3, 254]


@pytest.mark.parametrize("seeds, message", [
    (np.full((8, 8), NO_SEED, np.uint8), "no seeds"),
    (np.where(np.eye(8, dtype=bool), 2, NO_SEED).astype(np.uint8), "only class 2"),
    (np.full((8, 9), 1, np.uint8), "9×8"),
    (np.zeros((8, 8), np.int32), "uint8"),
])
def test_bad_seeds_are_clear_errors(seeds, message):
    with pytest.raises(GrowError, match=message):
        grow_from_seeds(np.zeros((8, 8), np.uint8), seeds)


def test_deep_images_must_come_through_a_display_window():
    seeds = np.full((4, 4), NO_SEED, np.uint8)
    seeds[0, 0], seeds[3, 3] = 0, 1
    with pytest.raises(GrowError, match="8-bit"):
        grow_from_seeds(np.zeros((4, 4), np.uint16), seeds)
    with pytest.raises(GrowError, match="smoothing"):
        grow_from_seeds(np.zeros((4, 4), np.uint8), seeds, smoothing=-1)


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_any_image_and_seeds_give_a_full_map_of_seeded_classes_or_grow_error(data):
    """Every pixel gets one of the seeded classes, every seed keeps its own; too few seeded
    classes is a GrowError. Tiny images, one row or column, flat images, colour, any smoothing."""
    h = data.draw(st.integers(1, 24))
    w = data.draw(st.integers(1, 24))
    colour = data.draw(st.booleans())
    image = data.draw(arrays(np.uint8, (h, w, 3) if colour else (h, w)))
    values = st.sampled_from([NO_SEED] * 6 + [0, 3, 254])      # mostly no seed
    seeds = data.draw(arrays(np.uint8, (h, w), elements=values))
    smoothing = data.draw(st.sampled_from([0.0, 0.7, 1.5, 6.0]))
    classes = seed_classes(seeds)
    if len(classes) < 2:
        with pytest.raises(GrowError):
            grow_from_seeds(image, seeds, smoothing=smoothing)
        return
    labels = grow_from_seeds(image, seeds, smoothing=smoothing)
    assert labels.shape == (h, w) and labels.dtype == np.uint8
    assert set(np.unique(labels)) <= set(classes)
    seeded = seeds != NO_SEED
    assert (labels[seeded] == seeds[seeded]).all()
