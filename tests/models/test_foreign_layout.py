"""A network from a model file runs in the memory layout its library gave it: the Predictor
re-lays only segstudio's own convolutional networks as channels-last (a transformer's linear
layers and reshapes are slower on it), and the labels are those of the library's own forward."""

from __future__ import annotations

import pytest
import torch

from foreign_models import image, normalised, reference_labels, save_segformer, save_torchscript
from segstudio.models.engine import Predictor
from segstudio.models.formats import load_any

torch.set_num_threads(1)


def _conv_weights(model):
    return [p for p in model.parameters() if p.dim() == 4]


def test_a_torchscript_network_keeps_its_layout_and_its_labels(tmp_path):
    path = tmp_path / "roads.pt"
    net = save_torchscript(path)
    predictor = Predictor.from_model(load_any(path), device="cpu", precision="fp32")
    weights = _conv_weights(predictor.model)
    assert weights and all(w.is_contiguous() for w in weights)
    rgb = image(70, 90, seed=1)
    with torch.no_grad():
        expected = reference_labels(net(normalised(rgb)), rgb.shape[:2])
    assert (predictor.predict(rgb).labels == expected).all()


def test_a_hugging_face_network_keeps_its_layout(tmp_path):
    pytest.importorskip("transformers")
    save_segformer(tmp_path / "segformer")
    predictor = Predictor.from_model(load_any(tmp_path / "segformer"), device="cpu",
                                     precision="fp32")
    weights = _conv_weights(predictor.model)
    assert weights and all(w.is_contiguous() for w in weights)


def test_segstudios_own_networks_still_run_channels_last():
    from segstudio.core.classes import from_names

    predictor = Predictor.untrained("fcn8s", from_names(["a", "b"]), device="cpu",
                                    precision="fp32")
    weights = _conv_weights(predictor.model)
    assert any(w.is_contiguous(memory_format=torch.channels_last) and not w.is_contiguous()
               for w in weights)
