import numpy as np
import pytest

from segstudio.core.class_mapping import ClassMapping, remap_prediction, same_names
from segstudio.core.classes import chest_xray, from_names, voc21


def test_same_names_at_other_indices_map_by_name_and_add_nothing():
    source = from_names(["background", "heart", "lungs"])
    target = from_names(["background", "lungs", "heart", "clavicles"])
    m = ClassMapping.by_name(source, target)
    assert m.added == () and m.target == target
    labels = np.array([[0, 1, 2, 255]], np.uint8)
    assert m.apply(labels).tolist() == [[0, 2, 1, 255]]
    assert not m.identity


def test_names_the_target_lacks_are_appended_never_merged_into_others():
    shapes = from_names(["background", "circle", "square", "triangle"])
    chest = chest_xray()
    m = ClassMapping.by_name(shapes, chest)
    assert m.added == ("circle", "square", "triangle")
    assert m.target.names == chest.names + ("circle", "square", "triangle")
    assert m.apply(np.array([0, 1, 2, 3], np.uint8)).tolist() == [0, 4, 5, 6]
    # each added class is drawn in a colour no other class of the target has
    assert len(set(m.target.colors)) == len(m.target)
    # what keeping the numbers would have done: circle shown as lungs, …
    assert ("circle", "lungs") in m.changes()


def test_names_match_whatever_their_case_and_spacing():
    m = ClassMapping.by_name(from_names(["Background", "Left  Lung"]),
                             from_names(["background", "left lung"]))
    assert m.identity and m.added == ()
    assert same_names(from_names(["Background", "Left  Lung"]),
                      from_names(["background", "left lung"]))
    assert not same_names(chest_xray(), voc21())


def test_remapped_prediction_keeps_every_pixels_probability_mass():
    source = from_names(["background", "circle", "lungs"])
    m = ClassMapping.by_name(source, chest_xray())
    rng = np.random.default_rng(0)
    probs = rng.random((3, 5, 6)).astype(np.float32)
    probs /= probs.sum(0)

    class P:
        labels = probs.argmax(0).astype(np.uint8)
        probabilities = probs
        objects = [(1, 0.9), (2, 0.5)]

    p = P()
    remap_prediction(p, m)
    assert p.probabilities.shape == (len(m.target), 5, 6)
    np.testing.assert_allclose(p.probabilities.sum(0), 1.0, rtol=1e-5)
    assert (p.probabilities.argmax(0) == p.labels).all()
    lungs, circle = m.target.index_of("lungs"), m.target.index_of("circle")
    assert p.objects == [(circle, 0.9), (lungs, 0.5)]
    np.testing.assert_array_equal(p.probabilities[lungs], probs[2])


@pytest.mark.parametrize("n", [1, 20])
def test_identity_for_the_same_set(n):
    names = [f"c{i}" for i in range(n)]
    assert ClassMapping.by_name(from_names(names), from_names(names)).identity
