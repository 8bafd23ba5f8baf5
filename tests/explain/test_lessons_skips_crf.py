"""The skips and CRF labs' numbers against predictions made another way."""

import copy

import numpy as np
import pytest
import torch

from segstudio.core.metrics import ConfusionMatrix
from segstudio.explain.lessons import crf_lab, skips
from segstudio.explain.lessons.boundary import trimap_miou
from segstudio.explain.lessons.common import heldout, load_bundled, to_input
from segstudio.refine.crf import CrfParams, refine_probabilities


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _labels(model, net, rgb):
    with torch.no_grad():
        return model(to_input(net, rgb))["out"][0].argmax(0).numpy().astype(np.uint8)


def test_zeroed_skip_equals_a_copy_with_that_branchs_weights_set_to_zero():
    net = load_bundled("chest", "fcn8s")
    samples = heldout("chest", 2)
    variant = skips.measure(net, samples, ("score_pool3",))
    twin = copy.deepcopy(net.model)
    with torch.no_grad():
        twin.score_pool3.weight.zero_()
        twin.score_pool3.bias.zero_()
    preds = [_labels(twin, net, s.image) for s in samples]
    np.testing.assert_array_equal(variant.example, preds[0])
    cm = ConfusionMatrix(4)
    for s, p in zip(samples, preds):
        cm.update(s.labels, p)
    assert variant.miou == pytest.approx(cm.scores().miou, abs=1e-12)
    assert variant.trimap == pytest.approx(trimap_miou(list(zip([s.labels for s in samples],
                                                                preds)), 4), abs=1e-12)
    # And the ablation is live: the loaded network itself is unchanged afterwards.
    assert float(net.model.score_pool3.weight.detach().abs().sum()) > 0
    full = skips.measure(net, samples)
    assert full.miou > variant.miou


def test_skips_lab_measures_each_fcn_and_each_ablation_on_the_same_scenes():
    lab = skips.run_skips_lab("chest", 1)
    assert [v.label for v in lab.variants] == [
        "fcn32s", "fcn16s", "fcn8s", "fcn16s − score_pool4", "fcn8s − score_pool3",
        "fcn8s − score_pool4 − score_pool3"]
    sample = heldout("chest", 1)[0]
    for v in lab.variants[:3]:
        net = load_bundled("chest", v.arch)
        np.testing.assert_array_equal(v.example, _labels(net.model, net, sample.image))
        assert set(v.trimap) == {2, 4, 8, 16}


def test_crf_lab_after_is_the_dense_crf_of_the_networks_softmax():
    params = CrfParams(iterations=3)
    lab = crf_lab.run_crf_lab("chest", 1, params)
    sample = heldout("chest", 1)[0]
    for result in lab.results:
        net = load_bundled("chest", result.arch)
        with torch.no_grad():
            probs = torch.softmax(net.model(to_input(net, sample.image))["out"][0].double(), 0)
        probs = probs.float().numpy()
        np.testing.assert_array_equal(result.example_before, probs.argmax(0))
        after = refine_probabilities(sample.image, probs, params).argmax(0)
        assert (result.example_after != after).mean() < 1e-3
        cm = ConfusionMatrix(4).update(sample.labels, result.example_after)
        assert result.miou_after == pytest.approx(cm.scores().miou, abs=1e-12)


def test_crf_lab_with_an_identity_refinement_changes_nothing():
    lab = crf_lab.run_crf_lab("chest", 1, refine=lambda rgb, probs, params: probs)
    for result in lab.results:
        assert result.miou_after == result.miou_before
        assert result.trimap_after == result.trimap_before
