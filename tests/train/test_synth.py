"""The procedural demo sets: deterministic, and their labels agree with what is drawn."""

import cv2
import numpy as np
import pytest

from segstudio.train import synth
from segstudio.train.synth_context import BOAT, CAR, GAP, ROAD, WATER
from segstudio.train.synth_xray import CLAVICLES, HEART, LUNGS


@pytest.mark.parametrize("kind", synth.KINDS)
def test_same_seed_gives_identical_samples_and_other_seed_differs(kind):
    a = list(synth.generate(kind, 3, size=64, seed=5))
    b = list(synth.generate(kind, 3, size=64, seed=5))
    c = list(synth.generate(kind, 3, size=64, seed=6))
    for x, y in zip(a, b):
        assert x.id == y.id
        np.testing.assert_array_equal(x.image, y.image)
        np.testing.assert_array_equal(x.labels, y.labels)
    assert not np.array_equal(a[0].image, c[0].image)
    assert not np.array_equal(a[0].image, a[1].image)


@pytest.mark.parametrize("kind", synth.KINDS)
def test_sample_does_not_depend_on_set_length(kind):
    short = list(synth.generate(kind, 2, size=48, seed=1))[1]
    long = list(synth.generate(kind, 4, size=48, seed=1))[1]
    np.testing.assert_array_equal(short.labels, long.labels)


@pytest.mark.parametrize("kind", synth.KINDS)
def test_labels_stay_within_the_class_set(kind):
    n = len(synth.classes_for(kind))
    for s in synth.generate(kind, 6, size=64, seed=2):
        assert s.image.shape == (64, 64, 3) and s.image.dtype == np.uint8
        assert s.labels.shape == (64, 64) and s.labels.dtype == np.uint8
        values = set(np.unique(s.labels).tolist()) - {255}
        assert values <= set(range(n))


def test_xray_heart_is_brighter_than_lungs_and_all_structures_present():
    for s in synth.generate("xray", 8, size=128, seed=3):
        assert s.grey16.dtype == np.uint16 and s.grey16.max() > 60000   # 16-bit range used
        present = set(np.unique(s.labels).tolist())
        assert {0, LUNGS, HEART, CLAVICLES} <= present
        g = s.grey16.astype(np.float64)
        assert g[s.labels == HEART].mean() > g[s.labels == LUNGS].mean() + 8000
        assert g[s.labels == CLAVICLES].mean() > g[s.labels == LUNGS].mean()


def test_xray_has_two_lung_fields_and_heart_on_the_image_right():
    for s in synth.generate("xray", 6, size=128, seed=4):
        count, _ = cv2.connectedComponents((s.labels == LUNGS).astype(np.uint8))
        assert count - 1 >= 2
        xs = np.nonzero(s.labels == HEART)[1]
        assert xs.mean() > 64


def test_context_scene_has_one_surface_far_from_every_object():
    seen = set()
    for s in synth.generate("context", 30, size=96, seed=7):
        present = set(np.unique(s.labels).tolist())
        # One surface per scene, and its objects all of the class it implies.
        assert present in ({0, WATER, BOAT}, {0, ROAD, CAR})
        seen |= present
        surface = np.isin(s.labels, (WATER, ROAD))
        obj = np.isin(s.labels, (BOAT, CAR))
        to_surface = cv2.distanceTransform((~surface).astype(np.uint8), cv2.DIST_L2, 5)
        assert to_surface[obj].min() >= GAP * 96 - 1
        # Right around an object there is only grass.
        ring = cv2.dilate(obj.astype(np.uint8), np.ones((3, 3), np.uint8), iterations=4)
        assert set(np.unique(s.labels[(ring > 0) & ~obj]).tolist()) == {0}
    assert {BOAT, CAR} <= seen


def test_context_objects_and_their_surroundings_look_the_same_whatever_their_class():
    near = {BOAT: [], CAR: []}
    objects = {BOAT: [], CAR: []}
    for s in synth.generate("context", 40, size=96, seed=8):
        for cls in (BOAT, CAR):
            mask = (s.labels == cls).astype(np.uint8)
            if mask.any():
                objects[cls].append(s.image[mask > 0].reshape(-1, 3))
                # Everything a field reaching 20 px past the object sees besides the object.
                ring = cv2.dilate(mask, np.ones((41, 41), np.uint8)) > mask
                near[cls].append(s.image[ring].reshape(-1, 3))
    for pixels in (objects, near):
        boat = np.concatenate(pixels[BOAT]).astype(float)
        car = np.concatenate(pixels[CAR]).astype(float)
        assert len(boat) > 1000 and len(car) > 1000
        assert np.abs(boat.mean(0) - car.mean(0)).max() < 6
        assert np.abs(boat.std(0) - car.std(0)).max() < 6


def test_shapes_instances_are_consecutive_and_each_has_one_class():
    for s in synth.generate("shapes", 10, size=64, seed=10):
        ids = sorted(set(np.unique(s.instances).tolist()) - {0})
        assert ids == list(range(1, len(ids) + 1)) and ids
        for i in ids:
            cls = np.unique(s.labels[s.instances == i])
            assert len(cls) == 1 and 1 <= cls[0] <= 3
        assert (s.labels[s.instances == 0] == 0).sum() + (s.labels == 255).sum() == \
            (s.instances == 0).sum()


def test_bad_requests_are_refused_with_a_reason():
    with pytest.raises(synth.SynthError, match="unknown demo data kind 'mri'"):
        synth.classes_for("mri")
    with pytest.raises(synth.SynthError, match="outside"):
        synth.make_sample("xray", 0, size=8)
    with pytest.raises(synth.SynthError, match="at least 1"):
        list(synth.generate("shapes", 0))


def test_shifted_xray_is_deterministic_and_really_another_domain():
    """The benchmark's shifted phantoms: same anatomy moved and shrunk by the stated amounts,
    a darker, flatter and noisier picture, and the ordinary phantoms untouched."""
    from dataclasses import replace

    from segstudio.train.synth_xray import SHIFTED, XrayShift

    for i in range(4):
        plain = synth.make_sample("xray", i, size=128, seed=3)
        shifted = synth.make_sample("xray", i, size=128, seed=3, shift=SHIFTED)
        again = synth.make_sample("xray", i, size=128, seed=3, shift=SHIFTED)
        assert np.array_equal(shifted.grey16, again.grey16)
        assert np.array_equal(shifted.labels, again.labels)
        identity = synth.make_sample("xray", i, size=128, seed=3, shift=XrayShift())
        assert np.array_equal(identity.grey16, plain.grey16)
        assert np.array_equal(identity.labels, plain.labels)

        # Labels: still the four classes, each scaled by scale² in area and moved by the offset.
        assert shifted.labels.dtype == np.uint8
        assert set(np.unique(shifted.labels)) == {0, LUNGS, HEART, CLAVICLES}
        for cls in (LUNGS, HEART):
            ratio = (shifted.labels == cls).sum() / (plain.labels == cls).sum()
            assert abs(ratio - SHIFTED.scale ** 2) < 0.05, (cls, ratio)
        ys, xs = np.nonzero(plain.labels == LUNGS)
        ys2, xs2 = np.nonzero(shifted.labels == LUNGS)
        c = (128 - 1) / 2
        for before, after, off in ((xs.mean(), xs2.mean(), SHIFTED.offset[0]),
                                   (ys.mean(), ys2.mean(), SHIFTED.offset[1])):
            assert abs(c + (before - c) * SHIFTED.scale + off * 128 - after) < 1.0

        # Intensities: at most 60 % of the mean grey and 70 % of the heart-lung contrast of the
        # ordinary phantom (about 46 % and 60 % measured), and the extra detector noise is there.
        a, b = plain.grey16 / 65535.0, shifted.grey16 / 65535.0
        assert b.mean() < 0.6 * a.mean()
        contrast = [g[lab == HEART].mean() - g[lab == LUNGS].mean()
                    for g, lab in ((a, plain.labels), (b, shifted.labels))]
        assert contrast[1] < 0.7 * contrast[0]
        quiet = synth.make_sample("xray", i, size=128, seed=3, shift=replace(SHIFTED, noise=0.0))
        assert (b - quiet.grey16 / 65535.0).std() > 0.02
    with pytest.raises(synth.SynthError, match="xray"):
        synth.make_sample("context", 0, shift=SHIFTED)
