"""Dense CRF in-process: it snaps labels to colour edges, keeps good maps, and rejects bad input."""

from __future__ import annotations

import numpy as np
import pytest

from segstudio.refine.crf import CrfError, CrfParams, refine_labels, refine_probabilities


def disk_scene(size: int = 64, radius: int = 18, noise: float = 8.0, seed: int = 0):
    """A bright disk on a dark background with sensor noise, and its true mask."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    truth = (yy - size / 2) ** 2 + (xx - size / 2) ** 2 < radius ** 2
    image = np.where(truth, 190.0, 50.0)[:, :, None] + rng.normal(0, noise, (size, size, 3))
    return np.clip(image, 0, 255).astype(np.uint8), truth


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / (a | b).sum())


def blurry_prediction(truth: np.ndarray, shift: int, width: float, seed: int = 1) -> np.ndarray:
    """Two-class probabilities whose boundary is soft and off by ``shift`` pixels, with noise."""
    size = truth.shape[0]
    yy, xx = np.mgrid[:size, :size]
    radius = np.sqrt(truth.sum() / np.pi)
    dist = np.sqrt((yy - size / 2) ** 2 + (xx - size / 2 - shift) ** 2) - radius
    fg = 1.0 / (1.0 + np.exp(dist / width))
    fg = np.clip(fg + np.random.default_rng(seed).normal(0, 0.1, fg.shape), 0.01, 0.99)
    return np.stack([1 - fg, fg]).astype(np.float32)


def test_crf_moves_a_blurry_shifted_boundary_onto_the_colour_edge():
    image, truth = disk_scene()
    probs = blurry_prediction(truth, shift=4, width=4.0)
    before = iou(probs.argmax(0) == 1, truth)
    refined = refine_probabilities(image, probs)
    after = iou(refined.argmax(0) == 1, truth)
    assert before < 0.85
    assert after > 0.97
    assert after > before + 0.1


def test_deeplab_setting_also_snaps_to_the_edge():
    params = CrfParams.deeplab()
    assert (params.iterations, params.bilateral_sxy, params.bilateral_srgb,
            params.bilateral_compat, params.gaussian_sxy, params.gaussian_compat) \
        == (10, 121, 5, 4, 3, 3)
    image, truth = disk_scene(noise=3.0)
    probs = blurry_prediction(truth, shift=4, width=4.0)
    assert iou(refine_probabilities(image, probs, params).argmax(0) == 1, truth) > 0.97


def test_refined_probabilities_are_distributions_of_the_input_shape():
    image, truth = disk_scene(size=32, radius=9)
    probs = blurry_prediction(truth, shift=0, width=2.0)
    refined = refine_probabilities(image, probs)
    assert refined.shape == probs.shape and refined.dtype == np.float32
    np.testing.assert_allclose(refined.sum(axis=0), 1.0, atol=1e-4)
    assert refined.min() >= 0


def test_progress_is_reported_after_every_iteration():
    image, truth = disk_scene(size=24, radius=6)
    steps = []
    refine_probabilities(image, blurry_prediction(truth, 0, 2.0), CrfParams(iterations=3),
                         progress=lambda done, total: steps.append((done, total)))
    assert steps == [(1, 3), (2, 3), (3, 3)]


def test_grey_image_is_accepted_as_three_equal_channels():
    image, truth = disk_scene(size=32, radius=9)
    probs = blurry_prediction(truth, shift=2, width=2.0)
    grey = image[:, :, 0]
    np.testing.assert_allclose(refine_probabilities(grey, probs),
                               refine_probabilities(np.repeat(grey[:, :, None], 3, 2), probs))


def test_refine_labels_leaves_a_map_that_follows_the_edges_almost_untouched():
    image, truth = disk_scene()
    labels = truth.astype(np.uint8)
    refined = refine_labels(image, labels, num_classes=2)
    assert refined.dtype == np.uint8
    assert (refined != labels).mean() < 0.005


def test_refine_labels_pulls_a_sloppy_outline_onto_the_object():
    image, truth = disk_scene()
    yy, xx = np.mgrid[:64, :64]
    sloppy = ((yy - 32) ** 2 + (xx - 35) ** 2 < 20 ** 2).astype(np.uint8)   # too big, off-centre
    refined = refine_labels(image, sloppy, num_classes=2, confidence=0.6)
    assert iou(sloppy == 1, truth) < 0.8
    assert iou(refined == 1, truth) > 0.95


def test_void_pixels_stay_void_unless_asked_to_fill_them():
    image, truth = disk_scene()
    labels = truth.astype(np.uint8)
    labels[:, 28:36] = 255   # an unlabelled stripe through the disk and the background
    kept = refine_labels(image, labels, num_classes=2)
    assert (kept[:, 28:36] == 255).all()
    filled = refine_labels(image, labels, num_classes=2, fill_void=True)
    stripe = filled[:, 28:36]
    assert (stripe != 255).all()
    assert (stripe == truth[:, 28:36]).mean() > 0.97


@pytest.mark.parametrize("image_shape, probs_shape, words", [
    ((20, 30, 3), (2, 30, 20), ["(2, 30, 20)", "(20, 30, 3)", "C×20×30"]),
    ((20, 30, 3), (20, 30), ["(20, 30)"]),
    ((20, 30, 4), (2, 20, 30), ["H×W×3", "(20, 30, 4)"]),
    ((20, 30, 3), (1, 20, 30), ["at least 2 classes"]),
])
def test_bad_shapes_raise_crf_error_naming_the_shapes(image_shape, probs_shape, words):
    image = np.zeros(image_shape, np.uint8)
    with pytest.raises(CrfError) as info:
        refine_probabilities(image, np.full(probs_shape, 0.5, np.float32))
    for word in words:
        assert word in str(info.value)


def test_bad_values_raise_crf_error():
    image = np.zeros((8, 8, 3), np.uint8)
    with pytest.raises(CrfError, match="uint8"):
        refine_probabilities(image.astype(np.float32), np.full((2, 8, 8), 0.5, np.float32))
    with pytest.raises(CrfError, match="NaN"):
        refine_probabilities(image, np.full((2, 8, 8), np.nan, np.float32))
    with pytest.raises(CrfError, match="class 3 but num_classes is 3"):
        refine_labels(image, np.full((8, 8), 3, np.uint8), num_classes=3)
    with pytest.raises(CrfError, match=r"label map has shape \(8, 9\)"):
        refine_labels(image, np.zeros((8, 9), np.uint8), num_classes=3)
    with pytest.raises(CrfError, match="confidence"):
        refine_labels(image, np.zeros((8, 8), np.uint8), num_classes=4, confidence=0.2)
    with pytest.raises(CrfError, match="iterations"):
        CrfParams(iterations=0)
    with pytest.raises(CrfError, match="bilateral_srgb"):
        CrfParams(bilateral_srgb=0)
