"""A network from a model file runs in the memory layout that suits it: a convolutional one
channels-last, as segstudio's own networks, one with linear layers (a transformer's token
mixing, whose reshapes are slower on channels-last) in the layout its library gave it; the
labels are those of the library's own forward either way."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

from foreign_models import (class_facts, image, normalised, reference_labels, save_segformer,
                            save_torchscript, write_sidecar)
from segstudio.models.engine import Predictor
from segstudio.models.formats import load_any

torch.set_num_threads(1)


def _conv_weights(model):
    return [p for p in model.parameters() if p.dim() == 4]


def _channels_last(w):
    return w.is_contiguous(memory_format=torch.channels_last) and not w.is_contiguous()


class ConvThenLinear(nn.Module):
    """A patch embedding and a per-token linear layer, as a transformer's first stage."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(2)
        self.embed = nn.Conv2d(3, 8, 4, stride=4)
        self.mix = nn.Linear(8, 3)

    def forward(self, x):
        t = self.embed(x)
        return self.mix(t.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


def test_a_convolutional_torchscript_network_runs_channels_last_with_its_labels(tmp_path):
    path = tmp_path / "roads.pt"
    net = save_torchscript(path)
    predictor = Predictor.from_model(load_any(path), device="cpu", precision="fp32")
    weights = _conv_weights(predictor.model)
    assert weights and all(_channels_last(w) for w in weights if w.shape[-1] > 1)
    rgb = image(70, 90, seed=1)
    with torch.no_grad():
        expected = reference_labels(net(normalised(rgb)), rgb.shape[:2])
    assert (predictor.predict(rgb).labels == expected).all()


def test_a_torchscript_network_with_linear_layers_keeps_its_layout(tmp_path):
    path = tmp_path / "mixer.pt"
    net = ConvThenLinear().eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.save(torch.jit.script(net), str(path))
    write_sidecar(path, **class_facts())
    predictor = Predictor.from_model(load_any(path), device="cpu", precision="fp32")
    assert all(w.is_contiguous() for w in _conv_weights(predictor.model))
    rgb = image(64, 80, seed=2)
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
    assert any(_channels_last(w) for w in _conv_weights(predictor.model))
